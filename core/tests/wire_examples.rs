//! Keeps `docs/PROTOCOL.md` honest.
//!
//! Every ```` ```hex ```` block in the document must be the encoding of one of
//! the examples built here, and every example here must appear in the
//! document; each also decodes back to the value it was built from. The
//! encoding-rule, constant, variant-index and refusal tables are checked row
//! by row, and the document's prose claims about sizes and decoding are
//! checked against the code.

use std::collections::BTreeSet;
use std::net::{SocketAddr, SocketAddrV6};
use std::time::Instant;

use p2pchat_core::{
    CHAT_VERSION, COOKIE_EPOCH, COOKIE_LEN, ChatConfig, ChatMsg, ChatRole, ChatSession, ChatSetup,
    ClientMsg, Cookie, Cursor, DeclineReason, DecodeError, Entry, FRAME_HEADER_LEN, FrameDecoder,
    GET_COOKIE_LEN, HEADER_LEN, INTRO_HOLD, INTRO_MEMORY, INTRO_RETRY, INTRO_SENDS, Introduction,
    KEY_LEN, MAGIC, MAX_DATAGRAM_LEN, MAX_FRAME_LEN, MAX_INTROS_PER_CALLEE, MAX_KEY_LEN,
    MAX_LOCAL_ADDRS, MAX_NAME_LEN, MAX_PENDING_INTROS, MAX_PLAINTEXT_LEN, MAX_TEXT_LEN, PrivateKey,
    PublicKey, REGISTRY_VERSION, REKEY_INTERVAL, REPLY_BIT, RefuseReason, RelayKey, RelayTicket,
    RequestId, Seq, ServerMsg, TAG_LEN, TokenMint, UserName, body_len, decode_chat, decode_reply,
    decode_request, encode_chat, encode_reply, encode_request, write_frame,
};
use serde::Serialize;

const DOC: &str = include_str!("../../docs/PROTOCOL.md");

/// The cookie used in every example.
const COOKIE: Cookie = Cookie([
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
]);

/// A public key whose bytes count up from `first`, as in the examples.
const fn key(first: u8) -> PublicKey {
    let mut bytes = [0; KEY_LEN];
    let mut i = 0;
    while i < KEY_LEN {
        bytes[i] = first + i as u8;
        i += 1;
    }
    PublicKey(bytes)
}

/// Size of the `Challenge` datagram, which bounds what the server may send to
/// an unvalidated sender.
const CHALLENGE_LEN: usize = 26;

/// One worked example of the document.
#[derive(Debug, Clone)]
enum Example {
    Request(RequestId, ClientMsg),
    Reply(RequestId, ServerMsg),
    /// A frame of the worked chat run: a preamble, a handshake message or a
    /// sealed message, length prefix included.
    Chat(Vec<u8>),
    /// A chat message's plaintext, as it is sealed.
    Plain(ChatMsg),
}

impl Example {
    /// The bytes on the wire: a whole datagram, or a whole frame with its
    /// length prefix.
    fn wire(&self) -> Vec<u8> {
        match self {
            Example::Request(id, msg) => encode_request(*id, msg),
            Example::Reply(id, msg) => encode_reply(*id, msg),
            Example::Chat(frame) => frame.clone(),
            Example::Plain(msg) => encode_chat(msg),
        }
    }

    /// The bytes that carry the message itself, after header or prefix.
    fn body(&self) -> Vec<u8> {
        let wire = self.wire();
        match self {
            Example::Request(..) | Example::Reply(..) => wire[HEADER_LEN..].to_vec(),
            Example::Chat(_) => wire[FRAME_HEADER_LEN..].to_vec(),
            Example::Plain(_) => wire,
        }
    }

