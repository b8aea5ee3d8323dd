//! The user's long-term identity: one X25519 key pair in an identity file.
//!
//! The file is created on first use from 32 bytes of OS randomness and never
//! replaced afterwards: a file that cannot be read as ours, or that others
//! may read, is an error that names the path and the fault.
//!
//! ## File format (v1)
//! Three lines of ASCII, each ending in `\n`:
//! ```text
//! p2pchat identity v1
//! private <64 lowercase hex digits: the X25519 private key>
//! public <64 lowercase hex digits: its public key, checked on load>
//! ```
//! The file has mode 0600; a file readable or writable by group or others is
//! refused. See `docs/SECURITY.md` ("Stolen identity file").

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use p2pchat_core::{Fingerprint, KEY_LEN, PrivateKey, PublicKey};

use crate::private_file::{self, TempFile};

/// First line of an identity file.
pub const IDENTITY_HEADER: &str = "p2pchat identity v1";

/// What every version's first line starts with.
const HEADER_PREFIX: &str = "p2pchat identity v";

/// Largest identity file read: a v1 file is 165 bytes.
pub const MAX_IDENTITY_FILE_LEN: usize = 1024;

/// File name of the identity in its directory.
pub const IDENTITY_FILE_NAME: &str = "identity";

/// Mode bits that must be clear on an identity file: any access by group or
/// others.
const OTHERS_BITS: u32 = 0o077;

/// Why the identity could not be loaded or created. Every message is one
/// line and names the file.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// No `--identity` and no home directory to find the default.
    #[error("cannot find the home directory for the default identity file; pass --identity PATH")]
    NoHome,
    /// Reading, creating or writing failed.
    #[error("identity file {}: cannot {action}: {source}", path.display())]
    Io {
        /// The identity file.
        path: PathBuf,
        /// What was being done: "read", "create the directory", …
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Group or others may access the file.
    #[error(
        "identity file {} is accessible by group or others (mode {mode:04o}); \
         only its owner may read it: run `{}`",
        path.display(),
        private_file::chmod_600_hint(path)
    )]
    Permissions {
        /// The identity file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a p2pchat identity file at all.
    #[error("{} is not a p2pchat identity file ({reason})", path.display())]
    Foreign {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        reason: &'static str,
    },
    /// A p2pchat identity file of a version this build does not read.
    #[error(
        "identity file {} has version v{version}; this p2pchat reads only v1",
        path.display()
    )]
    Version {
        /// The identity file.
        path: PathBuf,
        /// The version it declares, as written.
        version: String,
    },
    /// The file ends early.
    #[error("identity file {} is truncated: {reason}", path.display())]
    Truncated {
        /// The identity file.
        path: PathBuf,
        /// Where it ends.
        reason: String,
    },
    /// Our header, but a bad line.
    #[error("identity file {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The identity file.
        path: PathBuf,
        /// Which line and what is wrong with it.
        reason: String,
    },
    /// The OS gave no randomness for a new key.
    #[error("identity file {}: no OS randomness for a new key: {reason}", path.display())]
    NoRandomness {
        /// The identity file that was to be created.
        path: PathBuf,
        /// The OS's error.
        reason: String,
    },
}

/// Whether [`Identity::load_or_create`] made a new identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The file did not exist: a new key pair was made and saved.
    New,
    /// The file existed and was loaded.
    Existing,
}

/// The user's key pair and the file it came from. `Debug` hides the private
/// key.
#[derive(Clone, Debug)]
pub struct Identity {
    private: PrivateKey,
    public: PublicKey,
    path: PathBuf,
}

