//! User names: what a name may hold, and the key that makes names unique.
//!
//! A name is kept in Unicode Normalization Form C. Two names clash when their
//! [`NameKey`]s are equal; the key folds case and maps every character to its
//! UTS #39 confusable prototype, so names that merely look alike ("John",
//! "JOHN", Cyrillic "Јое" and Latin "Joe") share a key. Characters that can
//! hide (zero-width, bidi controls, fillers), characters outside the UTS #39
//! identifier profile, and mixed-script names are refused outright.
//! `docs/PROTOCOL.md` §8 states the rules; this module is their reference.

use std::fmt;

use caseless::Caseless;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_security::{
    GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection, skeleton,
};

/// Longest user name, in bytes of UTF-8 of its NFC form.
pub const MAX_NAME_LEN: usize = 32;

/// The loosest UTS #39 restriction level a name may have: one script, or
/// Latin with one other Recommended script that is neither Cyrillic nor
/// Greek (the scripts whose letters most resemble Latin ones), or the usual
/// mixes of Han with Japanese or Korean scripts, with or without Latin.
const RESTRICTION_LEVEL: RestrictionLevel = RestrictionLevel::ModeratelyRestrictive;

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
    /// The name holds a default-ignorable character: one that shows as
    /// nothing, such as a zero-width space or joiner, a bidi control, a
    /// variation selector or a Hangul filler.
    #[error("the name holds an invisible character (zero-width, bidi control or filler)")]
    Invisible,
    /// The name holds a character that UTS #39 does not recommend in
    /// identifiers: a symbol, an emoji, punctuation, or a letter of an
    /// obsolete, technical or limited-use script.
    #[error("the name holds a symbol, emoji or other character not allowed in names")]
    NotAllowed,
    /// The name starts with a combining mark, which would draw onto whatever
    /// is shown before it.
    #[error("the name starts with a combining mark")]
    LeadingMark,
    /// The name mixes scripts in a way UTS #39 does not allow at the moderately
    /// restrictive level, such as Latin with Cyrillic or Greek.
    #[error("the name mixes scripts (such as Latin with Cyrillic or Greek)")]
    MixedScript,
}

/// A valid user name: 1 to [`MAX_NAME_LEN`] bytes of UTF-8 in Normalization
/// Form C, made only of characters the UTS #39 General Security Profile
/// allows, not starting with a combining mark, and moderately restrictive in
/// its mix of scripts.
///
/// Names compare as written (after normalisation); uniqueness among online
/// users is decided by [`UserName::key`], which ignores case and look-alikes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    /// Normalises `name` to NFC, checks it and wraps it.
    pub fn new(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        let name: String = name.nfc().collect();
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        for c in name.chars() {
            if c.is_control() || c.is_whitespace() {
                return Err(NameError::BadChar);
            }
            if is_default_ignorable(c) {
                return Err(NameError::Invisible);
            }
            if !c.identifier_allowed() {
                return Err(NameError::NotAllowed);
            }
        }
        if name.chars().next().is_some_and(is_combining_mark) {
            return Err(NameError::LeadingMark);
        }
        if !name.as_str().check_restriction_level(RESTRICTION_LEVEL) {
            return Err(NameError::MixedScript);
        }
        Ok(Self(name))
    }

    /// A name the registry listed after [`UserName::new`] accepted it, from
    /// its bytes. (Were they not UTF-8, which they always are, the bad bytes
    /// would show as U+FFFD rather than panic.)
    pub(crate) fn from_listed(bytes: &[u8]) -> Self {
        Self(String::from_utf8_lossy(bytes).into_owned())
    }

    /// The name as written, in NFC.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key under which the registry keeps this name: two names with the
    /// same key cannot both be online.
    ///
    /// It is `fold(skeleton(fold(name)))`: full Unicode case folding, then
    /// the UTS #39 confusable skeleton, then case folding again (a skeleton
    /// may hold capitals, as `0` maps to `O`).
    pub fn key(&self) -> NameKey {
        NameKey(fold_skeleton(&self.0))
    }
}

/// Longest [`NameKey`] of a valid name, in bytes: no character a name may
/// hold folds and maps to more than 7 times its own length (Hangul `쮆`,
/// 3 bytes, becomes 21: its jamo and their look-alikes), so keys (and list
/// cursors) stay within 7 × [`MAX_NAME_LEN`] bytes.
pub const MAX_KEY_LEN: usize = 7 * MAX_NAME_LEN;

/// `fold(skeleton(fold(s)))`, the name key of `s`.
fn fold_skeleton(s: &str) -> String {
    let folded: String = s.chars().default_case_fold().collect();
    skeleton(&folded).default_case_fold().collect()
}

/// Every ASCII byte, so that the key of a character that keys as itself
/// can be a slice of this.
static ASCII: [u8; 128] = {
    let mut all = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        // Below 128.
        all[i] = i as u8;
        i += 1;
    }
    all
};

/// The key (`fold(skeleton(fold(c)))`) of an ASCII character a name may
/// hold, or `None` for one it may not. Written out rather than computed:
/// the tests check it against [`UserName::new`] and [`UserName::key`] for
/// every ASCII character, pair and many longer strings.
fn ascii_key(b: u8) -> Option<&'static [u8]> {
    match b {
        b'M' | b'm' => Some(b"rn"),
        b'0' => Some(b"o"),
        b'1' => Some(b"l"),
        b'A'..=b'Z' => Some(std::slice::from_ref(&ASCII[usize::from(b.to_ascii_lowercase())])),
        b'a'..=b'z' | b'2'..=b'9' | b'\'' | b'-' | b'.' | b':' | b'_' => {
            Some(std::slice::from_ref(&ASCII[usize::from(b)]))
        }
        _ => None,
    }
}

