//! End to end: what the Noise chats and the known peers defend against,
//! with the real binary. The wire carries no text in clear; a stranger who
//! claims a listed name is dropped without a word; a changed key is refused
//! with the warning until `p2pchat trust` accepts it; a registry that lies
//! about a pinned key and a man in the middle who re-keys both sides are
//! both caught.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{
    LINE_TIMEOUT, Proc, call, call_waiting, identity_file, listed_chat_addr, logged_in_client,
    public_key, run_as, say_and_leave, server, temp_dir,
};
use p2pchat_core::{
    CHAT_VERSION, Call, ChatMsg, FrameDecoder, Preamble, PrivateKey, PublicKey, Seq, ServerMsg,
    UserName, write_frame,
};
use p2pchat_tests::noise_peer::RawPeer;
use p2pchat_tests::raw_conn::{Outcome, drive};
use p2pchat_tests::registry_proxy::RegistryProxy;
use rand::RngCore;

/// How long a stranger's connection may stay open before the callee must
/// have dropped it: the handshake timeout plus the registry check's, with
/// room to spare.
const DROP_DEADLINE: Duration = Duration::from_secs(20);

fn random_key() -> PrivateKey {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    PrivateKey::from_bytes(b)
}

fn name(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

/// A stranger holding its own key calls `addr` claiming to be `claimed`,
/// calling `callee` whose real key it knows; it says Hello and a text once
/// secured. Returns whether the handshake finished and how it ended.
fn stranger_call(
    addr: SocketAddr,
    claimed: &str,
    callee: &str,
    callee_key: PublicKey,
) -> (bool, Outcome) {
    let mut peer =
        RawPeer::caller(random_key(), [9; 32], &name(claimed), &name(callee), callee_key);
    peer.send(&ChatMsg::Hello { version: CHAT_VERSION, name: claimed.to_owned() });
    peer.send(&ChatMsg::Text { seq: Seq(1), text: format!("this is {claimed}, really") });
    let mut stream = TcpStream::connect(addr).unwrap();
    let outcome = drive(&mut stream, &mut peer, Instant::now() + DROP_DEADLINE, |_| false);
    (peer.is_secured(), outcome)
}

// ---------------------------------------------------------------------------
// 1. No text crosses in clear.

/// Ethernet type of IPv4, and `ETH_P_ALL` (every protocol) for the capture.
const ETH_P_IP: u16 = 0x0800;
const ETH_P_ALL: u16 = 0x0003;

/// One captured TCP segment to or from the watched port.
#[derive(Debug)]
struct Segment {
    to_port: bool,
    /// The other end's port: tells the connections on the port apart.
    other: u16,
    seq: u32,
    syn: bool,
    payload: Vec<u8>,
}

/// A packet capture on every interface (an `AF_PACKET` socket), keeping TCP
/// over IPv4 loopback to or from one port.
struct Capture {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Segment>>,
}

impl Capture {
    /// Starts capturing, or says why it cannot.
    fn start(port: u16) -> Result<Capture, String> {
        use socket2::{Domain, Protocol, Socket, Type};
        let proto = Protocol::from(i32::from(ETH_P_ALL.to_be()));
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(proto))
            .map_err(|e| format!("no AF_PACKET socket ({e}); needs root or CAP_NET_RAW"))?;
        socket.set_read_timeout(Some(Duration::from_millis(50))).map_err(|e| e.to_string())?;
        let _ = socket.set_recv_buffer_size(16 << 20);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut segments = Vec::new();
            let mut buf = vec![0u8; 70_000];
            loop {
                match (&socket).read(&mut buf) {
                    Ok(n) => segments.extend(parse(&buf[..n], port)),
                    // The reader stops once asked and the socket is drained.
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        if flag.load(Ordering::Relaxed) {
                            return segments;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => panic!("capture: {e}"),
                }
            }
        });
        Ok(Capture { stop, thread })
    }

    fn finish(self) -> Vec<Segment> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// The TCP segment in an Ethernet frame from `lo`, if it is IPv4 loopback
