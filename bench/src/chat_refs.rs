//! Raw TCP references for the chat figures, on loopback: a ping-pong of one
//! framed line, and a one-way stream of framed lines (a 4-byte big-endian
//! length, then the line, as the chat's frames), written one `write` per
//! line or buffered.

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::chat::{LINE_LEN, Rtt, thread_cpu_ns};
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

fn frame(text: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(4 + text.len());
    f.extend_from_slice(&(text.len() as u32).to_be_bytes());
    f.extend_from_slice(text);
    f
}

/// Reads one frame into `buf`.
fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    buf.resize(u32::from_be_bytes(len) as usize, 0);
    r.read_exact(buf)
}

/// One framed line sent back and forth between two threads, one in flight:
/// p50 and p99 round trip in µs, and the echoing thread's CPU time per trip.
pub fn tcp_ping_pong(trips: usize) -> anyhow::Result<Rtt> {
    let (mut a, mut b) = pair()?;
    let echo = std::thread::spawn(move || -> std::io::Result<f64> {
        let mut buf = Vec::new();
        let mut cpu_before = None;
        for i in 0usize.. {
            if i == 200 {
                cpu_before = thread_cpu_ns();
            }
            if read_frame(&mut b, &mut buf).is_err() {
                // The last read (the end of the stream) is not a trip.
                let trips = i.saturating_sub(200).max(1);
                let cpu = thread_cpu_ns().zip(cpu_before).map(|(a, b)| a.saturating_sub(b));
                return Ok(cpu.map_or(f64::NAN, |ns| ns as f64 / trips as f64 / 1e3));
            }
            b.write_all(&frame(&buf))?;
        }
        Ok(f64::NAN)
    });
    let text = numbered_line(0);
    let mut buf = Vec::new();
    let mut times = Vec::with_capacity(trips);
    for i in 0..trips + 200 {
        let start = Instant::now();
        a.write_all(&frame(text.as_bytes()))?;
        read_frame(&mut a, &mut buf)?;
        if i >= 200 {
            times.push(start.elapsed());
        }
    }
    drop(a);
    let cpu = echo.join().map_err(|_| anyhow::anyhow!("echo panicked"))??;
    times.sort();
    let us = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)].as_secs_f64() * 1e6;
    Ok(Rtt { p50_p99: (us(50), us(99)), cpu })
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
