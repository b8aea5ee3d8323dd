//! The texts sent and not yet acknowledged, kept for the `Undelivered`
//! report: their sequence numbers in a queue and their bytes back to back
//! in one buffer, so that sending a text copies it once and allocates
//! nothing once the buffer has grown to the burst's size.

use std::collections::VecDeque;

use crate::chat_msg::Seq;

/// Texts sent and not yet acknowledged, oldest first, with consecutive
/// sequence numbers. At most [`MAX_UNACKED`](super::MAX_UNACKED) texts of at
/// most [`MAX_TEXT_LEN`](crate::MAX_TEXT_LEN) bytes (the session refuses
/// more), so the buffer is bounded too.
#[derive(Debug, Default)]
pub(super) struct Unacked {
    /// Each text's sequence number and length, oldest first.
    texts: VecDeque<(Seq, usize)>,
    /// Their bytes, oldest first, from `start` on.
    bytes: String,
    /// Bytes at the front of `bytes` whose texts were acknowledged.
    start: usize,
}

impl Unacked {
    /// How many texts wait for their acknowledgement.
    pub(super) fn len(&self) -> usize {
        self.texts.len()
    }

    /// Keeps a copy of `text`, sent as `seq`.
    pub(super) fn push(&mut self, seq: Seq, text: &str) {
        self.bytes.push_str(text);
        self.texts.push_back((seq, text.len()));
    }

    /// The oldest text's sequence number.
    pub(super) fn front(&self) -> Option<Seq> {
        self.texts.front().map(|(seq, _)| *seq)
    }

    /// Forgets the oldest text (acknowledged). The acknowledged prefix of
    /// the buffer is dropped once it outweighs what is left, so the copy is
    /// paid for by the texts that made it.
    pub(super) fn pop_front(&mut self) -> Option<Seq> {
        let (seq, len) = self.texts.pop_front()?;
        self.start += len;
        if self.texts.is_empty() {
            self.bytes.clear();
            self.start = 0;
        } else if self.start >= self.bytes.len() - self.start {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        Some(seq)
    }

    /// Every text, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Seq, &str)> {
        let mut at = self.start;
        self.texts.iter().map(move |&(seq, len)| {
            // Each text was pushed whole, so its bounds are char boundaries.
            let text = self.bytes.get(at..at + len).unwrap_or_default();
            at += len;
            (seq, text)
        })
    }

    /// Takes every text out, oldest first.
    pub(super) fn take_all(&mut self) -> Vec<(Seq, String)> {
        let all = self.iter().map(|(seq, text)| (seq, text.to_owned())).collect();
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
        let left: Vec<_> = u.iter().map(|(s, t)| (s.0, t.to_owned())).collect();
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
        assert!(u.bytes.len() - u.start < 64 && u.bytes.len() < 128, "{}", u.bytes.len());
        let all = u.take_all();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2], (Seq(100), "text 100 ✓".to_owned()));
        assert_eq!(u.len(), 0);
        assert_eq!(u.pop_front(), None);
    }
}
