//! The registry server's side of the wire, written by hand for speed: a
//! request decoder that borrows from the datagram, and reply writers that
//! append to the server's reused buffer straight from its table.
//!
//! Each produces or accepts exactly what [`crate::codec`]'s serde-based
//! functions do for the same message (postcard's format: varints, raw
//! arrays, length-prefixed strings; `docs/PROTOCOL.md` §3). The tests below
//! hold them to that, byte for byte and error for error; they exist because
//! going through serde costs several times as much (a public key alone is
//! 32 separate byte reads), and the server does this for every request.

use std::net::SocketAddr;

use crate::codec::{DecodeError, INFALLIBLE, MAGIC, REGISTRY_VERSION, REPLY_BIT, split_header};
use crate::key::{KEY_LEN, PublicKey};
use crate::name::MAX_NAME_LEN;
use crate::registry_msg::{COOKIE_LEN, ClientMsgRef, Cookie, RequestId, ServerMsg};

/// Decodes a datagram sent by a client as [`crate::decode_request`] does,
/// borrowing its strings instead of copying them.
pub(crate) fn decode_request_ref(
    bytes: &[u8],
) -> Result<(RequestId, ClientMsgRef<'_>), DecodeError> {
    let (id, body) = split_header(REGISTRY_VERSION, bytes)?;
    let mut r = Reader(body);
    let msg = match r.varint(5, 0x0f)? {
        0 => ClientMsgRef::GetCookie { padding: r.bytes()? },
        1 => ClientMsgRef::Login {
            cookie: r.cookie()?,
            name: r.str()?,
            chat_port: r.u16()?,
            key: PublicKey(r.array::<KEY_LEN>()?),
        },
        2 => ClientMsgRef::List {
            cookie: r.cookie()?,
            after: match r.byte()? {
                0 => None,
                1 => Some(r.str()?),
                _ => return Err(DecodeError::Malformed),
            },
        },
        3 => ClientMsgRef::Lookup { cookie: r.cookie()?, name: r.str()? },
        4 => ClientMsgRef::Logout { cookie: r.cookie()? },
        5 => ClientMsgRef::Introduce { cookie: r.cookie()?, name: r.str()?, locals: r.ipv4s()? },
        6 => ClientMsgRef::IntroAck {
            cookie: r.cookie()?,
            nonce: r.varint(10, 0x01)?,
            locals: r.ipv4s()?,
        },
        _ => return Err(DecodeError::Malformed),
    };
    if !r.0.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok((id, msg))
}

/// What is left of a body to decode.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.0.split_first().ok_or(DecodeError::Malformed)?;
        self.0 = rest;
        Ok(b)
    }

    /// Postcard's varint of an integer of up to `max_len` bytes, whose last
    /// byte may be at most `max_last` (what fits in the integer's top bits).
    /// Like postcard, accepts padded encodings (`80 00` for 0).
    fn varint(&mut self, max_len: u32, max_last: u8) -> Result<u64, DecodeError> {
        let mut out = 0u64;
        for i in 0..max_len {
            let b = self.byte()?;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == max_len - 1 && b > max_last {
                    return Err(DecodeError::Malformed);
                }
                return Ok(out);
            }
        }
        Err(DecodeError::Malformed)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        // Three bytes at most, the last at most 0x03: it fits.
        u16::try_from(self.varint(3, 0x03)?).map_err(|_| DecodeError::Malformed)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        let n = usize::try_from(n).map_err(|_| DecodeError::Malformed)?;
        if n > self.0.len() {
            return Err(DecodeError::Malformed);
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    /// A length (a `usize` varint: 10 bytes at most on 64-bit targets)
    /// and that many bytes.
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.varint(10, 0x01)?;
        self.take(len)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| DecodeError::Malformed)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (a, rest) = self.0.split_first_chunk::<N>().ok_or(DecodeError::Malformed)?;
        self.0 = rest;
        Ok(*a)
    }

    fn cookie(&mut self) -> Result<Cookie, DecodeError> {
        self.array::<COOKIE_LEN>().map(Cookie)
    }

    /// A `Vec<Ipv4Addr>`: a count (a `usize` varint) and 4 octets each.
    fn ipv4s(&mut self) -> Result<&'a [u8], DecodeError> {
        let count = self.varint(10, 0x01)?;
        self.take(count.checked_mul(4).ok_or(DecodeError::Malformed)?)
    }
}

