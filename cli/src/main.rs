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
mod server;
mod split;
mod term;
mod typed;

use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use p2pchat_core::{DEFAULT_MAX_PER_ADDRESS, Fingerprint, UserName};
use p2pchat_transport_mio::{ListError, MAX_SERVER_THREADS, fetch_list, local_addr_for};

use crate::client::{ClientOptions, random_u64};
use crate::config::parse_server;
use crate::identity::{Created, Identity, identity_path};
use crate::known_peers::{KnownPeers, TrustOutcome, describe, known_peers_path};
use crate::server::{RelayOptions, ServerOptions};

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
        /// Serve on this many threads, each with its own socket on the
        /// port (SO_REUSEPORT) and one shared list. One is enough up to
        /// about 250,000 requests a second.
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=MAX_SERVER_THREADS as i64))]
        threads: u16,
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
            threads,
        } => {
            let relay =
                (!no_relay).then_some(RelayOptions { port: relay_port, record: relay_record });
            server::server(ServerOptions {
                bind,
                lease,
                max_users,
                max_per_address,
                relay,
                threads: threads.into(),
            })
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

fn println_flush(line: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        tracing::debug!(error = %e, "writing standard output failed");
    }
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
