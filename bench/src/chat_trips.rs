//! Round trips with one line in flight, for the chat and for its
//! references, timed side by side: every kind runs a block of
//! [`TRIP_BLOCK`] trips in turn until each has made its count, so that all
//! of them see the same machine. (Run one after the other, each took
//! whatever the machine was doing during its own few seconds: the floor
//! alone moved by 30 µs between runs minutes apart, more than the gap it
//! is the floor of.)
//!
//! - [`ChatTrips`]: a line written to A's input, read from B's output,
//!   written to B's input, read back from A's output;
//! - [`PipeTrips`]: the same driver through two processes that copy their
//!   input to their output (`cat`, or `tee -a FILE`);
//! - [`ChatTrips::relays`]: the same through two of the suite's minimal
//!   relays ([`crate::relay`]), the client's loop without the chat;
//! - [`TcpTrips`]: a framed line sent back and forth over loopback TCP
//!   between this thread and an echoing one.
//!
//! Each set runs twice: free to run on any CPU, as a user's processes do,
//! and all on one CPU, the driver included ([`ONE_CPU`]). With one line in
//! flight nothing runs in parallel anyway; on one CPU no hop is a wakeup
//! across CPUs, which costs this virtual machine about 20 µs more than
//! one on the same CPU and happens or not depending on where the scheduler
//! put each process; the figures then measure the work each process does.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{ChildStdout, Command};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use p2pchat_core::write_frame;
use rustix::thread::{CpuSet, sched_getaffinity};

use crate::chat::{LINE_LEN, cpu_ns};
use crate::chat_procs::{ChatPair, NAME_A, NAME_B, Proc};
use crate::chat_refs::{frame, pair, read_frame};
use crate::child::own_command;
use crate::pin;

/// Trips each kind makes before the others take their turn.
const TRIP_BLOCK: usize = 50;

/// Trips each kind makes, untimed, before the first timed one.
pub const RTT_WARMUP: usize = 200;

/// The CPU everything runs on in the one-CPU set.
pub const ONE_CPU: usize = 1;

/// One kind of round trip.
pub trait Trips {
    /// Makes round trip `i` (the line's number), returning when it is back.
    fn trip(&mut self, i: usize) -> anyhow::Result<()>;
    /// The processes or threads that copy the line, whose CPU time is
    /// measured.
    fn tids(&self) -> Vec<u32>;
}

/// What the trips of one kind measured.
#[derive(Debug, Default, Clone)]
pub struct Timed {
    /// p50 and p99, µs.
    pub p50_p99: (f64, f64),
    /// CPU µs per trip of each process or thread that copies the line.
    pub cpu: Vec<f64>,
}

impl Timed {
    /// The mean of [`Timed::cpu`]: what one copying process spends.
    pub fn cpu_mean(&self) -> f64 {
        self.cpu.iter().sum::<f64>() / self.cpu.len().max(1) as f64
    }
}

/// Makes [`RTT_WARMUP`] untimed trips of each kind, then `trips` timed
/// ones of each, the kinds taking turns by [`TRIP_BLOCK`]s; on `cpu`
/// (this thread and every copier), or free. The results are in the order
/// of `kinds`.
pub fn interleaved(
    kinds: &mut [&mut dyn Trips],
    trips: usize,
    cpu: Option<usize>,
) -> anyhow::Result<Vec<Timed>> {
    let free = sched_getaffinity(None)?;
    let set = cpu.map_or(free, pin::only);
    let tids: Vec<u32> = kinds.iter().flat_map(|k| k.tids()).collect();
    place(&tids, &set);
    let timed = timed_turns(kinds, trips);
    place(&tids, &free);
    timed
}

/// Lets this thread and `tids` run on `set` only (best effort).
fn place(tids: &[u32], set: &CpuSet) {
    for tid in std::iter::once(None).chain(tids.iter().copied().map(Some)) {
        pin::set_cpus(tid, set);
    }
}

