//! Home networks behind NATs, for tests of NAT traversal on real network
//! paths.
//!
//! A test describes what it needs, not the commands:
//!
//! ```no_run
//! use p2pchat_tests::netns_nat::{NatKind, NatNet, NatTopology};
//!
//! let topology = NatTopology::new()
//!     .public_host("registry")
//!     .home("home1", "192.0.2.0/25", NatKind::EndpointIndependent)
//!     .home("home2", "198.51.100.0/24", NatKind::Symmetric)
//!     .host("alice", "home1")
//!     .host("carol", "home1")
//!     .host("bob", "home2");
//! let Some(net) = NatNet::build_or_skip("my test", &topology) else { return };
//! let alice = net.host("alice");
//! let home1 = net.public_ip("home1");
//! ```
//!
//! The public segment is 203.0.113.0/24, one bridge in an `inet`
//! namespace: each public host is `.10`, `.11`, … on it, and each home's
//! router is `.2`, `.3`, … on it (its `wan` interface). Each home is a
//! router namespace with a bridge `lan` holding the home's range (the
//! router is the range's first address + 1, hosts + 10, + 11, …) and
//! forwarding between `lan` and `wan` through a NAT:
//!
//! - [`NatKind::EndpointIndependent`]: nftables `masquerade`, which keeps
//!   the source port and uses one mapping for every destination.
//! - [`NatKind::Symmetric`]: `masquerade random`, a new port per
//!   destination.
//! - [`NatKind::DropsInboundSyn`]: `masquerade`, and every TCP SYN without
//!   ACK that arrives on `wan` is dropped before connection tracking sees it.
//!
//! Every router drops what arrives on `wan` unless connection tracking
//! relates it to something a home host sent (a peer's SYN in a TCP
//! simultaneous open counts), silently: no RST, no ICMP (RFC 5382 REQ-4).
//! With Linux's default replies, the early SYN of a punch would be answered
//! and its conntrack entry would take the port, moving the later outbound
//! mapping, so punching would fail where a home router lets it through.
//! Routers do not hairpin: a home host that connects to its own router's
//! public address is refused.
//!
//! Only documentation ranges are used and nothing is routed out of the
//! namespaces. Namespaces are named `p2pn-<pid>-<counter>-<name>` like those
//! of [`crate::netns`] and deleted when the [`NatNet`] is dropped, also on
//! panic; the next build removes those of killed runs.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;

use crate::netns::{COUNTER, NS_PREFIX, Net, NetHost, NsGuard, nft, quiet, remove_stale, run};

/// The public segment's range.
pub const PUBLIC_BASE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 0);

/// The host part of the first router on the public segment.
const FIRST_ROUTER: u8 = 2;

/// The host part of the first public host.
const FIRST_PUBLIC_HOST: u8 = 10;

/// Most homes (routers take `.2` to `.9` of the public segment).
const MAX_HOMES: usize = 8;

/// Most hosts in one home or on the public segment.
const MAX_HOSTS: u8 = 100;

/// How a home's router translates and filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// Endpoint-independent mapping, port kept (`masquerade`).
    EndpointIndependent,
    /// A new port per destination (`masquerade random`).
    Symmetric,
    /// Endpoint-independent, but every inbound SYN without ACK is dropped.
    DropsInboundSyn,
}

#[derive(Debug, Clone)]
struct HomeSpec {
    name: String,
    base: Ipv4Addr,
    prefix: u8,
    kind: NatKind,
}

/// A description of a public segment, homes behind NATs, and hosts.
#[derive(Debug, Clone, Default)]
pub struct NatTopology {
    public_hosts: Vec<String>,
    homes: Vec<HomeSpec>,
    /// (host, home)
    hosts: Vec<(String, String)>,
}

impl NatTopology {
    /// An empty topology.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a host on the public segment.
    pub fn public_host(mut self, name: &str) -> Self {
        self.check_name(name);
        self.public_hosts.push(name.to_owned());
        self
    }