/// Appends the server's reply to request `id` to `out`, as
/// [`encode_reply`] encodes it, without allocating once `out` has room.
#[allow(clippy::expect_used)] // See `INFALLIBLE`.
pub(crate) fn encode_reply_into(out: &mut Vec<u8>, id: RequestId, msg: &ServerMsg) {
    write_reply_header(out, id);
    let taken = std::mem::take(out);
    *out = postcard::to_extend(msg, taken).expect(INFALLIBLE);
}

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
    ip: IpOctets<'_>,
    port: u16,
    chat_port: u16,
    key: &[u8; KEY_LEN],
) {
    // Built on the stack and appended once: cheaper than a push per field.
    let mut e = [0u8; MAX_ENTRY_LEN];
    let name = &name[..name.len().min(MAX_NAME_LEN)];
    // At most MAX_NAME_LEN (32): one varint byte.
    e[0] = name.len() as u8;
    let mut n = 1 + name.len();
    e[1..n].copy_from_slice(name);
    match ip {
        IpOctets::V4(octets) => {
            e[n] = 0;
            e[n + 1..n + 5].copy_from_slice(octets);
            n += 5;
        }
        IpOctets::V6(octets) => {
            e[n] = 1;
            e[n + 1..n + 17].copy_from_slice(octets);
            n += 17;
        }
    }
    n = put_varint16(&mut e, n, port);
    n = put_varint16(&mut e, n, chat_port);
    e[n..n + KEY_LEN].copy_from_slice(key);
    out.extend_from_slice(&e[..n + KEY_LEN]);
}

/// The longest entry: a name of [`MAX_NAME_LEN`] bytes and its length, an
/// IPv6 address and its tag, two 3-byte varint ports, the key.
const MAX_ENTRY_LEN: usize = 1 + MAX_NAME_LEN + 1 + 16 + 3 + 3 + KEY_LEN;

/// Writes `v` as a varint at `e[at..]`; returns where it ends.
fn put_varint16(e: &mut [u8; MAX_ENTRY_LEN], mut at: usize, v: u16) -> usize {
    let mut v = u32::from(v);
    while v >= 0x80 {
        // The low 7 bits, with the continuation bit.
        e[at] = (v as u8) | 0x80;
        v >>= 7;
        at += 1;
    }
    e[at] = v as u8;
    at + 1
}

