//! A scripted chat peer that speaks the preamble and the Noise handshake
//! correctly and then seals whatever payloads a test or fuzzer hands it,
//! well-formed or not: the way to reach a session's message handling past
//! its encryption.

use p2pchat_core::{
    CHAT_VERSION, Call, ChatMsg, FrameDecoder, Handshake, Preamble, PrivateKey, PublicKey,
    Transport, UserName, decode_chat_prefix, encode_chat, prologue, write_frame,
};

/// Where the scripted peer is.
#[derive(Debug)]
enum State {
    /// A callee waiting for the caller's preamble.
    CalleePreamble,
    /// A caller waiting for the callee's preamble.
    CallerPreamble(Handshake),
    Handshake(Handshake),
    Transport(Transport),
    /// The peer's stream broke; the scripted peer stops reading it.
    Broken,
}

/// One end of a chat, driven by hand.
#[derive(Debug)]
pub struct RawPeer {
    key: PrivateKey,
    seed: [u8; 32],
    state: State,
    frames: FrameDecoder,
    out: Vec<u8>,
    /// Payloads queued before the handshake finished.
    held: Vec<Vec<u8>>,
    /// The key the other side proved, once known.
    pub peer_key: Option<PublicKey>,
    /// Every message opened from the other side, in order.
    pub received: Vec<ChatMsg>,
}

impl RawPeer {
    /// A callee holding `key`, waiting for a call; its preamble is queued.
    pub fn callee(key: PrivateKey, seed: [u8; 32]) -> Self {
        let mut out = Vec::new();
        write_frame(&mut out, &Preamble { version: CHAT_VERSION, call: None }.encode());
        Self::with(key, seed, State::CalleePreamble, out)
    }

    /// A caller `caller` calling `callee`, whose key it expects to be
    /// `callee_key`; its preamble and first handshake message are queued.
    pub fn caller(
        key: PrivateKey,
        seed: [u8; 32],
        caller: &UserName,
        callee: &UserName,
        callee_key: PublicKey,
    ) -> Self {
        let call = Call { caller: caller.clone(), callee: callee.clone() };
        let preamble = Preamble { version: CHAT_VERSION, call: Some(call) }.encode();
        let (handshake, first) = Handshake::initiator(&key, seed, &prologue(&preamble), callee_key);
        let mut out = Vec::new();
        write_frame(&mut out, &preamble);
        write_frame(&mut out, &first);
        Self::with(key, seed, State::CallerPreamble(handshake), out)
    }

    fn with(key: PrivateKey, seed: [u8; 32], state: State, out: Vec<u8>) -> Self {
        Self {
            key,
            seed,
            state,
            frames: FrameDecoder::new(),
            out,
            held: Vec::new(),
            peer_key: None,
            received: Vec::new(),
        }
    }

    /// Whether the handshake is done.
    pub fn is_secured(&self) -> bool {
        matches!(self.state, State::Transport(_))
    }

    /// Takes everything the peer has to write.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Seals `msg` (held until the handshake is done).
    pub fn send(&mut self, msg: &ChatMsg) {
        self.send_payload(&encode_chat(msg));
    }

    /// Seals any payload (held until the handshake is done).
    pub fn send_payload(&mut self, payload: &[u8]) {
        match &mut self.state {
            State::Transport(t) => seal(t, &mut self.out, payload),
            State::CalleePreamble
            | State::CallerPreamble(_)
            | State::Handshake(_)
            | State::Broken => self.held.push(payload.to_vec()),
        }
    }

    /// Reads what the other side wrote: answers the handshake, opens and
    /// keeps the messages. Anything invalid breaks the peer (it stops
    /// reading), which is what a test of the other side wants to see.
    pub fn input(&mut self, bytes: &[u8]) {
        self.frames.push(bytes);
        while let Ok(Some(frame)) = self.frames.next_frame() {
            self.state = match std::mem::replace(&mut self.state, State::Broken) {
                State::CalleePreamble => match Preamble::decode(&frame, CHAT_VERSION, true) {
                    Ok(_) => State::Handshake(Handshake::responder(
                        &self.key,
                        self.seed,
                        &prologue(&frame),
                    )),
                    Err(_) => State::Broken,
                },
                State::CallerPreamble(h) => match Preamble::decode(&frame, CHAT_VERSION, false) {
                    Ok(_) => State::Handshake(h),
                    Err(_) => State::Broken,
                },
                State::Handshake(mut h) => match h.read(&frame) {
                    Ok(reply) => {
                        if let Some(reply) = reply {
                            write_frame(&mut self.out, &reply);
                        }
                        if h.is_finished() {
                            match h.finish() {
                                Some((mut t, key)) => {
                                    self.peer_key = Some(key);
                                    for p in std::mem::take(&mut self.held) {
                                        seal(&mut t, &mut self.out, &p);
                                    }
                                    State::Transport(t)
                                }
                                None => State::Broken,
                            }
                        } else {
                            State::Handshake(h)
                        }
                    }
                    Err(_) => State::Broken,
                },
                State::Transport(mut t) => match t.open(&frame).ok().and_then(|p| decode_all(&p)) {
                    Some(msgs) => {
                        self.received.extend(msgs);
                        State::Transport(t)
                    }
                    None => State::Broken,
                },
                State::Broken => State::Broken,
            };
        }
    }
}

/// The messages of one sealed frame's plaintext: one or more, back to back.
fn decode_all(mut plain: &[u8]) -> Option<Vec<ChatMsg>> {
    let mut msgs = Vec::new();
    while !plain.is_empty() {
        let (msg, rest) = decode_chat_prefix(plain).ok()?;
        msgs.push(msg);
        plain = rest;
    }
    (!msgs.is_empty()).then_some(msgs)
}

fn seal(t: &mut Transport, out: &mut Vec<u8>, payload: &[u8]) {
    let mut sealed = Vec::new();
    t.seal(payload, &mut sealed);
    write_frame(out, &sealed);
}