    /// Adds a home with range `cidr` (a /24 to /28 inside 192.0.2.0/24 or
    /// 198.51.100.0/24) behind a NAT of `kind`.
    pub fn home(mut self, name: &str, cidr: &str, kind: NatKind) -> Self {
        let (base, prefix) = cidr
            .split_once('/')
            .and_then(|(a, p)| Some((a.parse::<Ipv4Addr>().ok()?, p.parse::<u8>().ok()?)))
            .filter(|(a, p)| {
                let [x, y, z, w] = a.octets();
                let doc = matches!((x, y, z), (192, 0, 2) | (198, 51, 100));
                let size = 1u16 << (32 - u16::from(*p).clamp(24, 32));
                doc && (24..=28).contains(p) && u16::from(w) % size == 0
            })
            .unwrap_or_else(|| panic!("home {name}: {cidr} is not a documentation /24-/28"));
        let overlaps = self.homes.iter().any(|h| {
            let (a, b) = (u32::from(h.base), u32::from(base));
            let (ma, mb) = (!0u32 << (32 - h.prefix), !0u32 << (32 - prefix));
            a & mb == b & mb || a & ma == b & ma
        });
        assert!(!overlaps, "home {name}: {cidr} overlaps another home");
        assert!(self.homes.iter().all(|h| h.name != name), "home {name} twice");
        assert!(self.homes.len() < MAX_HOMES, "at most {MAX_HOMES} homes");
        self.homes.push(HomeSpec { name: name.to_owned(), base, prefix, kind });
        self
    }

    /// Adds a host in `home`.
    pub fn host(mut self, name: &str, home: &str) -> Self {
        self.check_name(name);
        self.hosts.push((name.to_owned(), home.to_owned()));
        self
    }

    fn check_name(&self, name: &str) {
        assert!(
            !name.is_empty() && name.len() <= 12 && name.bytes().all(|b| b.is_ascii_alphanumeric()),
            "name {name:?}: 1-12 ASCII letters and digits"
        );
        let taken = self.public_hosts.iter().chain(self.hosts.iter().map(|(h, _)| h));
        assert!(taken.clone().all(|h| h != name), "host {name} twice");
    }
}

/// A built NAT topology; dropping it deletes every namespace it made.
#[derive(Debug)]
pub struct NatNet {
    hosts: BTreeMap<String, NetHost>,
    public_ips: BTreeMap<String, Ipv4Addr>,
    routers: BTreeMap<String, NetHost>,
    guards: Vec<NsGuard>,
}

impl NatNet {
    /// Builds `topology` if namespaces can be made here; else prints one
    /// line, `skipped <test>: <why>`, and returns `None`.
    pub fn build_or_skip(test: &str, topology: &NatTopology) -> Option<NatNet> {
        match Net::available() {
            Ok(()) => Some(Self::build(topology)),
            Err(why) => {
                println!("skipped {test}: network namespaces unavailable: {why}");
                None
            }
        }
    }