/// TCP to or from `port`.
fn parse(frame: &[u8], port: u16) -> Option<Segment> {
    let be16 = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    if frame.len() < 14 + 20 || be16(frame, 12) != ETH_P_IP {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(ip, 2));
    if ip[9] != 6 || ip[12] != 127 || ip[16] != 127 || total > ip.len() || total < ihl + 20 {
        return None;
    }
    let tcp = &ip[ihl..total];
    let (src, dst) = (be16(tcp, 0), be16(tcp, 2));
    if src != port && dst != port {
        return None;
    }
    let offset = usize::from(tcp[12] >> 4) * 4;
    Some(Segment {
        to_port: dst == port,
        other: if dst == port { src } else { dst },
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        syn: tcp[13] & 0x02 != 0,
        payload: tcp.get(offset..)?.to_vec(),
    })
}

/// The byte stream one direction carried, put together from its segments
/// by sequence number (loopback shows each segment twice, out and in).
fn reassemble(segments: &[&Segment], to_port: bool) -> Vec<u8> {
    let dir: Vec<&Segment> = segments.iter().copied().filter(|s| s.to_port == to_port).collect();
    // The last connection between the two ports is the chat's (attempts
    // that failed before it had the same ports).
    let last_syn = dir.iter().rposition(|s| s.syn).expect("the capture saw the SYN");
    let dir = &dir[last_syn..];
    let isn = dir[0].seq;
    let mut parts = BTreeMap::new();
    for s in dir.iter().filter(|s| !s.payload.is_empty()) {
        parts.insert(s.seq.wrapping_sub(isn).wrapping_sub(1), &s.payload);
    }
    let mut stream = Vec::new();
    for (at, payload) in parts {
        let at = usize::try_from(at).unwrap();
        assert!(at <= stream.len(), "the capture missed bytes {}..{at}", stream.len());
        let end = at + payload.len();
        if end > stream.len() {
            stream.resize(end, 0);
            stream[at..end].copy_from_slice(payload);
        }
    }
    stream
}

