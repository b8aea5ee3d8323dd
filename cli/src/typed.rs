//! Which state each typed line belongs to.
//!
//! [`Typed`] wraps the decoder of a keyboard (the line editor) and stamps
//! every finished line with the [`Scope`] the app was in when the line's
//! first character was typed, so that a chat reply finished after the chat
//! ended is not taken as a menu choice (see `app/input.rs`). It also turns
//! Ctrl-D on an empty line while the app waits for a chat into `/back`, so
//! the keyboard keeps working (the editor would end the input).
//!
//! Input that nobody types key by key (a script, a file, a terminal in
//! its own line mode) passes through untouched and unstamped: its lines
//! keep their order-only rule.

use std::collections::VecDeque;

use p2pchat_transport_mio::{InputDecoder, InputItem};

use crate::app::{BACK, Scope};
use crate::line_editor::MAX_TYPED_AHEAD;

const CTRL_D: u8 = 0x04;
const CTRL_U: u8 = 0x15;

/// A decoder whose lines carry the scope they were begun in.
#[derive(Debug)]
pub struct Typed<D> {
    inner: D,
    /// Whether keys are stamped (a line editor) or passed through.
    stamping: bool,
    /// The app's scope now, and whether it waits for a chat.
    scope: Scope,
    waiting: bool,
    /// The scope the line being typed was begun in, once it holds a
    /// character.
    begun: Option<Scope>,
    /// Finished items and their scope (stamping only).
    items: VecDeque<(InputItem, Scope)>,
    /// The scope of the item last popped.
    last: Option<Scope>,
}

impl<D: InputDecoder> Typed<D> {
    /// Wraps `inner`; `stamping`: whether its bytes are keys pressed one by
    /// one (a line editor on a terminal).
    pub fn new(inner: D, stamping: bool) -> Self {
        Self {
            inner,
            stamping,
            scope: Scope::Menu,
            waiting: false,
            begun: None,
            items: VecDeque::new(),
            last: None,
        }
    }

    /// The wrapped decoder.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Tells where the app is now; keys typed from here on belong there.
    pub fn set_scope(&mut self, scope: Scope, waiting: bool) {
        self.scope = scope;
        self.waiting = waiting;
    }

    /// The scope of the next item (`None`: unstamped input).
    pub fn peek_scope(&self) -> Option<Scope> {
        self.items.front().map(|(_, s)| *s)
    }

    /// The scope of the item popped last (`None`: unstamped input).
    pub fn popped_scope(&self) -> Option<Scope> {
        self.last
    }

    fn drain_inner(&mut self, scope: Scope) {
        while let Some(item) = self.inner.pop() {
            self.items.push_back((item, scope));
        }
    }
}

impl<D: InputDecoder> InputDecoder for Typed<D> {
    fn push(&mut self, bytes: &[u8]) {
        if !self.stamping {
            return self.inner.push(bytes);
        }
        // Fed in pieces that end at a line end, so each finished line gets
        // the scope of its own first character.
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'\r' | b'\n' => {
                    self.inner.push(&bytes[start..=i]);
                    start = i + 1;
                    let scope = self.begun.take().unwrap_or(self.scope);
                    self.drain_inner(scope);
                }
                CTRL_D if self.waiting && self.begun.is_none() => {
                    self.inner.push(&bytes[start..i]);
                    start = i + 1;
                    self.drain_inner(self.scope);
                    self.items.push_back((InputItem::Line(BACK.to_owned()), self.scope));
                }
                CTRL_U => self.begun = None,
                0x20..=0x7e | 0x80.. => {
                    self.begun.get_or_insert(self.scope);
                }
                _ => {}
            }
        }
        self.inner.push(&bytes[start..]);
        self.drain_inner(self.scope);
    }

    fn push_eof(&mut self) {
        self.inner.push_eof();
        if self.stamping {
            self.drain_inner(self.scope);
        }
    }

    fn peek(&self) -> Option<&InputItem> {
        if self.stamping { self.items.front().map(|(i, _)| i) } else { self.inner.peek() }
    }

    fn pop(&mut self) -> Option<InputItem> {
        if !self.stamping {
            self.last = None;
            return self.inner.pop();
        }
        let (item, scope) = self.items.pop_front()?;
        self.last = Some(scope);
        Some(item)
    }

    fn ended(&self) -> bool {
        self.inner.ended()
    }

    fn wants_input(&self) -> bool {
        if self.stamping {
            !self.inner.ended() && self.items.len() < MAX_TYPED_AHEAD
        } else {
            self.inner.wants_input()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_editor::LineEditor;

    fn line(s: &str) -> InputItem {
        InputItem::Line(s.to_owned())
    }

    fn pop_all(t: &mut Typed<LineEditor>) -> Vec<(InputItem, Option<Scope>)> {
        std::iter::from_fn(|| t.pop().map(|i| (i, t.popped_scope()))).collect()
    }

    #[test]
    fn a_line_belongs_to_the_scope_of_its_first_key() {
        let mut t = Typed::new(LineEditor::new(), true);
        t.set_scope(Scope::Call(1), false);
        t.push(b"3");
        t.set_scope(Scope::Menu, false);
        t.push(b"\r4\r");
        assert_eq!(
            pop_all(&mut t),
            vec![(line("3"), Some(Scope::Call(1))), (line("4"), Some(Scope::Menu))]
        );
        // Ctrl-U empties the line: it begins again at the next character.
        t.set_scope(Scope::Call(2), false);
        t.push(b"x\x15");
        t.set_scope(Scope::Menu, false);
        t.push(b"1\r\n");
        assert_eq!(pop_all(&mut t), vec![(line("1"), Some(Scope::Menu))]);
    }

    #[test]
    fn ctrl_d_while_waiting_is_back_and_the_keyboard_lives_on() {
        let mut t = Typed::new(LineEditor::new(), true);
        t.set_scope(Scope::Call(1), true);
        t.push(b"\x04");
        assert_eq!(pop_all(&mut t), vec![(line("/back"), Some(Scope::Call(1)))]);
        assert!(!t.ended());
        t.set_scope(Scope::Menu, false);
        t.push(b"3\r\x04");
        assert_eq!(
            pop_all(&mut t),
            vec![(line("3"), Some(Scope::Menu)), (InputItem::Eof, Some(Scope::Menu))]
        );
        assert!(t.ended());
    }

    #[test]
    fn unstamped_input_passes_through() {
        let mut t = Typed::new(LineEditor::new(), false);
        t.set_scope(Scope::Call(1), true);
        t.push(b"a\r\x04");
        assert_eq!(pop_all(&mut t), vec![(line("a"), None), (InputItem::Eof, None)]);
    }
}
