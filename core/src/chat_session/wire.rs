//! The session's view of the byte stream: whole messages in, whole messages
//! out, encrypted.
//!
//! Inbound, bytes go through [`FrameDecoder`], then the Noise layer
//! ([`crate::noise`]: the peer's preamble, the handshake, then opening each
//! payload), then [`decode_chat_prefix`] for each message the plaintext
//! holds; outbound, [`encode_chat`], sealing, then [`write_frame`].
//! Messages the session queues before the handshake is done wait here in
//! clear and are sealed the moment it is; nothing leaves unencrypted but the
//! preamble and the handshake.
//!
//! Sealing is lazy: messages queued between two reads of the output are
//! sealed together, as one frame, when the driver asks for the output. One
//! encryption then covers all the texts and acks of a turn, instead of one
//! each.

use crate::chat_msg::{CHAT_VERSION, ChatMsg};
use serde::Serialize;

use crate::codec::{body_len, decode_chat_prefix};
use crate::frame::{FRAME_HEADER_LEN, FrameDecoder, write_frame};
use crate::key::{PrivateKey, PublicKey};
use crate::name::UserName;
use crate::noise::{
    Call, Handshake, MAX_PLAINTEXT_LEN, Preamble, TAG_LEN, Transport, TransportError, prologue,
};

use super::error::ChatError;

/// Which end of the connection we are, with what each end knows up front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatRole {
    /// We opened the connection to reach `callee`, whose key the registry
    /// lists as `callee_key`; any other key is refused during the handshake.
    Caller {
        /// The user we call.
        callee: UserName,
        /// The key the registry lists for them.
        callee_key: PublicKey,
    },
    /// We accepted the connection. The caller proves some key for the name
    /// it claims; the application checks it
    /// ([`crate::ChatEvent::Authenticated`]) before it
    /// [accepts](crate::ChatSession::accept) the chat.
    Callee,
}

/// What a session needs to know about us to start.
#[derive(Debug, Clone)]
pub struct ChatSetup {
    /// Our user name, as the registry lists it.
    pub name: UserName,
    /// Our long-term identity key.
    pub key: PrivateKey,
    /// Caller or callee.
    pub role: ChatRole,
    /// 32 fresh random bytes for the handshake's ephemeral key (the OS's in
    /// a real client, a seeded RNG's in a simulation). Never reuse them.
    pub seed: [u8; 32],
}

/// What the stream gave: a chat message, or the news that the handshake is
/// done.
#[derive(Debug)]
pub(super) enum Inbound {
    /// The handshake finished: the peer proved `key`, and calls itself `name`
    /// (the callee we asked for, or the caller's claim).
    Secured { name: UserName, key: PublicKey },
    /// A chat message, opened and decoded.
    Msg(ChatMsg),
}

/// Where the Noise layer is.
#[derive(Debug)]
enum Noise {
    /// The caller waits for the callee's preamble; its handshake has begun.
    CallerPreamble { handshake: Handshake, callee: UserName },
    /// The callee waits for the caller's preamble.
    CalleePreamble { key: PrivateKey, seed: [u8; 32] },
    /// The handshake is under way; `peer` is the name it is with.
    Handshake { handshake: Handshake, peer: UserName },
    /// Transport messages only.
    Transport(Transport),
    /// No encryption at all: only for measuring what encryption costs.
    #[cfg(feature = "bench-cleartext")]
    Clear,
    /// The session dropped its state (finished).
    Gone,
}

/// The encrypted stream, both directions.
#[derive(Debug)]
pub(super) struct Wire {
    local: UserName,
    frames: FrameDecoder,
    noise: Noise,
    /// Encoded messages queued before the handshake finished.
    held: Vec<Vec<u8>>,
    /// Their wire size, once sealed and framed.
    held_len: usize,
    /// Encoded messages queued since the output was last read, sealed
    /// together when it is next read; at most [`MAX_PLAINTEXT_LEN`] bytes.
    unsealed: Vec<u8>,
    /// The plaintext of the last frame opened, and how much of it the
    /// messages taken out so far used (all of it: nothing left to take; the
    /// buffer keeps its length, so the next frame is opened over it without
    /// zeroing it first).
    opened: Vec<u8>,
    opened_at: usize,
    out: Vec<u8>,
    /// Bytes of `out` already written.
    start: usize,
    /// Frames go in clear once the handshake is done: only for measuring
    /// what encryption costs end to end (both ends must agree).
    #[cfg(feature = "bench-cleartext")]
    clear_after_handshake: bool,
}

