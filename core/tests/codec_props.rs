//! Property tests of the codec and the framing: every message round-trips,
//! no input makes a decoder panic, and the header and strictness rules hold
//! for every message, not just the examples.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use p2pchat_core::{
    ChatMsg, ClientMsg, Cookie, Cursor, DeclineReason, DecodeError, Entry, FrameDecoder,
    FrameError, HEADER_LEN, MAGIC, MAX_DATAGRAM_LEN, MAX_FRAME_LEN, MAX_NAME_LEN, PublicKey,
    REGISTRY_VERSION, REPLY_BIT, RefuseReason, RequestId, Seq, ServerMsg, UserName, body_len,
    decode_chat, decode_reply, decode_request, encode_chat, encode_reply, encode_request,
    write_frame,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

// ---------------------------------------------------------------- strategies

fn request_id() -> impl Strategy<Value = RequestId> {
    any::<u32>().prop_map(RequestId)
}

fn cookie() -> impl Strategy<Value = Cookie> {
    any::<[u8; 16]>().prop_map(Cookie)
}

/// Any string, including empty, non-ASCII, control characters and very long
/// ones: what a client may put in a `Login` or `Lookup`.
fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![".{0,40}", "\\PC{30,80}", Just(String::new())]
}

/// A valid user name, up to the length limit, with multi-byte characters.
fn user_name() -> impl Strategy<Value = UserName> {
    prop_oneof![
        "[a-zA-Z0-9_.-]{1,32}",
        "[^\\p{Cc}\\p{White_Space}]{1,8}",
        Just("w".repeat(MAX_NAME_LEN)),
        Just("İ".repeat(MAX_NAME_LEN / 2)),
    ]
    .prop_filter_map("not a valid name", |s| UserName::new(&s).ok())
}

/// IPv4 and IPv6 addresses. V6 flow info and scope id are not on the wire
/// (see `wire_examples.rs`), so they are zero here.
fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| {
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0))
        }),
    ]
}

fn cursor() -> impl Strategy<Value = Cursor> {
    any_string().prop_map(Cursor)
}

fn entry() -> impl Strategy<Value = Entry> {
    (user_name(), socket_addr(), any::<u16>(), public_key())
        .prop_map(|(name, addr, chat_port, key)| Entry { name, addr, chat_port, key })
}

fn public_key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(PublicKey)
}

fn refuse_reason() -> impl Strategy<Value = RefuseReason> {
    prop_oneof![
        Just(RefuseReason::NameTaken),
        Just(RefuseReason::NameInvalid),
        Just(RefuseReason::ServerFull),
        Just(RefuseReason::UnsupportedVersion),
        Just(RefuseReason::TooManyFromAddress),
    ]
}

fn client_msg() -> impl Strategy<Value = ClientMsg> {
    prop_oneof![
        vec(any::<u8>(), 0..=1100).prop_map(|padding| ClientMsg::GetCookie { padding }),
        (cookie(), any_string(), any::<u16>(), public_key()).prop_map(
            |(cookie, name, chat_port, key)| ClientMsg::Login { cookie, name, chat_port, key }
        ),
        (cookie(), option::of(cursor()))
            .prop_map(|(cookie, after)| ClientMsg::List { cookie, after }),
        (cookie(), any_string()).prop_map(|(cookie, name)| ClientMsg::Lookup { cookie, name }),
        cookie().prop_map(|cookie| ClientMsg::Logout { cookie }),
    ]
}

fn server_msg() -> impl Strategy<Value = ServerMsg> {
    prop_oneof![
        cookie().prop_map(|cookie| ServerMsg::Challenge { cookie }),
        (socket_addr(), any::<u32>())
            .prop_map(|(observed, lease_secs)| ServerMsg::Welcome { observed, lease_secs }),
        refuse_reason().prop_map(|reason| ServerMsg::Refused { reason }),
        (vec(entry(), 0..=12), option::of(cursor()))
            .prop_map(|(entries, next)| ServerMsg::ListPage { entries, next }),
        option::of(entry()).prop_map(|entry| ServerMsg::Found { entry }),
        Just(ServerMsg::LoggedOut),
    ]
}

