//! Where text goes on a terminal of a given width: rows cut at grapheme
//! clusters, each cluster as wide as `unicode-width` says (2 columns for
//! CJK and emoji, 0 for a lone combining mark). A cluster that does not fit
//! in what is left of a row starts the next one, as terminals do with wide
//! characters. Pure arithmetic, for [`super::Screen`].

use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation as _;
use unicode_width::UnicodeWidthStr as _;

/// `text` cut into rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The byte ranges of the rows, in order; never empty. A row is at most
    /// the width. When the text fills its last row exactly, an empty row
    /// follows: the position after the text is there.
    pub rows: Vec<Range<usize>>,
    /// The row and column of the cursor.
    pub cursor: (usize, usize),
}

/// Lays `text` out in rows of `width` columns (at least 1), with the cursor
/// before the byte `cursor` (a grapheme boundary; the end of the text is
/// after its last cluster).
pub fn layout(text: &str, width: usize, cursor: usize) -> Layout {
    let width = width.max(1);
    let mut rows = Vec::new();
    let mut start = 0;
    let mut col = 0;
    let mut at = None;
    for (i, g) in text.grapheme_indices(true) {
        // Wider than the whole row (a width of 1): it takes the row.
        let w = g.width().min(width);
        if col + w > width {
            rows.push(start..i);
            start = i;
            col = 0;
        }
        if i == cursor {
            at = Some((rows.len(), col.min(width - 1)));
        }
        col += w;
    }
    if col >= width {
        rows.push(start..text.len());
        start = text.len();
        col = 0;
    }
    let end = (rows.len(), col);
    rows.push(start..text.len());
    Layout { rows, cursor: at.unwrap_or(end) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows<'a>(text: &'a str, l: &Layout) -> Vec<&'a str> {
        l.rows.iter().map(|r| &text[r.clone()]).collect()
    }

    #[test]
    fn ascii_wraps_at_the_width() {
        let t = "abcdefghij";
        let l = layout(t, 4, t.len());
        assert_eq!(rows(t, &l), ["abcd", "efgh", "ij"]);
        assert_eq!(l.cursor, (2, 2));
        assert_eq!(layout(t, 4, 0).cursor, (0, 0));
        assert_eq!(layout(t, 4, 4).cursor, (1, 0));
        assert_eq!(layout(t, 4, 7).cursor, (1, 3));
        assert_eq!(rows("", &layout("", 4, 0)), [""]);
    }

    #[test]
    fn a_full_last_row_puts_the_end_on_the_next() {
        let t = "abcdefgh";
        let l = layout(t, 4, t.len());
        assert_eq!(rows(t, &l), ["abcd", "efgh", ""]);
        assert_eq!(l.cursor, (2, 0));
        // The cursor inside: the empty row is still there, for the end.
        assert_eq!(layout(t, 4, 5).cursor, (1, 1));
    }

    #[test]
    fn wide_characters_do_not_straddle_rows() {
        // Each takes two columns: three fit in 7, the fourth goes on.
        let t = "\u{4f60}\u{597d}\u{4e16}\u{754c}ab";
        let l = layout(t, 7, t.len());
        assert_eq!(rows(t, &l), ["\u{4f60}\u{597d}\u{4e16}", "\u{754c}ab"]);
        assert_eq!(l.cursor, (1, 4));
        assert_eq!(layout(t, 7, 9).cursor, (1, 0));
        assert_eq!(t.width(), 10);
        // Three wide then narrow: `a` fills the 7th column.
        let t = "\u{4f60}\u{597d}\u{4e16}a\u{754c}";
        assert_eq!(rows(t, &layout(t, 7, 0)), ["\u{4f60}\u{597d}\u{4e16}a", "\u{754c}"]);
        // Narrower than one wide character: one per row.
        let t = "\u{4f60}\u{597d}";
        assert_eq!(rows(t, &layout(t, 1, 0)), ["\u{4f60}", "\u{597d}", ""]);
    }

    #[test]
    fn a_cluster_stays_whole() {
        // `e` and a combining acute accent, and a family with joiners.
        let family = "\u{1f469}\u{200d}\u{1f469}\u{200d}\u{1f467}";
        let t = format!("abe\u{301}{family}");
        let l = layout(&t, 4, t.len());
        assert_eq!(rows(&t, &l), ["abe\u{301}", family]);
        assert_eq!(l.cursor, (1, family.width()));
    }
}
