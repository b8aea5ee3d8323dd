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

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::chat_msg::ChatMsg;
use crate::key::KEY_LEN;
use crate::registry_msg::{ClientMsg, ClientMsgRef, RequestId, ServerMsg};

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
const INFALLIBLE: &str = "our messages always serialize";

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

/// Decodes a datagram sent by a client as [`decode_request`] does, borrowing
/// the strings from `bytes` instead of copying them.
pub(crate) fn decode_request_ref(
    bytes: &[u8],
) -> Result<(RequestId, ClientMsgRef<'_>), DecodeError> {
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

/// Appends the server's reply to request `id` to `out`, as
/// [`encode_reply`] encodes it, without allocating once `out` has room.
#[allow(clippy::expect_used)] // See `INFALLIBLE`.
pub(crate) fn encode_reply_into(out: &mut Vec<u8>, id: RequestId, msg: &ServerMsg) {
    write_reply_header(out, id);
    let taken = std::mem::take(out);
    *out = postcard::to_extend(msg, taken).expect(INFALLIBLE);
}

// Hand-written encoders for the replies on the server's hot paths. Each
// writes exactly what postcard writes for the same value (the tests below
// compare them byte for byte); they exist because they are several times
// faster than going through serde, and write straight from the server's
// table without building an `Entry`.

/// `ServerMsg::Welcome`'s variant index.
pub(crate) const WELCOME_TAG: u8 = 1;
/// `ServerMsg::ListPage`'s variant index.
pub(crate) const LIST_PAGE_TAG: u8 = 3;
/// `ServerMsg::Found`'s variant index.
pub(crate) const FOUND_TAG: u8 = 4;

/// Appends a reply's header for request `id`.
pub(crate) fn write_reply_header(out: &mut Vec<u8>, id: RequestId) {
    out.extend_from_slice(&MAGIC);
    out.push(REPLY_BIT | REGISTRY_VERSION);
    out.extend_from_slice(&id.0.to_be_bytes());
}

/// Appends `v` as postcard's varint (LEB128: 7 bits a byte, low first).
pub(crate) fn write_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        // Truncation keeps the low 7 bits, which is the point.
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a socket address as serde writes it for a compact format: the
/// variant (0 for V4, 1 for V6), the IP's octets, the port as a varint.
pub(crate) fn write_socket_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(a) => {
            out.push(0);
            out.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            out.push(1);
            out.extend_from_slice(&a.ip().octets());
        }
    }
    write_varint(out, addr.port().into());
}

/// Appends an `Entry` from its parts; `name` is a valid name's bytes (at
/// most [`crate::MAX_NAME_LEN`], so its length is one varint byte).
pub(crate) fn write_entry(
    out: &mut Vec<u8>,
    name: &[u8],
    addr: SocketAddr,
    chat_port: u16,
    key: &[u8; KEY_LEN],
) {
    write_varint(out, name.len() as u32);
    out.extend_from_slice(name);
    write_socket_addr(out, addr);
    write_varint(out, chat_port.into());
    out.extend_from_slice(key);
}

/// Appends a whole `Welcome` reply to request `id`.
pub(crate) fn write_welcome(
    out: &mut Vec<u8>,
    id: RequestId,
    observed: SocketAddr,
    lease_secs: u32,
) {
    write_reply_header(out, id);
    out.push(WELCOME_TAG);
    write_socket_addr(out, observed);
    write_varint(out, lease_secs);
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
    Ok((id, from_exact(body)?))
}

#[allow(clippy::expect_used)] // See `INFALLIBLE`.
fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect(INFALLIBLE)
}

