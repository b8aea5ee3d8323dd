//! Where text goes on a terminal of a given width: rows cut at grapheme
//! clusters, each cluster as wide as `unicode-width` says (2 columns for
//! CJK and emoji, 0 for a lone combining mark). A cluster that does not fit
//! in what is left of a row starts the next one, as terminals do with wide
//! characters. Pure arithmetic, for [`super::Screen`].

use std::ops::Range;

use unicode_segmentation::{GraphemeCursor, UnicodeSegmentation as _};
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

/// Most bytes of a long text laid out: the part around the cursor. Keeps
/// the cost of drawing a huge line (a long paste) bounded, whatever its
/// length; the screen shows far less than this.
pub const MAX_LAYOUT_BYTES: usize = 64 * 1024;

/// Lays out the part of `text` around `cursor`, at most
/// [`MAX_LAYOUT_BYTES`] of it: the whole text if it is that short. Returns
/// where that part starts in `text` and its layout (ranges and cursor
/// relative to that start). The part starts at a multiple of half the bound
/// (then the next grapheme boundary), so that its rows stay put while the
/// user types on.
pub fn layout_around(text: &str, width: usize, cursor: usize) -> (usize, Layout) {
    if text.len() <= MAX_LAYOUT_BYTES {
        return (0, layout(text, width, cursor));
    }
    let half = MAX_LAYOUT_BYTES / 2;
    let start = boundary_after(text, cursor.saturating_sub(half) / half * half).min(cursor);
    let end = boundary_before(text, (start + MAX_LAYOUT_BYTES).min(text.len())).max(cursor);
    (start, layout(&text[start..end], width, cursor - start))
}

/// The first grapheme boundary at or after `at`.
fn boundary_after(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at += 1;
    }
    let mut g = GraphemeCursor::new(at, text.len(), true);
    match g.is_boundary(text, 0) {
        Ok(true) => at,
        // The whole text is the one chunk: no more context is asked for.
        _ => g.next_boundary(text, 0).ok().flatten().unwrap_or(text.len()),
    }
}

/// The last grapheme boundary at or before `at`.
fn boundary_before(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let mut g = GraphemeCursor::new(at, text.len(), true);
    match g.is_boundary(text, 0) {
        Ok(true) => at,
        _ => g.prev_boundary(text, 0).ok().flatten().unwrap_or(0),
    }
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
    fn a_long_text_is_laid_out_around_the_cursor() {
        let t = "\u{4f60}".repeat(MAX_LAYOUT_BYTES); // 3 bytes each
        let (start, l) = layout_around(&t, 10, t.len());
        assert!(start > 0 && t.len() - start <= MAX_LAYOUT_BYTES, "{start}");
        assert_eq!(start % 3, 0);
        assert_eq!(start + l.rows.last().expect("rows").end, t.len());
        // Near the start: from the start.
        let (start, l) = layout_around(&t, 10, 30);
        assert_eq!(start, 0);
        assert_eq!(l.cursor, (2, 0));
        // Typing on does not move the part until half the bound is passed.
        let half = MAX_LAYOUT_BYTES / 2;
        let at = |c: usize| layout_around(&t, 10, c / 3 * 3).0;
        assert_eq!(at(3 * half + 3), at(4 * half - 3));
        assert!(at(4 * half + 3) > at(4 * half - 3));
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
