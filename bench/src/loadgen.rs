//! The closed-loop UDP load generator: N connected sockets, each keeping K
//! requests in flight; every reply (or time-out) sends the next request.
//! One thread drives all sockets with `poll`, `recvmmsg` and `sendmmsg`,
//! so that it is not the bottleneck of what it measures.
//!
//! Replies are checked by their header (magic, direction, request id) and,
//! for the registry, the message kind; bodies are not decoded here (a list
//! page's names would cost the generator more than the server):
//! `registry_session` decodes one reply of each kind in full beforehand.

use std::io;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use p2pchat_core::{COOKIE_LEN, HEADER_LEN, MAGIC, REGISTRY_VERSION, REPLY_BIT};
use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::batch_io::Batch;
use crate::loadgen_hist::Histogram;
use crate::pin;

/// Most requests in flight per socket: the low byte of a request id is
/// the in-flight slot it belongs to.
pub const MAX_IN_FLIGHT: usize = 256;

/// Datagrams one `recvmmsg` takes at most.
const INBOX: usize = 64;

/// How long `poll` sleeps at most, so time-outs are checked this often.
const POLL_SLEEP: Duration = Duration::from_millis(2);

/// The registry's `ServerMsg::Challenge` variant index (docs/PROTOCOL.md §4.3).
pub const KIND_CHALLENGE: u8 = 0;
/// `ServerMsg::Welcome`.
pub const KIND_WELCOME: u8 = 1;
/// `ServerMsg::ListPage`.
pub const KIND_LIST_PAGE: u8 = 3;
/// `ServerMsg::Found`.
pub const KIND_FOUND: u8 = 4;

/// Where the cookie sits in a `Login`, `List` or `Lookup` request (after
/// the header and the variant index), and in a `Challenge`.
const COOKIE_AT: usize = HEADER_LEN + 1;

/// What a good reply looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A registry reply of this kind (variant index); a `Challenge`
    /// updates the socket's cookie and the request is sent again.
    Registry(u8),
    /// Anything with the magic and the reply bit (an echo of the request).
    Echo,
}

/// How long and how hard to load.
#[derive(Debug, Clone, Copy)]
pub struct LoadShape {
    /// Requests in flight per socket (at most [`MAX_IN_FLIGHT`]).
    pub in_flight: usize,
    /// Load before the measured window (not counted).
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// A request unanswered for this long is lost; its slot sends anew.
    pub timeout: Duration,
}

/// What one run measured, in its window.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// Good replies received in the window (the rate's numerator).
    pub replies: u64,
    /// Good replies to the requests sent in the window, whenever they came:
    /// `sent == answered + lost + challenged + bad` for those requests.
    pub answered: u64,
    /// The window's length, in seconds.
    pub seconds: f64,
    /// Requests sent in the window.
    pub sent: u64,
    /// Requests sent in the window that timed out.
    pub lost: u64,
    /// Replies to requests already counted lost, or duplicated.
    pub late: u64,
    /// `Challenge`s (cookie renewed, request sent again).
    pub challenged: u64,
    /// Replies of the wrong kind or shape.
    pub bad: u64,
    /// Latency of the good replies to requests sent in the window, send
    /// to receive.
    pub latency: Histogram,
    /// The length of the last good reply, in bytes.
    pub reply_len: usize,
    /// Share of the window the load generator's thread spent on its CPU
    /// (near 1.0: the generator may be the bottleneck).
    pub load_busy: Option<f64>,
    /// Share of the window the target's main thread spent on its CPU.
    pub target_busy: Option<f64>,
    /// CPU time everything else on the machine used in the window, as a
    /// share of one CPU: other work competing with the measurement.
    pub others_busy: Option<f64>,
}

impl LoadResult {
    /// Good replies per second.
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 { self.replies as f64 / self.seconds } else { 0.0 }
    }

    /// Latency quantile `q`, in microseconds (0 when nothing arrived).
    pub fn latency_us(&self, q: f64) -> f64 {
        self.latency.quantile(q).unwrap_or(0) as f64 / 1000.0
    }
}

/// One socket's requests: templates sent in turn, each with a fresh id in
/// header bytes 5..9.
#[derive(Debug, Clone)]
pub struct Requests {
    /// Encoded requests; their ids are overwritten on each send.
    pub templates: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    id: u32,
    sent_at: Option<Instant>,
}

struct Lane<'a> {
    socket: &'a UdpSocket,
    requests: &'a mut Requests,
    slots: Vec<Slot>,
    generation: u32,
    next_template: usize,
    out: Batch,
}