/// An IP address's octets, as a row keeps them: what [`write_entry`]
/// writes for a `SocketAddr`'s IP without building one.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IpOctets<'a> {
    V4(&'a [u8; 4]),
    V6(&'a [u8; 16]),
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

/// Room a list page keeps for its cursor: `Some`, the string's length and
/// the row number in at most 10 decimal digits.
pub(crate) const CURSOR_ROOM: usize = 1 + 1 + 10;

/// Appends a page's `next`: `Some` with the row number in decimal (this
/// server's cursor, docs/PROTOCOL.md §6), or `None` after the last page.
pub(crate) fn write_cursor(out: &mut Vec<u8>, row: Option<u32>) {
    match row {
        Some(row) => {
            out.push(1);
            let mut digits = [0u8; 10];
            let text = decimal(row, &mut digits);
            // At most 10 digits: one varint byte.
            out.push(text.len() as u8);
            out.extend_from_slice(text);
        }
        None => out.push(0),
    }
}

/// The row number in a cursor: 1 to 10 decimal digits, nothing else.
pub(crate) fn parse_cursor(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `n` in decimal, in the end of `digits`.
fn decimal(mut n: u32, digits: &mut [u8; 10]) -> &[u8] {
    let mut at = digits.len();
    loop {
        at -= 1;
        // A digit: below 10.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &digits[at..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_request, encode_reply, encode_request};
    use crate::name::UserName;
    use crate::registry_msg::{ClientMsg, Cursor, Entry};

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
                let (v4, v6);
                let ip = match addr.ip() {
                    std::net::IpAddr::V4(ip) => {
                        v4 = ip.octets();
                        IpOctets::V4(&v4)
                    }
                    std::net::IpAddr::V6(ip) => {
                        v6 = ip.octets();
                        IpOctets::V6(&v6)
                    }
                };
                write_entry(&mut out, name.as_bytes(), ip, addr.port(), chat_port, &key.0);
                assert_eq!(out, postcard::to_allocvec(&entry).expect("serializes"));
            }
        }
        let mut out = vec![1, 2];
        let msg = ServerMsg::Challenge { cookie: Cookie([9; 16]) };
        encode_reply_into(&mut out, id, &msg);
        assert_eq!(out[2..], encode_reply(id, &msg)[..]);
        assert_eq!(out[..2], [1, 2], "appends");
    }

    fn same_ips(owned: &[std::net::Ipv4Addr], octets: &[u8]) -> bool {
        owned.iter().flat_map(|x| x.octets()).eq(octets.iter().copied())
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
            ClientMsg::Introduce { cookie, name: "nil".into(), locals: Vec::new() },
            ClientMsg::Introduce {
                cookie,
                name: "nil".into(),
                locals: vec![[192, 0, 2, 7].into(), [10, 1, 2, 3].into()],
            },
            ClientMsg::IntroAck { cookie, nonce: u64::MAX, locals: vec![[192, 0, 2, 8].into()] },
            ClientMsg::IntroAck { cookie, nonce: 300, locals: Vec::new() },
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
                        (
                            ClientMsg::Introduce { cookie, name, locals },
                            ClientMsgRef::Introduce { cookie: c, name: n, locals: l },
                        ) => *cookie == c && name == n && same_ips(locals, l),
                        (
                            ClientMsg::IntroAck { cookie, nonce, locals },
                            ClientMsgRef::IntroAck { cookie: c, nonce: n, locals: l },
                        ) => *cookie == c && *nonce == n && same_ips(locals, l),
                        _ => false,
                    };
                    assert!(agree, "{m:?} vs {r:?}");
                }
                (Err(a), Err(b)) => assert_eq!(a, b),
                (a, b) => panic!("{bytes:?}: {a:?} vs {b:?}"),
            }
        };
        // Padded varints, bad options and variants, wrong UTF-8, lengths
        // past the end.
        let header = encode_request(RequestId(3), &ClientMsg::Logout { cookie })[..9].to_vec();
        let body = |b: &[u8]| [&header[..], b].concat();
        for b in [
            &[0x80, 0x00, 0x00][..],
            &[0x84, 0x00],
            &[0x85, 0x80, 0x80, 0x80, 0x80, 0x00],
            &[0x80, 0x80, 0x80, 0x80, 0x10],
            &[0x80, 0x80, 0x80, 0x80, 0x0f],
            &[0x05],
            &[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            &[0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
            &[0x00, 0x02, 0xc3],
        ] {
            same(&body(b));
        }
        let mut list = body(&[0x02]);
        list.extend_from_slice(&[5; 16]);
        for tail in [&[0x00][..], &[0x02], &[0x01, 0x01, 0xff], &[0x01, 0x81, 0x00, b'7']] {
            same(&[&list[..], tail].concat());
        }
        let mut login = body(&[0x01]);
        login.extend_from_slice(&[5; 16]);
        login.extend_from_slice(&[0x01, b'a']);
        for port in [
            &[0xff, 0xff, 0x03][..],
            &[0xff, 0xff, 0x04],
            &[0x80, 0x80, 0x00],
            &[0xff, 0xff, 0xff, 0x00],
        ] {
            same(&[&login[..], port, &[6; 32]].concat());
        }
        // A fixed xorshift stream of short bodies.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            let b: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8 % 9).collect();
            same(&body(&b));
        }
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

    #[test]
    fn cursors_are_row_numbers_in_decimal() {
        for n in [0, 7, 10, 4_294_967_294, u32::MAX] {
            let mut d = [0; 10];
            let text = std::str::from_utf8(decimal(n, &mut d)).expect("digits");
            assert_eq!(text, n.to_string());
            assert_eq!(parse_cursor(text), Some(n));
        }
        for bad in ["", "-1", "+1", "1a", "mert", "99999999999", "4294967296"] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
    }
}
