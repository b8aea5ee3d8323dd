//! Keys seen before, pinned per name: trust on first use, like ssh's
//! `known_hosts`.
//!
//! The first key seen for a name is pinned. The same key later is
//! [`PeerStatus::Pinned`], or [`PeerStatus::Verified`] once the user has
//! compared fingerprints (`p2pchat trust`). A different key is
//! [`PeerStatus::Changed`]: it is refused and remembered, so that
//! `p2pchat trust NAME FINGERPRINT` can find it and accept it deliberately.
//!
//! ## File format (v1)
//! `known_peers`, beside the identity file, mode 0600, rewritten whole and
//! atomically under a lock (`known_peers.lock`). UTF-8 lines (name keys
//! are not ASCII in general), each ending in `\n`:
//! ```text
//! p2pchat known peers v1
//! <name key> pinned|verified <64 hex digits: public key>
//! <name key> refused <64 hex digits: a changed key that was refused>
//! ```
//! The name key is [`UserName::key`] (names that differ only in case share
//! it), with `%`, white space and control characters written `%HH`. Each name has one `pinned` or `verified` line, followed by at most
//! [`MAX_REFUSED_PER_NAME`] `refused` lines, oldest first; names are sorted.
//! Any other line is an error naming the file and the line.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use p2pchat_core::{Fingerprint, PublicKey, UserName};

use crate::identity::{from_hex, to_hex};
use crate::private_file::{self, PRIVATE_FILE_MODE, TempFile};

/// File name of the known peers, in the identity file's directory.
pub const KNOWN_PEERS_FILE_NAME: &str = "known_peers";

/// First line of a known-peers file.
pub const KNOWN_PEERS_HEADER: &str = "p2pchat known peers v1";

/// Most names with a pinned key. Pinning one more is an error
/// ([`KnownPeersError::Full`]), never a silent eviction.
pub const MAX_KNOWN_PEERS: usize = 4096;

/// Most refused keys remembered per name; the oldest is dropped first.
pub const MAX_REFUSED_PER_NAME: usize = 4;

/// Longest line, in bytes, newline excluded: the longest stored name key
/// (every byte of the longest name key escaped as `%HH`), a space, the
/// longest status word, a space and the key's 64 hex digits.
pub const MAX_LINE_LEN: usize = 3 * p2pchat_core::MAX_KEY_LEN + 1 + "verified".len() + 1 + 64;

/// Largest known-peers file read: every name with every refused key, at the
/// longest line.
pub const MAX_KNOWN_PEERS_FILE_LEN: usize =
    (1 + MAX_KNOWN_PEERS * (1 + MAX_REFUSED_PER_NAME)) * (MAX_LINE_LEN + 1);

/// Mode bits that must be clear: nobody else may write the pins.
const OTHERS_WRITE_BITS: u32 = 0o022;

/// How far a pinned key is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Seen before; the fingerprints were not compared.
    Pinned,
    /// The user compared fingerprints and ran `p2pchat trust`.
    Verified,
}

/// What is known about one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The pinned key.
    pub key: PublicKey,
    /// How far it is trusted.
    pub trust: Trust,
    /// Other keys seen for the name and refused, oldest first.
    pub refused: Vec<PublicKey>,
}

/// What a key seen for a name means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerStatus {
    /// Nothing was known for the name ([`KnownPeers::observe`] pins it).
    New,
    /// The pinned key, not verified.
    Pinned,
    /// The pinned key, verified.
    Verified,
    /// Not the pinned key ([`KnownPeers::observe`] remembers it as refused).
    Changed {
        /// The key pinned for the name.
        pinned: PublicKey,
        /// The key seen now.
        seen: PublicKey,
        /// Whether the pinned key had been verified.
        verified: bool,
    },
}

/// What `p2pchat trust` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustOutcome {
    /// The pinned key is now verified.
    Verified,
    /// The pinned key was verified already.
    AlreadyVerified,
    /// A refused key replaced the pinned one, as verified.
    Replaced {
        /// The key that was pinned before.
        old: PublicKey,
    },
}

