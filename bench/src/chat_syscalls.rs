//! What the system calls of a chat turn cost on this machine, each in a
//! loop of its own: the pieces a round trip is made of (see
//! docs/PERFORMANCE.md, "Where a round trip's microseconds go").

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::time::{Instant, SystemTime};

use crate::chat_refs::pair;

/// Calls per measured operation.
const CALLS: usize = 100_000;

/// Mean µs per call of `f`, over [`CALLS`] calls.
fn per_call(mut f: impl FnMut() -> std::io::Result<()>) -> anyhow::Result<f64> {
    let start = Instant::now();
    for _ in 0..CALLS {
        f()?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / CALLS as f64)
}

/// Drains `r` on a thread of its own until `total` bytes came (or the end).
fn drain(mut r: impl Read + Send + 'static, total: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0;
        while got < total {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => got += n,
            }
        }
    })
}

/// Each operation's name and its mean µs per call. `dir`: where the file
/// of the append goes (deleted after).
pub fn syscall_costs(dir: &std::path::Path) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let history_line = [b'h'; 147];
    let screen_line = [b's'; 120];
    let frame = [b'f'; 127];
    let mut costs = Vec::new();
    let mut null = OpenOptions::new().write(true).open("/dev/null")?;
    costs.push((
        "write of 147 B to /dev/null (any system call)",
        per_call(|| null.write_all(&history_line))?,
    ));
    let path = dir.join("syscalls.history");
    let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
    costs.push((
        "write of 147 B appended to a file (a history line)",
        per_call(|| file.write_all(&history_line))?,
    ));
    drop(file);
    let _ = std::fs::remove_file(&path);
    let (r, w) = rustix::pipe::pipe()?;
    let (r, mut w) = (std::fs::File::from(r), std::fs::File::from(w));
    let reader = drain(r, CALLS * screen_line.len());
    costs.push((
        "write of 120 B to a pipe whose reader waits (a screen line)",
        per_call(|| w.write_all(&screen_line))?,
    ));
    drop(w);
    let _ = reader.join();
    let (mut a, b) = pair()?;
    let reader = drain(b, CALLS * frame.len());
    costs.push((
        "send of 127 B on loopback TCP, the reader waiting (a sealed line)",
        per_call(|| a.write_all(&frame))?,
    ));
    drop(a);
    let _ = reader.join();
    costs.push((
        "Instant::now",
        per_call(|| {
            std::hint::black_box(Instant::now());
            Ok(())
        })?,
    ));
    costs.push((
        "SystemTime::now",
        per_call(|| {
            std::hint::black_box(SystemTime::now());
            Ok(())
        })?,
    ));
    Ok(costs)
}
