//! The registry's messages: what a client asks and what the server answers.
//!
//! These are the bodies of registry datagrams; [`crate::codec`] puts the
//! header in front and turns them into bytes. `docs/PROTOCOL.md` gives the
//! byte layout of each.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::key::PublicKey;
use crate::name::UserName;

/// Length of a [`Cookie`] in bytes.
pub const COOKIE_LEN: usize = 16;

/// Length of every `GetCookie` datagram, padding included: the client pads
/// to exactly this, and the server drops a shorter one. Far longer than the
/// 26-byte `Challenge` that answers it, so the answer is never longer than
/// the request, and no reply of version 1 (whose `Challenge` could pass for
/// a `GetCookie`) is ever taken for one.
pub const GET_COOKIE_LEN: usize = 64;

/// Most local addresses a client announces in an introduction
/// ([`ClientMsg::Introduce`], [`ClientMsg::IntroAck`]) and the registry
/// passes on to the other side: IPv4 only. More are ignored. The registry
/// keeps none of them past the introduction.
pub const MAX_LOCAL_ADDRS: usize = 4;

/// Identifies one request; its reply carries the same id, so a retransmitted
/// request and a duplicated reply are recognised for what they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u32);

/// Proof that the sender receives datagrams at the address it sends from:
/// a keyed hash of that address and a time epoch, minted by the server and
/// echoed by the client in every request after `GetCookie`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cookie(pub [u8; COOKIE_LEN]);

/// Where to resume a paged list: the server hands it out with a page and the
/// client sends it back, unchanged, to get the next page. Opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor(pub String);

/// One online user, as the registry lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// The user's name, as the user wrote it at login.
    pub name: UserName,
    /// The source address the registry observed the user's datagrams from.
    pub addr: SocketAddr,
    /// The TCP port on which the user takes chats.
    pub chat_port: u16,
    /// The public key the user logged in with: the one its chats must prove.
    pub key: PublicKey,
}

impl Entry {
    /// Where to open a chat with this user: the observed IP address and the
    /// declared chat port.
    pub fn chat_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr.ip(), self.chat_port)
    }
}

/// What a client sends to the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// Asks for a cookie. The datagram is padded so that it is at least as
    /// long as the `Challenge` that answers it.
    GetCookie {
        /// Any bytes (zeros by convention); only their count matters.
        padding: Vec<u8>,
    },
    /// Logs in as `name` with `key`, or refreshes the lease when the sender
    /// already holds it. Sent again every lease/3 as the keepalive.
    Login {
        /// The cookie the server handed out.
        cookie: Cookie,
        /// The requested name; the server checks it (see [`UserName`]).
        name: String,
        /// The TCP port on which this client takes chats.
        chat_port: u16,
        /// The client's long-term public key; the name stays bound to it
        /// while listed.
        key: PublicKey,
    },
    /// Asks for one page of the online list, from the start or after a cursor.
    List {
        /// The cookie the server handed out.
        cookie: Cookie,
        /// `None` for the first page, else the `next` of the previous page.
        after: Option<Cursor>,
    },
    /// Asks for one user's entry.
    Lookup {
        /// The cookie the server handed out.
        cookie: Cookie,
        /// The name to look up, compared without regard to case.
        name: String,
    },
    /// Removes the sender's own entry, if it has one.
    Logout {
        /// The cookie the server handed out.
        cookie: Cookie,
    },
    /// Asks the registry to introduce the sender to the user `name`: the
    /// callee gets the caller's candidates unprompted, and the reply
    /// carries the callee's (and the relay token) once the callee has
    /// acknowledged, or after [`INTRO_HOLD`](crate::INTRO_HOLD) without.
    Introduce {
        /// The cookie the server handed out.
        cookie: Cookie,
        /// The callee's name, compared by name key.
        name: String,
        /// The sender's own IPv4 interface addresses (its host
        /// candidates), for a callee on its LAN; the first
        /// [`MAX_LOCAL_ADDRS`] are passed on, the rest ignored.
        locals: Vec<Ipv4Addr>,
    },
    /// Acknowledges an unprompted introduction: the registry stops
    /// sending it, and passes `locals` on to the caller. Not answered.
    IntroAck {
        /// The cookie the server handed out.
        cookie: Cookie,
        /// The introduction's nonce.
        nonce: u64,
        /// The sender's own IPv4 interface addresses, for the caller; the
        /// first [`MAX_LOCAL_ADDRS`] are passed on, the rest ignored.
        locals: Vec<Ipv4Addr>,
    },
}

impl ClientMsg {
    /// The cookie the message carries, if it is of a kind that carries one.
    pub fn cookie(&self) -> Option<&Cookie> {
        match self {
            ClientMsg::GetCookie { .. } => None,
            ClientMsg::Login { cookie, .. }
            | ClientMsg::List { cookie, .. }
            | ClientMsg::Lookup { cookie, .. }
            | ClientMsg::Logout { cookie }
            | ClientMsg::Introduce { cookie, .. }
            | ClientMsg::IntroAck { cookie, .. } => Some(cookie),
        }
    }
}