impl Wire {
    /// Our preamble (and, for a caller, the first handshake message) queued.
    pub(super) fn new(setup: ChatSetup) -> Self {
        let mut out = Vec::new();
        let noise = match setup.role {
            ChatRole::Caller { callee, callee_key } => {
                let call = Call { caller: setup.name.clone(), callee: callee.clone() };
                let preamble = Preamble { version: CHAT_VERSION, call: Some(call) }.encode();
                let (handshake, first) =
                    Handshake::initiator(&setup.key, setup.seed, &prologue(&preamble), callee_key);
                write_frame(&mut out, &preamble);
                write_frame(&mut out, &first);
                Noise::CallerPreamble { handshake, callee }
            }
            ChatRole::Callee => {
                let preamble = Preamble { version: CHAT_VERSION, call: None }.encode();
                write_frame(&mut out, &preamble);
                Noise::CalleePreamble { key: setup.key, seed: setup.seed }
            }
        };
        Self {
            local: setup.name,
            frames: FrameDecoder::new(),
            noise,
            held: Vec::new(),
            held_len: 0,
            unsealed: Vec::new(),
            opened: Vec::new(),
            opened_at: 0,
            out,
            start: 0,
            #[cfg(feature = "bench-cleartext")]
            clear_after_handshake: false,
        }
    }

    /// A wire that frames without any encryption, both ends agreeing in
    /// advance: for the benchmark that measures what encryption costs.
    #[cfg(feature = "bench-cleartext")]
    pub(super) fn cleartext(local: UserName) -> Self {
        Self {
            local,
            frames: FrameDecoder::new(),
            noise: Noise::Clear,
            held: Vec::new(),
            held_len: 0,
            unsealed: Vec::new(),
            opened: Vec::new(),
            opened_at: 0,
            out: Vec::new(),
            start: 0,
            clear_after_handshake: false,
        }
    }

    /// After the handshake, frames go in clear: only for the end-to-end
    /// benchmark of what encryption costs; both ends must ask for it.
    #[cfg(feature = "bench-cleartext")]
    pub(super) fn clear_after_handshake(&mut self) {
        self.clear_after_handshake = true;
    }

    /// The number of bytes `msg` takes on the wire, sealed and framed.
    pub(super) fn frame_len<M: Serialize>(msg: &M) -> usize {
        FRAME_HEADER_LEN + body_len(msg) + TAG_LEN
    }

    /// Buffers bytes received from the stream.
    pub(super) fn push_input(&mut self, bytes: &[u8]) {
        self.frames.push(bytes);
    }

    /// The next thing the stream gave, `Ok(None)` if only part of a frame is
    /// buffered. Handshake messages are answered here.
    pub(super) fn next(&mut self) -> Result<Option<Inbound>, ChatError> {
        if let Some(msg) = self.next_opened()? {
            return Ok(Some(Inbound::Msg(msg)));
        }
        // The frame is borrowed from the decoder while the rest of the wire
        // handles it: the decoder is set aside meanwhile.
        let mut frames = std::mem::take(&mut self.frames);
        let next = self.next_from(&mut frames);
        self.frames = frames;
        next
    }

    fn next_from(&mut self, frames: &mut FrameDecoder) -> Result<Option<Inbound>, ChatError> {
        loop {
            let Some(frame) = frames.next_frame_ref()? else {
                return Ok(None);
            };
            if let Some(inbound) = self.handle_frame(frame)? {
                return Ok(Some(inbound));
            }
        }
    }