impl Lane<'_> {
    fn issue(&mut self, slot: usize, now: Instant) {
        self.generation = self.generation.wrapping_add(1);
        let id = (self.generation << 8) | slot as u32;
        let t = &self.requests.templates;
        let template = &t[self.next_template % t.len()];
        self.next_template = self.next_template.wrapping_add(1);
        if self.out.push(template, None) {
            let at = self.out.len() - 1;
            let (buf, _) = self.out.get_mut(at);
            buf[5..9].copy_from_slice(&id.to_be_bytes());
        }
        self.slots[slot] = Slot { id, sent_at: Some(now) };
    }

    /// Sends the next request on a freed slot while the window lasts,
    /// counting it when it is sent within the window.
    fn reissue(
        &mut self,
        slot: usize,
        now: Instant,
        window_start: Instant,
        window_end: Instant,
        result: &mut LoadResult,
    ) {
        if now < window_end {
            self.issue(slot, now);
            if now >= window_start {
                result.sent += 1;
            }
        }
    }

    fn set_cookie(&mut self, cookie: &[u8]) {
        for t in &mut self.requests.templates {
            if t.len() >= COOKIE_AT + COOKIE_LEN {
                t[COOKIE_AT..COOKIE_AT + COOKIE_LEN].copy_from_slice(cookie);
            }
        }
    }
}

/// Runs the closed loop over `sockets` (connected, each to its target),
/// socket `i` sending `requests[i]`, and measures the window after the
/// warm-up. After the window no new request is sent; the run ends when
/// every request is answered or timed out, so `sent == replies + lost` for
/// the window's requests, up to the replies that straddle its edges.
/// `target_pid`, when given, is the target's process, whose CPU time is
/// measured over the window.
pub fn run(
    sockets: &[UdpSocket],
    requests: &mut [Requests],
    expect: Expect,
    shape: LoadShape,
    target_pid: Option<u32>,
) -> io::Result<LoadResult> {
    let in_flight = shape.in_flight.clamp(1, MAX_IN_FLIGHT);
    for s in sockets {
        s.set_nonblocking(true)?;
    }
    let mut lanes: Vec<Lane<'_>> = sockets
        .iter()
        .zip(requests.iter_mut())
        .filter(|(_, r)| !r.templates.is_empty())
        .map(|(socket, requests)| Lane {
            socket,
            requests,
            slots: vec![Slot::default(); in_flight],
            generation: 0,
            next_template: 0,
            out: Batch::new(in_flight),
        })
        .collect();
    let mut fds: Vec<PollFd<'_>> =
        lanes.iter().map(|l| PollFd::new(l.socket, PollFlags::IN)).collect();
    let mut inbox = Batch::new(INBOX);
    // After a turn that received something, the next turn tries every
    // socket without asking `poll` first: under load that saves a system
    // call per turn.
    let mut busy = false;
    let start = Instant::now();
    let window_start = start + shape.warmup;
    let window_end = window_start + shape.duration;
    let mut result = LoadResult::default();
    let sleep = Timespec { tv_sec: 0, tv_nsec: POLL_SLEEP.as_nanos() as i64 };

    for lane in &mut lanes {
        for slot in 0..in_flight {
            lane.issue(slot, start);
        }
        let _ = lane.out.send(lane.socket);
    }
    let mut last_scan = start;
    let mut cpu = CpuWindow::new(target_pid);
    loop {
        let now = Instant::now();
        cpu.at(now, window_start, window_end);
        // Counting live slots costs a pass over all of them: only once
        // nothing new is sent.
        if now >= window_end && lanes.iter().flat_map(|l| &l.slots).all(|s| s.sent_at.is_none()) {
            break;
        }
        if now > window_end + shape.timeout * 2 {
            // Every live request has timed out by now; the scan below
            // counted them.
            break;
        }
        if !busy {
            poll(&mut fds, Some(&sleep)).map_err(io::Error::from)?;
        }
        let polled = !busy;
        busy = false;
        for (li, lane) in lanes.iter_mut().enumerate() {
            if polled && !fds[li].revents().contains(PollFlags::IN) {
                continue;
            }
            loop {
                let n = match inbox.recv(lane.socket, false) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                    Err(e) => return Err(e),
                };
                busy |= n > 0;
                let now = Instant::now();
                for i in 0..n {
                    let reply = inbox.get(i);
                    handle_reply(lane, reply, now, expect, window_start, window_end, &mut result);
                }
                if !inbox.is_full() {
                    break;
                }
            }
            if lane.out.len() > 0 {
                let _ = lane.out.send(lane.socket);
            }
        }
        let now = Instant::now();
        if now.duration_since(last_scan) >= POLL_SLEEP {
            last_scan = now;
            for lane in &mut lanes {
                for slot in 0..in_flight {
                    let Some(at) = lane.slots[slot].sent_at else { continue };
                    if now.duration_since(at) < shape.timeout {
                        continue;
                    }
                    if at >= window_start && at < window_end {
                        result.lost += 1;
                    }
                    lane.slots[slot].sent_at = None;
                    lane.reissue(slot, now, window_start, window_end, &mut result);
                }
                if lane.out.len() > 0 {
                    let _ = lane.out.send(lane.socket);
                }
            }
        }
    }
    result.seconds = shape.duration.as_secs_f64();
    (result.load_busy, result.target_busy, result.others_busy) = cpu.busy();
    Ok(result)
}