/// [`ClientMsg`] as the server decodes it: the same variants and fields,
/// but borrowing its strings from the datagram, so that decoding a request
/// allocates nothing. `server_codec`'s tests check that both decoders read
/// the same bytes alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientMsgRef<'a> {
    /// See [`ClientMsg::GetCookie`].
    GetCookie {
        /// Only its length matters.
        #[allow(dead_code)] // Checked by the datagram's length, not read.
        padding: &'a [u8],
    },
    /// See [`ClientMsg::Login`].
    Login {
        /// The cookie.
        cookie: Cookie,
        /// The requested name, as sent.
        name: &'a str,
        /// The chat port.
        chat_port: u16,
        /// The public key.
        key: PublicKey,
    },
    /// See [`ClientMsg::List`].
    List {
        /// The cookie.
        cookie: Cookie,
        /// The cursor's string, if any.
        after: Option<&'a str>,
    },
    /// See [`ClientMsg::Lookup`].
    Lookup {
        /// The cookie.
        cookie: Cookie,
        /// The name asked for, as sent.
        name: &'a str,
    },
    /// See [`ClientMsg::Logout`].
    Logout {
        /// The cookie.
        cookie: Cookie,
    },
    /// See [`ClientMsg::Introduce`].
    Introduce {
        /// The cookie.
        cookie: Cookie,
        /// The callee's name, as sent.
        name: &'a str,
        /// The local addresses' octets, 4 bytes each, as sent (any count).
        locals: &'a [u8],
    },
    /// See [`ClientMsg::IntroAck`].
    IntroAck {
        /// The cookie.
        cookie: Cookie,
        /// The introduction's nonce.
        nonce: u64,
        /// The local addresses' octets, 4 bytes each, as sent (any count).
        locals: &'a [u8],
    },
}

impl ClientMsgRef<'_> {
    /// The cookie the message carries, if it is of a kind that carries one.
    pub(crate) fn cookie(&self) -> Option<&Cookie> {
        match self {
            ClientMsgRef::GetCookie { .. } => None,
            ClientMsgRef::Login { cookie, .. }
            | ClientMsgRef::List { cookie, .. }
            | ClientMsgRef::Lookup { cookie, .. }
            | ClientMsgRef::Logout { cookie }
            | ClientMsgRef::Introduce { cookie, .. }
            | ClientMsgRef::IntroAck { cookie, .. } => Some(cookie),
        }
    }
}

/// Why the registry refused a well-formed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum RefuseReason {
    /// A listed user with another key holds this name (compared without
    /// regard to case).
    #[error("the name is taken")]
    NameTaken,
    /// The name breaks the naming rules.
    #[error("the name is invalid (1-32 bytes of UTF-8, no spaces or control characters)")]
    NameInvalid,
    /// The registry already lists as many users as it may.
    #[error("the server is full")]
    ServerFull,
    /// The request's protocol version is not one the server speaks.
    #[error("the server does not speak this protocol version")]
    UnsupportedVersion,
    /// The sender's address (its IPv4 address, or its IPv6 /64) already
    /// holds as many names as the registry allows one address.
    #[error("too many users are already logged in from this address")]
    TooManyFromAddress,
    /// The callee already has as many introductions waiting for its
    /// acknowledgement as the registry keeps, or the registry as many in
    /// all.
    #[error("too many introductions are under way; try again shortly")]
    TooManyIntroductions,
}

/// A relay token in an introduction: where the relay is and the hello this
/// side must present to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RelayTicket {
    /// The relay's TCP port, at the registry's IP address.
    pub port: u16,
    /// The hello to send the relay, [`RELAY_HELLO_LEN`](crate::RELAY_HELLO_LEN)
    /// bytes.
    pub hello: Vec<u8>,
}

/// What one side of a call learns about the other from the registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Introduction {
    /// Numbers the introduction: the callee acknowledges it by this, and
    /// both relay hellos carry it.
    pub nonce: u64,
    /// The other side's entry (for the callee: the caller's).
    pub peer: Entry,
    /// Where to try the other side, in order: the local addresses it
    /// announced in the introduction with its chat port, then its observed
    /// IP with its chat port.
    pub candidates: Vec<SocketAddr>,
    /// The relay and this side's hello, when the registry relays.
    pub relay: Option<RelayTicket>,
}

/// What the registry answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// A fresh cookie: the answer to `GetCookie`, and to any request whose
    /// cookie is missing, forged or expired (send the request again with it).
    Challenge {
        /// The cookie to echo from now on.
        cookie: Cookie,
    },
    /// The login (or lease refresh) took effect.
    Welcome {
        /// The address the server saw the request come from.
        observed: SocketAddr,
        /// Seconds the entry stays listed without another `Login`.
        lease_secs: u32,
    },
    /// The request was understood and refused.
    Refused {
        /// Why.
        reason: RefuseReason,
    },
    /// One page of the online list, sorted by case-folded name.
    ListPage {
        /// The users on this page.
        entries: Vec<Entry>,
        /// Where the next page starts; `None` on the last page.
        next: Option<Cursor>,
    },
    /// The answer to `Lookup`.
    Found {
        /// The user's entry, or `None` when no such user is online.
        entry: Option<Entry>,
    },
    /// The sender is not (or no longer) listed.
    LoggedOut,
    /// The answer to `Introduce` (`None`: no such user online, or the
    /// caller is not listed itself); also sent unprompted to the callee,
    /// with the caller's side, until it acknowledges it.
    Introduced {
        /// The introduction.
        intro: Option<Introduction>,
    },
}