fn frames(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut decoder = FrameDecoder::new();
    decoder.push(stream);
    let mut out = Vec::new();
    while let Ok(Some(frame)) = decoder.next_frame() {
        out.push(frame);
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_text_crosses_in_clear() {
    const N: usize = 20;
    let dir = temp_dir("trust-capture");
    let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut bob = logged_in_client("Bob", addr, &dir);
    let mut ann = logged_in_client("Ann", addr, &dir);
    let port = listed_chat_addr(addr, "Bob").port();
    let capture = match Capture::start(port) {
        Ok(c) => c,
        Err(why) => {
            println!("skipped: cannot capture packets on loopback: {why}");
            return;
        }
    };
    let texts: Vec<String> = (0..2 * N)
        .map(|_| {
            let mut b = [0u8; 16];
            rand::rng().fill_bytes(&mut b);
            b.iter().map(|x| format!("{x:02x}")).collect()
        })
        .collect();
    call(&mut ann, &mut bob);
    for (i, t) in texts.iter().enumerate() {
        if i < N {
            ann.send(t);
            bob.expect(&format!("] Ann: {t}"));
        } else {
            bob.send(t);
            ann.expect(&format!("] Bob: {t}"));
        }
    }
    ann.send("/back");
    ann.expect("Chat with Bob ended: you left the chat.");
    bob.expect("Chat with Ann ended: Ann left the chat.");
    let all = capture.finish();
    // The chat's connection is the one that carried the most: the port
    // also saw the callee's punching attempts (PROTOCOL §14.1).
    let mut carried_by: BTreeMap<u16, usize> = BTreeMap::new();
    for s in &all {
        *carried_by.entry(s.other).or_default() += s.payload.len();
    }
    let chat = carried_by.iter().max_by_key(|(_, n)| **n).map(|(p, _)| *p);
    let segments: Vec<&Segment> = all.iter().filter(|s| Some(s.other) == chat).collect();

    let to_bob = reassemble(&segments, true);
    let to_ann = reassemble(&segments, false);
    // Positive control: the capture saw the whole chat. Each stream starts
    // with its cleartext preamble (the caller's names Ann and Bob) and holds
    // at least the handshake and one sealed frame per text.
    let mut preamble = Vec::new();
    let call = Call { caller: name("Ann"), callee: name("Bob") };
    write_frame(&mut preamble, &Preamble { version: CHAT_VERSION, call: Some(call) }.encode());
    assert!(to_bob.starts_with(&preamble), "no caller preamble: {:02x?}", &to_bob[..16]);
    assert!(contains(&to_bob, b"Ann") && contains(&to_bob, b"Bob"));
    assert!(to_ann.starts_with(&[0, 0, 0, 2, 0, CHAT_VERSION]), "{:02x?}", &to_ann[..8]);
    let (f_bob, f_ann) = (frames(&to_bob), frames(&to_ann));
    assert!(f_bob.len() >= 3 + N, "{} frames to Bob", f_bob.len());
    assert!(f_ann.len() >= 2 + N, "{} frames to Ann", f_ann.len());
    let carried: usize = f_bob.iter().chain(&f_ann).map(Vec::len).sum();
    assert!(carried >= texts.iter().map(String::len).sum::<usize>());
    // No text in either stream, nor in any single segment.
    for t in &texts {
        for (what, bytes) in [("to Bob", &to_bob), ("to Ann", &to_ann)] {
            assert!(!contains(bytes, t.as_bytes()), "{t:?} crossed in clear {what}");
        }
        assert!(all.iter().all(|s| !contains(&s.payload, t.as_bytes())), "{t:?} in clear");
    }
    println!(
        "captured {} segments, {} bytes to Bob and {} to Ann, {} frames; no text in clear",
        all.len(),
        to_bob.len(),
        to_ann.len(),
        f_bob.len() + f_ann.len()
    );
}

// ---------------------------------------------------------------------------
// 2. Impersonation fails.

#[test]
fn a_stranger_claiming_a_name_is_dropped_without_a_word() {
    let dir = temp_dir("trust-impersonate");
    let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut bob = logged_in_client("Bob", addr, &dir);
    let mut ann = logged_in_client("Ann", addr, &dir);
    let bob_addr = listed_chat_addr(addr, "Bob");
    let bob_key = public_key(&dir, "Bob");
    bob.send("2");
    bob.expect("Waiting for a peer to connect");
    let mark = bob.mark();

    // Claiming Ann, who is online with another key; claiming Zed, offline.
    for claimed in ["Ann", "Zed"] {
        let started = Instant::now();
        let (secured, outcome) = stranger_call(bob_addr, claimed, "Bob", bob_key);
        assert!(secured, "the stranger claiming {claimed} did not finish the handshake");
        assert_eq!(outcome, Outcome::Closed, "Bob kept the stranger claiming {claimed}");
        println!("the stranger claiming {claimed} was dropped after {:?}", started.elapsed());
    }
    // The real Ann gets through at once, and the stranger left no line.
    call_waiting(&mut ann, &mut bob);
    assert_eq!(bob.lines_since(mark).len(), 1, "{:?}", bob.lines_since(mark));
    say_and_leave(&mut ann, &mut bob, "it is me");
}

// ---------------------------------------------------------------------------
// 3. A changed key is refused with the warning; `trust` accepts it.

/// Reads the warning lines up to the `p2pchat trust` command; returns the
/// command's arguments after `p2pchat`.
fn expect_warning(p: &mut Proc, peer: &str, new_fingerprint: &str) -> Vec<String> {
    let warning = format!("WARNING: THE KEY OF {} HAS CHANGED", peer.to_uppercase());
    p.expect_with(&warning, LINE_TIMEOUT, |l| {
        assert!(!l.contains(&format!("Chat with {peer} started")), "chat started: {l}");
        assert!(!l.starts_with(&format!("Connecting to {peer}")), "no warning: {l}");
        l == warning
    });
    p.expect("The new key was refused.");
    p.expect("pinned key: fingerprint");
    let now = p.expect("key now:");
    assert!(now.ends_with(&format!("fingerprint {new_fingerprint}")), "{now}");
    let command = p.expect("p2pchat trust");
    assert_eq!(command.trim(), format!("p2pchat trust {peer} {new_fingerprint}"));
    command.split_whitespace().skip(1).map(str::to_owned).collect()
}

#[test]
fn a_changed_key_is_refused_until_trusted() {
    let dir = temp_dir("trust-changed");
    let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut bob = logged_in_client("Bob", addr, &dir);
    let mut ann = logged_in_client("Ann", addr, &dir);

    let (connecting, started) = call(&mut ann, &mut bob);
    assert!(connecting.ends_with("(new, now pinned)"), "{connecting}");
    assert!(started.ends_with("(new, now pinned)."), "{started}");
    say_and_leave(&mut ann, &mut bob, "first");
    let (connecting, started) = call(&mut ann, &mut bob);
    assert!(connecting.ends_with("(pinned, not verified)"), "{connecting}");
    assert!(started.ends_with("(pinned, not verified)."), "{started}");
    say_and_leave(&mut ann, &mut bob, "second");

    // Bob loses his identity file and comes back with a new key.
    bob.send("3");
    assert!(bob.wait_exit(Duration::from_secs(10)).success());
    std::fs::remove_file(identity_file(&dir, "Bob")).unwrap();
    let mut bob = logged_in_client("Bob", addr, &dir);
    let fingerprint = public_key(&dir, "Bob").fingerprint().to_string();
    let whoami = run_as(&dir, "Bob", &["whoami"]);
    assert_eq!(String::from_utf8(whoami.stdout).unwrap().trim(), fingerprint);

    // Ann calls Bob: the warning, and no chat.
    bob.send("2");
    bob.expect("Waiting for a peer to connect");
    let mark = bob.mark();
    ann.send("1");
    ann.expect("Peer username:");
    ann.send("Bob");
    let command = expect_warning(&mut ann, "Bob", &fingerprint);
    ann.expect("Enter choice:");
    bob.send("/back");
    bob.expect("Stopped waiting.");
    assert_eq!(bob.lines_since(mark), ["Stopped waiting."], "Bob heard of the refused call");

    // Bob calls Ann: she sees the warning and refuses; Bob is told.
    ann.send("2");
    ann.expect("Waiting for a peer to connect");
    let ann_mark = ann.mark();
    bob.expect("Enter choice:");
    bob.send("1");
    bob.expect("Peer username:");
    bob.send("Ann");
    assert_eq!(expect_warning(&mut ann, "Bob", &fingerprint), command);
    let told = bob.expect("error:");
    assert_eq!(told, "error: Ann did not take the chat (busy or gone)");
    ann.send("/back");
    ann.expect("Stopped waiting.");
    assert!(ann.lines_since(ann_mark).iter().all(|l| !l.contains("Chat with Bob started")));

    // Ann runs the command from the warning; the next chat is verified.
    let args: Vec<&str> = command.iter().map(String::as_str).collect();
    let out = run_as(&dir, "Ann", &args);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(said.starts_with(&format!("Bob: {fingerprint} replaces ")), "{said}");
    let (connecting, started) = call(&mut ann, &mut bob);
    assert!(connecting.ends_with(&format!("fingerprint {fingerprint} (verified)")), "{connecting}");
    assert!(started.ends_with("(pinned, not verified)."), "{started}");
    say_and_leave(&mut bob, &mut ann, "new key, same Bob");
}

// ---------------------------------------------------------------------------
// 4. A registry that lies about a pinned key.

/// A registry proxy for Ann that, while `lie` is set, passes each of
/// Bob's entries through `change`.
fn lying_registry(
    server: SocketAddr,
    lie: Arc<AtomicBool>,
    change: impl Fn(&mut p2pchat_core::Entry) + Send + 'static,
) -> RegistryProxy {
    let rewrite = move |msg: ServerMsg| {
        if !lie.load(Ordering::Relaxed) {
            return msg;
        }
        let fix = |mut e: p2pchat_core::Entry| {
            if e.name.as_str() == "Bob" {
                change(&mut e);
            }
            e
        };
        match msg {
            ServerMsg::Found { entry } => ServerMsg::Found { entry: entry.map(fix) },
            ServerMsg::ListPage { entries, next } => {
                ServerMsg::ListPage { entries: entries.into_iter().map(fix).collect(), next }
            }
            // An introduction to Bob: his entry as above, and the only
            // address to try him at is the one it lists.
            ServerMsg::Introduced { intro: Some(mut intro) }
                if intro.peer.name.as_str() == "Bob" =>
            {
                intro.peer = fix(intro.peer);
                intro.candidates = vec![intro.peer.chat_addr()];
                ServerMsg::Introduced { intro: Some(intro) }
            }
            other => other,
        }
    };
    RegistryProxy::start(server, Box::new(rewrite)).unwrap()
}

#[test]
fn a_registry_lying_about_a_pinned_key_is_caught() {
    let dir = temp_dir("trust-lying-registry");
    let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
    let lie = Arc::new(AtomicBool::new(false));
    let forged = random_key().public_key();
    let proxy = lying_registry(addr, lie.clone(), move |e| e.key = forged);
    let mut bob = logged_in_client("Bob", addr, &dir);
    let mut ann = logged_in_client("Ann", proxy.addr(), &dir);

    let (connecting, _) = call(&mut ann, &mut bob);
    assert!(connecting.ends_with("(new, now pinned)"), "{connecting}");
    say_and_leave(&mut ann, &mut bob, "pinned now");

    lie.store(true, Ordering::Relaxed);
    bob.send("2");
    bob.expect("Waiting for a peer to connect");
    let mark = bob.mark();
    ann.send("1");
    ann.expect("Peer username:");
    ann.send("Bob");
    expect_warning(&mut ann, "Bob", &forged.fingerprint().to_string());
    ann.expect("Enter choice:");

    // The registry tells the truth again: the chat goes through (so Bob
    // heard nothing of the refused one) with the key still pinned.
    lie.store(false, Ordering::Relaxed);
    let (connecting, _) = call_waiting(&mut ann, &mut bob);
    assert!(connecting.ends_with("(pinned, not verified)"), "{connecting}");
    assert_eq!(bob.lines_since(mark).len(), 1, "{:?}", bob.lines_since(mark));
    say_and_leave(&mut ann, &mut bob, "the truth");
}

// ---------------------------------------------------------------------------
// 5. A man in the middle who re-keys both sides.

#[test]
fn a_man_in_the_middle_is_caught_on_both_sides() {
    let dir = temp_dir("trust-mitm");
    let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut bob = logged_in_client("Bob", addr, &dir);
    let bob_addr = listed_chat_addr(addr, "Bob");
    let bob_key = public_key(&dir, "Bob");

    // The path to Bob leads to the man in the middle: the registry (through
    // the proxy) lists Bob's real key but the middle's port.
    let middle = TcpListener::bind("127.0.0.1:0").unwrap();
    let middle_port = middle.local_addr().unwrap().port();
    let redirect = Arc::new(AtomicBool::new(true));
    let proxy = lying_registry(addr, redirect.clone(), move |e| e.chat_port = middle_port);
    let mut ann = logged_in_client("Ann", proxy.addr(), &dir);
    bob.send("2");
    bob.expect("Waiting for a peer to connect");
    let mark = bob.mark();

    let mitm = std::thread::spawn(move || {
        let mut from_ann = middle.accept().unwrap().0;
        let key = random_key();
        // Toward Ann it plays Bob with its own key; toward Bob, Ann.
        let mut as_bob = RawPeer::callee(key.clone(), [5; 32]);
        as_bob.send(&ChatMsg::Hello { version: CHAT_VERSION, name: "Bob".to_owned() });
        let deadline = Instant::now() + DROP_DEADLINE;
        let ann_side = drive(&mut from_ann, &mut as_bob, deadline, |_| false);
        let bob_side = stranger_call(bob_addr, "Ann", "Bob", bob_key);
        (ann_side, bob_side)
    });
    ann.send("1");
    ann.expect("Peer username:");
    ann.send("Bob");
    let connecting = ann.expect("Connecting to Bob at");
    assert!(connecting.contains(&format!(":{middle_port},")), "{connecting}");
    ann.expect("Waiting for Bob to accept...");
    let error = ann.expect_with("the next line", LINE_TIMEOUT, |_| true);
    assert_eq!(
        error,
        "error: the chat at Bob's address proved another key than the registry lists for \
         Bob: someone may be in the middle; chat refused"
    );
    let (ann_side, (secured, bob_side)) = mitm.join().unwrap();
    assert_eq!(ann_side, Outcome::Closed, "Ann kept talking to the middle");
    assert!(secured, "the middle's handshake with Bob did not finish");
    assert_eq!(bob_side, Outcome::Closed, "Bob kept the middle's call as Ann");

    // Without the middle, Ann's call goes through; Bob heard nothing else.
    redirect.store(false, Ordering::Relaxed);
    ann.expect("Enter choice:");
    call_waiting(&mut ann, &mut bob);
    assert_eq!(bob.lines_since(mark).len(), 1, "{:?}", bob.lines_since(mark));
    say_and_leave(&mut ann, &mut bob, "no one between us");
}
