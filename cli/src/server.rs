//! `p2pchat server`: the registry on its UDP socket, the relay beside it,
//! and a line on standard output for each user who comes and goes.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use p2pchat_core::{
    CookieKey, RegistryServer, Relay, RelayCloseReason, RelayConfig, RelayEvent, RelayKey,
    ServerConfig, ServerEvent,
};
use p2pchat_transport_mio::{
    DatagramCore, RelayRecorder, SERVER_SOCKET_BUFFER, ServerLoop, SharedCore, reuse_port_sockets,
    size_buffers,
};

use crate::println_flush;

/// The time at the start of each server log line: RFC 3339, local time
/// with its UTC offset, to the second.
const LOG_TIME: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
);

/// How `p2pchat server` relays.
pub struct RelayOptions {
    /// The relay's TCP port (default: the registry's port number).
    pub port: Option<u16>,
    /// Where to record what the relay reads (a test aid).
    pub record: Option<PathBuf>,
}

/// What `p2pchat server` was asked for.
pub struct ServerOptions {
    pub bind: SocketAddr,
    pub lease: u32,
    pub max_users: u32,
    pub max_per_address: u32,
    pub relay: Option<RelayOptions>,
    /// Loops (threads), each with its own socket on the registry's port.
    pub threads: usize,
}

pub fn server(options: ServerOptions) -> anyhow::Result<i32> {
    let ServerOptions { bind, lease, max_users, max_per_address, relay, threads } = options;
    // Read while the process has one thread.
    let offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    let mut sockets = if threads > 1 {
        reuse_port_sockets(bind, threads)
            .with_context(|| format!("cannot bind {threads} sockets to {bind}"))?
    } else {
        vec![UdpSocket::bind(bind).with_context(|| format!("cannot bind {bind}"))?]
    };
    let addr = sockets[0].local_addr()?;
    for socket in &sockets {
        let buffers = size_buffers(socket, SERVER_SOCKET_BUFFER)?;
        tracing::info!(recv = buffers.recv, send = buffers.send, "socket buffers");
    }
    let mut key = [0u8; 16];
    getrandom::fill(&mut key)
        .map_err(|e| anyhow::anyhow!("no OS randomness for the cookie key: {e}"))?;
    let config = ServerConfig {
        lease: Duration::from_secs(lease.into()),
        max_users: usize::try_from(max_users).unwrap_or(usize::MAX),
        max_per_address: usize::try_from(max_per_address).unwrap_or(usize::MAX),
        // The core drops datagrams forged with this address as their source.
        local_addr: Some(addr),
    };
    let mut core = RegistryServer::new(Instant::now(), CookieKey(key), config);
    let relay = match relay {
        Some(options) => Some(relay_for(&mut core, bind, addr, options)?),
        None => None,
    };
    let first = sockets.remove(0);
    if sockets.is_empty() {
        return lead(ServerLoop::new(first, core)?, addr, relay, offset, 1);
    }
    // More than one loop: the others follow the leader's machine, on
    // threads of their own, until the leader stops.
    let shared = SharedCore::new(core);
    let mut followers = Vec::new();
    for socket in sockets {
        let mut follower = ServerLoop::new(socket, shared.follower())?;
        let stop = follower.stop_handle();
        let thread = std::thread::Builder::new().name("registry".into()).spawn(move || {
            let result = run_logged(&mut follower, offset);
            // Said now, not when the server stops: its socket closes with
            // the loop, and the kernel sends its share to the others.
            if let Err(e) = &result {
                tracing::error!(error = %e, "a registry thread stopped");
            }
            result
        })?;
        followers.push((stop, thread));
    }
    let result = lead(ServerLoop::new(first, shared)?, addr, relay, offset, threads);
    for (stop, thread) in followers {
        stop.stop();
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "a registry thread failed"),
            Err(_) => tracing::warn!("a registry thread panicked"),
        }
    }
    result
}

/// The relay's listener and machine, with the registry told to offer it.
type RelaySetup = (std::net::TcpListener, Relay, Option<PathBuf>);