    /// Decodes `wire` as this example's kind and checks it gives the example back.
    fn assert_decodes_back(&self, wire: &[u8]) {
        match self {
            Example::Request(id, msg) => {
                assert_eq!(decode_request(wire), Ok((*id, msg.clone())));
            }
            Example::Reply(id, msg) => {
                assert_eq!(decode_reply(wire), Ok((*id, msg.clone())));
            }
            Example::Chat(frame) => {
                // One whole frame; what it means is checked by
                // `the_worked_chat_runs`.
                let mut d = FrameDecoder::new();
                d.push(wire);
                let payload = d.next_frame().expect("example frame is valid");
                assert_eq!(payload.expect("example frame is complete"), frame[FRAME_HEADER_LEN..]);
                assert_eq!(d.buffered(), 0);
            }
            Example::Plain(msg) => assert_eq!(decode_chat(wire), Ok(msg.clone())),
        }
    }

    /// The enum and variant name this example shows, if it shows one.
    fn variant(&self) -> Option<(&'static str, &'static str)> {
        match self {
            Example::Request(_, m) => Some(("ClientMsg", client_variant(m))),
            Example::Reply(_, m) => Some(("ServerMsg", server_variant(m))),
            Example::Chat(_) => None,
            Example::Plain(m) => Some(("ChatMsg", chat_variant(m))),
        }
    }
}

// Exhaustive on purpose: a new variant stops this file compiling until it has
// a name here, and `every_variant_has_an_example` then asks for an example.
fn client_variant(m: &ClientMsg) -> &'static str {
    match m {
        ClientMsg::GetCookie { .. } => "GetCookie",
        ClientMsg::Login { .. } => "Login",
        ClientMsg::List { .. } => "List",
        ClientMsg::Lookup { .. } => "Lookup",
        ClientMsg::Logout { .. } => "Logout",
        ClientMsg::Introduce { .. } => "Introduce",
        ClientMsg::IntroAck { .. } => "IntroAck",
    }
}

fn server_variant(m: &ServerMsg) -> &'static str {
    match m {
        ServerMsg::Challenge { .. } => "Challenge",
        ServerMsg::Welcome { .. } => "Welcome",
        ServerMsg::Refused { .. } => "Refused",
        ServerMsg::ListPage { .. } => "ListPage",
        ServerMsg::Found { .. } => "Found",
        ServerMsg::LoggedOut => "LoggedOut",
        ServerMsg::Introduced { .. } => "Introduced",
    }
}

fn chat_variant(m: &ChatMsg) -> &'static str {
    match m {
        ChatMsg::Hello { .. } => "Hello",
        ChatMsg::Text { .. } => "Text",
        ChatMsg::Ack { .. } => "Ack",
        ChatMsg::Ping => "Ping",
        ChatMsg::Pong => "Pong",
        ChatMsg::Goodbye => "Goodbye",
        ChatMsg::Decline { .. } => "Decline",
    }
}

const ALL_VARIANTS: &[(&str, &str)] = &[
    ("ClientMsg", "GetCookie"),
    ("ClientMsg", "Login"),
    ("ClientMsg", "List"),
    ("ClientMsg", "Lookup"),
    ("ClientMsg", "Logout"),
    ("ClientMsg", "Introduce"),
    ("ClientMsg", "IntroAck"),
    ("ServerMsg", "Challenge"),
    ("ServerMsg", "Welcome"),
    ("ServerMsg", "Refused"),
    ("ServerMsg", "ListPage"),
    ("ServerMsg", "Found"),
    ("ServerMsg", "LoggedOut"),
    ("ServerMsg", "Introduced"),
    ("ChatMsg", "Hello"),
    ("ChatMsg", "Text"),
    ("ChatMsg", "Decline"),
    ("ChatMsg", "Ack"),
    ("ChatMsg", "Ping"),
    ("ChatMsg", "Pong"),
    ("ChatMsg", "Goodbye"),
];

fn id(n: u32) -> RequestId {
    RequestId(0x6b1d_0000 + n)
}

fn name(s: &str) -> UserName {
    UserName::new(s).expect("example names are valid")
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("example addresses parse")
}

fn nil() -> Entry {
    Entry { name: name("Nil"), addr: addr("203.0.113.9:50123"), chat_port: 6000, key: key(0xc0) }
}

fn zoe() -> Entry {
    Entry { name: name("zoë"), addr: addr("[2001:db8::5]:40001"), chat_port: 6001, key: key(0xe0) }
}