impl Identity {
    /// Loads the identity at `path`, or creates it (and its directory, mode
    /// 0700) if there is no file. Never replaces an existing file. Of several
    /// processes creating it at once, all end with the same identity.
    pub fn load_or_create(path: &Path) -> Result<(Self, Created), IdentityError> {
        if let Some(identity) = Self::load(path)? {
            return Ok((identity, Created::Existing));
        }
        let mut bytes = [0; KEY_LEN];
        getrandom::fill(&mut bytes).map_err(|e| IdentityError::NoRandomness {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Self::create_from(path, PrivateKey::from_bytes(bytes))
    }

    /// Loads the identity at `path`; `None` if there is no file.
    pub fn load(path: &Path) -> Result<Option<Self>, IdentityError> {
        let io = |action, source| IdentityError::Io { path: path.to_owned(), action, source };
        let Some(contents) =
            private_file::read_at_most(path, MAX_IDENTITY_FILE_LEN).map_err(|e| io("read", e))?
        else {
            return Ok(None);
        };
        if contents.mode & OTHERS_BITS != 0 {
            return Err(IdentityError::Permissions { path: path.to_owned(), mode: contents.mode });
        }
        let private = parse(&contents.bytes).map_err(|fault| fault.at(path))?;
        Ok(Some(Self::from_private(private, path)))
    }

    /// Saves `private` at `path` unless a file is there already; either way,
    /// returns the identity the file holds afterwards.
    fn create_from(path: &Path, private: PrivateKey) -> Result<(Self, Created), IdentityError> {
        let io = |action, source| IdentityError::Io { path: path.to_owned(), action, source };
        private_file::create_private_dir(private_file::parent_dir(path))
            .map_err(|e| io("create the directory", e))?;
        let temp = TempFile::write(path, format(&private).as_bytes())
            .map_err(|e| io("write a temporary file", e))?;
        Self::publish(path, private, temp)
    }

    /// The last step of [`Self::create_from`]: the temporary file takes the
    /// real name if it is free, else the identity that won is loaded.
    fn publish(
        path: &Path,
        private: PrivateKey,
        temp: TempFile,
    ) -> Result<(Self, Created), IdentityError> {
        match temp.place_new(path) {
            Ok(()) => Ok((Self::from_private(private, path), Created::New)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match Self::load(path)? {
                Some(identity) => Ok((identity, Created::Existing)),
                None => Err(IdentityError::Io {
                    path: path.to_owned(),
                    action: "create",
                    source: io::Error::other("it appeared and vanished while being created"),
                }),
            },
            Err(e) => Err(IdentityError::Io { path: path.to_owned(), action: "create", source: e }),
        }
    }

    fn from_private(private: PrivateKey, path: &Path) -> Self {
        let public = private.public_key();
        Self { private, public, path: path.to_owned() }
    }

    /// The private key, for the Noise handshake.
    pub fn private_key(&self) -> &PrivateKey {
        &self.private
    }

    /// The public key, to publish and to prove.
    #[cfg(test)]
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The fingerprint people compare.
    pub fn fingerprint(&self) -> Fingerprint {
        self.public.fingerprint()
    }

    /// The identity file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The known-peers file that goes with this identity: beside it.
    pub fn known_peers_path(&self) -> PathBuf {
        crate::known_peers::known_peers_path(&self.path)
    }
}

/// `$XDG_CONFIG_HOME/p2pchat/identity` when `XDG_CONFIG_HOME` is an absolute
/// path, else `~/.config/p2pchat/identity`, on every Unix.
pub fn default_identity_path() -> Result<PathBuf, IdentityError> {
    use etcetera::BaseStrategy as _;
    let dirs = etcetera::choose_base_strategy().map_err(|_| IdentityError::NoHome)?;
    Ok(dirs.config_dir().join("p2pchat").join(IDENTITY_FILE_NAME))
}

/// The identity file named by `--identity`, or the default.
pub fn identity_path(flag: Option<PathBuf>) -> Result<PathBuf, IdentityError> {
    flag.map_or_else(default_identity_path, Ok)
}

/// The v1 text of an identity file.
fn format(private: &PrivateKey) -> String {
    format!(
        "{IDENTITY_HEADER}\nprivate {}\npublic {}\n",
        to_hex(private.as_bytes()),
        to_hex(&private.public_key().0)
    )
}

/// What is wrong with an identity file's bytes, before the path is known.
#[derive(Debug)]
enum Fault {
    Foreign(&'static str),
    Version(String),
    Truncated(String),
    Corrupt(String),
}

impl Fault {
    fn at(self, path: &Path) -> IdentityError {
        let path = path.to_owned();
        match self {
            Self::Foreign(reason) => IdentityError::Foreign { path, reason },
            Self::Version(version) => IdentityError::Version { path, version },
            Self::Truncated(reason) => IdentityError::Truncated { path, reason },
            Self::Corrupt(reason) => IdentityError::Corrupt { path, reason },
        }
    }
}

/// Reads the v1 format; the public key line must match the private key.
fn parse(bytes: &[u8]) -> Result<PrivateKey, Fault> {
    if bytes.len() > MAX_IDENTITY_FILE_LEN {
        return Err(Fault::Foreign("it is larger than an identity file"));
    }
    if bytes.is_empty() {
        return Err(Fault::Truncated("it is empty".to_owned()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| Fault::Foreign("it is not text"))?;
    let mut lines: Vec<&str> = text.split('\n').collect();
    // A complete file ends in `\n`, which leaves an empty last piece.
    let complete = lines.pop() == Some("");
    let header = lines.first().copied().unwrap_or(text);
    if header != IDENTITY_HEADER {
        if !complete && lines.is_empty() && IDENTITY_HEADER.starts_with(header) {
            return Err(Fault::Truncated("it ends inside line 1".to_owned()));
        }
        return match header.strip_prefix(HEADER_PREFIX) {
            Some(version) if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) => {
                Err(Fault::Version(version.to_owned()))
            }
            _ => Err(Fault::Foreign("its first line is not `p2pchat identity v1`")),
        };
    }
    if !complete {
        return Err(Fault::Truncated(format!("it ends inside line {}", lines.len() + 1)));
    }
    if lines.len() < 3 {
        return Err(Fault::Truncated(format!("it ends after line {}", lines.len())));
    }
    if lines.len() > 3 {
        return Err(Fault::Corrupt("it has more than 3 lines".to_owned()));
    }
    let private = key_line(lines[1], "private", 2)?;
    let public = key_line(lines[2], "public", 3)?;
    let private = PrivateKey::from_bytes(private);
    if private.public_key().0 != public {
        return Err(Fault::Corrupt("its public key does not match its private key".to_owned()));
    }
    Ok(private)
}

fn key_line(line: &str, label: &str, number: usize) -> Result<[u8; KEY_LEN], Fault> {
    line.strip_prefix(label).and_then(|rest| rest.strip_prefix(' ')).and_then(from_hex).ok_or_else(
        || Fault::Corrupt(format!("line {number} is not `{label} <{} hex digits>`", 2 * KEY_LEN)),
    )
}

/// Lowercase hex of a key.
pub(crate) fn to_hex(bytes: &[u8; KEY_LEN]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(2 * KEY_LEN);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A key from exactly 64 hex digits (either case).
pub(crate) fn from_hex(text: &str) -> Option<[u8; KEY_LEN]> {
    if text.len() != 2 * KEY_LEN || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0; KEY_LEN];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
#[path = "identity_tests.rs"]
pub(crate) mod tests;
