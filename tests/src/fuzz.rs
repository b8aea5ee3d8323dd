//! What the fuzz targets in `fuzz/` run, kept here so that the ordinary test
//! suite runs the same code on every build, and the targets stay one-liners.
//!
//! Each function panics only when an invariant of the core breaks: that is
//! the bug the fuzzer is looking for.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;

use crate::noise_peer::RawPeer;
use p2pchat_core::{
    CHAT_VERSION, ChatConfig, ChatEvent, ChatRole, ChatSession, ChatSetup, ClientMsg, CookieKey,
    FrameDecoder, MAX_KEY_LEN, MAX_NAME_LEN, PrivateKey, RegistryClient, RegistryServer, RequestId,
    ServerConfig, ServerMsg, UserName, decode_chat, decode_reply, decode_request, encode_chat,
    encode_reply, encode_request,
};

/// Any bytes into both datagram decoders; whatever decodes re-encodes to
/// bytes that decode to the same message. (Not necessarily to the same
/// bytes: decoders accept over-long varints, encoders write the shortest.)
pub fn datagram(data: &[u8]) {
    if let Ok((id, msg)) = decode_request(data) {
        let again = decode_request(&encode_request(id, &msg));
        assert_eq!(again, Ok((id, msg)), "request does not round-trip");
    }
    if let Ok((id, msg)) = decode_reply(data) {
        let again = decode_reply(&encode_reply(id, &msg));
        assert_eq!(again, Ok((id, msg)), "reply does not round-trip");
    }
}

/// Any bytes as a chat byte stream: frames out, each payload decoded; what
/// decodes re-encodes to a payload that decodes the same.
pub fn chat_stream(data: &[u8]) {
    let mut frames = FrameDecoder::new();
    frames.push(data);
    while let Ok(Some(payload)) = frames.next_frame() {
        if let Ok(msg) = decode_chat(&payload) {
            assert_eq!(
                decode_chat(&encode_chat(&msg)),
                Ok(msg),
                "chat message does not round-trip"
            );
        }
    }
    assert!(frames.buffered() <= data.len());
}

/// One step of a fuzzed registry run.
#[derive(Debug, Clone, Arbitrary)]
pub enum RegistryOp {
    /// Raw bytes from one of a few addresses.
    Raw {
        /// Which address sends.
        from: u8,
        /// The datagram.
        bytes: Vec<u8>,
    },
    /// A well-formed request, with a valid cookie, from one of a few addresses.
    Request {
        /// Which address sends.
        from: u8,
        /// What it asks (its cookie is replaced by a valid one unless `forge`).
        msg: FuzzRequest,
        /// Keep the message's own, probably forged, cookie.
        forge: bool,
    },
    /// Time passes.
    Wait {
        /// Seconds.
        secs: u8,
    },
}

/// A request with the parts a fuzzer can usefully vary.
#[derive(Debug, Clone, Arbitrary)]
pub enum FuzzRequest {
    /// `Login`.
    Login {
        /// Any string; mostly invalid names.
        name: String,
        /// The chat port.
        chat_port: u16,
        /// Which of a few keys: every byte of the key is this.
        key: u8,
    },
    /// `List`, from the start or after a cursor.
    List {
        /// The cursor.
        after: Option<String>,
    },
    /// `Login` under one of a few names that look alike, so that clashes
    /// are frequent.
    LoginLookAlike {
        /// Which name of [`LOOK_ALIKES`].
        which: u8,
        /// The chat port.
        chat_port: u16,
    },
    /// `Lookup`.
    Lookup {
        /// Any string.
        name: String,
    },
    /// `Logout`.
    Logout,
    /// `Introduce` to one of the look-alike names, with any local
    /// addresses (any count).
    Introduce {
        /// Which name of [`LOOK_ALIKES`].
        which: u8,
        /// The addresses' octets.
        locals: Vec<[u8; 4]>,
    },
    /// `IntroAck` of one of the first few nonces, with any local addresses.
    IntroAck {
        /// The nonce (the registry numbers introductions from 1).
        nonce: u8,
        /// The addresses' octets.
        locals: Vec<[u8; 4]>,
    },
}

/// Names that look alike, or clash once case is folded, and some that are
/// refused: what a fuzzer would take long to find.
pub const LOOK_ALIKES: &[&str] = &[
    "John",
    "JOHN",
    "J0HN",
    "Јое",
    "Joe",
    "J\u{200B}ohn",
    "Јohn",
    "Zoë",
    "Zoe\u{308}",
    "Straße",
    "STRASSE",
    "ΟΔΥΣΣΕΥΣ",
    "οδυσσευσ",
    "mert",
    "rnert",
    "\u{202E}nhoJ",
];