/// For a name made only of ASCII characters, whether it is valid, and if so
/// its key's bytes in order, handed to `feed`, without any Unicode tables
/// or allocation; `None` when `name` is not plain ASCII, so the general
/// rules must decide.
///
/// For ASCII text NFC changes nothing, case folding and the UTS #39
/// skeleton map each character on its own (to ASCII), and every mix of
/// ASCII letters and digits passes the restriction level: so an ASCII name
/// is valid exactly when each of its characters is allowed, and its key is
/// the concatenation of its characters' keys.
pub(crate) fn ascii_key_into(name: &str, mut feed: impl FnMut(&[u8])) -> Option<bool> {
    if !name.is_ascii() {
        return None;
    }
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Some(false);
    }
    if !name.bytes().all(|b| ascii_key(b).is_some()) {
        return Some(false);
    }
    for key in name.bytes().filter_map(ascii_key) {
        feed(key);
    }
    Some(true)
}

/// Whether `c` has the Unicode property Default_Ignorable_Code_Point: it
/// shows as nothing (zero-width characters, every bidi control, variation
/// selectors, fillers, tags). Names refuse these; the client shows them in
/// message texts as escapes.
///
/// The UTS #39 skeleton drops exactly those characters after decomposing
/// (and none of them decomposes), so a character is default-ignorable when
/// its skeleton is empty.
pub fn is_default_ignorable(c: char) -> bool {
    let mut buf = [0; 4];
    skeleton(c.encode_utf8(&mut buf)).next().is_none()
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

/// The folded, look-alike-mapped form of a [`UserName`]: the registry's
/// uniqueness key; clients sort the online list by it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NameKey(String);

impl NameKey {
    /// The key as a string.
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

    #[test]
    fn invisible_characters_are_default_ignorable() {
        // Zero-width space, joiner and non-joiner, word joiner, LRM, RLM,
        // ALM, RLO, PDF, RLI, PDI, soft hyphen, CGJ, variation selectors,
        // Hangul fillers, a tag character.
        let invisible = [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{200E}',
            '\u{200F}',
            '\u{061C}',
            '\u{202E}',
            '\u{202C}',
            '\u{2067}',
            '\u{2069}',
            '\u{00AD}',
            '\u{034F}',
            '\u{FE0F}',
            '\u{E0100}',
            '\u{3164}',
            '\u{115F}',
            '\u{FFA0}',
            '\u{E0041}',
        ];
        for c in invisible {
            assert!(is_default_ignorable(c), "{c:?}");
            assert_eq!(UserName::new(&format!("a{c}b")), Err(NameError::Invisible), "{c:?}");
        }
        for c in ['a', 'Z', '0', '_', 'é', 'Ж', '名', '\u{301}'] {
            assert!(!is_default_ignorable(c), "{c:?}");
        }
    }

    #[test]
    fn no_default_ignorable_is_allowed() {
        // So a name never holds one, and the order of the checks only picks
        // which error a name gets.
        for c in (0..=0x10_ffff).filter_map(char::from_u32) {
            assert!(!(is_default_ignorable(c) && c.identifier_allowed()), "{c:?}");
        }
    }

    /// What the fast path says of `name`: `Some(Some(key))` valid,
    /// `Some(None)` invalid, `None` no answer.
    fn fast(name: &str) -> Option<Option<String>> {
        let mut key = Vec::new();
        let valid = ascii_key_into(name, |b| key.extend_from_slice(b))?;
        Some(valid.then(|| String::from_utf8(key).unwrap()))
    }

    #[test]
    fn ascii_fast_path_agrees_with_the_rules() {
        let check = |name: &str| {
            let Some(got) = fast(name) else { return false };
            let want = UserName::new(name).ok().map(|n| n.key().as_str().to_owned());
            assert_eq!(got, want, "{name:?}");
            true
        };
        let mut answered = 0;
        for a in 0..128u8 {
            answered += usize::from(check(&char::from(a).to_string()));
            for b in 0..128u8 {
                let two: String = [char::from(a), char::from(b)].iter().collect();
                check(&two);
            }
        }
        assert!(answered > 60, "letters, digits and more take the fast path");
        // Longer names, from a fixed xorshift stream over the allowed set.
        let allowed: Vec<char> =
            (0..128u8).map(char::from).filter(|c| UserName::new(&c.to_string()).is_ok()).collect();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 34) as usize;
            let name: String = (0..len)
                .map(|i| allowed[((x >> (i % 50)) as usize + i * 7) % allowed.len()])
                .collect();
            check(&name);
        }
        assert_eq!(fast("Mert"), Some(Some(UserName::new("mert").unwrap().key().0)));
        assert_eq!(fast("a b"), Some(None));
        assert_eq!(fast("Ünï"), None);
    }

    #[test]
    fn keys_stay_within_max_key_len() {
        // Every character a name may hold, marks included.
        for c in (0..=0x10_ffff).filter_map(char::from_u32).filter(|c| c.identifier_allowed()) {
            let key = fold_skeleton(&c.to_string());
            assert!(key.len() * MAX_NAME_LEN <= MAX_KEY_LEN * c.len_utf8(), "{c:?} -> {key:?}");
        }
        let widest = UserName::new(&"쮆".repeat(10)).unwrap();
        assert_eq!(widest.key().as_str().len(), 210);
    }
}
