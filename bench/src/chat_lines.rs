//! The lines of the chat part's one-way runs: made and written by the
//! driver's writer, counted and checked by its readers.
//!
//! The driver shares the machine's two CPUs with what it measures, so what
//! it spends per line is CPU the clients (or the `cat`s) cannot have: the
//! lines are all made before the clock starts, written 64 KiB at a time, and
//! read and checked where they lie in the reader's buffer, without a search
//! when the text is where a screen line puts it.

use std::io::{BufRead, BufReader, Read, Write};

use anyhow::{Context as _, bail};

use crate::chat::LINE_LEN;

/// Filler after a line's number.
const FILLER: [u8; LINE_LEN] = [b'x'; LINE_LEN];

/// Digits of a line's number.
const NUMBER_LEN: usize = 10;

/// Bytes the writer hands the pipe at a time.
const WRITE_CHUNK: usize = 64 * 1024;

/// Line `i` of the one-way run: its number, then filler, [`LINE_LEN`] bytes.
pub fn numbered_line(i: usize) -> String {
    let mut s = String::with_capacity(LINE_LEN);
    s.push_str(&format!("{i:010} "));
    s.push_str(&"x".repeat(LINE_LEN - s.len()));
    s
}

/// [`numbered_line`] `i` and its line end, appended to `buf`.
fn push_numbered_line(buf: &mut Vec<u8>, i: usize) {
    let mut digits = [b'0'; NUMBER_LEN];
    let mut n = i;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    buf.extend_from_slice(&digits);
    buf.push(b' ');
    buf.extend_from_slice(&FILLER[..LINE_LEN - NUMBER_LEN - 1]);
    buf.push(b'\n');
}

/// The first `lines` numbered lines, each with its line end: a run's
/// input, made before its clock starts.
pub fn numbered_input(lines: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(lines * (LINE_LEN + 1));
    for i in 0..lines {
        push_numbered_line(&mut buf, i);
    }
    buf
}

/// Writes `input` to `stdin` in a thread, [`WRITE_CHUNK`] bytes at a time;
/// the thread hands both back, so that the input's memory is freed after
/// the run, not during it.
pub fn write_lines<W: Write + Send + 'static>(
    mut stdin: W,
    input: Vec<u8>,
) -> std::thread::JoinHandle<std::io::Result<(W, Vec<u8>)>> {
    std::thread::spawn(move || {
        for chunk in input.chunks(WRITE_CHUNK) {
            stdin.write_all(chunk)?;
        }
        stdin.flush()?;
        Ok((stdin, input))
    })
}

/// Reads `out` until `count` lines ending in `"] {who}: "` + the numbered
/// texts in order, checking each number. Returns when the last is read.
///
/// Lines are checked where they lie in the reader's buffer; only a line
/// that straddles two reads is copied (into `partial`), so the driver's
/// readers spend per line little more than the search for its end.
pub fn count_numbered<R: Read>(
    out: &mut BufReader<R>,
    who: &str,
    count: usize,
) -> anyhow::Result<()> {
    let marker = format!("] {who}: ");
    let mut partial = Vec::with_capacity(256);
    let mut next = 0usize;
    while next < count {
        let buf = out.fill_buf()?;
        if buf.is_empty() {
            bail!("output ended after {next} of {count} lines");
        }
        let mut used = 0;
        while next < count {
            let Some(end) = memchr::memchr(b'\n', &buf[used..]) else { break };
            let line = &buf[used..used + end + 1];
            used += end + 1;
            if partial.is_empty() {
                check_line(line, marker.as_bytes(), &mut next)?;
            } else {
                partial.extend_from_slice(line);
                check_line(&partial, marker.as_bytes(), &mut next)?;
                partial.clear();
            }
        }
        if next < count && used < buf.len() {
            partial.extend_from_slice(&buf[used..]);
            used = buf.len();
        }
        out.consume(used);
    }
    Ok(())
}

/// Checks one screen line: if it shows a numbered text after `marker`, that
/// text must be number `next`, which then moves on.
fn check_line(line: &[u8], marker: &[u8], next: &mut usize) -> anyhow::Result<()> {
    let Some(n) = shown_number(line, marker) else { return Ok(()) };
    let n = n.with_context(|| format!("unexpected line {:?}", String::from_utf8_lossy(line)))?;
    if n != *next {
        bail!("line {n} shown where {next} was due");
    }
    *next += 1;
    Ok(())
}

/// Where a screen line puts the marker: after `[HH:MM:SS]`.
const MARKER_AT: usize = 9;

/// The number of the text `line` shows after `marker`: `None` if `line`
/// holds no marker (another line of the screen), `Some(None)` if what
/// follows it is not a number.
fn shown_number(line: &[u8], marker: &[u8]) -> Option<Option<usize>> {
    let at = if line.get(MARKER_AT..MARKER_AT + marker.len()) == Some(marker) {
        MARKER_AT
    } else {
        memchr::memmem::find(line, marker)?
    };
    let digits = line.get(at + marker.len()..at + marker.len() + NUMBER_LEN);
    Some(
        digits
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .map(|d| d.iter().fold(0usize, |n, &b| n * 10 + usize::from(b - b'0'))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_made_as_numbered_line_makes_them() {
        for i in [0, 7, 42, 199_999, 1_234_567_890] {
            let mut buf = Vec::new();
            push_numbered_line(&mut buf, i);
            assert_eq!(buf, format!("{}\n", numbered_line(i)).into_bytes());
            let input = numbered_input(i % 50 + 1);
            let want: String = (0..=i % 50).map(|n| format!("{}\n", numbered_line(n))).collect();
            assert_eq!(input, want.into_bytes());
        }
    }

    /// A screen of `numbers` (and a line of something else), read through
    /// a buffer of `capacity` bytes.
    fn screen(numbers: &[usize], capacity: usize) -> BufReader<&'static [u8]> {
        let mut text = String::from("[12:00:00] * connected\n");
        for &i in numbers {
            text.push_str(&format!("[12:34:56] benchA: {}\n", numbered_line(i)));
        }
        BufReader::with_capacity(capacity, text.into_bytes().leak())
    }

    #[test]
    fn lines_that_straddle_reads_are_counted_and_checked() {
        // A buffer smaller than a line: every line straddles reads.
        for capacity in [7, 150, 1 << 16] {
            count_numbered(&mut screen(&[0, 1, 2, 3], capacity), "benchA", 4).unwrap();
            let skipped = count_numbered(&mut screen(&[0, 2, 3], capacity), "benchA", 3);
            assert!(skipped.unwrap_err().to_string().contains("line 2 shown where 1 was due"));
            let short = count_numbered(&mut screen(&[0, 1], capacity), "benchA", 3);
            assert!(short.unwrap_err().to_string().contains("ended after 2 of 3"));
        }
    }

    #[test]
    fn a_shown_line_gives_its_number() {
        let marker = b"] benchA: ";
        let line = format!("[12:34:56] benchA: {}\n", numbered_line(123));
        assert_eq!(shown_number(line.as_bytes(), marker), Some(Some(123)));
        // Elsewhere on the line (another layout), still found.
        let line = format!("  [12:34:56] benchA: {}\n", numbered_line(9));
        assert_eq!(shown_number(line.as_bytes(), marker), Some(Some(9)));
        assert_eq!(shown_number(b"[12:34:56] you: 0000000001 x\n", marker), None);
        assert_eq!(shown_number(b"[12:34:56] benchA: 12345abcde x\n", marker), Some(None));
        assert_eq!(shown_number(b"[12:34:56] benchA: 12\n", marker), Some(None));
    }
}