    fn handle_frame(&mut self, frame: &[u8]) -> Result<Option<Inbound>, ChatError> {
        match std::mem::replace(&mut self.noise, Noise::Gone) {
            Noise::CallerPreamble { handshake, callee } => {
                Preamble::decode(frame, CHAT_VERSION, false)?;
                self.noise = Noise::Handshake { handshake, peer: callee };
                Ok(None)
            }
            Noise::CalleePreamble { key, seed } => {
                let preamble = Preamble::decode(frame, CHAT_VERSION, true)?;
                let Some(call) = preamble.call else {
                    return Err(ChatError::BadPeerName);
                };
                if call.callee.key() != self.local.key() {
                    return Err(ChatError::WrongCallee);
                }
                let handshake = Handshake::responder(&key, seed, &prologue(frame));
                self.noise = Noise::Handshake { handshake, peer: call.caller };
                Ok(None)
            }
            Noise::Handshake { mut handshake, peer } => {
                if let Some(reply) = handshake.read(frame)? {
                    self.queue_frame(&reply);
                }
                if !handshake.is_finished() {
                    self.noise = Noise::Handshake { handshake, peer };
                    return Ok(None);
                }
                let Some((transport, key)) = handshake.finish() else {
                    return Err(ChatError::Noise(TransportError::Decrypt));
                };
                self.noise = Noise::Transport(transport);
                #[cfg(feature = "bench-cleartext")]
                if self.clear_after_handshake {
                    self.noise = Noise::Clear;
                }
                for payload in std::mem::take(&mut self.held) {
                    self.queue_sealed(&payload);
                }
                self.held_len = 0;
                Ok(Some(Inbound::Secured { name: peer, key }))
            }
            Noise::Transport(mut transport) => {
                // Every message of the frame opened before was taken out:
                // its buffer is reused.
                let opened = transport.open_into(frame, &mut self.opened);
                self.noise = Noise::Transport(transport);
                opened?;
                // A sealed frame carries at least one message.
                if self.opened.is_empty() {
                    return Err(ChatError::Malformed(crate::codec::DecodeError::Malformed));
                }
                self.opened_at = 0;
                Ok(self.next_opened()?.map(Inbound::Msg))
            }
            #[cfg(feature = "bench-cleartext")]
            Noise::Clear => {
                self.noise = Noise::Clear;
                self.opened.clear();
                self.opened.extend_from_slice(frame);
                self.opened_at = 0;
                Ok(self.next_opened()?.map(Inbound::Msg))
            }
            Noise::Gone => Ok(None),
        }
    }

    /// The next message of the plaintext opened last, if any is left.
    fn next_opened(&mut self) -> Result<Option<ChatMsg>, ChatError> {
        let Some(rest) = self.opened.get(self.opened_at..).filter(|r| !r.is_empty()) else {
            return Ok(None);
        };
        let (msg, after) = decode_chat_prefix(rest)?;
        self.opened_at = self.opened.len() - after.len();
        Ok(Some(msg))
    }

    /// Queues `msg` behind everything already queued: sealed with the rest
    /// of the turn's messages if the handshake is done, else held in clear
    /// until it is.
    pub(super) fn push<M: Serialize>(&mut self, msg: &M) {
        match &mut self.noise {
            Noise::Transport(_) => self.queue_msg(msg),
            Noise::CallerPreamble { .. }
            | Noise::CalleePreamble { .. }
            | Noise::Handshake { .. } => {
                let payload = encode_any(msg);
                debug_assert!(payload.len() <= MAX_PLAINTEXT_LEN);
                self.held_len += FRAME_HEADER_LEN + payload.len() + TAG_LEN;
                self.held.push(payload);
            }
            #[cfg(feature = "bench-cleartext")]
            Noise::Clear => self.queue_msg(msg),
            Noise::Gone => {}
        }
    }

    /// Encodes `msg` straight into the next sealed frame (no buffer of its
    /// own), sealing the one under way first if it would grow past a Noise
    /// message. Encoded once: only a message that ends a frame (one in
    /// hundreds in a burst) is encoded again, behind the frame it did not
    /// fit in.
    fn queue_msg<M: Serialize>(&mut self, msg: &M) {
        let before = self.unsealed.len();
        self.unsealed = encode_into(msg, std::mem::take(&mut self.unsealed));
        if self.unsealed.len() > MAX_PLAINTEXT_LEN && before > 0 {
            self.unsealed.truncate(before);
            self.seal();
            self.unsealed = encode_into(msg, std::mem::take(&mut self.unsealed));
        }
        debug_assert!(self.unsealed.len() <= MAX_PLAINTEXT_LEN);
    }