/// The introduction of the example: Mert (key `01 …`) asked for John (key
/// `21 …`), introduction 7, with the caller's relay hello of §14.2.
fn introduction() -> Introduction {
    let origin = Instant::now();
    let mint = TokenMint::new(&RelayKey(std::array::from_fn(|i| i as u8)), origin);
    let at = origin + std::time::Duration::from_secs(3540);
    let (hello, _) = mint.issue(at, key(0x01), key(0x21), 7);
    Introduction {
        nonce: 7,
        peer: Entry {
            name: name("John"),
            addr: addr("203.0.113.9:50123"),
            chat_port: 6000,
            key: key(0x21),
        },
        candidates: vec![addr("192.0.2.20:6000"), addr("203.0.113.9:6000")],
        relay: Some(RelayTicket { port: 5000, hello: hello.encode() }),
    }
}

/// Every worked example in `docs/PROTOCOL.md`, in document order.
fn examples() -> Vec<Example> {
    use Example::{Chat, Plain, Reply, Request};
    let mut all = vec![
        Request(id(1), ClientMsg::GetCookie { padding: vec![0; 53] }),
        Request(
            id(2),
            ClientMsg::Login {
                cookie: COOKIE,
                name: "Mert".into(),
                chat_port: 6000,
                key: key(0xa0),
            },
        ),
        Request(id(3), ClientMsg::List { cookie: COOKIE, after: Some(Cursor("17".into())) }),
        Request(id(4), ClientMsg::Lookup { cookie: COOKIE, name: "nil".into() }),
        Request(id(5), ClientMsg::Logout { cookie: COOKIE }),
        Request(
            id(9),
            ClientMsg::Introduce {
                cookie: COOKIE,
                name: "John".into(),
                locals: vec![[192, 0, 2, 10].into()],
            },
        ),
        Request(
            id(10),
            ClientMsg::IntroAck { cookie: COOKIE, nonce: 7, locals: vec![[192, 0, 2, 20].into()] },
        ),
        Reply(id(1), ServerMsg::Challenge { cookie: COOKIE }),
        Reply(id(2), ServerMsg::Welcome { observed: addr("198.51.100.7:40000"), lease_secs: 60 }),
        Reply(id(2), ServerMsg::Refused { reason: RefuseReason::NameTaken }),
        Reply(id(3), ServerMsg::ListPage { entries: vec![nil(), zoe()], next: None }),
        Reply(id(4), ServerMsg::Found { entry: Some(nil()) }),
        Reply(id(5), ServerMsg::LoggedOut),
        Reply(id(9), ServerMsg::Introduced { intro: Some(introduction()) }),
    ];
    let chat = worked_chat();
    let ([caller_preamble, message_1, message_3, hello], [callee_preamble, message_2]) = chat;
    all.extend(
        [caller_preamble, callee_preamble, message_1, message_2, message_3, hello].map(Chat),
    );
    all.extend([
        Plain(ChatMsg::Hello { version: CHAT_VERSION, name: "Mert".into() }),
        Plain(ChatMsg::Text { seq: Seq(1), text: "günaydın".into() }),
        Plain(ChatMsg::Ack { upto: Seq(1) }),
        Plain(ChatMsg::Ping),
        Plain(ChatMsg::Pong),
        Plain(ChatMsg::Goodbye),
        Plain(ChatMsg::Decline { reason: DeclineReason::Busy }),
        Reply(id(7), ServerMsg::Refused { reason: RefuseReason::UnsupportedVersion }),
    ]);
    all
}

/// The private keys and handshake seeds of the worked chat: Mert calls John.
const MERT: ([u8; 32], [u8; 32]) = ([0x11; 32], [0x33; 32]);
const JOHN: ([u8; 32], [u8; 32]) = ([0x22; 32], [0x44; 32]);

fn mert(now: Instant) -> ChatSession {
    let role = ChatRole::Caller {
        callee: name("John"),
        callee_key: PrivateKey::from_bytes(JOHN.0).public_key(),
    };
    let setup =
        ChatSetup { name: name("Mert"), key: PrivateKey::from_bytes(MERT.0), role, seed: MERT.1 };
    ChatSession::new(now, setup, ChatConfig::default())
}