fn from_exact<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|_| DecodeError::Malformed)?;
    if rest.is_empty() { Ok(value) } else { Err(DecodeError::TrailingBytes) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::PublicKey;
    use crate::name::UserName;
    use crate::registry_msg::{Cookie, Cursor, Entry};

    fn addrs() -> Vec<SocketAddr> {
        ["192.0.2.1:0", "192.0.2.1:127", "192.0.2.1:128", "203.0.113.9:65535"]
            .into_iter()
            .chain(["[2001:db8::1]:16383", "[2001:db8::1]:16384", "[::1]:1"])
            .map(|a| a.parse().expect("valid address"))
            .collect()
    }

    #[test]
    fn hand_written_replies_match_postcard() {
        let id = RequestId(0xdead_beef);
        let names = ["a", "Mert", "\u{c3c6}\u{c3c6}\u{c3c6}", &"z".repeat(32)];
        for addr in addrs() {
            for lease in [0, 127, 128, 60, 16_384, u32::MAX] {
                let mut out = Vec::new();
                write_welcome(&mut out, id, addr, lease);
                let msg = ServerMsg::Welcome { observed: addr, lease_secs: lease };
                assert_eq!(out, encode_reply(id, &msg), "{addr} {lease}");
            }
            for (i, name) in names.iter().enumerate() {
                let chat_port = [0, 127, 128, 65_535][i];
                let key = PublicKey([i as u8 * 40; KEY_LEN]);
                let entry =
                    Entry { name: UserName::new(name).expect("valid"), addr, chat_port, key };
                let mut out = Vec::new();
                write_entry(&mut out, name.as_bytes(), addr, chat_port, &key.0);
                assert_eq!(out, postcard::to_allocvec(&entry).expect("serializes"));
            }
        }
        let mut out = vec![1, 2];
        let msg = ServerMsg::Challenge { cookie: Cookie([9; 16]) };
        encode_reply_into(&mut out, id, &msg);
        assert_eq!(out[2..], encode_reply(id, &msg)[..]);
        assert_eq!(out[..2], [1, 2], "appends");
    }

    /// A small deterministic generator: the decoders must agree on every
    /// prefix and every one-byte change of real requests.
    #[test]
    fn borrowed_requests_decode_as_owned_ones() {
        let cookie = Cookie([5; 16]);
        let key = PublicKey([6; KEY_LEN]);
        let msgs = [
            ClientMsg::GetCookie { padding: vec![0; 53] },
            ClientMsg::Login { cookie, name: "Mert".into(), chat_port: 7000, key },
            ClientMsg::List { cookie, after: None },
            ClientMsg::List { cookie, after: Some(Cursor("12".into())) },
            ClientMsg::Lookup { cookie, name: "\u{e9}t\u{e9}".into() },
            ClientMsg::Logout { cookie },
        ];
        let same = |bytes: &[u8]| {
            let owned = decode_request(bytes);
            let borrowed = decode_request_ref(bytes);
            match (owned, borrowed) {
                (Ok((a, m)), Ok((b, r))) => {
                    assert_eq!(a, b);
                    let agree = match (&m, r) {
                        (
                            ClientMsg::GetCookie { padding },
                            ClientMsgRef::GetCookie { padding: p },
                        ) => padding[..] == *p,
                        (
                            ClientMsg::Login { cookie, name, chat_port, key },
                            ClientMsgRef::Login { cookie: c, name: n, chat_port: p, key: k },
                        ) => *cookie == c && name == n && *chat_port == p && *key == k,
                        (
                            ClientMsg::List { cookie, after },
                            ClientMsgRef::List { cookie: c, after: a },
                        ) => *cookie == c && after.as_ref().map(|x| x.0.as_str()) == a,
                        (
                            ClientMsg::Lookup { cookie, name },
                            ClientMsgRef::Lookup { cookie: c, name: n },
                        ) => *cookie == c && name == n,
                        (ClientMsg::Logout { cookie }, ClientMsgRef::Logout { cookie: c }) => {
                            *cookie == c
                        }
                        _ => false,
                    };
                    assert!(agree, "{m:?} vs {r:?}");
                }
                (Err(a), Err(b)) => assert_eq!(a, b),
                (a, b) => panic!("{bytes:?}: {a:?} vs {b:?}"),
            }
        };
        for msg in &msgs {
            let bytes = encode_request(RequestId(3), msg);
            for cut in 0..=bytes.len() {
                same(&bytes[..cut]);
            }
            for at in 0..bytes.len() {
                for v in [0, 1, 0x7f, 0x80, 0xff] {
                    let mut b = bytes.clone();
                    b[at] = v;
                    same(&b);
                }
            }
        }
    }
}
