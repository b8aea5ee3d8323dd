//! The history file: one line per message or chat event, appended; the
//! lines of a burst are written together, and always before they are shown
//! (see [`History`]).
//!
//! ```text
//! 2026-03-01T13:34:50.001+01:00 started Mert Ann
//! 2026-03-01T13:34:56.789+01:00 sent Mert hello there
//! 2026-03-01T13:34:57.012+01:00 received Mert hi!\nsecond line
//! 2026-03-01T13:35:02.345+01:00 undelivered Mert are you there?
//! 2026-03-01T13:35:03.000+01:00 ended Mert Mert left the chat
//! ```
//!
//! Fields are separated by one space: the time (RFC 3339 in local time with
//! its UTC offset), the kind (`sent`, `received`, `undelivered`,
//! `unacknowledged`, `failed`, `started`, `ended`), the peer's name (which
//! never holds white space) and the text, escaped so that one message is
//! always one line (see [`escape`]). `docs/HISTORY.md` is the reference
//! (format version 2).

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use p2pchat_core::{UserName, is_default_ignorable};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use unicode_segmentation::UnicodeSegmentation;

/// RFC 3339 with milliseconds and the UTC offset of the time given:
/// `2026-03-01T13:34:56.789+01:00`.
const TIME_FORMAT: &[BorrowedFormatItem<'_>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory]:[offset_minute]"
);

/// What a history line records: which way a message went, or a chat's
/// start or end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We handed it to the chat session.
    Sent,
    /// The peer sent it.
    Received,
    /// We sent it and it certainly did not reach the peer's screen: the
    /// peer said `Goodbye` first (acknowledging all it had shown), or the
    /// chat never started. It also has a `sent` line.
    Undelivered,
    /// We sent it and the peer never acknowledged it before the chat ended
    /// abruptly (connection lost, silence, an error, or our wait for the
    /// acknowledgement ran out): the peer may have seen it. It also has a
    /// `sent` line.
    Unacknowledged,
    /// The chat refused it (too long, the chat closed): it was never sent.
    Failed,
    /// A chat with the peer started; the text is our own name in it.
    Started,
    /// The chat with the peer ended; the text says why.
    Ended,
}