/// CPU time of the generator and of the target, read when the loop first
/// sees the window open and first sees it closed.
struct CpuWindow {
    pid: Option<u32>,
    start: Option<CpuSample>,
    end: Option<CpuSample>,
}

impl CpuWindow {
    fn new(pid: Option<u32>) -> Self {
        Self { pid, start: None, end: None }
    }

    fn read(&self, now: Instant) -> CpuSample {
        CpuSample {
            at: now,
            load: pin::own_cpu_ns(),
            target: self.pid.and_then(pin::cpu_ns),
            machine: pin::machine_cpu_ns(),
        }
    }

    fn at(&mut self, now: Instant, window_start: Instant, window_end: Instant) {
        if self.start.is_none() && now >= window_start {
            self.start = Some(self.read(now));
        }
        if self.end.is_none() && now >= window_end {
            self.end = Some(self.read(now));
        }
    }

    /// Shares of the window: the generator's, the target's, everything
    /// else's.
    fn busy(&self) -> (Option<f64>, Option<f64>, Option<f64>) {
        let (Some(a), Some(b)) = (self.start, self.end) else {
            return (None, None, None);
        };
        let wall = b.at.duration_since(a.at).as_nanos() as f64;
        let used = |x: Option<u64>, y: Option<u64>| match (x, y) {
            (Some(x), Some(y)) if wall > 0.0 => Some(y.saturating_sub(x) as f64),
            _ => None,
        };
        let load = used(a.load, b.load);
        let target = used(a.target, b.target);
        let others = used(a.machine, b.machine)
            .map(|m| (m - load.unwrap_or(0.0) - target.unwrap_or(0.0)).max(0.0) / wall);
        (load.map(|x| x / wall), target.map(|x| x / wall), others)
    }
}

#[derive(Debug, Clone, Copy)]
struct CpuSample {
    at: Instant,
    load: Option<u64>,
    target: Option<u64>,
    machine: Option<u64>,
}

fn handle_reply(
    lane: &mut Lane<'_>,
    reply: &[u8],
    now: Instant,
    expect: Expect,
    window_start: Instant,
    window_end: Instant,
    result: &mut LoadResult,
) {
    if reply.len() < HEADER_LEN || reply[..4] != MAGIC || reply[4] & REPLY_BIT == 0 {
        result.bad += 1;
        return;
    }
    let id = u32::from_be_bytes([reply[5], reply[6], reply[7], reply[8]]);
    let slot = (id & 0xff) as usize;
    let Some(Slot { id: want, sent_at: Some(sent_at) }) = lane.slots.get(slot).copied() else {
        result.late += 1;
        return;
    };
    if want != id {
        result.late += 1;
        return;
    }
    lane.slots[slot].sent_at = None;
    let sent_in_window = sent_at >= window_start && sent_at < window_end;
    let good = match expect {
        Expect::Echo => true,
        Expect::Registry(kind) => {
            let got = reply.get(HEADER_LEN).copied();
            if got == Some(kind) && reply[4] == REPLY_BIT | REGISTRY_VERSION {
                true
            } else if got == Some(KIND_CHALLENGE) && reply.len() >= COOKIE_AT + COOKIE_LEN {
                lane.set_cookie(&reply[COOKIE_AT..COOKIE_AT + COOKIE_LEN]);
                result.challenged += 1;
                false
            } else {
                result.bad += 1;
                false
            }
        }
    };
    if good {
        result.reply_len = reply.len();
        if now >= window_start && now < window_end {
            result.replies += 1;
        }
        if sent_in_window {
            result.answered += 1;
            result.latency.record(now.duration_since(sent_at).as_nanos() as u64);
        }
    }
    lane.reissue(slot, now, window_start, window_end, result);
}
