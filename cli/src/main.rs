//! `p2pchat`: the registry server, the menu client and a one-shot list.
//!
//! See `p2pchat --help` and the README for the interface.

#![warn(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod client;
mod config;
mod history;
// Parts of these APIs (the chat-time checks and warnings) wait for the Noise
// chats to call them.
mod identity;
mod known_peers;
mod line_editor;
mod private_file;
mod raw_mode;
mod split;
mod term;
mod typed;

use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use p2pchat_core::{
    CookieKey, DEFAULT_MAX_PER_ADDRESS, Fingerprint, RegistryServer, Relay, RelayCloseReason,
    RelayConfig, RelayEvent, RelayKey, ServerConfig, ServerEvent, UserName,
};
use p2pchat_transport_mio::{
    ListError, SERVER_SOCKET_BUFFER, ServerLoop, fetch_list, local_addr_for, size_buffers,
};

use crate::client::{ClientOptions, random_u64};
use crate::config::parse_server;
use crate::identity::{Created, Identity, identity_path};
use crate::known_peers::{KnownPeers, TrustOutcome, describe, known_peers_path};

const EXIT_CODES: &str = "\
Exit status:
  0  success (including a clean stop on SIGINT/SIGTERM)
  1  runtime error: registry unreachable or refusing, name refused, socket or
     file error
  2  usage error: bad arguments";

const CONFIG_HELP: &str = "\
Settings: $XDG_CONFIG_HOME/p2pchat/config.toml (else ~/.config/p2pchat/config.toml)
may set server = \"HOST[:PORT]\", name = \"NAME\" and history = \"PATH\"; flags win.

Exit status:
  0  success (including a clean stop on SIGINT/SIGTERM)
  1  runtime error: registry unreachable or refusing, name refused, socket or
     file error
  2  usage error: bad arguments";