fn john(now: Instant) -> ChatSession {
    let setup = ChatSetup {
        name: name("John"),
        key: PrivateKey::from_bytes(JOHN.0),
        role: ChatRole::Callee,
        seed: JOHN.1,
    };
    ChatSession::new(now, setup, ChatConfig::default())
}

/// The frames of the worked chat: the caller's (preamble, message 1,
/// message 3, sealed Hello) and the callee's (preamble, message 2).
fn worked_chat() -> ([Vec<u8>; 4], [Vec<u8>; 2]) {
    let now = Instant::now();
    let (mut mert, mut john) = (mert(now), john(now));
    let take = |s: &mut ChatSession| {
        let bytes = s.pending_output().to_vec();
        s.consume(bytes.len());
        let mut d = FrameDecoder::new();
        d.push(&bytes);
        let mut frames = Vec::new();
        while let Some(payload) = d.next_frame().expect("valid frames") {
            let mut frame = Vec::new();
            write_frame(&mut frame, &payload);
            frames.push(frame);
        }
        frames
    };
    let mert_1 = take(&mut mert);
    let john_1 = take(&mut john);
    john.handle_input(now, &mert_1.concat()).expect("a valid call");
    let john_2 = take(&mut john);
    mert.handle_input(now, &[john_1.concat(), john_2.concat()].concat()).expect("a valid answer");
    let mert_2 = take(&mut mert);
    let caller: [Vec<u8>; 4] = [mert_1, mert_2].concat().try_into().expect("four frames");
    let callee: [Vec<u8>; 2] = [john_1, john_2].concat().try_into().expect("two frames");
    (caller, callee)
}

/// The document's frames, fed to fresh sessions with the documented keys,
/// make a chat: each side proves its key, and John hears Mert's `Hello`.
#[test]
fn the_worked_chat_runs() {
    let now = Instant::now();
    let blocks = doc_hex_blocks();
    let start = examples().iter().position(|e| matches!(e, Example::Chat(_))).expect("chat");
    let [pre_c, pre_j, m1, m2, m3, hello] = std::array::from_fn(|i| blocks[start + i].clone());
    let mut john = john(now);
    john.handle_input(now, &[pre_c, m1, m3, hello].concat()).expect("the caller's frames");
    let events: Vec<_> = std::iter::from_fn(|| john.poll_event()).collect();
    let mert_key = PrivateKey::from_bytes(MERT.0).public_key();
    assert_eq!(
        events,
        [
            p2pchat_core::ChatEvent::Authenticated { peer: name("Mert"), key: mert_key },
            p2pchat_core::ChatEvent::Connected { peer: name("Mert") },
        ]
    );
    let mut mert = mert(now);
    mert.handle_input(now, &[pre_j, m2].concat()).expect("the callee's frames");
    let john_key = PrivateKey::from_bytes(JOHN.0).public_key();
    assert_eq!(
        mert.poll_event(),
        Some(p2pchat_core::ChatEvent::Authenticated { peer: name("John"), key: john_key })
    );
    // The keys as the document abbreviates them: first four, last three bytes.
    let short = |k: PublicKey| format!("`{} … {}`", hex(&k.0[..4]), hex(&k.0[29..]));
    assert_doc_has(&format!("Mert's public key is {}", short(mert_key)));
    assert_doc_has(&short(john_key));
    assert_doc_has(&format!("fingerprint `{}`", mert_key.fingerprint()));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

fn unhex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|t| {
            assert_eq!(t.len(), 2, "hex token {t:?} is not two digits");
            u8::from_str_radix(t, 16).unwrap_or_else(|_| panic!("bad hex token {t:?}"))
        })
        .collect()
}

/// The bytes of every ```` ```hex ```` block of the document, in order, with
/// `#` comments removed.
fn doc_hex_blocks() -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for line in DOC.lines() {
        match (&mut current, line.trim()) {
            (None, "```hex") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(bytes), text) => {
                let data = text.split('#').next().unwrap_or_default();
                bytes.extend(unhex(data));
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "unterminated hex block");
    blocks
}

