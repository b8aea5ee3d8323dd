//! A typed line longer than one chat message, cut into messages.
//!
//! The line editor hands on lines of up to
//! [`MAX_INPUT_LEN`](crate::line_editor::MAX_INPUT_LEN) bytes; a chat message
//! holds at most [`MAX_TEXT_LEN`]. [`split_for_sending`] cuts a line into
//! pieces that each fit, at grapheme cluster boundaries, so that no
//! character the user sees (an accented letter, an emoji with joiners) is
//! torn between two messages.

use p2pchat_core::MAX_TEXT_LEN;
use unicode_segmentation::UnicodeSegmentation as _;

/// `text` in pieces of at most [`MAX_TEXT_LEN`] bytes, in order, that joined
/// give `text` back. Each cut is at a grapheme cluster boundary, as late as
/// fits; a single cluster longer than a message (thousands of combining
/// marks) is cut between its characters. A text that fits, the empty one
/// included, is one piece.
pub fn split_for_sending(text: &str) -> Vec<String> {
    split_at_most(text, MAX_TEXT_LEN)
}

fn split_at_most(text: &str, max: usize) -> Vec<String> {
    // Most lines fit: no need to find their clusters.
    if text.len() <= max {
        return vec![text.to_owned()];
    }
    let mut pieces = Vec::with_capacity(text.len() / max + 1);
    let mut start = 0;
    let mut end = 0;
    for (i, g) in text.grapheme_indices(true) {
        if i + g.len() - start <= max {
            end = i + g.len();
            continue;
        }
        if end > start {
            pieces.push(text[start..end].to_owned());
            start = end;
        }
        // One cluster over the bound: cut it between characters.
        while i + g.len() - start > max {
            let mut cut = start + max;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            pieces.push(text[start..cut].to_owned());
            start = cut;
        }
        end = i + g.len();
    }
    if end > start || pieces.is_empty() {
        pieces.push(text[start..].to_owned());
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_text_is_one_piece() {
        assert_eq!(split_for_sending(""), [""]);
        assert_eq!(split_for_sending("hi"), ["hi"]);
        let full = "x".repeat(MAX_TEXT_LEN);
        assert_eq!(split_for_sending(&full), [full]);
    }

    #[test]
    fn a_long_text_is_cut_into_full_pieces() {
        let text: String = (0..70_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let pieces = split_for_sending(&text);
        assert_eq!(pieces.len(), 70_000_usize.div_ceil(MAX_TEXT_LEN));
        assert!(pieces[..pieces.len() - 1].iter().all(|p| p.len() == MAX_TEXT_LEN));
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn no_grapheme_is_torn() {
        let family = "\u{1f469}\u{200d}\u{1f469}\u{200d}\u{1f467}";
        // Families at every offset from a cut.
        for pad in 0..2 * family.len() {
            let text = format!("{}{}", "a".repeat(pad), family.repeat(5));
            let max = family.len() + 3;
            let pieces = split_at_most(&text, max);
            assert_eq!(pieces.concat(), text);
            for p in &pieces {
                assert!(p.len() <= max, "{p:?}");
                assert!(p.graphemes(true).all(|g| g == family || g == "a"), "{p:?}");
            }
        }
    }

    #[test]
    fn a_cluster_longer_than_a_message_is_cut_between_characters() {
        let text = format!("ab{}c", "e\u{301}\u{301}\u{301}");
        let pieces = split_at_most(&text, 5);
        assert_eq!(pieces.concat(), text);
        assert_eq!(pieces[0], "ab");
        assert!(pieces.iter().all(|p| p.len() <= 5 && !p.is_empty()), "{pieces:?}");
    }
}