impl Direction {
    /// The kind as the history file writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
            Direction::Undelivered => "undelivered",
            Direction::Unacknowledged => "unacknowledged",
            Direction::Failed => "failed",
            Direction::Started => "started",
            Direction::Ended => "ended",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Escapes `text` for the history file and the screen: `\` becomes `\\`,
/// line feed `\n`, carriage return `\r`, tab `\t`, and every other control
/// character, the Unicode line and paragraph separators, and every
/// default-ignorable character (zero-width characters, bidi controls,
/// variation selectors, fillers: see [`is_default_ignorable`]) `\u{XX}` with
/// its hex code point. The result holds no line break and nothing invisible,
/// and [`unescape`] undoes it.
pub fn escape(text: &str) -> Cow<'_, str> {
    // Over bytes first: most texts are printable ASCII without a `\`, and
    // are used as they are; ASCII with controls or `\` is escaped byte by
    // byte. Only text beyond ASCII needs its grapheme clusters.
    if all_plain(text.as_bytes()) {
        return Cow::Borrowed(text);
    }
    let first = text.bytes().position(|b| !is_plain(b)).unwrap_or(text.len());
    if !text.is_ascii() {
        return Cow::Owned(escape_unicode(text));
    }
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first]);
    for &b in &text.as_bytes()[first..] {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b if is_plain(b) => out.push(char::from(b)),
            // The other ASCII controls (C0 and DEL).
            b => {
                let _ = write!(out, "\\u{{{b:x}}}");
            }
        }
    }
    Cow::Owned(out)
}

/// Whether every byte of `bytes` [`is_plain`]: checked 16 bytes at a time
/// without an early exit, which the compiler turns into vector code.
fn all_plain(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(16);
    let mut plain = true;
    for chunk in &mut chunks {
        plain &= chunk.iter().fold(true, |ok, &b| ok & is_plain(b));
        if !plain {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| is_plain(b))
}

/// A byte that stands for itself in [`escape`]'s output: printable ASCII
/// other than `\`.
fn is_plain(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'\\'
}

/// [`escape`] for text beyond ASCII, grapheme cluster by cluster.
fn escape_unicode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for cluster in text.graphemes(true) {
        let last = cluster.chars().count() - 1;
        for (i, c) in cluster.chars().enumerate() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                // Inside one grapheme cluster a joiner joins (an emoji ZWJ
                // sequence such as 👩‍👩‍👧, an Indic conjunct) and a variation
                // selector picks how the character before it looks: neither
                // hides nor reorders anything, so both are kept.
                ZWJ if i < last => out.push(c),
                VS15 | VS16 if i > 0 => out.push(c),
                c if c.is_control()
                    || c == '\u{2028}'
                    || c == '\u{2029}'
                    || is_default_ignorable(c) =>
                {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
                c => out.push(c),
            }
        }
    }
    out
}

/// ZERO WIDTH JOINER.
const ZWJ: char = '\u{200d}';
/// VARIATION SELECTOR-15 (text presentation) and -16 (emoji presentation).
const VS15: char = '\u{fe0e}';
const VS16: char = '\u{fe0f}';

/// Escapes a peer's text (or the user's own input) for the terminal exactly
/// as [`escape`] does for the history: a peer cannot move the cursor, clear
/// the screen, forge a line, reorder what is shown with bidi controls or hide
/// characters, and a literal `\` shows as `\\`, so `\u{7}` typed by a peer
/// (shown `\\u{7}`) never looks like an escaped bell (shown `\u{7}`).
pub fn escape_for_display(text: &str) -> Cow<'_, str> {
    escape(text)
}

/// Undoes [`escape`]; `None` if `line` is not something it produced. (Readers
/// of the file do this; here it proves that the escaping loses nothing.)
#[cfg(test)]
pub fn unescape(line: &str) -> Option<String> {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// One history line, without its line end; the time is written with the
/// offset `at` has (the local one, as the screen shows it).
#[cfg(test)]
pub fn format_line(
    at: OffsetDateTime,
    direction: Direction,
    peer: &UserName,
    text: &str,
) -> String {
    format!("{} {direction} {peer} {}", format_time(at), escape(text))
}

/// The local date and second of `at`: what a history stamp or a screen
/// line's clock is made again for when it changes. Compared field by
/// field, where the seconds since the epoch would cost a calendar
/// computation per line.
pub(crate) fn local_second(at: OffsetDateTime) -> LocalSecond {
    (at.date(), [at.hour(), at.minute(), at.second()])
}

/// See [`local_second`].
pub(crate) type LocalSecond = (time::Date, [u8; 3]);

/// `at` as the history writes it, with the offset it has.
fn format_time(at: OffsetDateTime) -> String {
    at.format(TIME_FORMAT).unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// Unix permissions of a newly created history file: owner read and write
/// only, since it holds every message in clear text.
pub const HISTORY_MODE: u32 = 0o600;

/// Bytes of history lines kept in memory before they are written; the
/// client also writes them before anything is shown on the screen (so that
/// what was shown is in the file even if the process dies next) and before
/// the loop sleeps.
pub const HISTORY_BUFFER: usize = 256 * 1024;

/// The history file, open for appending. Lines are buffered (at most
/// [`HISTORY_BUFFER`] bytes) until [`History::flush`], so a burst of
/// messages costs one write.
#[derive(Debug)]
pub struct History {
    file: File,
    buf: Vec<u8>,
    /// The last time written, as text.
    stamp: Stamp,
    /// The start of the last line written.
    prefix: Prefix,
}

/// The start of the last history line, up to its text: `TIME KIND PEER `.
#[derive(Debug, Default)]
struct Prefix {
    /// The stamp's generation and the kind it was made for.
    made_for: Option<(u64, Direction)>,
    /// The peer it was made for.
    peer: String,
    text: String,
}

/// The last time a history line was stamped with, as text: the messages of
/// a burst share their millisecond (the text is reused), those of a
/// conversation their second (only the milliseconds are written again, as
/// three digits, not through the formatting machinery).
#[derive(Debug, Default)]
struct Stamp {
    /// The local second ([`local_second`]) and offset `text` holds.
    second: Option<(LocalSecond, time::UtcOffset)>,
    /// Its millisecond.
    millisecond: u16,
    /// `at` formatted with [`TIME_FORMAT`].
    text: String,
    /// Counts the changes of `text`.
    generation: u64,
}

/// Where the milliseconds are in a stamp: after `YYYY-MM-DDTHH:MM:SS.`.
const MILLIS_AT: usize = 20;

impl Stamp {
    /// `at` formatted as [`format_time`] does, and the text's generation
    /// (it changes whenever the text does).
    fn get(&mut self, at: OffsetDateTime) -> (&str, u64) {
        let second = Some((local_second(at), at.offset()));
        let ms = at.millisecond();
        let digits = self
            .text
            .get(MILLIS_AT..MILLIS_AT + 3)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
        if self.second != second || digits.is_none() {
            self.text = format_time(at);
            self.second = second;
            self.millisecond = ms;
        } else if self.millisecond != ms {
            let ms_text =
                [b'0' + (ms / 100) as u8, b'0' + (ms / 10 % 10) as u8, b'0' + (ms % 10) as u8];
            let mut text = std::mem::take(&mut self.text).into_bytes();
            text[MILLIS_AT..MILLIS_AT + 3].copy_from_slice(&ms_text);
            // Only ASCII digits replaced ASCII digits.
            self.text = String::from_utf8(text).unwrap_or_else(|_| format_time(at));
            self.millisecond = ms;
        } else {
            return (&self.text, self.generation);
        }
        self.generation += 1;
        (&self.text, self.generation)
    }
}

impl History {
    /// Opens (creating if needed) `path` for appending. A new file is
    /// readable by its owner only ([`HISTORY_MODE`]); an existing file keeps
    /// the mode it has.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).mode(HISTORY_MODE).open(path)?;
        Ok(Self {
            file,
            buf: Vec::with_capacity(HISTORY_BUFFER),
            stamp: Stamp::default(),
            prefix: Prefix::default(),
        })
    }

    /// Appends one line to the buffer, writing the buffer out once it holds
    /// [`HISTORY_BUFFER`] bytes. Call [`History::flush`] before showing it.
    pub fn record(
        &mut self,
        at: OffsetDateTime,
        direction: Direction,
        peer: &UserName,
        text: &str,
    ) -> io::Result<()> {
        self.record_escaped(at, direction, peer, &escape(text))
    }

    /// [`History::record`] for a text already [escaped](escape) (a chat
    /// line escapes its text once, for the screen and the history).
    pub fn record_escaped(
        &mut self,
        at: OffsetDateTime,
        direction: Direction,
        peer: &UserName,
        escaped: &str,
    ) -> io::Result<()> {
        let (stamp, generation) = self.stamp.get(at);
        // The lines of a burst share their time, kind and peer: the start
        // of the line is made once and copied whole.
        let prefix = &mut self.prefix;
        if prefix.made_for != Some((generation, direction)) || prefix.peer != peer.as_str() {
            prefix.text.clear();
            for part in [stamp, " ", direction.as_str(), " ", peer.as_str(), " "] {
                prefix.text.push_str(part);
            }
            prefix.peer.clear();
            prefix.peer.push_str(peer.as_str());
            prefix.made_for = Some((generation, direction));
        }
        self.buf.extend_from_slice(prefix.text.as_bytes());
        self.buf.extend_from_slice(escaped.as_bytes());
        self.buf.push(b'\n');
        if self.buf.len() >= HISTORY_BUFFER { self.flush() } else { Ok(()) }
    }

    /// Writes the buffered lines (to the OS's cache: the file is a regular
    /// file, which never makes the write wait for a reader). On an error
    /// the buffered lines are dropped, so memory stays bounded.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = self.file.write_all(&self.buf);
        self.buf.clear();
        result
    }
}

impl Drop for History {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "cannot write the history file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_to_one_line_and_back() {
        let cases = [
            ("plain text", "plain text"),
            ("a\nb", "a\\nb"),
            ("back\\slash", "back\\\\slash"),
            ("bell\u{7}", "bell\\u{7}"),
            ("tab\tcr\r", "tab\\tcr\\r"),
            ("ascii\u{1}del\u{7f}\\", "ascii\\u{1}del\\u{7f}\\\\"),
            ("del\u{7f} c1\u{85} ls\u{2028}", "del\\u{7f} c1\\u{85} ls\\u{2028}"),
            ("ünïcödé 名前 🎉", "ünïcödé 名前 🎉"),
            ("\\n literal", "\\\\n literal"),
        ];
        for (raw, escaped) in cases {
            assert_eq!(escape(raw), escaped);
            assert_eq!(unescape(escaped).as_deref(), Some(raw));
        }
    }

    #[test]
    fn every_char_round_trips_without_line_breaks_or_invisibles() {
        let all: String = (0u32..=0x10_ffff).filter_map(char::from_u32).collect();
        let e = escape(&all);
        assert!(!e.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']));
        assert!(!e.chars().any(char::is_control), "a control character");
        // Invisible characters only as joiners and variation selectors
        // inside a cluster, where they hide nothing.
        for cluster in e.graphemes(true) {
            let last = cluster.chars().count() - 1;
            for (i, c) in cluster.chars().enumerate() {
                let joining = (c == ZWJ && i < last) || (matches!(c, VS15 | VS16) && i > 0);
                assert!(!is_default_ignorable(c) || joining, "an invisible {c:?} in {cluster:?}");
            }
        }
        assert_eq!(unescape(&e), Some(all));
    }

    #[test]
    fn invisible_and_bidi_characters_show_as_escapes() {
        let cases = [
            ("zero\u{200b}width", "zero\\u{200b}width"),
            ("join\u{200d}er", "join\\u{200d}er"),
            ("\u{202e}evil.exe", "\\u{202e}evil.exe"),
            ("\u{2067}isolate\u{2069}", "\\u{2067}isolate\\u{2069}"),
            ("lrm\u{200e} rlm\u{200f} alm\u{61c}", "lrm\\u{200e} rlm\\u{200f} alm\\u{61c}"),
            ("soft\u{ad}hyphen", "soft\\u{ad}hyphen"),
            ("filler\u{3164}", "filler\\u{3164}"),
            // Alone, a variation selector or a joiner is shown.
            ("\u{fe0f}start", "\\u{fe0f}start"),
            ("tag\u{e0041}", "tag\\u{e0041}"),
        ];
        for (raw, escaped) in cases {
            assert_eq!(escape(raw), escaped, "{raw:?}");
            assert_eq!(escape_for_display(raw), escaped, "{raw:?}");
            assert_eq!(unescape(escaped).as_deref(), Some(raw));
        }
    }

    #[test]
    fn emoji_sequences_stay_whole() {
        // Joiners and variation selectors inside one grapheme cluster are
        // kept: a family, a red heart, a rainbow flag.
        for kept in ["👩\u{200d}👩\u{200d}👧", "heart\u{2764}\u{fe0f}", "🏳\u{fe0f}\u{200d}🌈"]
        {
            assert_eq!(escape(kept), kept);
            assert_eq!(unescape(kept).as_deref(), Some(kept));
        }
        // A joiner at a cluster's end joins nothing: shown.
        assert_eq!(escape("👩\u{200d} x"), "👩\\u{200d} x");
    }

    #[test]
    fn display_escaping_makes_backslashes_unambiguous() {
        // A peer typing `\u{1b}` and a peer sending ESC look different.
        assert_eq!(escape_for_display("\\u{1b}"), "\\\\u{1b}");
        assert_eq!(escape_for_display("\u{1b}"), "\\u{1b}");
        assert_eq!(escape_for_display("a\\b\x1b[2J\n"), "a\\\\b\\u{1b}[2J\\n");
    }

    #[test]
    fn line_format() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let peer = UserName::new("Mert").unwrap();
        assert_eq!(
            format_line(at, Direction::Received, &peer, "hi\nthere"),
            "2023-11-14T22:13:20.000+00:00 received Mert hi\\nthere"
        );
        let local = at.to_offset(time::UtcOffset::from_hms(-3, -30, 0).unwrap());
        assert_eq!(
            format_line(local, Direction::Started, &peer, "Ann"),
            "2023-11-14T18:43:20.000-03:30 started Mert Ann"
        );
        assert_eq!(
            format_line(at, Direction::Unacknowledged, &peer, "maybe"),
            "2023-11-14T22:13:20.000+00:00 unacknowledged Mert maybe"
        );
    }

    #[test]
    fn stamps_reuse_the_second_and_rewrite_the_milliseconds() {
        let mut stamp = Stamp::default();
        let base = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let offset = time::UtcOffset::from_hms(5, 30, 0).unwrap();
        for ms in [0, 1, 1, 9, 10, 99, 100, 998, 999, 7, 0] {
            for second in [0, 1] {
                let at = (base
                    + time::Duration::milliseconds(i64::from(ms))
                    + time::Duration::seconds(second))
                .to_offset(offset);
                assert_eq!(stamp.get(at).0, format_time(at), "{ms} ms");
            }
        }
        // Years before 0 do not fit the layout: formatted whole.
        let far = OffsetDateTime::from_unix_timestamp(-62_198_755_200).unwrap();
        for ms in [0, 5, 5, 6] {
            let at = far + time::Duration::milliseconds(ms);
            assert_eq!(stamp.get(at).0, format_time(at));
            assert!(stamp.get(at).0.starts_with('-'), "{}", format_time(at));
        }
    }

    #[test]
    fn lines_of_a_burst_share_their_start_and_others_do_not() {
        let path =
            std::env::temp_dir().join(format!("p2pchat-history-burst-{}.txt", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let (bob, eve) = (UserName::new("Bob").unwrap(), UserName::new("Eve").unwrap());
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let ms = |n| t0 + time::Duration::milliseconds(n);
        let lines = [
            (ms(0), Direction::Sent, &bob, "a"),
            (ms(0), Direction::Sent, &bob, "b"),
            (ms(0), Direction::Received, &bob, "c"),
            (ms(0), Direction::Received, &eve, "d"),
            (ms(7), Direction::Received, &eve, "e"),
            (ms(7), Direction::Sent, &bob, "f\ng"),
            (ms(1007), Direction::Sent, &bob, "h"),
        ];
        let mut h = History::open(&path).unwrap();
        for (at, direction, peer, text) in lines {
            h.record(at, direction, peer, text).unwrap();
        }
        h.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let want: String = lines
            .iter()
            .map(|(at, direction, peer, text)| format_line(*at, *direction, peer, text) + "\n")
            .collect();
        assert_eq!(text, want);
    }

    #[test]
    fn appends_lines() {
        let path = std::env::temp_dir().join(format!("p2pchat-history-{}.txt", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let peer = UserName::new("Bob").unwrap();
        let at = OffsetDateTime::from_unix_timestamp(0).unwrap();
        History::open(&path).unwrap().record(at, Direction::Sent, &peer, "one").unwrap();
        let mut h = History::open(&path).unwrap();
        h.record(at, Direction::Undelivered, &peer, "two\nlines").unwrap();
        h.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(mode & 0o777, HISTORY_MODE, "only the owner may read the history");
        assert_eq!(
            text,
            "1970-01-01T00:00:00.000+00:00 sent Bob one\n\
             1970-01-01T00:00:00.000+00:00 undelivered Bob two\\nlines\n"
        );
    }
}