fn timed_turns(kinds: &mut [&mut dyn Trips], trips: usize) -> anyhow::Result<Vec<Timed>> {
    for kind in kinds.iter_mut() {
        for i in 0..RTT_WARMUP {
            kind.trip(i)?;
        }
    }
    let mut times: Vec<Vec<Duration>> = kinds.iter().map(|_| Vec::with_capacity(trips)).collect();
    let mut cpu: Vec<Vec<u64>> = kinds.iter().map(|k| vec![0; k.tids().len()]).collect();
    let mut done = 0;
    while done < trips {
        let block = TRIP_BLOCK.min(trips - done);
        for (k, kind) in kinds.iter_mut().enumerate() {
            let tids = kind.tids();
            let before: Vec<_> = tids.iter().map(|&t| cpu_ns(t)).collect();
            for i in RTT_WARMUP + done..RTT_WARMUP + done + block {
                let start = Instant::now();
                kind.trip(i)?;
                times[k].push(start.elapsed());
            }
            for ((sum, b), t) in cpu[k].iter_mut().zip(before).zip(tids) {
                *sum += cpu_ns(t).zip(b).map_or(0, |(a, b)| a.saturating_sub(b));
            }
        }
        done += block;
    }
    Ok(times
        .into_iter()
        .zip(cpu)
        .map(|(t, c)| Timed {
            p50_p99: percentiles(t),
            cpu: c.iter().map(|&ns| ns as f64 / trips.max(1) as f64 / 1e3).collect(),
        })
        .collect())
}

/// Percentiles 50 and 99 of `v`, in microseconds.
fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |p: usize| v.get((v.len() * p / 100).min(v.len().saturating_sub(1)));
    let us = |d: Option<&Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e6);
    (us(at(50)), us(at(99)))
}

/// The text of round trip `i`.
fn trip_line(i: usize) -> String {
    let mut s = format!("rt{i:08} ");
    while s.len() < LINE_LEN {
        s.push('y');
    }
    s
}

/// Reads `out` until a line ends with `marker`.
fn read_until(
    out: &mut BufReader<ChildStdout>,
    buf: &mut Vec<u8>,
    marker: &[u8],
) -> anyhow::Result<()> {
    loop {
        buf.clear();
        if out.read_until(b'\n', buf)? == 0 {
            bail!("output ended during the round trips");
        }
        if buf.ends_with(marker) {
            return Ok(());
        }
    }
}

/// Round trips A → B → A between two processes that relay lines to each
/// other: two chatting clients, or two minimal relays.
pub struct ChatTrips<'a> {
    a: &'a mut Proc,
    b: &'a mut Proc,
    /// How a line of A's shows on B's output, and B's on A's.
    shown: fn(&str, bool) -> String,
    buf: Vec<u8>,
}

impl<'a> ChatTrips<'a> {
    /// Between the two clients of `pair`.
    pub fn new(pair: &'a mut ChatPair) -> Self {
        let shown = |text: &str, from_a: bool| {
            format!("] {}: {text}\n", if from_a { NAME_A } else { NAME_B })
        };
        Self { a: &mut pair.a, b: &mut pair.b, shown, buf: Vec::with_capacity(256) }
    }

    /// Between two relays (see [`start_relays`]).
    pub fn relays(relays: &'a mut [Proc; 2]) -> Self {
        let [a, b] = relays;
        Self { a, b, shown: |text, _| format!("{text}\n"), buf: Vec::with_capacity(256) }
    }
}

impl Trips for ChatTrips<'_> {
    fn trip(&mut self, i: usize) -> anyhow::Result<()> {
        let text = trip_line(i);
        let (to_b, to_a) = ((self.shown)(&text, true), (self.shown)(&text, false));
        self.a.send(&text)?;
        read_until(self.b.stdout.as_mut().context("B")?, &mut self.buf, to_b.as_bytes())?;
        self.b.send(&text)?;
        read_until(self.a.stdout.as_mut().context("A")?, &mut self.buf, to_a.as_bytes())
    }

    fn tids(&self) -> Vec<u32> {
        vec![self.a.child.id(), self.b.child.id()]
    }
}

/// Two of the suite's relays ([`crate::relay`]) connected to each other.
pub fn start_relays() -> anyhow::Result<[Proc; 2]> {
    let mut cmd = own_command()?;
    cmd.args(["relay", "--listen", "127.0.0.1:0"]);
    let mut b = Proc::spawn(cmd)?;
    let line = b.expect("Relay listening on ")?;
    let addr = line.rsplit(' ').next().unwrap_or_default();
    let mut cmd = own_command()?;
    cmd.args(["relay", "--connect", addr]);
    Ok([Proc::spawn(cmd)?, b])
}

/// Round trips through two processes that each copy a line from their
/// input to their output, as `cat`; a `tee -a FILE` also appends it to a
/// file first, as a client records a line in its history before showing
/// it (its extra write to /dev/null costs about 0.2 µs).
pub struct PipeTrips {
    a: Proc,
    b: Proc,
    buf: Vec<u8>,
}

impl PipeTrips {
    /// Starts two `program args`.
    pub fn start(program: &str, args: &[&str]) -> anyhow::Result<Self> {
        let spawn = || {
            let mut cmd = Command::new(program);
            cmd.args(args);
            Proc::spawn(cmd)
        };
        Ok(Self { a: spawn()?, b: spawn()?, buf: Vec::with_capacity(256) })
    }
}

