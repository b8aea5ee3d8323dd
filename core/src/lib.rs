//! # p2pchat-core
//!
//! The protocol of p2pchat and nothing else: the registry server, the registry
//! client and the peer-to-peer chat session, each a pure state machine; hole
//! punching ([`Punch`]) after the registry's introductions, and the chat
//! relay ([`Relay`]) whose tokens the registry issues.
//!
//! ## Guarantees
//! - **No I/O.** Nothing here opens a socket, reads a clock, spawns a thread or
//!   asks the OS for randomness. Time comes in as a `now: Instant` argument,
//!   always the first after `self`; secrets and seeds come in from the caller.
//!   The same inputs give the same outputs, which is what lets the simulator in
//!   `tests/` replay a run from its seed.
//! - **No panics on input.** Any bytes may be fed to any decoder or state
//!   machine. Garbage datagrams are dropped; a broken chat stream is a sticky
//!   error for that session.
//! - **Bounded memory.** Every buffer and table has a named limit, documented
//!   where it is defined.
//!
//! ## Shape
//! Every state machine has the same face: `handle_*` feeds it input,
//! `poll_transmit` / `poll_event` drain its output, `poll_timeout` says when
//! to wake it and `handle_timeout` wakes it. See each type's documentation for
//! its driver contract.
//!
//! The wire format is specified in `docs/PROTOCOL.md`.

#![warn(clippy::unwrap_used, clippy::expect_used)]

mod chat_msg;
mod chat_session;
mod codec;
mod cookie;
mod frame;
mod key;
mod name;
mod noise;
mod outbox;
mod punch;
mod registry_addr;
mod registry_client;
mod registry_config;
mod registry_intro;
mod registry_msg;
mod registry_server;
mod registry_table;
mod relay;
mod server_codec;
mod transmit;

pub use chat_msg::{CHAT_VERSION, ChatMsg, DeclineReason, MAX_TEXT_LEN, Seq};
pub use chat_session::{
    ACK_EVERY, CLOSE_LINGER, CONTROL_HEADROOM, ChatConfig, ChatError, ChatEvent, ChatRole,
    ChatSession, ChatSetup, CloseReason, HANDSHAKE_TIMEOUT, IDLE_TIMEOUT, MAX_BUFFERED_OUTPUT,
    MAX_UNACKED, MAX_UNACKED_BYTES, PING_INTERVAL, SendError,
};
pub use codec::{
    DecodeError, HEADER_LEN, MAGIC, MAX_DATAGRAM_LEN, REGISTRY_VERSION, REPLY_BIT, body_len,
    decode_chat, decode_chat_prefix, decode_reply, decode_request, encode_chat, encode_reply,
    encode_request,
};
pub use cookie::{COOKIE_EPOCH, CookieKey};
pub use frame::{FRAME_HEADER_LEN, FrameDecoder, FrameError, MAX_FRAME_LEN, write_frame};
pub use key::{FINGERPRINT_GROUPS, Fingerprint, KEY_LEN, PrivateKey, PublicKey};
pub use name::{MAX_KEY_LEN, MAX_NAME_LEN, NameError, NameKey, UserName, is_default_ignorable};
pub use noise::{
    Call, Handshake, HandshakeError, MAX_NOISE_MSG_LEN, MAX_PLAINTEXT_LEN, NOISE_PARAMS,
    PREAMBLE_MARKER, Preamble, PreambleError, REKEY_INTERVAL, TAG_LEN, Transport, TransportError,
    prologue,
};
pub use punch::{
    ATTEMPT_RESTART, CALLEE_GRACE, Candidate, CandidateKind, LOCAL_HEAD_START, MAX_CANDIDATES,
    MAX_TRIES, PUNCH_TIMEOUT, PathId, PathKind, Punch, PunchAction, PunchError, PunchEvent,
    PunchRole, RETRY_DELAY,
};
pub use registry_client::{
    ClientEvent, GIVE_UP_AFTER, INITIAL_RETRY, MAX_CHALLENGES, MAX_LIST_ENTRIES, MAX_RETRY,
    MIN_KEEPALIVE_INTERVAL, Operation, REMEMBERED_INTROS, RegistryClient, STILL_TRYING_AFTER,
};
pub use registry_config::{
    DEFAULT_LEASE, DEFAULT_MAX_PER_ADDRESS, DEFAULT_MAX_USERS, MAX_LEASE, RESERVED_USERS,
    ServerConfig, ServerEvent, ServerStats,
};
pub use registry_intro::{
    INTRO_HOLD, INTRO_MEMORY, INTRO_RETRY, INTRO_SENDS, MAX_INTROS_PER_CALLEE, MAX_PENDING_INTROS,
};
pub use registry_msg::{
    COOKIE_LEN, ClientMsg, Cookie, Cursor, Entry, GET_COOKIE_LEN, Introduction, MAX_LOCAL_ADDRS,
    RefuseReason, RelayTicket, RequestId, ServerMsg,
};
pub use registry_server::RegistryServer;
pub use relay::{
    ConnId, DEFAULT_PAIR_BURST, DEFAULT_PAIR_RATE, DEFAULT_RELAY_CONNECTIONS,
    DEFAULT_RELAY_PER_ADDRESS, DRAIN_TIMEOUT, MAX_RELAY_BUFFER, MAX_REMEMBERED_PAIRS, PairId,
    REFUSAL_HEADROOM, RELAY_HELLO_LEN, RELAY_HELLO_TIMEOUT, RELAY_IDLE_TIMEOUT, RELAY_MAGIC,
    RELAY_REPLY_LEN, RELAY_TAG_LEN, RELAY_VERSION, Relay, RelayCloseReason, RelayConfig,
    RelayEvent, RelayHello, RelayHelloError, RelayKey, RelaySide, RelayStatus, TOKEN_LIFETIME,
    TokenMint, UNPAIRED_TIMEOUT,
};
pub use transmit::Transmit;
