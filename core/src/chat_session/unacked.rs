//! The texts sent and not yet acknowledged, kept for the `Undelivered`
//! report: their sequence numbers in a queue and their bytes back to back
//! in one ring buffer, so that sending a text copies it once, and neither
//! allocates (once the buffer has grown to the burst's size) nor moves
//! what is left when older texts are acknowledged.

use std::collections::VecDeque;

use crate::chat_msg::Seq;

/// Texts sent and not yet acknowledged, oldest first, with consecutive
/// sequence numbers. At most [`MAX_UNACKED`](super::MAX_UNACKED) texts and
/// [`MAX_UNACKED_BYTES`](super::MAX_UNACKED_BYTES) bytes (the session
/// refuses more).
#[derive(Debug, Default)]
pub(super) struct Unacked {
    /// Each text's sequence number and length, oldest first.
    texts: VecDeque<(Seq, usize)>,
    /// Their bytes (UTF-8), oldest first.
    bytes: VecDeque<u8>,
}

impl Unacked {
    /// How many texts wait for their acknowledgement.
    pub(super) fn len(&self) -> usize {
        self.texts.len()
    }

    /// The bytes of the texts kept.
    pub(super) fn text_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Keeps a copy of `text`, sent as `seq`.
    pub(super) fn push(&mut self, seq: Seq, text: &str) {
        self.bytes.extend(text.as_bytes());
        self.texts.push_back((seq, text.len()));
    }

    /// The oldest text's sequence number.
    pub(super) fn front(&self) -> Option<Seq> {
        self.texts.front().map(|(seq, _)| *seq)
    }

    /// Forgets the oldest text (acknowledged).
    pub(super) fn pop_front(&mut self) -> Option<Seq> {
        let (seq, len) = self.texts.pop_front()?;
        self.bytes.drain(..len);
        Some(seq)
    }

    /// A copy of every text, oldest first (for the rare resend and report).
    pub(super) fn to_vec(&self) -> Vec<(Seq, String)> {
        let mut at = 0;
        self.texts
            .iter()
            .map(|&(seq, len)| {
                let bytes: Vec<u8> = self.bytes.range(at..at + len).copied().collect();
                at += len;
                // Each text was pushed whole and valid, so this never replaces anything.
                (seq, String::from_utf8_lossy(&bytes).into_owned())
            })
            .collect()
    }

    /// Takes every text out, oldest first.
    pub(super) fn take_all(&mut self) -> Vec<(Seq, String)> {
        let all = self.to_vec();
        *self = Self::default();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_texts_in_order_across_acks() {
        let mut u = Unacked::default();
        for i in 1..=100u64 {
            u.push(Seq(i), &format!("text {i} ✓"));
            if i % 3 == 0 {
                // Acknowledge all but the newest two.
                while u.len() > 2 {
                    u.pop_front();
                }
            }
        }
        let left: Vec<_> = u.to_vec().into_iter().map(|(s, t)| (s.0, t)).collect();
        assert_eq!(
            left,
            vec![
                (98, "text 98 ✓".to_owned()),
                (99, "text 99 ✓".into()),
                (100, "text 100 ✓".into())
            ]
        );
        assert_eq!(u.front(), Some(Seq(98)));
        // The acknowledged bytes were dropped on the way.
        assert_eq!(u.bytes.len(), ["text 98 ✓", "text 99 ✓", "text 100 ✓"].concat().len());
        let all = u.take_all();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2], (Seq(100), "text 100 ✓".to_owned()));
        assert_eq!(u.len(), 0);
        assert_eq!(u.pop_front(), None);
    }
}