fn chat_msg() -> impl Strategy<Value = ChatMsg> {
    prop_oneof![
        (any::<u8>(), any_string()).prop_map(|(version, name)| ChatMsg::Hello { version, name }),
        (any::<u64>(), any_string()).prop_map(|(seq, text)| ChatMsg::Text { seq: Seq(seq), text }),
        any::<u64>().prop_map(|upto| ChatMsg::Ack { upto: Seq(upto) }),
        Just(ChatMsg::Ping),
        Just(ChatMsg::Pong),
        Just(ChatMsg::Goodbye),
        prop_oneof![
            Just(DeclineReason::Declined),
            Just(DeclineReason::Busy),
            Just(DeclineReason::Crossed)
        ]
        .prop_map(|reason| ChatMsg::Decline { reason }),
    ]
}

/// A header with our magic and the given version and id.
fn header(version: u8, id: RequestId) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(version);
    out.extend_from_slice(&id.0.to_be_bytes());
    out
}

/// Drains every complete frame from `decoder`, stopping at the first error.
fn drain(decoder: &mut FrameDecoder) -> Result<Vec<Vec<u8>>, FrameError> {
    let mut frames = Vec::new();
    while let Some(frame) = decoder.next_frame()? {
        frames.push(frame);
    }
    Ok(frames)
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/codec_props.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn client_msg_round_trips(id in request_id(), msg in client_msg()) {
        let wire = encode_request(id, &msg);
        prop_assert_eq!(wire.len(), HEADER_LEN + body_len(&msg));
        if wire.len() <= MAX_DATAGRAM_LEN {
            prop_assert_eq!(decode_request(&wire), Ok((id, msg)));
        } else {
            prop_assert_eq!(decode_request(&wire), Err(DecodeError::TooLong));
        }
    }

    #[test]
    fn server_msg_round_trips(id in request_id(), msg in server_msg()) {
        let wire = encode_reply(id, &msg);
        prop_assert_eq!(wire.len(), HEADER_LEN + body_len(&msg));
        if wire.len() <= MAX_DATAGRAM_LEN {
            prop_assert_eq!(decode_reply(&wire), Ok((id, msg)));
        } else {
            prop_assert_eq!(decode_reply(&wire), Err(DecodeError::TooLong));
        }
    }

    #[test]
    fn chat_msg_round_trips(msg in chat_msg()) {
        let payload = encode_chat(&msg);
        prop_assert_eq!(decode_chat(&payload), Ok(msg.clone()));
        let mut stream = Vec::new();
        write_frame(&mut stream, &payload);
        let mut decoder = FrameDecoder::new();
        decoder.push(&stream);
        prop_assert_eq!(drain(&mut decoder), Ok(vec![payload]));
        prop_assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in vec(any::<u8>(), 0..1400)) {
        let _ = decode_request(&bytes);
        let _ = decode_reply(&bytes);
        let _ = decode_chat(&bytes);
    }

    /// Bytes behind a valid header reach the body decoders, which random
    /// bytes alone would almost never do.
    #[test]
    fn arbitrary_bodies_never_panic_and_never_decode_long(
        id in request_id(),
        body in vec(any::<u8>(), 0..1300),
    ) {
        let mut datagram = header(REGISTRY_VERSION, id);
        datagram.extend_from_slice(&body);
        let request = decode_request(&datagram);
        datagram[4] |= REPLY_BIT;
        let reply = decode_reply(&datagram);
        if datagram.len() > MAX_DATAGRAM_LEN {
            prop_assert_eq!(request, Err(DecodeError::TooLong));
            prop_assert_eq!(reply, Err(DecodeError::TooLong));
        } else {
            // Whatever decodes re-encodes to a datagram that decodes the same.
            if let Ok((got_id, msg)) = request {
                prop_assert_eq!(got_id, id);
                prop_assert_eq!(decode_request(&encode_request(id, &msg)), Ok((id, msg)));
            }
            if let Ok((got_id, msg)) = reply {
                prop_assert_eq!(got_id, id);
                prop_assert_eq!(decode_reply(&encode_reply(id, &msg)), Ok((id, msg)));
            }
        }
    }

    /// Chunks of arbitrary bytes: the decoder never panics, never returns a
    /// frame over the limit, and an error is the same on every later call.
    #[test]
    fn arbitrary_chunks_never_panic_the_frame_decoder(
        chunks in vec(vec(any::<u8>(), 0..300), 0..20),
        big_prefix in any::<bool>(),
    ) {
        let mut decoder = FrameDecoder::new();
        if big_prefix {
            // Make long-but-legal frames likely too, not only tiny ones.
            decoder.push(&(MAX_FRAME_LEN as u32).to_be_bytes());
        }
        let mut error = None;
        for chunk in &chunks {
            decoder.push(chunk);
            match drain(&mut decoder) {
                Ok(frames) => {
                    for frame in frames {
                        prop_assert!(frame.len() <= MAX_FRAME_LEN);
                        let _ = decode_chat(&frame);
                    }
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = error {
            decoder.push(&[0; 8]);
            prop_assert_eq!(decoder.next_frame(), Err(e));
        }
    }

    /// A stream of frames cut at arbitrary points gives the same frames.
    #[test]
    fn frames_survive_any_cuts(
        msgs in vec(chat_msg(), 0..10),
        cuts in vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let payloads: Vec<Vec<u8>> = msgs.iter().map(encode_chat).collect();
        let mut stream = Vec::new();
        for p in &payloads {
            write_frame(&mut stream, p);
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut decoder = FrameDecoder::new();
        let mut got = Vec::new();
        for pair in points.windows(2) {
            decoder.push(&stream[pair[0]..pair[1]]);
            got.extend(drain(&mut decoder).expect("valid stream"));
        }
        prop_assert_eq!(decoder.buffered(), 0);
        let decoded: Vec<ChatMsg> = got
            .iter()
            .map(|p| decode_chat(p).expect("valid payload"))
            .collect();
        prop_assert_eq!(got, payloads);
        prop_assert_eq!(decoded, msgs);
    }

    #[test]
    fn any_other_version_is_unsupported_with_its_id(
        version in any::<u8>().prop_filter("another version", |v| *v & !REPLY_BIT != REGISTRY_VERSION),
        id in request_id(),
        body in vec(any::<u8>(), 0..(MAX_DATAGRAM_LEN - HEADER_LEN)),
    ) {
        let mut datagram = header(version, id);
        datagram.extend_from_slice(&body);
        let expected = DecodeError::UnsupportedVersion { version, id };
        // A server never sees a reply of any version as anything but one
        // going the wrong way; a client sees any other version as such.
        if version & REPLY_BIT == 0 {
            prop_assert_eq!(decode_request(&datagram).err(), Some(expected.clone()));
        } else {
            prop_assert_eq!(decode_request(&datagram).err(), Some(DecodeError::WrongDirection));
        }
        prop_assert_eq!(decode_reply(&datagram).err(), Some(expected));
    }

    #[test]
    fn appended_byte_is_trailing(
        id in request_id(),
        request in client_msg(),
        reply in server_msg(),
        chat in chat_msg(),
        extra in any::<u8>(),
    ) {
        let mut datagram = encode_request(id, &request);
        datagram.push(extra);
        if datagram.len() <= MAX_DATAGRAM_LEN {
            prop_assert_eq!(decode_request(&datagram), Err(DecodeError::TrailingBytes));
        }
        let mut datagram = encode_reply(id, &reply);
        datagram.push(extra);
        if datagram.len() <= MAX_DATAGRAM_LEN {
            prop_assert_eq!(decode_reply(&datagram), Err(DecodeError::TrailingBytes));
        }
        let mut payload = encode_chat(&chat);
        payload.push(extra);
        prop_assert_eq!(decode_chat(&payload), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn truncated_message_is_malformed(
        id in request_id(),
        request in client_msg(),
        reply in server_msg(),
        chat in chat_msg(),
        cut in any::<prop::sample::Index>(),
    ) {
        let datagram = encode_request(id, &request);
        let at = HEADER_LEN + cut.index(datagram.len() - HEADER_LEN);
        prop_assert_eq!(decode_request(&datagram[..at]), Err(DecodeError::Malformed));
        let datagram = encode_reply(id, &reply);
        let at = HEADER_LEN + cut.index(datagram.len() - HEADER_LEN);
        prop_assert_eq!(decode_reply(&datagram[..at]), Err(DecodeError::Malformed));
        let payload = encode_chat(&chat);
        prop_assert_eq!(decode_chat(&payload[..cut.index(payload.len())]), Err(DecodeError::Malformed));
    }
}