/// Why the known peers could not be read, changed or written.
#[derive(Debug, thiserror::Error)]
pub enum KnownPeersError {
    /// Reading, locking or writing failed.
    #[error("known peers file {}: cannot {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Group or others may write the file.
    #[error(
        "known peers file {} is writable by group or others (mode {mode:04o}); run `{}`",
        path.display(),
        private_file::chmod_600_hint(path)
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A line is not in the format.
    #[error("known peers file {}, line {line}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Larger than [`MAX_KNOWN_PEERS_FILE_LEN`].
    #[error("known peers file {} is larger than {MAX_KNOWN_PEERS_FILE_LEN} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// [`MAX_KNOWN_PEERS`] names are pinned already.
    #[error(
        "known peers file {} holds {MAX_KNOWN_PEERS} names already; \
         remove some with `p2pchat forget NAME`",
        path.display()
    )]
    Full {
        /// The file.
        path: PathBuf,
    },
    /// `trust` or `forget` for a name with nothing pinned.
    #[error("no key is known for {name}: a key is pinned when you first chat with them")]
    Unknown {
        /// The name as given.
        name: UserName,
    },
    /// `trust` with a fingerprint that is none of the keys known for the
    /// name. The message lists them, one per line.
    #[error(
        "{fingerprint} is not a key seen for {name}; nothing changed. Known for {name}:\n{known}"
    )]
    NoMatch {
        /// The name as given.
        name: UserName,
        /// The fingerprint as given.
        fingerprint: Fingerprint,
        /// The known keys, one indented line each.
        known: String,
    },
}

/// The known-peers file beside an identity file.
pub fn known_peers_path(identity_path: &Path) -> PathBuf {
    private_file::parent_dir(identity_path).join(KNOWN_PEERS_FILE_NAME)
}

/// The pinned keys, by name key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownPeers {
    records: BTreeMap<String, Record>,
}

impl KnownPeers {
    /// Reads the file; a missing file is empty.
    pub fn load(path: &Path) -> Result<Self, KnownPeersError> {
        let contents =
            private_file::read_at_most(path, MAX_KNOWN_PEERS_FILE_LEN).map_err(|source| {
                KnownPeersError::Io { path: path.to_owned(), action: "read", source }
            })?;
        let Some(contents) = contents else { return Ok(Self::default()) };
        if contents.mode & OTHERS_WRITE_BITS != 0 {
            return Err(KnownPeersError::Permissions {
                path: path.to_owned(),
                mode: contents.mode,
            });
        }
        if contents.bytes.len() > MAX_KNOWN_PEERS_FILE_LEN {
            return Err(KnownPeersError::TooLarge { path: path.to_owned() });
        }
        parse(&contents.bytes).map_err(|(line, reason)| KnownPeersError::Corrupt {
            path: path.to_owned(),
            line,
            reason,
        })
    }

    /// What `key` means for `name`; changes nothing.
    pub fn status(&self, name: &UserName, key: &PublicKey) -> PeerStatus {
        match self.records.get(&stored_key(name)) {
            None => PeerStatus::New,
            Some(r) if r.key == *key => match r.trust {
                Trust::Pinned => PeerStatus::Pinned,
                Trust::Verified => PeerStatus::Verified,
            },
            Some(r) => PeerStatus::Changed {
                pinned: r.key,
                seen: *key,
                verified: r.trust == Trust::Verified,
            },
        }
    }

    /// What is known for `name`.
    #[cfg(test)]
    pub fn get(&self, name: &UserName) -> Option<&Record> {
        self.records.get(&stored_key(name))
    }

    /// Number of names with a pinned key.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing is pinned.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Looks `key` up for `name`, pins it if the name is new and remembers
    /// it as refused if it changed; saves the file if anything changed.
    /// Locked: concurrent clients lose no update.
    pub fn observe(
        path: &Path,
        name: &UserName,
        key: &PublicKey,
    ) -> Result<PeerStatus, KnownPeersError> {
        update(path, |peers| peers.seen(path, name, key))
    }

    /// `p2pchat trust NAME FINGERPRINT`: verifies the pinned key if it has
    /// this fingerprint, or replaces it with the refused key that has it.
    pub fn trust(
        path: &Path,
        name: &UserName,
        fingerprint: &Fingerprint,
    ) -> Result<TrustOutcome, KnownPeersError> {
        update(path, |peers| peers.trust_in_memory(name, fingerprint))
    }

    /// `p2pchat forget NAME`: drops all that is known for the name.
    pub fn forget(path: &Path, name: &UserName) -> Result<Record, KnownPeersError> {
        update(path, |peers| match peers.records.remove(&stored_key(name)) {
            Some(record) => Ok((record, true)),
            None => Err(KnownPeersError::Unknown { name: name.clone() }),
        })
    }

