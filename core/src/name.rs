//! User names: validation and the case-insensitive key that makes them unique.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest user name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 32;

/// Why a string is not a valid [`UserName`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("the name is empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    #[error("the name is longer than {MAX_NAME_LEN} bytes")]
    TooLong,
    /// The name holds a control character or white space.
    #[error("the name holds a control character or white space")]
    BadChar,
}

/// A valid user name: 1 to [`MAX_NAME_LEN`] bytes of UTF-8 with no control
/// characters and no white space.
///
/// Names compare as written; uniqueness among online users is decided by
/// [`UserName::key`], which ignores case.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    /// Checks `name` and wraps it.
    pub fn new(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(NameError::BadChar);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key under which the registry keeps this name: two names with the
    /// same key cannot both be online.
    pub fn key(&self) -> NameKey {
        NameKey(self.0.to_lowercase())
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::str::FromStr for UserName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for UserName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// The case-folded form of a [`UserName`]: the registry's uniqueness and
/// ordering key. Lists are sorted by it and paged by it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NameKey(String);

impl NameKey {
    /// Rebuilds a key from its string form (as carried in a list cursor).
    pub(crate) fn from_folded(folded: String) -> Self {
        Self(folded)
    }

    /// The folded name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_refuses() {
        assert!(UserName::new("Mert").is_ok());
        assert!(UserName::new("ünïcödé_名前").is_ok());
        assert_eq!(UserName::new(""), Err(NameError::Empty));
        assert_eq!(UserName::new(&"a".repeat(33)), Err(NameError::TooLong));
        assert!(UserName::new(&"a".repeat(32)).is_ok());
        assert_eq!(UserName::new("a b"), Err(NameError::BadChar));
        assert_eq!(UserName::new("a\u{7}"), Err(NameError::BadChar));
        assert_eq!(UserName::new("a\u{3000}b"), Err(NameError::BadChar));
    }

    #[test]
    fn key_ignores_case() {
        let a = UserName::new("Mert").unwrap();
        let b = UserName::new("mERT").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.key(), b.key());
    }
}