/// Peer-to-peer chat: a registry server keeps the list of who is online,
/// clients chat directly over TCP.
#[derive(Debug, Parser)]
#[command(name = "p2pchat", version, after_help = CONFIG_HELP)]
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
        /// Do not relay chats. By default the server also relays, over TCP,
        /// the (end-to-end encrypted) chats of users who cannot connect
        /// directly, and issues them tokens for it.
        #[arg(long)]
        no_relay: bool,
        /// TCP port of the relay, on the address of --bind. Default: the
        /// same number as the registry's UDP port.
        #[arg(long, value_name = "PORT")]
        relay_port: Option<u16>,
        /// Test aid: append every byte the relay reads to this file.
        #[arg(long, value_name = "PATH", hide = true)]
        relay_record: Option<PathBuf>,
    },
    /// Log in and chat, from the menu.
    #[command(after_help = EXIT_CODES)]
    Client {
        /// User name (1-32 bytes, no spaces or control characters). Default:
        /// `name` in the configuration file, else asked for.
        #[arg(long, value_name = "NAME")]
        name: Option<UserName>,
        /// The registry server: HOST or IP, with :PORT unless it is 5000.
        /// Default: `server` in the configuration file, else 127.0.0.1:5000.
        #[arg(long, value_name = "ADDR", value_parser = parse_server)]
        server: Option<SocketAddr>,
        /// Where to take chats (TCP). Default: loopback when the server is
        /// on loopback, else every address of the server's IP family; on a
        /// port the OS picks.
        #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
        listen: Option<SocketAddr>,
        /// File the messages are appended to. Default: `history` in the
        /// configuration file, else messages.txt.
        #[arg(long, value_name = "PATH")]
        history: Option<PathBuf>,
        /// Identity file (created on first use). Default:
        /// $XDG_CONFIG_HOME/p2pchat/identity, else ~/.config/p2pchat/identity.
        #[arg(long, value_name = "PATH")]
        identity: Option<PathBuf>,
        /// Chats go in clear after the handshake: only in the benchmark
        /// suite's build (the `bench-cleartext` feature), never in `p2pchat`.
        #[cfg(feature = "bench-cleartext")]
        #[arg(long, hide = true)]
        bench_cleartext: bool,
    },
    /// Print the online users, one `name address:port` per line.
    #[command(after_help = EXIT_CODES)]
    List {
        /// The registry server: HOST or IP, with :PORT unless it is 5000.
        /// Default: `server` in the configuration file, else 127.0.0.1:5000.
        #[arg(long, value_name = "ADDR", value_parser = parse_server)]
        server: Option<SocketAddr>,
    },
    /// Print your fingerprint, for others to compare (creates your identity
    /// on first use).
    #[command(after_help = EXIT_CODES)]
    Whoami {
        /// Identity file. Default: $XDG_CONFIG_HOME/p2pchat/identity, else
        /// ~/.config/p2pchat/identity.
        #[arg(long, value_name = "PATH")]
        identity: Option<PathBuf>,
    },
    /// Mark NAME's key verified after comparing fingerprints; or accept the
    /// changed key with this fingerprint in place of the pinned one.
    #[command(after_help = EXIT_CODES)]
    Trust {
        /// The peer's user name.
        name: UserName,
        /// The fingerprint NAME read to you: thirty digits, spaces, dashes
        /// and colons allowed, quoted or not.
        #[arg(required = true, num_args = 1.., value_name = "FINGERPRINT")]
        fingerprint: Vec<String>,
        /// Identity file; the known peers are kept beside it.
        #[arg(long, value_name = "PATH")]
        identity: Option<PathBuf>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    /// to standard output.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output, for `man -l -`.
    Man,
    /// Forget every key known for NAME; the next key seen is pinned anew.
    #[command(after_help = EXIT_CODES)]
    Forget {
        /// The peer's user name.
        name: UserName,
        /// Identity file; the known peers are kept beside it.
        #[arg(long, value_name = "PATH")]
        identity: Option<PathBuf>,
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

/// The configuration file's settings (empty when there is no file, or no
/// home directory to look in).
fn settings() -> anyhow::Result<config::Config> {
    let Ok(identity) = identity_path(None) else { return Ok(config::Config::default()) };
    config::Config::load(&config::config_path(&identity)).map_err(anyhow::Error::msg)
}

/// `--server`, else the configuration file's, else 127.0.0.1:5000.
fn server_or_config(
    flag: Option<SocketAddr>,
    config: &config::Config,
) -> anyhow::Result<SocketAddr> {
    match (flag, &config.server) {
        (Some(addr), _) => Ok(addr),
        (None, Some(s)) => parse_server(s).map_err(anyhow::Error::msg),
        (None, None) => Ok(SocketAddr::from(([127, 0, 0, 1], config::DEFAULT_PORT))),
    }
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
        Command::Server {
            bind,
            lease,
            max_users,
            max_per_address,
            no_relay,
            relay_port,
            relay_record,
        } => {
            let relay =
                (!no_relay).then_some(RelayOptions { port: relay_port, record: relay_record });
            server(bind, lease, max_users, max_per_address, relay)
        }
        Command::Client {
            name,
            server,
            listen,
            history,
            identity,
            #[cfg(feature = "bench-cleartext")]
            bench_cleartext,
        } => {
            settings().and_then(|config| {
                let server = server_or_config(server, &config)?;
                let name = match (name, config.name) {
                    (Some(n), _) => Some(n),
                    // Checked when the file was read.
                    (None, Some(n)) => UserName::new(&n).ok(),
                    (None, None) => None,
                };
                let history = history.or(config.history).unwrap_or_else(|| "messages.txt".into());
                let identity = load_identity(identity)?;
                let listen = listen.unwrap_or_else(|| local_addr_for(server));
                let interactive = std::io::stdin().is_terminal();
                let options = ClientOptions {
                    name,
                    server,
                    listen,
                    history,
                    identity,
                    #[cfg(feature = "bench-cleartext")]
                    bench_cleartext,
                };
                client::run(options, interactive)
            })
        }
        Command::List { server } => {
            settings().and_then(|config| list(server_or_config(server, &config)?))
        }
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Cli::command(), "p2pchat", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man => {
            use clap::CommandFactory as _;
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map(|()| 0)
                .map_err(anyhow::Error::from)
        }
        Command::Whoami { identity } => whoami(identity),
        Command::Trust { name, fingerprint, identity } => trust(&name, &fingerprint, identity),
        Command::Forget { name, identity } => forget(&name, identity),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The time at the start of each server log line: RFC 3339, local time
/// with its UTC offset, to the second.
const LOG_TIME: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
);

fn println_flush(line: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        tracing::debug!(error = %e, "writing standard output failed");
    }
}

/// How `p2pchat server` relays.
struct RelayOptions {
    /// The relay's TCP port (default: the registry's port number).
    port: Option<u16>,
    /// Where to record what the relay reads (a test aid).
    record: Option<PathBuf>,
}

fn server(
    bind: SocketAddr,
    lease: u32,
    max_users: u32,
    max_per_address: u32,
    relay: Option<RelayOptions>,
) -> anyhow::Result<i32> {
    use anyhow::Context as _;
    // Read while the process has one thread.
    let offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
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
    let mut core = RegistryServer::new(Instant::now(), CookieKey(key), config);
    let relay = match relay {
        Some(options) => {
            let at = SocketAddr::new(bind.ip(), options.port.unwrap_or(addr.port()));
            // The registry's port number when it is free over TCP, else
            // (unless a port was asked for) one the OS picks.
            let listener = match (std::net::TcpListener::bind(at), options.port) {
                (Ok(l), _) => l,
                (Err(_), None) => std::net::TcpListener::bind(SocketAddr::new(bind.ip(), 0))
                    .with_context(|| format!("cannot bind a relay port on {}", bind.ip()))?,
                (Err(e), Some(_)) => {
                    return Err(e)
                        .with_context(|| format!("cannot bind the relay's TCP port {at}"));
                }
            };
            let mut relay_key = [0u8; 32];
            getrandom::fill(&mut relay_key)
                .map_err(|e| anyhow::anyhow!("no OS randomness for the relay key: {e}"))?;
            let relay_key = RelayKey(relay_key);
            core.offer_relay(listener.local_addr()?.port(), &relay_key);
            let machine = Relay::new(&relay_key, core.origin(), RelayConfig::default());
            Some((listener, machine, options.record))
        }
        None => None,
    };
    let mut server = ServerLoop::new(socket, core)?;
    server.stop_on_signals()?;
    println_flush(&format!("Server listening on {addr}"));
    if let Some((listener, machine, record)) = relay {
        let record = match record {
            Some(path) => Some(relay_recorder(&path)?),
            None => None,
        };
        let at = server.add_relay(listener, machine, Box::new(relay_line), record)?;
        println_flush(&format!("Relaying chats on TCP {at}"));
    }
    // One write per turn of the loop, not one per event: a burst of logins
    // costs the loop no extra system calls, and each turn's lines are out
    // before the loop sleeps.
    let out = std::cell::RefCell::new(std::io::BufWriter::new(std::io::stdout()));
    let flush = || {
        if let Err(e) = out.borrow_mut().flush() {
            tracing::debug!(error = %e, "writing standard output failed");
        }
    };
    server.run_with_idle(
        |event| {
            let at = time::OffsetDateTime::now_utc().to_offset(offset);
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
            if let Err(e) = writeln!(out.borrow_mut(), "{at} {line}") {
                tracing::debug!(error = %e, "writing standard output failed");
            }
        },
        flush,
    )?;
    tracing::info!("server stopped");
    Ok(0)
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
fn relay_recorder(path: &std::path::Path) -> anyhow::Result<p2pchat_transport_mio::RelayRecorder> {
    use anyhow::Context as _;
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

fn list(server: SocketAddr) -> anyhow::Result<i32> {
    let entries = fetch_list(server, random_u64(), || {
        eprintln!("Still trying to reach the registry at {server}…");
    })
    .map_err(|e| match e {
        ListError::Unreachable(_) => {
            anyhow::anyhow!("{e}: is p2pchat server running there?")
        }
        e => e.into(),
    })?;
    if entries.is_empty() {
        eprintln!("(nobody is online)");
    }
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

/// Loads the identity, creating it on first use and saying so on stderr.
fn load_identity(flag: Option<PathBuf>) -> anyhow::Result<Identity> {
    let path = identity_path(flag)?;
    let (identity, created) = Identity::load_or_create(&path)?;
    match created {
        Created::New => eprintln!(
            "Created a new identity in {}; your fingerprint is {}",
            path.display(),
            identity.fingerprint()
        ),
        Created::Existing => {}
    }
    Ok(identity)
}

fn whoami(flag: Option<PathBuf>) -> anyhow::Result<i32> {
    let identity = load_identity(flag)?;
    println_flush(&identity.fingerprint().to_string());
    Ok(0)
}

fn trust(name: &UserName, words: &[String], flag: Option<PathBuf>) -> anyhow::Result<i32> {
    let Some(fingerprint) = Fingerprint::parse(&words.join(" ")) else {
        use clap::CommandFactory as _;
        let mut cli = Cli::command();
        cli.build();
        let message = format!("'{}' is not a fingerprint: expected thirty digits", words.join(" "));
        let kind = clap::error::ErrorKind::InvalidValue;
        match cli.find_subcommand_mut("trust") {
            Some(trust) => trust.error(kind, message).exit(),
            None => cli.error(kind, message).exit(),
        }
    };
    let path = known_peers_path(&identity_path(flag)?);
    let line = match KnownPeers::trust(&path, name, &fingerprint)? {
        TrustOutcome::Verified => format!("{name}: {fingerprint} is now verified"),
        TrustOutcome::AlreadyVerified => format!("{name}: {fingerprint} was verified already"),
        TrustOutcome::Replaced { old } => {
            format!("{name}: {fingerprint} replaces {} and is verified", old.fingerprint())
        }
    };
    println_flush(&line);
    Ok(0)
}

fn forget(name: &UserName, flag: Option<PathBuf>) -> anyhow::Result<i32> {
    let path = known_peers_path(&identity_path(flag)?);
    let record = KnownPeers::forget(&path, name)?;
    let status = match record.trust {
        known_peers::Trust::Pinned => known_peers::PeerStatus::Pinned,
        known_peers::Trust::Verified => known_peers::PeerStatus::Verified,
    };
    println_flush(&format!("{name}: forgot {}", describe(&status, &record.key)));
    Ok(0)
}

/// The `p2pchat` users run has no way to chat in clear: the flag exists
/// only in the benchmark suite's build.
#[cfg(all(test, not(feature = "bench-cleartext")))]
mod tests {
    use super::*;

    #[test]
    fn the_default_build_has_no_cleartext_flag() {
        let args = ["p2pchat", "client", "--name", "ann", "--bench-cleartext"];
        let err = Cli::try_parse_from(args).expect_err("the flag must not exist");
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        assert!(Cli::try_parse_from(&args[..4]).is_ok());
    }
}