/// Look-alike name `which` (any number picks one).
fn look_alike(which: u8) -> &'static str {
    LOOK_ALIKES[usize::from(which) % LOOK_ALIKES.len()]
}

/// Any string as a user name: no panic, and a name that is accepted is in
/// NFC, within [`MAX_NAME_LEN`], accepted again as itself with the same key,
/// and its key is within [`MAX_KEY_LEN`].
pub fn user_name(s: &str) {
    let Ok(name) = UserName::new(s) else {
        return;
    };
    assert!(name.as_str().len() <= MAX_NAME_LEN, "too long: {name:?}");
    let again = UserName::new(name.as_str()).expect("a valid name is valid again");
    assert_eq!(again, name, "normalising is not idempotent");
    assert_eq!(again.key(), name.key());
    assert!(name.key().as_str().len() <= MAX_KEY_LEN, "key too long: {name:?}");
}

/// Runs `ops` against a registry with tiny caps and checks after each step
/// that no name key is held twice (so no two look-alikes are online), the caps hold, a listed name keeps its key,
/// every reply decodes, replies to unvalidated senders are never longer than
/// their request, and no reply is ever answered.
pub fn registry(ops: &[RegistryOp]) {
    const MAX_USERS: usize = 5;
    const MAX_PER_ADDRESS: usize = 2;
    let t0 = Instant::now();
    let mut now = t0;
    let config = ServerConfig {
        lease: Duration::from_secs(60),
        max_users: MAX_USERS,
        max_per_address: MAX_PER_ADDRESS,
        local_addr: Some(SocketAddr::from(([10, 0, 0, 0], 4000))),
    };
    let mut server = RegistryServer::new(now, CookieKey([1; 16]), config);
    // Four IP addresses, two ports each; address 0 port 4000 is the server's.
    let addr = |i: u8| SocketAddr::from(([10, 0, 0, i % 4], 4000 + u16::from(i % 8 / 4)));
    let mut keys_before: std::collections::BTreeMap<String, p2pchat_core::PublicKey> =
        std::collections::BTreeMap::new();
    for op in ops {
        match op {
            RegistryOp::Raw { from, bytes } => {
                server.handle_datagram(now, addr(*from), bytes);
                let reply = bytes.len() > 4
                    && bytes[..4] == p2pchat_core::MAGIC
                    && bytes[4] & p2pchat_core::REPLY_BIT != 0;
                while let Some(t) = server.poll_transmit() {
                    assert!(t.payload.len() <= bytes.len(), "amplification");
                    assert!(!reply, "a reply was answered");
                    assert_ne!(t.dst, config.local_addr.expect("set above"), "answered itself");
                }
            }
            RegistryOp::Request { from, msg, forge } => {
                let from = addr(*from);
                let cookie = if *forge {
                    p2pchat_core::Cookie([0; 16])
                } else {
                    server.handle_datagram(
                        now,
                        from,
                        &encode_request(
                            RequestId(0),
                            &ClientMsg::GetCookie { padding: vec![0; 60] },
                        ),
                    );
                    match server.poll_transmit().map(|t| decode_reply(&t.payload)) {
                        Some(Ok((_, ServerMsg::Challenge { cookie }))) => cookie,
                        // The server's own address is never answered.
                        None if Some(from) == config.local_addr => continue,
                        other => panic!("no challenge for a padded cookie request: {other:?}"),
                    }
                };
                let msg = match msg.clone() {
                    FuzzRequest::Login { name, chat_port, key } => {
                        let key = p2pchat_core::PublicKey([key % 3; 32]);
                        ClientMsg::Login { cookie, name, chat_port, key }
                    }
                    FuzzRequest::List { after } => {
                        ClientMsg::List { cookie, after: after.map(p2pchat_core::Cursor) }
                    }
                    FuzzRequest::LoginLookAlike { which, chat_port } => {
                        let name = look_alike(which).into();
                        let key = p2pchat_core::PublicKey([which % 3; 32]);
                        ClientMsg::Login { cookie, name, chat_port, key }
                    }
                    FuzzRequest::Lookup { name } => ClientMsg::Lookup { cookie, name },
                    FuzzRequest::Logout => ClientMsg::Logout { cookie },
                    FuzzRequest::Introduce { which, locals } => ClientMsg::Introduce {
                        cookie,
                        name: look_alike(which).into(),
                        locals: locals.into_iter().map(Into::into).collect(),
                    },
                    FuzzRequest::IntroAck { nonce, locals } => ClientMsg::IntroAck {
                        cookie,
                        nonce: nonce.into(),
                        locals: locals.into_iter().map(Into::into).collect(),
                    },
                };
                let bytes = encode_request(RequestId(1), &msg);
                server.handle_datagram(now, from, &bytes);
            }
            RegistryOp::Wait { secs } => {
                now += Duration::from_secs(u64::from(*secs));
                server.handle_timeout(now);
            }
        }
        // Replies, and after a wait introductions sent again and held
        // answers.
        while let Some(t) = server.poll_transmit() {
            let decoded = decode_reply(&t.payload);
            assert!(decoded.is_ok(), "the server sent an undecodable datagram");
            assert!(t.payload.len() <= p2pchat_core::MAX_DATAGRAM_LEN);
        }
        while server.poll_event().is_some() {}
        assert!(server.user_count() <= MAX_USERS, "over the cap");
        let mut keys: Vec<String> =
            server.users().map(|e| e.name.key().as_str().to_owned()).collect();
        let mut addrs: Vec<SocketAddr> = server.users().map(|e| e.addr).collect();
        let n = keys.len();
        // The server lists in no particular order: sort before dedup.
        keys.sort();
        keys.dedup();
        addrs.sort();
        addrs.dedup();
        assert_eq!(keys.len(), n, "a name is held twice");
        assert_eq!(addrs.len(), n, "an address holds two names");
        for ip in 0..4 {
            let here = server.users().filter(|e| e.addr.ip() == addr(ip).ip()).count();
            assert!(here <= MAX_PER_ADDRESS, "over the per-address cap");
        }
        let keys_now: std::collections::BTreeMap<String, p2pchat_core::PublicKey> =
            server.users().map(|e| (e.name.as_str().to_lowercase(), e.key)).collect();
        for (name, key) in &keys_now {
            if let Some(before) = keys_before.get(name) {
                assert_eq!(before, key, "a listed name changed its key");
            }
        }
        keys_before = keys_now;
        assert!(server.poll_timeout().is_none_or(|t| t > now), "a deadline left in the past");
    }
}