/// The part of the document between two headings.
fn section(from: &str, to: &str) -> &'static str {
    let start = DOC.find(from).unwrap_or_else(|| panic!("no heading {from:?}"));
    let end = DOC[start..].find(to).unwrap_or_else(|| panic!("no heading {to:?}")) + start;
    &DOC[start..end]
}

fn assert_doc_has(row: &str) {
    assert!(DOC.contains(row), "docs/PROTOCOL.md lacks the line {row:?}");
}

#[test]
fn doc_examples_and_code_agree() {
    let from_code: Vec<Vec<u8>> = examples().iter().map(Example::wire).collect();
    let from_doc = doc_hex_blocks();
    assert_eq!(from_doc.len(), from_code.len(), "one hex block per example");
    for (i, (doc, code)) in from_doc.iter().zip(&from_code).enumerate() {
        assert_eq!(hex(doc), hex(code), "example {i}: {:?}", examples()[i]);
    }
}

#[test]
fn examples_decode_back() {
    for (example, wire) in examples().iter().zip(doc_hex_blocks()) {
        example.assert_decodes_back(&wire);
    }
}

#[test]
fn every_variant_has_an_example() {
    let covered: BTreeSet<_> = examples().iter().filter_map(Example::variant).collect();
    let all: BTreeSet<_> = ALL_VARIANTS.iter().copied().collect();
    assert_eq!(covered, all);
}

#[test]
fn variant_index_tables_match() {
    for example in examples() {
        let Some((_, variant)) = example.variant() else { continue };
        let index = example.body()[0];
        assert_doc_has(&format!("| `{index:02x}` | `{variant}` |"));
    }
    let reasons = [
        RefuseReason::NameTaken,
        RefuseReason::NameInvalid,
        RefuseReason::ServerFull,
        RefuseReason::UnsupportedVersion,
        RefuseReason::TooManyFromAddress,
        RefuseReason::TooManyIntroductions,
    ];
    for reason in reasons {
        let bytes = encode(&reason);
        assert_doc_has(&format!("| `{}` | `{reason:?}` |", hex(&bytes)));
    }
    for reason in [DeclineReason::Declined, DeclineReason::Busy, DeclineReason::Crossed] {
        let bytes = encode(&reason);
        assert_doc_has(&format!("| `{}` | `{reason:?}` |", hex(&bytes)));
    }
}

#[test]
fn get_cookie_convention_and_challenge_size() {
    let get_cookie = examples()[0].wire();
    assert_eq!(get_cookie.len(), GET_COOKIE_LEN);
    assert_eq!(GET_COOKIE_LEN, 64);
    let challenge = encode_reply(id(1), &ServerMsg::Challenge { cookie: COOKIE });
    assert_eq!(challenge.len(), CHALLENGE_LEN);
    const { assert!(GET_COOKIE_LEN > CHALLENGE_LEN) };
    let refused =
        encode_reply(id(1), &ServerMsg::Refused { reason: RefuseReason::UnsupportedVersion });
    assert_eq!(refused.len(), 11);
}

#[test]
fn every_cookie_carrying_request_is_at_least_a_challenge_long() {
    let smallest = [
        ClientMsg::Login { cookie: COOKIE, name: String::new(), chat_port: 0, key: key(0) },
        ClientMsg::List { cookie: COOKIE, after: None },
        ClientMsg::Lookup { cookie: COOKIE, name: String::new() },
        ClientMsg::Logout { cookie: COOKIE },
        ClientMsg::Introduce { cookie: COOKIE, name: String::new(), locals: Vec::new() },
        ClientMsg::IntroAck { cookie: COOKIE, nonce: 0, locals: Vec::new() },
    ];
    for msg in smallest {
        assert!(msg.cookie().is_some());
        assert!(HEADER_LEN + body_len(&msg) >= CHALLENGE_LEN, "{msg:?}");
    }
}

/// The widest entry: a 32-byte name, an IPv6 address, the largest ports.
fn widest_entry() -> Entry {
    let addr = SocketAddr::V6(SocketAddrV6::new([0xff; 16].into(), u16::MAX, 0, 0));
    Entry { name: name(&"w".repeat(MAX_NAME_LEN)), addr, chat_port: u16::MAX, key: key(0) }
}

