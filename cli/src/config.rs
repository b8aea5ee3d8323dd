//! Settings: the registry's address as the user writes it, and the
//! configuration file `config.toml` beside the identity file
//! (`$XDG_CONFIG_HOME/p2pchat/config.toml`, else
//! `~/.config/p2pchat/config.toml`).
//!
//! ```toml
//! server = "chat.example.org"   # HOST, HOST:PORT, IP or IP:PORT
//! name = "Mert"
//! history = "/home/mert/p2pchat-history.txt"
//! ```
//!
//! Every key is optional; a flag given on the command line wins over the
//! file. A missing file is no error; a file that cannot be read or parsed,
//! or holds an unknown key, is a one-line error naming the file and line.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use p2pchat_core::UserName;
use serde::Deserialize;

/// The registry's UDP port when `--server` names none.
pub const DEFAULT_PORT: u16 = 5000;

/// The configuration file's name, in the identity file's directory.
pub const CONFIG_FILE_NAME: &str = "config.toml";

/// Reads a registry address: `IP:PORT`, `[IPv6]:PORT`, `HOST:PORT`, or any
/// of those without the port, which is then [`DEFAULT_PORT`]. A host name
/// is resolved once; when it has addresses of both families the first IPv4
/// one is taken (the server listens on `0.0.0.0` unless told otherwise).
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    let with_port = match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => s.to_owned(),
        Some(_) => return Err(format!("'{s}' is not HOST, HOST:PORT, IP or IP:PORT")),
        None => format!("{s}:{DEFAULT_PORT}"),
    };
    let addrs: Vec<SocketAddr> =
        with_port.to_socket_addrs().map_err(|e| format!("cannot resolve '{s}': {e}"))?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("'{s}' resolves to no address"))
}

/// What the configuration file may set.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The registry, as `--server` takes it.
    pub server: Option<String>,
    /// The user name, as `--name` takes it.
    pub name: Option<String>,
    /// The history file, as `--history` takes it.
    pub history: Option<PathBuf>,
}

/// The configuration file beside `identity` (the identity file in use).
pub fn config_path(identity: &Path) -> PathBuf {
    identity.with_file_name(CONFIG_FILE_NAME)
}

impl Config {
    /// Reads `path`; a missing file is the empty configuration.
    pub fn load(path: &Path) -> Result<Config, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Parses the file's text; the error is one line, `line N: what`.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let what = e.message().lines().next().unwrap_or("invalid").trim().to_owned();
            match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}: {what}")
                }
                None => what,
            }
        })?;
        let line_of = |key: &str| {
            text.lines()
                .position(|l| l.trim_start().starts_with(key))
                .map_or(String::new(), |i| format!("line {}: ", i + 1))
        };
        if let Some(server) = &config.server {
            parse_server(server).map_err(|e| format!("{}server: {e}", line_of("server")))?;
        }
        if let Some(name) = &config.name {
            UserName::new(name).map_err(|e| format!("{}name: {e}", line_of("name")))?;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_without_a_port_uses_5000_and_names_resolve() {
        let v4: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(parse_server("127.0.0.1"), Ok(v4));
        assert_eq!(parse_server("127.0.0.1:5000"), Ok(v4));
        assert_eq!(parse_server("127.0.0.1:6000"), Ok("127.0.0.1:6000".parse().unwrap()));
        assert_eq!(parse_server("::1"), Ok("[::1]:5000".parse().unwrap()));
        assert_eq!(parse_server("[::1]"), Ok("[::1]:5000".parse().unwrap()));
        assert_eq!(parse_server("[::1]:7"), Ok("[::1]:7".parse().unwrap()));
        // `localhost` is in every hosts file; it resolves without a network.
        let local = parse_server("localhost").unwrap();
        assert!(local.ip().is_loopback() && local.port() == DEFAULT_PORT, "{local}");
        assert!(local.is_ipv4(), "IPv4 first when both resolve: {local}");
        assert_eq!(parse_server("localhost:6000").unwrap().port(), 6000);
        assert!(parse_server("localhost:notaport").is_err());
        assert!(parse_server("127.0.0.1:99999").is_err());
    }

    #[test]
    fn the_file_sets_server_name_and_history() {
        let c = Config::parse("server = \"127.0.0.1\"\nname = \"Mert\"\nhistory = \"h.txt\"\n");
        assert_eq!(
            c,
            Ok(Config {
                server: Some("127.0.0.1".into()),
                name: Some("Mert".into()),
                history: Some("h.txt".into())
            })
        );
        assert_eq!(Config::parse("# nothing\n"), Ok(Config::default()));
    }

    #[test]
    fn a_bad_file_is_one_line_naming_the_line() {
        for (text, want) in [
            ("name = \"Mert\"\nserver = 5000\n", "line 2: invalid type"),
            ("name = \"Mert\"\n\ncolour = \"red\"\n", "line 3: unknown field `colour`"),
            ("server = \"127.0.0.1\"\nname = \"two words\"\n", "line 2: name: "),
            ("server = \"127.0.0.1:x\"\n", "line 1: server: "),
            ("name = \"Mert\nhistory = 1\n", "line 1: "),
        ] {
            let e = Config::parse(text).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e:?}");
        }
    }
}