    /// [`Self::observe`] in memory; says whether anything changed.
    fn seen(
        &mut self,
        path: &Path,
        name: &UserName,
        key: &PublicKey,
    ) -> Result<(PeerStatus, bool), KnownPeersError> {
        let status = self.status(name, key);
        let changed = match status {
            PeerStatus::New => {
                if self.records.len() >= MAX_KNOWN_PEERS {
                    return Err(KnownPeersError::Full { path: path.to_owned() });
                }
                let record = Record { key: *key, trust: Trust::Pinned, refused: Vec::new() };
                self.records.insert(stored_key(name), record);
                true
            }
            PeerStatus::Pinned | PeerStatus::Verified => false,
            PeerStatus::Changed { seen, .. } => match self.records.get_mut(&stored_key(name)) {
                Some(record) if !record.refused.contains(&seen) => {
                    if record.refused.len() >= MAX_REFUSED_PER_NAME {
                        record.refused.remove(0);
                    }
                    record.refused.push(seen);
                    true
                }
                Some(_) | None => false,
            },
        };
        Ok((status, changed))
    }

    fn trust_in_memory(
        &mut self,
        name: &UserName,
        fingerprint: &Fingerprint,
    ) -> Result<(TrustOutcome, bool), KnownPeersError> {
        let Some(record) = self.records.get_mut(&stored_key(name)) else {
            return Err(KnownPeersError::Unknown { name: name.clone() });
        };
        if record.key.fingerprint() == *fingerprint {
            return Ok(match record.trust {
                Trust::Verified => (TrustOutcome::AlreadyVerified, false),
                Trust::Pinned => {
                    record.trust = Trust::Verified;
                    (TrustOutcome::Verified, true)
                }
            });
        }
        if let Some(&new) = record.refused.iter().find(|k| k.fingerprint() == *fingerprint) {
            let old = record.key;
            // The user chose among the keys seen: the others are stale.
            *record = Record { key: new, trust: Trust::Verified, refused: Vec::new() };
            return Ok((TrustOutcome::Replaced { old }, true));
        }
        Err(KnownPeersError::NoMatch {
            name: name.clone(),
            fingerprint: *fingerprint,
            known: describe_record(record),
        })
    }

    /// The file's text.
    fn to_text(&self) -> String {
        let mut out = format!("{KNOWN_PEERS_HEADER}\n");
        for (name, r) in &self.records {
            let trust = match r.trust {
                Trust::Pinned => "pinned",
                Trust::Verified => "verified",
            };
            out.push_str(&format!("{name} {trust} {}\n", to_hex(&r.key.0)));
            for k in &r.refused {
                out.push_str(&format!("{name} refused {}\n", to_hex(&k.0)));
            }
        }
        out
    }
}

/// The name key as stored: [`UserName::key`] with `%`, white space and
/// control characters written as `%HH` per UTF-8 byte, so that a line always
/// has three fields and two keys never share a stored form.
fn stored_key(name: &UserName) -> String {
    let mut out = String::new();
    for c in name.key().as_str().chars() {
        if c == '%' || c.is_whitespace() || c.is_control() {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Locks the file, loads it, applies `change`, and saves it if `change`
/// says it changed something.
fn update<T>(
    path: &Path,
    change: impl FnOnce(&mut KnownPeers) -> Result<(T, bool), KnownPeersError>,
) -> Result<T, KnownPeersError> {
    let io = |action, source| KnownPeersError::Io { path: path.to_owned(), action, source };
    private_file::create_private_dir(private_file::parent_dir(path))
        .map_err(|e| io("create the directory", e))?;
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE_MODE)
        .open(&lock_path)
        .map_err(|e| io("open its lock file", e))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io("lock", e.into()))?;
    let mut peers = KnownPeers::load(path)?;
    let (result, changed) = change(&mut peers)?;
    if changed {
        TempFile::write(path, peers.to_text().as_bytes())
            .and_then(|temp| temp.replace(path))
            .map_err(|e| io("write", e))?;
    }
    // Dropping `lock` unlocks.
    drop(lock);
    Ok(result)
}

/// Reads the v1 format; an error is a 1-based line number and a reason.
fn parse(bytes: &[u8]) -> Result<KnownPeers, (usize, String)> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        (line, "not UTF-8 text".to_owned())
    })?;
    let mut lines: Vec<&str> = text.split('\n').collect();
    let last = lines.len();
    if lines.pop() != Some("") {
        return Err((last, "the file ends inside this line (truncated?)".to_owned()));
    }
    match lines.first() {
        Some(&KNOWN_PEERS_HEADER) => {}
        Some(_) | None => {
            return Err((1, format!("expected `{KNOWN_PEERS_HEADER}`")));
        }
    }
    let mut peers = KnownPeers::default();
    for (i, line) in lines.iter().enumerate().skip(1) {
        parse_line(&mut peers, line).map_err(|reason| (i + 1, reason))?;
    }
    Ok(peers)
}

