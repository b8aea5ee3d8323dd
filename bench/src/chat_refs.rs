//! Raw TCP references for the chat figures, on loopback: a one-way stream
//! of framed lines (a 4-byte big-endian length, then the line, as the
//! chat's frames), written one `write` per line or buffered. The ping-pong
//! of one framed line is [`crate::chat_trips::TcpTrips`].

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::chat::LINE_LEN;
use crate::chat_lines::numbered_line;

/// A connected pair of loopback TCP streams, with `TCP_NODELAY` as the chat
/// sets it.
pub fn pair() -> anyhow::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let a = TcpStream::connect(listener.local_addr()?)?;
    let (b, _) = listener.accept()?;
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    Ok((a, b))
}

/// `text` as one frame of the chat's framing.
pub fn frame(text: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(p2pchat_core::FRAME_HEADER_LEN + text.len());
    p2pchat_core::write_frame(&mut f, text);
    f
}

/// Reads one frame into `buf`.
pub fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    buf.resize(u32::from_be_bytes(len) as usize, 0);
    r.read_exact(buf)
}

/// `lines` framed lines one way: lines/s from the first write to the last
/// read. `buffered`: through a 64 KiB buffer, else one `write` per line.
pub fn tcp_one_way(lines: usize, buffered: bool) -> anyhow::Result<f64> {
    let (a, b) = pair()?;
    let start = Instant::now();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        if buffered {
            let mut w = BufWriter::with_capacity(1 << 16, a);
            for i in 0..lines {
                w.write_all(&frame(numbered_line(i).as_bytes()))?;
            }
            w.flush()
        } else {
            let mut a = a;
            for i in 0..lines {
                a.write_all(&frame(numbered_line(i).as_bytes()))?;
            }
            Ok(())
        }
    });
    let mut r = BufReader::with_capacity(1 << 16, b);
    let mut buf = Vec::with_capacity(LINE_LEN);
    for i in 0..lines {
        read_frame(&mut r, &mut buf).context("reading the raw TCP stream")?;
        let n = std::str::from_utf8(&buf[..10.min(buf.len())]).ok().and_then(|s| s.parse().ok());
        if n != Some(i) {
            bail!("raw TCP line {i} out of order");
        }
    }
    let elapsed = start.elapsed();
    writer.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
    Ok(lines as f64 / elapsed.as_secs_f64())
}
