//! Bytes on the wire: the one place where messages become bytes and back.
//!
//! A registry datagram is a fixed [`HEADER_LEN`]-byte header followed by one
//! postcard-encoded message:
//!
//! ```text
//! +----------------+---------------+----------------------+------------------+
//! | magic "p2pc"   | direction and | request id (u32, BE) | postcard body    |
//! |                | version       |                      |                  |
//! | 4 bytes        | 1 byte        | 4 bytes              | rest of datagram |
//! +----------------+---------------+----------------------+------------------+
//! ```
//!
//! The fifth byte is [`REGISTRY_VERSION`] in a request and
//! `REPLY_BIT | REGISTRY_VERSION` in a reply, so that no reply (ours, or ours
//! reflected by an echo service) ever decodes as a request. A server never
//! answers a datagram with [`REPLY_BIT`] set, whatever its version.
//!
//! A chat frame's payload is one postcard-encoded [`ChatMsg`]; the length
//! prefix is [`crate::frame`]'s job. Decoding is strict: trailing bytes, an
//! unknown variant or an over-long datagram are errors, never a panic.

use serde::{Deserialize, Serialize};

use crate::chat_msg::ChatMsg;
use crate::registry_msg::{ClientMsg, RequestId, ServerMsg};

/// The first four bytes of every registry datagram.
pub const MAGIC: [u8; 4] = *b"p2pc";

/// The registry protocol version this crate speaks, in the low seven bits of
/// the fifth byte of every registry datagram.
pub const REGISTRY_VERSION: u8 = 2;

/// Set in the fifth header byte of every reply (server to client), clear in
/// every request. Frozen for all registry versions from 2 on: a server never
/// answers a datagram that has it set.
pub const REPLY_BIT: u8 = 0x80;

/// Length of the registry datagram header: magic, version, request id.
pub const HEADER_LEN: usize = 9;

/// Largest registry datagram either side sends or accepts, in bytes. Small
/// enough to cross any path without IP fragmentation.
pub const MAX_DATAGRAM_LEN: usize = 1200;

/// Serializing into a growable vec or a byte counter fails only when a
/// `Serialize` impl fails, and ours are derived over strings, vecs, arrays,
/// integers and addresses, none of which can.
pub(crate) const INFALLIBLE: &str = "our messages always serialize";

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the header.
    #[error("datagram shorter than the {HEADER_LEN}-byte header")]
    TooShort,
    /// Longer than [`MAX_DATAGRAM_LEN`].
    #[error("datagram longer than {MAX_DATAGRAM_LEN} bytes")]
    TooLong,
    /// Does not start with [`MAGIC`]: not ours.
    #[error("bad magic: not a p2pchat datagram")]
    BadMagic,
    /// Ours and of our version, but going the other way: a reply where a
    /// request was expected, or a request where a reply was.
    #[error("datagram going the wrong way (a reply where a request was expected, or back)")]
    WrongDirection,
    /// Ours, but of another protocol version.
    #[error("protocol version {version} is not supported")]
    UnsupportedVersion {
        /// The fifth header byte: direction bit and version.
        version: u8,
        /// The request id in the header, so a refusal can echo it.
        id: RequestId,
    },
    /// The body is not a valid postcard encoding of the expected message.
    #[error("malformed message body")]
    Malformed,
    /// The body decoded but bytes were left over.
    #[error("trailing bytes after the message")]
    TrailingBytes,
}

/// Encodes a client's request as one datagram.
pub fn encode_request(id: RequestId, msg: &ClientMsg) -> Vec<u8> {
    encode_datagram(REGISTRY_VERSION, id, msg)
}

/// Decodes a datagram sent by a client. A reply of any version (the fifth
/// byte has [`REPLY_BIT`] set) is [`DecodeError::WrongDirection`], never
/// [`DecodeError::UnsupportedVersion`], so that no server answers it.
pub fn decode_request(bytes: &[u8]) -> Result<(RequestId, ClientMsg), DecodeError> {
    decode_datagram(REGISTRY_VERSION, bytes)
}