fn parse_line(peers: &mut KnownPeers, line: &str) -> Result<(), String> {
    if line.len() > MAX_LINE_LEN {
        return Err(format!("longer than {MAX_LINE_LEN} bytes"));
    }
    let fields: Vec<&str> = line.split(' ').collect();
    let [name, status, hex] = fields[..] else {
        return Err("expected `NAME pinned|verified|refused KEY`".to_owned());
    };
    if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the name is empty or holds a control character".to_owned());
    }
    let key = PublicKey(from_hex(hex).ok_or("the key is not 64 hex digits")?);
    let trust = match status {
        "pinned" => Trust::Pinned,
        "verified" => Trust::Verified,
        "refused" => {
            let Some(record) = peers.records.get_mut(name) else {
                return Err(format!("a refused key for {name} before its pinned key"));
            };
            if record.key == key || record.refused.contains(&key) {
                return Err(format!("this key is listed for {name} already"));
            }
            if record.refused.len() >= MAX_REFUSED_PER_NAME {
                return Err(format!("more than {MAX_REFUSED_PER_NAME} refused keys for {name}"));
            }
            record.refused.push(key);
            return Ok(());
        }
        other => return Err(format!("unknown status `{other}`")),
    };
    if peers.records.contains_key(name) {
        return Err(format!("a second pinned key for {name}"));
    }
    if peers.records.len() >= MAX_KNOWN_PEERS {
        return Err(format!("more than {MAX_KNOWN_PEERS} names"));
    }
    peers.records.insert(name.to_owned(), Record { key, trust, refused: Vec::new() });
    Ok(())
}

/// The keys known in a record, one indented line each.
fn describe_record(record: &Record) -> String {
    let trust = match record.trust {
        Trust::Pinned => "pinned (not verified)",
        Trust::Verified => "verified",
    };
    let mut out = format!("  {trust}: {}", record.key.fingerprint());
    for k in &record.refused {
        out.push_str(&format!("\n  refused: {}", k.fingerprint()));
    }
    out
}

/// The status line of a chat banner: `fingerprint 12345 … (new, now
/// pinned)`, `(pinned, not verified)`, `(verified)`, or for a changed key
/// `(CHANGED, refused)`; `seen` is the key the peer proved.
pub fn describe(status: &PeerStatus, seen: &PublicKey) -> String {
    let what = match status {
        PeerStatus::New => "new, now pinned",
        PeerStatus::Pinned => "pinned, not verified",
        PeerStatus::Verified => "verified",
        PeerStatus::Changed { .. } => "CHANGED, refused",
    };
    format!("fingerprint {} ({what})", seen.fingerprint())
}

/// The loud warning for a changed key: what may be going on, both
/// fingerprints, and the exact command that accepts the new key.
/// `identity_path` is the identity file in use; the command names it unless
/// it is the default.
pub fn changed_key_warning(
    name: &UserName,
    pinned: &PublicKey,
    seen: &PublicKey,
    verified: bool,
    identity_path: &Path,
) -> String {
    let bar = "@".repeat(64);
    let before =
        if verified { "the key you verified" } else { "the key pinned the first time you chatted" };
    let flag = match crate::identity::default_identity_path() {
        Ok(default) if default == identity_path => String::new(),
        Ok(_) | Err(_) => {
            format!(
                " --identity {}",
                private_file::shell_word(&identity_path.display().to_string())
            )
        }
    };
    format!(
        "{bar}\n\
         WARNING: THE KEY OF {upper} HAS CHANGED\n\
         {bar}\n\
         The key for {name} (from the registry, or proved by a caller) is not\n\
         {before}.\n\
         Someone may be pretending to be {name} to read or change what you write,\n\
         or the registry may be lying about {name}'s key.\n\
         Or {name} may have a new identity file (a new computer, a lost file).\n\
         The new key was refused.\n\
         \x20 pinned key: fingerprint {old}\n\
         \x20 key now:    fingerprint {new}\n\
         Ask {name} to read you their fingerprint (`p2pchat whoami`) by phone or in\n\
         person, not in this chat. Only if it matches the key now, accept it with:\n\
         \x20 p2pchat trust{flag} {quoted} {new}\n\
         The pins are kept in {file}.",
        upper = name.as_str().to_uppercase(),
        old = pinned.fingerprint(),
        new = seen.fingerprint(),
        quoted = private_file::shell_word(name.as_str()),
        file = known_peers_path(identity_path).display(),
    )
}

#[cfg(test)]
#[path = "known_peers_tests.rs"]
mod tests;