    /// Builds `topology`; panics if a step fails (after deleting what it
    /// made so far).
    pub fn build(topology: &NatTopology) -> NatNet {
        remove_stale();
        let prefix = format!(
            "{NS_PREFIX}{}-{}-",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut net = NatNet {
            hosts: BTreeMap::new(),
            public_ips: BTreeMap::new(),
            routers: BTreeMap::new(),
            guards: Vec::new(),
        };
        let inet = format!("{prefix}inet");
        net.add_ns(&inet);
        run(&["ip", "-n", &inet, "link", "set", "lo", "up"]);
        run(&["ip", "-n", &inet, "link", "add", "br0", "type", "bridge"]);
        run(&["ip", "-n", &inet, "link", "set", "br0", "up"]);
        // Nothing in `inet` itself has an address: it only bridges.
        let mut port = 0;
        let mut veth_into = |ns: &str, inner: &str, bridge_ns: &str, bridge: &str| {
            let outer = format!("p{port}");
            port += 1;
            run(&[
                "ip", "-n", bridge_ns, "link", "add", &outer, "type", "veth", "peer", "name",
                inner, "netns", ns,
            ]);
            run(&["ip", "-n", bridge_ns, "link", "set", &outer, "master", bridge]);
            run(&["ip", "-n", bridge_ns, "link", "set", &outer, "up"]);
            run(&["ip", "-n", ns, "link", "set", inner, "up"]);
        };
        for (i, name) in topology.public_hosts.iter().enumerate() {
            let addr = add(PUBLIC_BASE, FIRST_PUBLIC_HOST + checked(i));
            let ns = format!("{prefix}{name}");
            net.add_ns(&ns);
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            veth_into(&ns, "eth0", &inet, "br0");
            run(&["ip", "-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
            net.hosts.insert(name.clone(), NetHost { ns, addr });
        }
        for (i, home) in topology.homes.iter().enumerate() {
            let public = add(PUBLIC_BASE, FIRST_ROUTER + checked(i));
            let lan_ip = add(home.base, 1);
            let ns = format!("{prefix}r{i}");
            net.add_ns(&ns);
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            run(&["ip", "netns", "exec", &ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
            veth_into(&ns, "wan", &inet, "br0");
            run(&["ip", "-n", &ns, "addr", "add", &format!("{public}/24"), "dev", "wan"]);
            run(&["ip", "-n", &ns, "link", "add", "lan", "type", "bridge"]);
            run(&["ip", "-n", &ns, "link", "set", "lan", "up"]);
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{lan_ip}/{}", home.prefix),
                "dev",
                "lan",
            ]);
            // Where br_netfilter is loaded, frames bridged between two
            // home hosts would pass the router's forward filter: keep the
            // LAN a plain switch (the key is absent without the module).
            let _ = quiet(
                "ip",
                &[
                    "netns",
                    "exec",
                    &ns,
                    "sysctl",
                    "-q",
                    "-w",
                    "net.bridge.bridge-nf-call-iptables=0",
                ],
            );
            nft(&ns, &router_rules(home.kind));
            let members = topology.hosts.iter().filter(|(_, h)| *h == home.name);
            for (next, (host, _)) in members.enumerate() {
                let addr = add(home.base, 10 + checked(next));
                let hns = format!("{prefix}{host}");
                net.add_ns(&hns);
                run(&["ip", "-n", &hns, "link", "set", "lo", "up"]);
                veth_into(&hns, "eth0", &ns, "lan");
                run(&[
                    "ip",
                    "-n",
                    &hns,
                    "addr",
                    "add",
                    &format!("{addr}/{}", home.prefix),
                    "dev",
                    "eth0",
                ]);
                run(&["ip", "-n", &hns, "route", "add", "default", "via", &lan_ip.to_string()]);
                net.hosts.insert(host.clone(), NetHost { ns: hns, addr });
            }
            net.public_ips.insert(home.name.clone(), public);
            net.routers.insert(home.name.clone(), NetHost { ns, addr: public });
        }
        for (host, home) in &topology.hosts {
            assert!(net.hosts.contains_key(host), "host {host}: no home {home}");
        }
        net
    }

    /// The host called `name`; panics if the topology has none.
    pub fn host(&self, name: &str) -> &NetHost {
        self.hosts.get(name).unwrap_or_else(|| panic!("no host {name} in the topology"))
    }

    /// The public address of `home`'s router: what a public host sees
    /// the home's hosts come from.
    pub fn public_ip(&self, home: &str) -> Ipv4Addr {
        *self.public_ips.get(home).unwrap_or_else(|| panic!("no home {home} in the topology"))
    }

    /// `home`'s router, e.g. to read its connection tracking table.
    pub fn router(&self, home: &str) -> &NetHost {
        self.routers.get(home).unwrap_or_else(|| panic!("no home {home} in the topology"))
    }

    fn add_ns(&mut self, ns: &str) {
        run(&["ip", "netns", "add", ns]);
        // Guarded at once, so that a panic later in `build` deletes it.
        self.guards.push(NsGuard(ns.to_owned()));
    }
}

/// The router's ruleset: NAT out of `wan`, forwarding only what `lan`
/// started (and what conntrack relates to it), no answer to anything else.
fn router_rules(kind: NatKind) -> String {
    let masquerade = match kind {
        NatKind::EndpointIndependent | NatKind::DropsInboundSyn => "masquerade",
        NatKind::Symmetric => "masquerade random",
    };
    let raw = match kind {
        NatKind::DropsInboundSyn => {
            "  chain raw {\n    type filter hook prerouting priority raw; policy accept;\n    iifname \"wan\" tcp flags & (syn | ack) == syn drop\n  }\n"
        }
        NatKind::EndpointIndependent | NatKind::Symmetric => "",
    };
    format!(
        "table ip p2pchat_nat\ndelete table ip p2pchat_nat\ntable ip p2pchat_nat {{
{raw}  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname \"wan\" {masquerade}
  }}
  chain forward {{
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname \"lan\" oifname \"wan\" accept
  }}
  chain input {{
    type filter hook input priority filter; policy drop;
    iifname \"lo\" accept
    ct state established,related accept
    iifname \"lan\" accept
  }}
}}
"
    )
}

fn add(base: Ipv4Addr, n: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + u32::from(n))
}

fn checked(i: usize) -> u8 {
    u8::try_from(i).ok().filter(|&i| i < MAX_HOSTS).unwrap_or_else(|| panic!("too many hosts"))
}