fn relay_for(
    core: &mut RegistryServer,
    bind: SocketAddr,
    addr: SocketAddr,
    options: RelayOptions,
) -> anyhow::Result<RelaySetup> {
    let at = SocketAddr::new(bind.ip(), options.port.unwrap_or(addr.port()));
    // The registry's port number when it is free over TCP, else (unless a
    // port was asked for) one the OS picks.
    let listener = match (std::net::TcpListener::bind(at), options.port) {
        (Ok(l), _) => l,
        (Err(_), None) => std::net::TcpListener::bind(SocketAddr::new(bind.ip(), 0))
            .with_context(|| format!("cannot bind a relay port on {}", bind.ip()))?,
        (Err(e), Some(_)) => {
            return Err(e).with_context(|| format!("cannot bind the relay's TCP port {at}"));
        }
    };
    let mut relay_key = [0u8; 32];
    getrandom::fill(&mut relay_key)
        .map_err(|e| anyhow::anyhow!("no OS randomness for the relay key: {e}"))?;
    let relay_key = RelayKey(relay_key);
    core.offer_relay(listener.local_addr()?.port(), &relay_key);
    let machine = Relay::new(&relay_key, core.origin(), RelayConfig::default());
    Ok((listener, machine, options.record))
}

/// Runs the leading loop: signals, the relay, until stopped.
fn lead<C: DatagramCore<Event = ServerEvent>>(
    mut server: ServerLoop<C>,
    addr: SocketAddr,
    relay: Option<RelaySetup>,
    offset: time::UtcOffset,
    threads: usize,
) -> anyhow::Result<i32> {
    server.stop_on_signals()?;
    match threads {
        1 => println_flush(&format!("Server listening on {addr}")),
        n => println_flush(&format!("Server listening on {addr} ({n} threads)")),
    }
    if let Some((listener, machine, record)) = relay {
        let record = match record {
            Some(path) => Some(relay_recorder(&path)?),
            None => None,
        };
        let at = server.add_relay(listener, machine, Box::new(relay_line), record)?;
        println_flush(&format!("Relaying chats on TCP {at}"));
    }
    run_logged(&mut server, offset)?;
    tracing::info!("server stopped");
    Ok(0)
}

/// Runs a loop until it stops, its events logged on standard output.
fn run_logged<C: DatagramCore<Event = ServerEvent>>(
    server: &mut ServerLoop<C>,
    offset: time::UtcOffset,
) -> std::io::Result<()> {
    let log = std::cell::RefCell::new(EventLog::new(offset));
    server.run_with_idle(|event| log.borrow_mut().add(&event), || log.borrow_mut().flush())
}

/// The log lines of a loop's turn, written with one write before the loop
/// sleeps: a burst of logins costs the loop no extra system calls, and each
/// turn's lines are out before the loop waits.
struct EventLog {
    out: std::io::BufWriter<std::io::Stdout>,
    offset: time::UtcOffset,
}

impl EventLog {
    fn new(offset: time::UtcOffset) -> Self {
        Self { out: std::io::BufWriter::new(std::io::stdout()), offset }
    }

    fn add(&mut self, event: &ServerEvent) {
        let at = time::OffsetDateTime::now_utc().to_offset(self.offset);
        let at = at.format(LOG_TIME).unwrap_or_else(|_| at.unix_timestamp().to_string());
        let line = match event {
            ServerEvent::LoggedIn { name, addr, chat_addr } => {
                format!("[{name}] logged in from {addr}, takes chats at {chat_addr}")
            }
            ServerEvent::LoggedOut { name, .. } => format!("[{name}] logged out"),
            ServerEvent::TimedOut { name, .. } => format!("[{name}] timed out"),
            ServerEvent::Roamed { name, from, to } => {
                format!("[{name}] moved from {from} to {to}")
            }
        };
        if let Err(e) = writeln!(self.out, "{at} {line}") {
            tracing::debug!(error = %e, "writing standard output failed");
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.out.flush() {
            tracing::debug!(error = %e, "writing standard output failed");
        }
    }
}

/// A line for each pairing and refusal of the relay.
fn relay_line(event: &RelayEvent) {
    match event {
        RelayEvent::Paired { .. } => println_flush("relay: a chat paired"),
        RelayEvent::Close { reason: RelayCloseReason::Refused(status), .. } => {
            println_flush(&format!("relay: refused a connection ({status:?})"));
        }
        RelayEvent::Close { .. } => {}
    }
}

/// Appends what the relay reads to `path`.
fn relay_recorder(path: &std::path::Path) -> anyhow::Result<RelayRecorder> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Box::new(move |bytes: &[u8]| {
        if let Err(e) = file.write_all(bytes) {
            tracing::warn!(error = %e, "recording the relay failed");
        }
    }))
}