impl Trips for PipeTrips {
    fn trip(&mut self, i: usize) -> anyhow::Result<()> {
        let text = trip_line(i);
        let line = format!("{text}\n");
        for p in [&mut self.a, &mut self.b] {
            p.send(&text)?;
            read_until(p.stdout.as_mut().context("copier")?, &mut self.buf, line.as_bytes())?;
        }
        Ok(())
    }

    fn tids(&self) -> Vec<u32> {
        vec![self.a.child.id(), self.b.child.id()]
    }
}

/// Round trips of one framed line over loopback TCP (`TCP_NODELAY`, as the
/// chat sets it): written by this thread, echoed by another.
pub struct TcpTrips {
    /// `None` once dropped: the echo thread then sees the stream end.
    stream: Option<TcpStream>,
    echo: Option<JoinHandle<std::io::Result<()>>>,
    /// The echoing thread's id, for its CPU time.
    echo_tid: u32,
    buf: Vec<u8>,
    /// The line each trip sends, framed.
    frame: Vec<u8>,
}

impl TcpTrips {
    /// Connects the pair and starts the echoing thread.
    pub fn start() -> anyhow::Result<Self> {
        let (a, mut b) = pair()?;
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let echo = std::thread::spawn(move || -> std::io::Result<()> {
            let _ = tid_tx.send(rustix::thread::gettid().as_raw_nonzero().get() as u32);
            let (mut buf, mut out) = (Vec::new(), Vec::new());
            // The end of the stream ends the thread.
            while read_frame(&mut b, &mut buf).is_ok() {
                out.clear();
                write_frame(&mut out, &buf);
                b.write_all(&out)?;
            }
            Ok(())
        });
        let echo_tid = tid_rx.recv().context("the echoing thread did not start")?;
        Ok(Self {
            stream: Some(a),
            echo: Some(echo),
            echo_tid,
            buf: Vec::new(),
            frame: frame(trip_line(0).as_bytes()),
        })
    }
}

impl Trips for TcpTrips {
    fn trip(&mut self, _: usize) -> anyhow::Result<()> {
        let stream = self.stream.as_mut().context("stream closed")?;
        stream.write_all(&self.frame)?;
        read_frame(stream, &mut self.buf)?;
        Ok(())
    }

    fn tids(&self) -> Vec<u32> {
        vec![self.echo_tid]
    }
}

impl Drop for TcpTrips {
    fn drop(&mut self) {
        drop(self.stream.take());
        if let Some(echo) = self.echo.take() {
            let _ = echo.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    /// Records which trips it was asked for, into a log shared by kinds.
    struct Logged {
        kind: usize,
        log: Rc<RefCell<Vec<(usize, usize)>>>,
    }

    impl Trips for Logged {
        fn trip(&mut self, i: usize) -> anyhow::Result<()> {
            self.log.borrow_mut().push((self.kind, i));
            Ok(())
        }

        fn tids(&self) -> Vec<u32> {
            Vec::new()
        }
    }

    #[test]
    fn kinds_take_turns_by_blocks_after_their_warm_up() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let (mut a, mut b) =
            (Logged { kind: 0, log: log.clone() }, Logged { kind: 1, log: log.clone() });
        // Two whole blocks and a part of one.
        let trips = 2 * TRIP_BLOCK + 7;
        let timed = interleaved(&mut [&mut a, &mut b], trips, None).unwrap();
        assert_eq!(timed.len(), 2);
        let log = log.borrow();
        // Each kind warms up alone first, with lines 0.. of its own.
        let warm = RTT_WARMUP;
        assert!(log[..warm].iter().enumerate().all(|(i, &t)| t == (0, i)));
        assert!(log[warm..2 * warm].iter().enumerate().all(|(i, &t)| t == (1, i)));
        // Then turns: a block of each, the lines going on where they stopped.
        let turns: Vec<(usize, usize, usize)> = log[2 * warm..]
            .chunk_by(|x, y| x.0 == y.0)
            .inspect(|run| assert!(run.windows(2).all(|w| w[1].1 == w[0].1 + 1), "{run:?}"))
            .map(|run| (run[0].0, run[0].1, run.len()))
            .collect();
        let want = [
            (0, warm, TRIP_BLOCK),
            (1, warm, TRIP_BLOCK),
            (0, warm + TRIP_BLOCK, TRIP_BLOCK),
            (1, warm + TRIP_BLOCK, TRIP_BLOCK),
            (0, warm + 2 * TRIP_BLOCK, 7),
            (1, warm + 2 * TRIP_BLOCK, 7),
        ];
        assert_eq!(turns, want);
    }
}