    /// Adds an encoded message to the next sealed frame, sealing the one
    /// under way first if it would grow past a Noise message.
    fn queue_sealed(&mut self, payload: &[u8]) {
        if self.unsealed.len() + payload.len() > MAX_PLAINTEXT_LEN {
            self.seal();
        }
        self.unsealed.extend_from_slice(payload);
    }

    /// Seals what is queued as one frame.
    fn seal(&mut self) {
        if self.unsealed.is_empty() {
            return;
        }
        self.reclaim();
        match &mut self.noise {
            Noise::Transport(transport) => seal_frame(transport, &mut self.out, &self.unsealed),
            #[cfg(feature = "bench-cleartext")]
            Noise::Clear => write_frame(&mut self.out, &self.unsealed),
            Noise::CallerPreamble { .. }
            | Noise::CalleePreamble { .. }
            | Noise::Handshake { .. }
            | Noise::Gone => {}
        }
        self.unsealed.clear();
    }

    /// Seals `payload` as it is, whatever it holds: tests send what no
    /// honest peer would.
    #[cfg(test)]
    pub(super) fn push_payload(&mut self, payload: &[u8]) {
        self.seal();
        if let Noise::Transport(transport) = &mut self.noise {
            seal_frame(transport, &mut self.out, payload);
        }
    }

    fn queue_frame(&mut self, payload: &[u8]) {
        self.reclaim();
        write_frame(&mut self.out, payload);
    }

    /// Reclaims the written prefix once it outweighs what is left, so the
    /// copy is paid for by the writes that made it.
    fn reclaim(&mut self) {
        if self.start > 0 && self.start >= self.out.len() - self.start {
            self.out.drain(..self.start);
            self.start = 0;
        }
    }

    /// Bytes waiting to be written, with what was queued since the last
    /// call sealed now.
    pub(super) fn pending(&mut self) -> &[u8] {
        self.seal();
        &self.out[self.start..]
    }

    /// Whether anything waits to be written (sealed or not yet).
    pub(super) fn has_output(&self) -> bool {
        self.out.len() > self.start || !self.unsealed.is_empty()
    }

    /// Bytes waiting to be written (what waits to be sealed counted as
    /// sealed), and those held for the handshake.
    pub(super) fn len(&self) -> usize {
        let unsealed = match self.unsealed.len() {
            0 => 0,
            n => FRAME_HEADER_LEN + n + TAG_LEN,
        };
        self.out.len() - self.start + unsealed + self.held_len
    }

    /// Marks the first `n` pending bytes as written; more than there are
    /// counts as all of them.
    pub(super) fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.out.len());
        if self.start == self.out.len() {
            self.out.clear();
            self.start = 0;
        }
    }

    /// Drops everything received and its memory.
    pub(super) fn clear_input(&mut self) {
        self.frames = FrameDecoder::new();
        self.opened = Vec::new();
        self.opened_at = 0;
    }

    /// Drops everything not yet written, and its memory.
    pub(super) fn clear_output(&mut self) {
        self.out = Vec::new();
        self.start = 0;
        self.held = Vec::new();
        self.held_len = 0;
        self.unsealed = Vec::new();
    }

    /// Seals what is queued, then forgets the keys: nothing more is sealed
    /// or opened.
    pub(super) fn forget_keys(&mut self) {
        self.seal();
        self.noise = Noise::Gone;
    }
}

/// `msg` (a [`ChatMsg`] or a borrowed text) encoded on its own.
fn encode_any<M: Serialize>(msg: &M) -> Vec<u8> {
    encode_into(msg, Vec::new())
}

/// `msg` encoded at the end of `buf`.
#[allow(clippy::expect_used)] // Our messages always serialize, and a `Vec` only grows.
fn encode_into<M: Serialize>(msg: &M, buf: Vec<u8>) -> Vec<u8> {
    postcard::to_extend(msg, buf).expect("our messages always serialize")
}

fn seal_frame(transport: &mut Transport, out: &mut Vec<u8>, payload: &[u8]) {
    // Sealed length fits a u32: payloads stay within MAX_PLAINTEXT_LEN.
    let sealed_len = (payload.len() + TAG_LEN) as u32;
    out.extend_from_slice(&sealed_len.to_be_bytes());
    transport.seal(payload, out);
}
