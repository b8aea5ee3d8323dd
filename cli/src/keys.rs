//! Keys out of the bytes a terminal in non-canonical mode sends: UTF-8
//! characters (possibly split across reads), control keys and the escape
//! sequences of the arrow and editing keys (`ESC [ …` and `ESC O …`, as
//! xterm, tmux, the Linux console and their kin send them). Pure: bytes in,
//! [`Key`]s out.

/// Longest escape sequence read, in bytes after `ESC [`; a longer one is
/// dropped as garbage and what follows is read as keys again.
pub const MAX_ESCAPE_LEN: usize = 32;

const ESC: u8 = 0x1b;
const DELETE: u8 = 0x7f;

/// One key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// `\r` or `\n` (`\r\n` counting once).
    Enter,
    /// Tab.
    Tab,
    /// Backspace (`0x7f` or `0x08`).
    Backspace,
    /// The Delete key (`ESC [ 3 ~`).
    Delete,
    /// Left arrow.
    Left,
    /// Right arrow.
    Right,
    /// Up arrow.
    Up,
    /// Down arrow.
    Down,
    /// Home.
    Home,
    /// End.
    End,
    /// A control key other than the above: `Ctrl(b'a')` for Ctrl-A.
    Ctrl(u8),
}

/// Where the decoder is in an escape sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// Not in one.
    None,
    /// After `ESC`.
    Started,
    /// After `ESC [`, with this many bytes since.
    Csi(usize),
    /// After `ESC O`: one more byte.
    Ss3,
}

/// The decoder. See the module documentation.
#[derive(Debug)]
pub struct KeyDecoder {
    /// The bytes of a character not complete yet.
    utf8: Vec<u8>,
    /// How many bytes the character in `utf8` has in all.
    utf8_len: usize,
    escape: Escape,
    /// The first parameter of the CSI sequence read (`3` in `ESC [ 3 ~`).
    param: u32,
    /// A parameter byte other than a digit was seen since the first `;`.
    param_done: bool,
    /// The last key was `\r`: a `\n` right after it is the same Enter.
    after_cr: bool,
}

impl Default for KeyDecoder {
    fn default() -> Self {
        Self {
            utf8: Vec::with_capacity(4),
            utf8_len: 0,
            escape: Escape::None,
            param: 0,
            param_done: false,
            after_cr: false,
        }
    }
}

impl KeyDecoder {
    /// Forgets a character or sequence half read.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Takes one byte; the key it completes, if any. Invalid UTF-8, unknown
    /// sequences (function keys, Alt+key) and C1 controls give none.
    pub fn byte(&mut self, b: u8) -> Option<Key> {
        let after_cr = std::mem::replace(&mut self.after_cr, false);
        if self.escape != Escape::None {
            if let Some(key) = self.escape_byte(b) {
                return key;
            }
        }
        if self.utf8_len > 0 {
            if b & 0xc0 == 0x80 {
                self.utf8.push(b);
                if self.utf8.len() < self.utf8_len {
                    return None;
                }
                self.utf8_len = 0;
                // Overlong forms and surrogates are refused here.
                let c = std::str::from_utf8(&self.utf8).ok().and_then(|s| s.chars().next());
                self.utf8.clear();
                return c.filter(|c| !c.is_control()).map(Key::Char);
            }
            // Not a continuation byte: the character was cut; drop it and
            // read this byte afresh.
            self.utf8.clear();
            self.utf8_len = 0;
        }
        match b {
            b'\r' => {
                self.after_cr = true;
                Some(Key::Enter)
            }
            b'\n' if after_cr => None,
            b'\n' => Some(Key::Enter),
            b'\t' => Some(Key::Tab),
            DELETE | 0x08 => Some(Key::Backspace),
            ESC => {
                self.escape = Escape::Started;
                None
            }
            0x01..=0x1a => Some(Key::Ctrl(b - 1 + b'a')),
            0x20..=0x7e => Some(Key::Char(char::from(b))),
            0xc2..=0xdf => self.start_char(b, 2),
            0xe0..=0xef => self.start_char(b, 3),
            0xf0..=0xf4 => self.start_char(b, 4),
            // NUL, the other C0 controls, bytes that start no character.
            _ => None,
        }
    }

    fn start_char(&mut self, b: u8, len: usize) -> Option<Key> {
        self.utf8.push(b);
        self.utf8_len = len;
        None
    }

    /// Takes `b` as part of an escape sequence: `Some(key)` if it was one
    /// (`key` the sequence's, if it completed a known one), `None` if the
    /// sequence is over and `b` is a key of its own.
    fn escape_byte(&mut self, b: u8) -> Option<Option<Key>> {
        let is_control = b < 0x20 || b == DELETE;
        match self.escape {
            Escape::None => None,
            Escape::Started if is_control && b != ESC => {
                self.escape = Escape::None;
                None
            }
            Escape::Started => {
                self.escape = match b {
                    b'[' => {
                        self.param = 0;
                        self.param_done = false;
                        Escape::Csi(0)
                    }
                    b'O' => Escape::Ss3,
                    ESC => Escape::Started,
                    // Alt+key: the key is swallowed with the ESC.
                    _ => Escape::None,
                };
                Some(None)
            }
            Escape::Csi(n) => match b {
                // Parameter and intermediate bytes; too many end it.
                0x20..=0x3f => {
                    self.escape =
                        if n < MAX_ESCAPE_LEN { Escape::Csi(n + 1) } else { Escape::None };
                    match b {
                        b'0'..=b'9' if !self.param_done => {
                            self.param =
                                self.param.saturating_mul(10).saturating_add(u32::from(b - b'0'));
                        }
                        _ => self.param_done = true,
                    }
                    Some(None)
                }
                // The final byte.
                0x40..=0x7e => {
                    self.escape = Escape::None;
                    Some(csi_key(self.param, b))
                }
                _ => {
                    self.escape = Escape::None;
                    None
                }
            },
            Escape::Ss3 => {
                self.escape = Escape::None;
                if is_control { None } else { Some(final_key(b)) }
            }
        }
    }
}

/// The key of `ESC [ param final`; modifiers (`ESC [ 1 ; 5 C`) are ignored.
fn csi_key(param: u32, fin: u8) -> Option<Key> {
    match (param, fin) {
        (1 | 7, b'~') => Some(Key::Home),
        (3, b'~') => Some(Key::Delete),
        (4 | 8, b'~') => Some(Key::End),
        (_, b'~') => None,
        _ => final_key(fin),
    }
}

/// The key of `ESC O final` and of `ESC [ final`.
fn final_key(fin: u8) -> Option<Key> {
    match fin {
        b'A' => Some(Key::Up),
        b'B' => Some(Key::Down),
        b'C' => Some(Key::Right),
        b'D' => Some(Key::Left),
        b'H' => Some(Key::Home),
        b'F' => Some(Key::End),
        _ => None,
    }
}
