//! Chat framing: a length prefix in front of each payload, and a decoder that
//! consumes nothing until a whole frame is there.
//!
//! ```text
//! +---------------------------+---------------------------+
//! | payload length (u32, BE)  | payload (length bytes)    |
//! +---------------------------+---------------------------+
//! ```
//!
//! This layer knows nothing of what a payload means; the session layer above
//! decodes it, and an encryption layer can sit between the two.

/// Largest frame payload, in bytes: the longest Noise message. A longer
/// length prefix is a fatal error.
pub const MAX_FRAME_LEN: usize = crate::noise::MAX_NOISE_MSG_LEN;

/// Length of the frame length prefix.
pub const FRAME_HEADER_LEN: usize = 4;

/// Why a byte stream is not a valid frame sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A length prefix announced more than [`MAX_FRAME_LEN`] bytes.
    #[error("frame of {len} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    TooLong {
        /// The announced length.
        len: u32,
    },
}

/// Appends `payload`, length prefix first, to `out`.
///
/// The caller keeps payloads within [`MAX_FRAME_LEN`]; every message the
/// session encodes is far smaller (a text is at most 4 KiB).
pub fn write_frame(out: &mut Vec<u8>, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_FRAME_LEN);
    // `MAX_FRAME_LEN` fits in a u32, so the cast cannot truncate.
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Splits a byte stream into frame payloads.
///
/// Feed it bytes as they arrive, in chunks of any size; it holds at most one
/// incomplete frame between calls once every complete one has been taken out.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
}

impl FrameDecoder {
    /// A decoder with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Buffers `bytes` received from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.reclaim();
        self.buf.extend_from_slice(bytes);
    }

    /// Drops the bytes of the frames taken out: at once when nothing else
    /// is buffered, else once they outweigh a frame.
    fn reclaim(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > MAX_FRAME_LEN {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Takes out the next complete payload, `Ok(None)` when the buffer holds
    /// less than a whole frame.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        Ok(self.next_frame_ref()?.map(<[u8]>::to_vec))
    }

    /// [`FrameDecoder::next_frame`] without a copy: the payload is borrowed
    /// from the buffer until the next call (which reclaims its bytes, as
    /// [`FrameDecoder::push`] does).
    ///
    /// # Errors
    ///
    /// As [`FrameDecoder::next_frame`].
    pub fn next_frame_ref(&mut self) -> Result<Option<&[u8]>, FrameError> {
        self.reclaim();
        let pending = &self.buf[self.start..];
        let Some((header, rest)) = pending.split_first_chunk::<FRAME_HEADER_LEN>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*header);
        if len as usize > MAX_FRAME_LEN {
            return Err(FrameError::TooLong { len });
        }
        if rest.len() < len as usize {
            return Ok(None);
        }
        let from = self.start + FRAME_HEADER_LEN;
        self.start = from + len as usize;
        Ok(self.buf.get(from..self.start))
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_split() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"hello");
        write_frame(&mut wire, b"");
        write_frame(&mut wire, &[7; 300]);
        for cut in 0..wire.len() {
            let mut d = FrameDecoder::new();
            let mut got = Vec::new();
            for part in [&wire[..cut], &wire[cut..]] {
                d.push(part);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, vec![b"hello".to_vec(), vec![], vec![7; 300]]);
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn borrowed_frames_match_owned_ones_and_memory_is_reclaimed() {
        let mut wire = Vec::new();
        for i in 0..50u8 {
            write_frame(&mut wire, &vec![i; usize::from(i) * 7]);
        }
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        for chunk in wire.chunks(61) {
            d.push(chunk);
            while let Some(f) = d.next_frame_ref().unwrap() {
                got.push(f.to_vec());
            }
        }
        let want: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; usize::from(i) * 7]).collect();
        assert_eq!(got, want);
        assert_eq!(d.buffered(), 0);
        assert!(d.buf.is_empty(), "the last call reclaimed the frames taken");
    }

    #[test]
    fn oversize_is_an_error() {
        let mut d = FrameDecoder::new();
        d.push(&(MAX_FRAME_LEN as u32 + 1).to_be_bytes());
        assert_eq!(d.next_frame(), Err(FrameError::TooLong { len: MAX_FRAME_LEN as u32 + 1 }));
    }
}