/// Encodes the server's reply to request `id` as one datagram.
pub fn encode_reply(id: RequestId, msg: &ServerMsg) -> Vec<u8> {
    encode_datagram(REPLY_BIT | REGISTRY_VERSION, id, msg)
}

/// Decodes a datagram sent by the server. A datagram whose version (the low
/// seven bits) is not ours is [`DecodeError::UnsupportedVersion`] whatever
/// its direction bit (a version-1 server sets none); one of our version
/// without [`REPLY_BIT`] is a request, [`DecodeError::WrongDirection`].
pub fn decode_reply(bytes: &[u8]) -> Result<(RequestId, ServerMsg), DecodeError> {
    decode_datagram(REPLY_BIT | REGISTRY_VERSION, bytes)
}

/// The encoded length of `value`'s postcard body, without any header.
#[allow(clippy::expect_used)] // See `INFALLIBLE`.
pub fn body_len<T: Serialize>(value: &T) -> usize {
    let counter = postcard::ser_flavors::Size::default();
    postcard::serialize_with_flavor(value, counter).expect(INFALLIBLE)
}

/// Encodes a chat message as a frame payload (without the length prefix).
pub fn encode_chat(msg: &ChatMsg) -> Vec<u8> {
    to_vec(msg)
}

/// Decodes a frame payload into a chat message.
pub fn decode_chat(payload: &[u8]) -> Result<ChatMsg, DecodeError> {
    from_exact(payload)
}

/// Decodes the chat message at the start of `bytes` (a sealed frame's
/// plaintext holds one or more, back to back) and returns it with the bytes
/// after it.
pub fn decode_chat_prefix(bytes: &[u8]) -> Result<(ChatMsg, &[u8]), DecodeError> {
    postcard::take_from_bytes(bytes).map_err(|_| DecodeError::Malformed)
}

fn encode_datagram<T: Serialize>(version_byte: u8, id: RequestId, msg: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body_len(msg));
    out.extend_from_slice(&MAGIC);
    out.push(version_byte);
    out.extend_from_slice(&id.0.to_be_bytes());
    out.extend_from_slice(&to_vec(msg));
    out
}

/// Decodes a datagram whose fifth byte should be `expected`.
fn decode_datagram<'a, T: Deserialize<'a>>(
    expected: u8,
    bytes: &'a [u8],
) -> Result<(RequestId, T), DecodeError> {
    let (id, body) = split_header(expected, bytes)?;
    Ok((id, from_exact(body)?))
}

/// Checks a datagram's length and header (the fifth byte should be
/// `expected`) and returns its request id and body.
pub(crate) fn split_header(expected: u8, bytes: &[u8]) -> Result<(RequestId, &[u8]), DecodeError> {
    if bytes.len() > MAX_DATAGRAM_LEN {
        return Err(DecodeError::TooLong);
    }
    let Some((header, body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::TooShort);
    };
    if header[..4] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let id = RequestId(u32::from_be_bytes([header[5], header[6], header[7], header[8]]));
    let byte = header[4];
    let is_reply = byte & REPLY_BIT != 0;
    let expect_reply = expected & REPLY_BIT != 0;
    if byte != expected {
        let same_version = byte & !REPLY_BIT == expected & !REPLY_BIT;
        // Requests never answer a reply of any version; a reply of our own
        // version going the wrong way is a request.
        if same_version || (is_reply && !expect_reply) {
            return Err(DecodeError::WrongDirection);
        }
        return Err(DecodeError::UnsupportedVersion { version: byte, id });
    }
    Ok((id, body))
}

#[allow(clippy::expect_used)] // See `INFALLIBLE`.
fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect(INFALLIBLE)
}

fn from_exact<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|_| DecodeError::Malformed)?;
    if rest.is_empty() { Ok(value) } else { Err(DecodeError::TrailingBytes) }
}