#[test]
fn entry_and_page_sizes() {
    assert_eq!(body_len(&widest_entry()), 88);
    assert_doc_has("An entry is at most 88 bytes long (name 33, IPv6 address 20, port 3, key 32)");
    // A page of 12 widest entries with the longest cursor fits in a datagram.
    let page = ServerMsg::ListPage {
        entries: vec![widest_entry(); 12],
        next: Some(Cursor("\u{0130}".repeat(16).to_lowercase())),
    };
    let wire = encode_reply(id(3), &page);
    assert!(wire.len() <= MAX_DATAGRAM_LEN, "{}", wire.len());
    assert!(decode_reply(&wire).is_ok());
}

/// Postcard-encodes one value, the way the codec does for message bodies.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("test values serialize")
}

/// Checks that `value` encodes as the bytes named in the document's rule table.
fn rule<T: Serialize>(ty: &str, shown: &str, value: T) -> usize {
    assert_doc_has(&format!("| `{ty}` | {shown} | `{}` |", hex(&encode(&value))));
    1
}

#[test]
fn encoding_rule_table_matches() {
    let rows = [
        rule("u8", "200", 200u8),
        rule("u16", "0", 0u16),
        rule("u16", "127", 127u16),
        rule("u16", "128", 128u16),
        rule("u16", "6000", 6000u16),
        rule("u16", "65535", u16::MAX),
        rule("u32", "60", 60u32),
        rule("u32", "4294967295", u32::MAX),
        rule("u64", "300", 300u64),
        rule("u64", "18446744073709551615", u64::MAX),
        rule("String", "\"\"", String::new()),
        rule("String", "\"Mert\"", "Mert".to_string()),
        rule("String", "\"zoë\"", "zoë".to_string()),
        rule("Vec<u8>", "[0, 0, 0]", vec![0u8; 3]),
        rule("[u8; 16]", "[a0, a1, …, af]", COOKIE.0),
        rule("Option<Cursor>", "None", None::<Cursor>),
        rule("Option<Cursor>", "Some(\"mert\")", Some(Cursor("mert".into()))),
        rule("SocketAddr", "198.51.100.7:40000", addr("198.51.100.7:40000")),
        rule("SocketAddr", "[2001:db8::5]:40001", addr("[2001:db8::5]:40001")),
    ]
    .len();
    // Every three-column row of the section's tables is one checked above.
    let doc_rows = section("## 2. Encoding rules", "## 3.")
        .lines()
        .filter(|l| l.starts_with("| `") && l.matches('|').count() == 4)
        .count();
    assert_eq!(doc_rows, rows);
    // The same rules seen through our own types.
    assert_eq!(encode(&COOKIE), COOKIE.0);
    assert_eq!(encode(&Seq(300)), [0xac, 0x02]);
    assert_eq!(encode(&name("Mert")), encode(&"Mert"));
    assert_eq!(encode(&ChatMsg::Hello { version: 200, name: String::new() }), [0, 200, 0]);
}

