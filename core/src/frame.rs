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
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Takes out the next complete payload, `Ok(None)` when the buffer holds
    /// less than a whole frame.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let pending = &self.buf[self.start..];
        let Some((header, rest)) = pending.split_first_chunk::<FRAME_HEADER_LEN>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*header);
        if len as usize > MAX_FRAME_LEN {
            return Err(FrameError::TooLong { len });
        }
        let Some(payload) = rest.get(..len as usize) else {
            return Ok(None);
        };
        let payload = payload.to_vec();
        self.start += FRAME_HEADER_LEN + payload.len();
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > MAX_FRAME_LEN {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(payload))
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
    fn oversize_is_an_error() {
        let mut d = FrameDecoder::new();
        d.push(&(MAX_FRAME_LEN as u32 + 1).to_be_bytes());
        assert_eq!(d.next_frame(), Err(FrameError::TooLong { len: MAX_FRAME_LEN as u32 + 1 }));
    }
}