/// Any datagrams, claimed to come from the registry, into a client that is
/// logging in and listing: no panic, and every deadline lies ahead.
pub fn registry_client(datagrams: &[Vec<u8>]) {
    let now = Instant::now();
    let server = SocketAddr::from(([10, 0, 0, 1], 5000));
    let mut client = RegistryClient::new(server, 0, p2pchat_core::PublicKey([1; 32]));
    let name = p2pchat_core::UserName::new("fuzz").expect("a valid name");
    client.login(now, name, 7000);
    client.refresh_list(now);
    for d in datagrams {
        client.handle_datagram(now, server, d);
        while client.poll_transmit().is_some() {}
        while client.poll_event().is_some() {}
    }
    assert!(client.poll_timeout().is_none_or(|t| t > now));
}

/// One step of a fuzzed chat session. The session under test is the callee
/// "fuzz"; a scripted caller ([`RawPeer`]) can run a correct handshake and
/// seal anything, so the fuzzer reaches the handshake, the encrypted frames
/// and the session logic behind them.
#[derive(Debug, Clone, Arbitrary)]
pub enum ChatOp {
    /// Raw bytes from the peer.
    Input(Vec<u8>),
    /// A raw frame from the peer: the payload behind a correct length
    /// prefix (a preamble, a handshake message or a sealed one, or junk).
    Frame(Vec<u8>),
    /// Carries what each side has written to the other: the scripted
    /// caller's preamble and handshake, the session's answers.
    Exchange,
    /// The scripted caller seals any payload.
    Sealed(Vec<u8>),
    /// The scripted caller seals a `Hello` with any name.
    Hello(String),
    /// The scripted caller seals the frame it sent last again (a replay).
    Replay,
    /// The user accepts the call.
    Accept,
    /// The user sends a text.
    Send(String),
    /// The user ends the chat.
    Close,
    /// The peer closed the stream.
    Eof,
    /// The socket took `n` bytes of output.
    Consume(u16),
    /// Time passes, in tenths of a second.
    Wait(u16),
    /// The user declines the call (0: no, 1: busy, else: crossed).
    Decline(u8),
    /// The user gives the call up at once.
    Abort,
}