#[test]
fn decoding_rules_hold() {
    let body = |bytes: &[u8]| {
        let mut d = MAGIC.to_vec();
        d.push(REPLY_BIT | REGISTRY_VERSION);
        d.extend_from_slice(&[0, 0, 0, 9]);
        d.extend_from_slice(bytes);
        d
    };
    let cookie = COOKIE.0;
    // Non-shortest varints are accepted; overflowing ones are not.
    assert_eq!(decode_chat(&[2, 0x80, 0x00]), Ok(ChatMsg::Ack { upto: Seq(0) }));
    let request = |bytes: &[u8]| {
        let mut d = body(bytes);
        d[4] = REGISTRY_VERSION;
        d
    };
    let body = request;
    let key = [7; KEY_LEN];
    let login = |port: &[u8]| body(&[&[1][..], &cookie, &[1, b'a'], port, &key].concat());
    assert!(decode_request(&login(&[0xff, 0xff, 0x03])).is_ok());
    assert_eq!(decode_request(&login(&[0xff, 0xff, 0x04])), Err(DecodeError::Malformed));
    // Option tags other than 0 and 1.
    let list = |tag: u8| body(&[&[2][..], &cookie, &[tag]].concat());
    assert!(decode_request(&list(0)).is_ok());
    assert_eq!(decode_request(&list(2)), Err(DecodeError::Malformed));
    // Invalid UTF-8, unknown variants, lengths running past the end.
    let lookup = |name: &[u8]| body(&[&[3][..], &cookie, name].concat());
    assert!(decode_request(&lookup(&[1, b'a'])).is_ok());
    assert_eq!(decode_request(&lookup(&[1, 0xff])), Err(DecodeError::Malformed));
    assert_eq!(decode_request(&lookup(&[2, b'a'])), Err(DecodeError::Malformed));
    assert_eq!(decode_request(&body(&[8])), Err(DecodeError::Malformed));
    let reply = |bytes: &[u8]| {
        let mut d = body(bytes);
        d[4] = REPLY_BIT | REGISTRY_VERSION;
        d
    };
    assert_eq!(decode_reply(&reply(&[8])), Err(DecodeError::Malformed));
    assert_eq!(decode_chat(&[6]), Err(DecodeError::Malformed));
    assert_eq!(decode_chat(&[]), Err(DecodeError::Malformed));
    // Strictness: one byte too many.
    assert_eq!(decode_chat(&[3, 0]), Err(DecodeError::TrailingBytes));
    // An entry whose name is not a valid user name makes the message malformed.
    let found = |name: &[u8]| reply(&[&[4, 1][..], name, &[0, 1, 2, 3, 4, 5, 6], &key].concat());
    assert!(decode_reply(&found(b"\x03Nil")).is_ok());
    assert_eq!(decode_reply(&found(b"\x03N l")), Err(DecodeError::Malformed));
}

#[test]
fn ipv6_flow_info_and_scope_id_are_not_on_the_wire() {
    let scoped = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().expect("ip"), 7, 9, 3));
    let msg = ServerMsg::Welcome { observed: scoped, lease_secs: 60 };
    let (_, back) = decode_reply(&encode_reply(id(0), &msg)).expect("decodes");
    let unscoped = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().expect("ip"), 7, 0, 0));
    assert_eq!(back, ServerMsg::Welcome { observed: unscoped, lease_secs: 60 });
}

#[test]
fn header_checks_in_documented_order() {
    let good = examples()[4].wire();
    assert!(decode_request(&good).is_ok());
    let mut long = vec![b'x'; MAX_DATAGRAM_LEN + 1];
    assert_eq!(decode_request(&long), Err(DecodeError::TooLong));
    long.truncate(HEADER_LEN - 1);
    assert_eq!(decode_request(&long), Err(DecodeError::TooShort));
    long.resize(HEADER_LEN, b'x');
    assert_eq!(decode_request(&long), Err(DecodeError::BadMagic));
    let mut v3 = good.clone();
    v3[4] = 3;
    v3[HEADER_LEN] = 0xee;
    assert_eq!(decode_request(&v3), Err(DecodeError::UnsupportedVersion { version: 3, id: id(5) }));
    // A reply of any version is going the wrong way, before its version
    // counts; so is a request where a reply is expected.
    v3[4] = REPLY_BIT | 3;
    assert_eq!(decode_request(&v3), Err(DecodeError::WrongDirection));
    assert_eq!(decode_reply(&good), Err(DecodeError::WrongDirection));
    let mut v1 = good.clone();
    v1[4] = 1;
    assert_eq!(decode_reply(&v1), Err(DecodeError::UnsupportedVersion { version: 1, id: id(5) }));
}

