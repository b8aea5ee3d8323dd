//! A UDP proxy between one registry client and the registry server that
//! records every request and may rewrite the server's replies: a registry
//! that lies, or a path that redirects chats, for the end-to-end tests.
//!
//! Point a client's `--server` at [`RegistryProxy::addr`]. The server sees
//! every request come from the proxy's one upstream socket (so the client is
//! listed with the proxy's IP address, loopback in the tests, and its own
//! chat port). Replies go back to the address the last request came from.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use p2pchat_core::{MAX_DATAGRAM_LEN, ServerMsg, decode_reply, encode_reply};

/// How often the proxy's threads look at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Rewrites one decoded reply; returns it unchanged to pass it on as is.
pub type Rewrite = Box<dyn FnMut(ServerMsg) -> ServerMsg + Send>;

/// A running proxy; its threads stop when it is dropped.
pub struct RegistryProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
    threads: Vec<JoinHandle<()>>,
}

impl RegistryProxy {
    /// Starts a proxy on loopback (of `server`'s family) in front of
    /// `server`, passing each reply that decodes through `rewrite`. A reply
    /// that does not decode is passed on unchanged.
    pub fn start(server: SocketAddr, mut rewrite: Rewrite) -> io::Result<Self> {
        let any = SocketAddr::new(server.ip(), 0);
        let front = UdpSocket::bind(any)?;
        let back = UdpSocket::bind(any)?;
        back.connect(server)?;
        front.set_read_timeout(Some(STOP_POLL))?;
        back.set_read_timeout(Some(STOP_POLL))?;
        let addr = front.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));

        let up = {
            let (front, back) = (front.try_clone()?, back.try_clone()?);
            let (stop, requests, client) = (stop.clone(), requests.clone(), client.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; MAX_DATAGRAM_LEN + 1];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = front.recv_from(&mut buf) else { continue };
                    *client.lock().unwrap_or_else(PoisonError::into_inner) = Some(from);
                    requests.lock().unwrap_or_else(PoisonError::into_inner).push(buf[..n].to_vec());
                    let _ = back.send(&buf[..n]);
                }
            })
        };
        let down = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; MAX_DATAGRAM_LEN + 1];
                while !stop.load(Ordering::Relaxed) {
                    let Ok(n) = back.recv(&mut buf) else { continue };
                    let reply = match decode_reply(&buf[..n]) {
                        Ok((id, msg)) => encode_reply(id, &rewrite(msg)),
                        Err(_) => buf[..n].to_vec(),
                    };
                    let to = *client.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(to) = to {
                        let _ = front.send_to(&reply, to);
                    }
                }
            })
        };
        Ok(Self { addr, stop, requests, threads: vec![up, down] })
    }

    /// Where clients should send their requests.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request forwarded so far, as received.
    pub fn requests(&self) -> Vec<Vec<u8>> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for RegistryProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