/// Runs `ops` against a chat session and checks its promises: no panic, an
/// error is returned again by every later `handle_input`, `Closed` comes
/// once and last, every text sent is settled (delivered or undelivered) at
/// most once, `Authenticated` comes first and only with the caller's real
/// key, and no deadline is left in the past.
pub fn chat_session(ops: &[ChatOp]) {
    let t0 = Instant::now();
    let mut now = t0;
    let me = UserName::new("fuzz").expect("a valid name");
    let caller = UserName::new("caller").expect("a valid name");
    let my_key = PrivateKey::from_bytes([1; 32]);
    let caller_key = PrivateKey::from_bytes([2; 32]);
    let setup =
        ChatSetup { name: me.clone(), key: my_key.clone(), role: ChatRole::Callee, seed: [3; 32] };
    let mut s = ChatSession::new(now, setup, ChatConfig::default());
    let mut peer = RawPeer::caller(caller_key.clone(), [4; 32], &caller, &me, my_key.public_key());
    let mut last = Vec::new();
    let mut sticky = None;
    let mut closed = false;
    let mut first_event = true;
    let mut sent = std::collections::BTreeSet::new();
    let mut settled = std::collections::BTreeSet::new();
    for op in ops {
        let mut input = |s: &mut ChatSession, bytes: &[u8]| {
            let result = s.handle_input(now, bytes);
            match (&sticky, result) {
                (Some(first), Err(again)) => assert_eq!(first, &again, "the error changed"),
                (Some(_), Ok(())) => panic!("an error did not stick"),
                (None, Err(e)) => sticky = Some(e),
                (None, Ok(())) => {}
            }
        };
        match op {
            ChatOp::Input(bytes) => input(&mut s, bytes),
            ChatOp::Frame(payload) => {
                let mut bytes = Vec::new();
                p2pchat_core::write_frame(
                    &mut bytes,
                    &payload[..payload.len().min(p2pchat_core::MAX_FRAME_LEN)],
                );
                input(&mut s, &bytes);
            }
            ChatOp::Exchange => {
                let bytes = peer.take_output();
                if !bytes.is_empty() {
                    last = bytes.clone();
                }
                input(&mut s, &bytes);
                let n = s.pending_output().len();
                peer.input(s.pending_output());
                s.consume(n);
            }
            ChatOp::Sealed(payload) => {
                peer.send_payload(&payload[..payload.len().min(p2pchat_core::MAX_PLAINTEXT_LEN)]);
            }
            ChatOp::Hello(name) => {
                peer.send(&p2pchat_core::ChatMsg::Hello {
                    version: CHAT_VERSION,
                    name: name.clone(),
                });
            }
            ChatOp::Replay => input(&mut s, &last.clone()),
            ChatOp::Accept => s.accept(now),
            ChatOp::Decline(n) => {
                let reason = match n {
                    0 => p2pchat_core::DeclineReason::Declined,
                    1 => p2pchat_core::DeclineReason::Busy,
                    _ => p2pchat_core::DeclineReason::Crossed,
                };
                s.decline(now, reason);
            }
            ChatOp::Abort => s.abort(now),
            ChatOp::Send(text) => {
                if let Ok(seq) = s.send_text(now, text) {
                    assert!(sent.insert(seq), "a sequence number was used twice");
                }
            }
            ChatOp::Close => s.close(now),
            ChatOp::Eof => s.handle_eof(now),
            ChatOp::Consume(n) => s.consume(usize::from(*n)),
            ChatOp::Wait(tenths) => {
                now += Duration::from_millis(u64::from(*tenths) * 100);
                if s.poll_timeout().is_some_and(|t| t <= now) {
                    s.handle_timeout(now);
                }
            }
        }
        while let Some(e) = s.poll_event() {
            assert!(!closed, "an event after Closed: {e:?}");
            match e {
                ChatEvent::Authenticated { peer, key } => {
                    assert!(first_event, "Authenticated after another event");
                    assert_eq!(
                        (peer, key),
                        (caller.clone(), caller_key.public_key()),
                        "a forged key was accepted"
                    );
                }
                ChatEvent::Delivered { seq } | ChatEvent::Undelivered { seq, .. } => {
                    assert!(sent.contains(&seq), "settled a text never sent");
                    assert!(settled.insert(seq), "a text settled twice");
                }
                ChatEvent::Closed { .. } => closed = true,
                ChatEvent::Connected { .. } | ChatEvent::Received { .. } => {}
            }
            first_event = false;
        }
        assert!(
            s.pending_output().len() <= 2 * p2pchat_core::MAX_BUFFERED_OUTPUT,
            "unbounded output"
        );
        assert!(s.poll_timeout().is_none_or(|t| t > now) || now == t0, "a deadline in the past");
    }
    if closed {
        assert_eq!(sent, settled, "a text was neither delivered nor reported undelivered");
    }
}
