//! `p2pchat`: the registry server, the menu client and a one-shot list.
//!
//! See `p2pchat --help` and the README for the interface.

#![warn(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod client;
mod history;
mod line_editor;
mod raw_mode;
mod session_key;
mod term;

use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use p2pchat_core::{
    CookieKey, DEFAULT_MAX_PER_ADDRESS, RegistryServer, ServerConfig, ServerEvent, UserName,
};
use p2pchat_transport_mio::{
    SERVER_SOCKET_BUFFER, ServerLoop, fetch_list, local_addr_for, size_buffers,
};

use crate::client::{ClientOptions, random_u64};

const EXIT_CODES: &str = "\
Exit status:
  0  success (including a clean stop on SIGINT/SIGTERM)
  1  runtime error: registry unreachable or refusing, name refused, socket or
     file error
  2  usage error: bad arguments";

/// Peer-to-peer chat: a registry server keeps the list of who is online,
/// clients chat directly over TCP.
#[derive(Debug, Parser)]
#[command(name = "p2pchat", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the registry server (UDP).
    #[command(after_help = EXIT_CODES)]
    Server {
        /// Address and UDP port to listen on.
        #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:5000", value_parser = parse_addr)]
        bind: SocketAddr,
        /// Seconds a user stays listed without a keepalive.
        #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=86_400))]
        lease: u32,
        /// Most users listed at once.
        #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
        max_users: u32,
        /// Most users listed from one IPv4 address or one IPv6 /64.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PER_ADDRESS as u32, value_parser = clap::value_parser!(u32).range(1..))]
        max_per_address: u32,
    },
    /// Log in and chat, from the menu.
    #[command(after_help = EXIT_CODES)]
    Client {
        /// User name (1-32 bytes, no spaces or control characters); asked
        /// for when absent.
        #[arg(long, value_name = "NAME")]
        name: Option<UserName>,
        /// The registry server's address.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000", value_parser = parse_addr)]
        server: SocketAddr,
        /// Where to take chats (TCP). Default: loopback when the server is
        /// on loopback, else every address of the server's IP family; on a
        /// port the OS picks.
        #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
        listen: Option<SocketAddr>,
        /// File the messages are appended to.
        #[arg(long, value_name = "PATH", default_value = "messages.txt")]
        history: PathBuf,
    },
    /// Print the online users, one `name address:port` per line.
    #[command(after_help = EXIT_CODES)]
    List {
        /// The registry server's address.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000", value_parser = parse_addr)]
        server: SocketAddr,
    },
}

/// An IP address with port, or a host name with port (resolved once, first
/// address).
fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    s.to_socket_addrs()
        .map_err(|e| format!("not an address (IP:PORT or HOST:PORT): {e}"))?
        .next()
        .ok_or_else(|| format!("{s} resolves to no address"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Server { bind, lease, max_users, max_per_address } => {
            server(bind, lease, max_users, max_per_address)
        }
        Command::Client { name, server, listen, history } => {
            let listen = listen.unwrap_or_else(|| local_addr_for(server));
            let interactive = std::io::stdin().is_terminal();
            client::run(ClientOptions { name, server, listen, history }, interactive)
        }
        Command::List { server } => list(server),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn println_flush(line: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        tracing::debug!(error = %e, "writing standard output failed");
    }
}

fn server(
    bind: SocketAddr,
    lease: u32,
    max_users: u32,
    max_per_address: u32,
) -> anyhow::Result<i32> {
    use anyhow::Context as _;
    let socket = UdpSocket::bind(bind).with_context(|| format!("cannot bind {bind}"))?;
    let addr = socket.local_addr()?;
    let buffers = size_buffers(&socket, SERVER_SOCKET_BUFFER)?;
    tracing::info!(recv = buffers.recv, send = buffers.send, "socket buffers");
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
    let core = RegistryServer::new(Instant::now(), CookieKey(key), config);
    let mut server = ServerLoop::new(socket, core)?;
    server.stop_on_signals()?;
    println_flush(&format!("Server listening on {addr}"));
    server.run(|event| {
        let line = match event {
            ServerEvent::LoggedIn { name, addr } => format!("[{name}] logged in from {addr}"),
            ServerEvent::LoggedOut { name, .. } => format!("[{name}] logged out"),
            ServerEvent::TimedOut { name, .. } => format!("[{name}] timed out"),
            ServerEvent::Roamed { name, from, to } => format!("[{name}] moved from {from} to {to}"),
        };
        println_flush(&line);
    })?;
    tracing::info!("server stopped");
    Ok(0)
}

fn list(server: SocketAddr) -> anyhow::Result<i32> {
    let entries = fetch_list(server, random_u64(), || {
        eprintln!("Still trying to reach the registry at {server}…");
    })?;
    let mut out = String::new();
    for e in entries {
        out.push_str(&format!("{} {}\n", e.name, e.chat_addr()));
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()) {
        tracing::debug!(error = %e, "writing standard output failed");
    }
    Ok(0)
}