/// The loop of version 1: a `Challenge` whose cookie began with 0f was
/// also a 26-byte `GetCookie`. No reply of any cookie decodes as a request
/// now, and no version-1 `Challenge` is a `GetCookie` long enough to answer.
#[test]
fn no_reply_is_a_request() {
    for first in 0..=u8::MAX {
        let mut cookie = [0x5a; COOKIE_LEN];
        cookie[0] = first;
        let challenge = encode_reply(id(1), &ServerMsg::Challenge { cookie: Cookie(cookie) });
        assert_eq!(decode_request(&challenge), Err(DecodeError::WrongDirection));
        // The same bytes with a request's header: at most a short GetCookie.
        let mut turned = challenge.clone();
        turned[4] = REGISTRY_VERSION;
        if let Ok((_, ClientMsg::GetCookie { .. })) = decode_request(&turned) {
            assert!(turned.len() < GET_COOKIE_LEN, "first byte {first:02x}");
        }
    }
}

#[test]
fn name_key_claims() {
    let key = |s: &str| name(s).key().as_str().to_owned();
    // Full case folding: final sigma, sharp s.
    assert_eq!(key("ΣΑΣ"), key("σασ"));
    assert_eq!(key("ß"), key("SS"));
    assert_eq!(key("Mert"), key("mERT"));
    // Look-alikes share a key.
    assert_eq!(key("Јое"), key("Joe"));
    assert_eq!(key("J0HN"), key("john"));
    assert_eq!(key("Mert"), "rnert");
    // Names are kept in NFC; keys are decomposed.
    assert_eq!(name("Zoe\u{308}").as_str(), "Zoë");
    assert_eq!(key("Zoë"), "zoe\u{308}");
    assert_eq!(key(&"쮆".repeat(10)).len(), 210);
    assert_doc_has(&format!("keys may be up to {MAX_KEY_LEN} bytes long"));
}

#[test]
fn constants_table_matches() {
    let rows = [
        format!("| `MAGIC` | `{}` (\"p2pc\") |", hex(&MAGIC)),
        format!("| `REGISTRY_VERSION` | {REGISTRY_VERSION} |"),
        format!("| `REPLY_BIT` | `{REPLY_BIT:02x}` |"),
        format!("| `CHAT_VERSION` | {CHAT_VERSION} |"),
        format!("| `HEADER_LEN` | {HEADER_LEN} |"),
        format!("| `MAX_DATAGRAM_LEN` | {MAX_DATAGRAM_LEN} |"),
        format!("| `COOKIE_LEN` | {COOKIE_LEN} |"),
        format!("| `GET_COOKIE_LEN` | {GET_COOKIE_LEN} |"),
        format!("| `KEY_LEN` | {KEY_LEN} |"),
        format!("| `COOKIE_EPOCH` | {} s |", COOKIE_EPOCH.as_secs()),
        format!("| `MAX_NAME_LEN` | {MAX_NAME_LEN} |"),
        format!("| `MAX_KEY_LEN` | {MAX_KEY_LEN} |"),
        format!("| `FRAME_HEADER_LEN` | {FRAME_HEADER_LEN} |"),
        format!("| `MAX_FRAME_LEN` | {MAX_FRAME_LEN} |"),
        format!("| `TAG_LEN` | {TAG_LEN} |"),
        format!("| `MAX_PLAINTEXT_LEN` | {MAX_PLAINTEXT_LEN} |"),
        format!("| `REKEY_INTERVAL` | {REKEY_INTERVAL} |"),
        format!("| `MAX_TEXT_LEN` | {MAX_TEXT_LEN} |"),
        format!("| `MAX_LOCAL_ADDRS` | {MAX_LOCAL_ADDRS} |"),
        format!("| `MAX_PENDING_INTROS` | {MAX_PENDING_INTROS} |"),
        format!("| `MAX_INTROS_PER_CALLEE` | {MAX_INTROS_PER_CALLEE} |"),
        format!("| `INTRO_RETRY` | {} ms |", INTRO_RETRY.as_millis()),
        format!("| `INTRO_SENDS` | {INTRO_SENDS} |"),
        format!("| `INTRO_HOLD` | {} s |", INTRO_HOLD.as_secs()),
        format!("| `INTRO_MEMORY` | {} s |", INTRO_MEMORY.as_secs()),
    ];
    for row in &rows {
        assert_doc_has(row);
    }
    let doc_rows = section("## 11. Limits", "Behavioural values")
        .lines()
        .filter(|l| l.starts_with("| `"))
        .count();
    assert_eq!(doc_rows, rows.len());
}
