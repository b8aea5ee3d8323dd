//! Real network paths for end-to-end tests: network namespaces joined by
//! veth pairs, with loss from nftables.
//!
//! A test describes what it needs, not the commands:
//!
//! ```no_run
//! use p2pchat_tests::netns::{Net, Topology};
//!
//! let topology = Topology::new()
//!     .segment("lan", "192.0.2.0/24")
//!     .segment("wan", "198.51.100.0/24")
//!     .host("registry", "wan")
//!     .lossy_host("alice", "lan", 30);
//! let Some(net) = Net::build_or_skip("my test", &topology) else { return };
//! let alice = net.host("alice");
//! let mut cmd = alice.command("true");
//! ```
//!
//! Each segment is a bridge in a hub namespace that routes between the
//! segments; each host is a namespace with one veth into its segment's
//! bridge, address `.10`, `.11`, … of the segment and a default route via
//! the hub (`.1`). Only documentation ranges are accepted (192.0.2.0/24,
//! 198.51.100.0/24, 203.0.113.0/24), and nothing is routed out of the
//! namespaces: a packet to any other address has no route and fails.
//!
//! Every namespace is named `p2pn-<pid>-<counter>-<name>` and deleted when
//! the [`Net`] is dropped, also when the test panics; namespaces that a
//! killed test run left behind (their pid is gone) are deleted by the next
//! [`Net::build`]. Deleting a namespace deletes its veth ends.
//!
//! Where namespaces cannot be made (not root, no `ip` or `nft`, or
//! `ip netns add` refused), [`Net::build_or_skip`] prints one line saying so
//! and returns `None`, and the test returns; any failure after that check
//! panics.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// What every namespace name starts with, before the pid.
pub(crate) const NS_PREFIX: &str = "p2pn-";

/// The documentation address ranges (RFC 5737); segments must use one.
const DOC_RANGES: [Ipv4Addr; 3] =
    [Ipv4Addr::new(192, 0, 2, 0), Ipv4Addr::new(198, 51, 100, 0), Ipv4Addr::new(203, 0, 113, 0)];

/// The host part of the first host on a segment; the hub is `.1`.
const FIRST_HOST: u8 = 10;

/// The most hosts on one segment (`.10` to `.250`).
const MAX_HOSTS_PER_SEGMENT: usize = 240;

/// Numbers the [`Net`]s of one test process.
pub(crate) static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A description of a topology: segments and the hosts on them.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    segments: Vec<(String, Ipv4Addr)>,
    hosts: Vec<HostSpec>,
}

#[derive(Debug, Clone)]
struct HostSpec {
    name: String,
    segment: String,
    /// Percent of UDP and TCP packets dropped as they enter the host.
    loss_in: u8,
    /// Percent of UDP and TCP packets dropped as they leave the host.
    loss_out: u8,
}

impl Topology {
    /// An empty topology.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a segment `name` with the /24 `cidr`, which must be one of the
    /// documentation ranges, e.g. `"192.0.2.0/24"`.
    pub fn segment(mut self, name: &str, cidr: &str) -> Self {
        let base = cidr
            .strip_suffix("/24")
            .and_then(|a| a.parse::<Ipv4Addr>().ok())
            .filter(|a| DOC_RANGES.contains(a))
            .unwrap_or_else(|| panic!("segment {name}: {cidr} is not a documentation /24"));
        assert!(self.segments.iter().all(|(n, _)| n != name), "segment {name} twice");
        self.segments.push((name.to_owned(), base));
        self
    }

    /// Adds a lossless host `name` on `segment`.
    pub fn host(self, name: &str, segment: &str) -> Self {
        self.host_with_loss(name, segment, 0, 0)
    }

    /// Adds a host on `segment` that drops `percent` of the UDP and TCP
    /// packets it sends and of those it receives (so `percent` loss each
    /// way between it and a lossless host).
    pub fn lossy_host(self, name: &str, segment: &str, percent: u8) -> Self {
        self.host_with_loss(name, segment, percent, percent)
    }

    /// Adds a host on `segment` that drops `percent` of the UDP and TCP
    /// packets it sends (so `percent` loss each way between two such
    /// hosts).
    pub fn sender_lossy_host(self, name: &str, segment: &str, percent: u8) -> Self {
        self.host_with_loss(name, segment, 0, percent)
    }

    fn host_with_loss(mut self, name: &str, segment: &str, loss_in: u8, loss_out: u8) -> Self {
        assert!(loss_in <= 100 && loss_out <= 100, "host {name}: loss over 100%");
        assert!(
            !name.is_empty() && name.len() <= 16 && name.bytes().all(|b| b.is_ascii_alphanumeric()),
            "host name {name:?}: 1-16 ASCII letters and digits"
        );
        assert!(self.hosts.iter().all(|h| h.name != name), "host {name} twice");
        self.hosts.push(HostSpec {
            name: name.to_owned(),
            segment: segment.to_owned(),
            loss_in,
            loss_out,
        });
        self
    }
}

/// A host of a built [`Net`]: its namespace and address.
#[derive(Debug, Clone)]
pub struct NetHost {
    /// The namespace's name.
    pub ns: String,
    /// Its address on its segment.
    pub addr: Ipv4Addr,
}

impl NetHost {
    /// A command that runs `program` inside this host's namespace
    /// (`ip netns exec NS program`); add arguments as usual.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).arg(program);
        cmd
    }

    /// Runs `f` on a new thread that has entered this host's namespace, so
    /// that the sockets it makes are the host's; panics in the thread if
    /// the namespace cannot be entered.
    pub fn spawn_in<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.ns);
        std::thread::spawn(move || {
            use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
            use std::os::fd::AsFd;
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network))
                .unwrap_or_else(|e| panic!("enter {path}: {e}"));
            f()
        })
    }
}

/// A namespace that is deleted when dropped.
#[derive(Debug)]
pub(crate) struct NsGuard(pub(crate) String);

impl Drop for NsGuard {
    fn drop(&mut self) {
        // Best effort: a failure here must not turn a pass into a panic
        // during unwinding; a leftover is removed by the next build.
        let _ = quiet("ip", &["netns", "del", &self.0]);
    }
}

/// A built topology; dropping it deletes every namespace it made.
#[derive(Debug)]
pub struct Net {
    hosts: BTreeMap<String, NetHost>,
    /// Every namespace made, deleted on drop (in any order: deleting
    /// either end's namespace deletes a veth pair).
    guards: Vec<NsGuard>,
}

impl Net {
    /// Checks that namespaces can be made here: `Err` says why not.
    pub fn available() -> Result<(), String> {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?");
        if euid != "0" {
            return Err(format!("not root (euid {euid})"));
        }
        for (tool, arg) in [("ip", "-V"), ("nft", "--version")] {
            match quiet(tool, &[arg]) {
                Ok(_) => {}
                Err(e) => return Err(format!("`{tool}` is missing or broken ({e})")),
            }
        }
        // Numbered like a topology, so that tests probing at the same time
        // in one process do not take each other's probe for a refusal.
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let probe = format!("{NS_PREFIX}{}-{n}-probe", std::process::id());
        quiet("ip", &["netns", "add", &probe])
            .map_err(|e| format!("`ip netns add` is not allowed ({e})"))?;
        let _guard = NsGuard(probe.clone());
        quiet("ip", &["netns", "exec", &probe, "nft", "list", "tables"])
            .map_err(|e| format!("nftables does not work in a namespace ({e})"))?;
        Ok(())
    }

    /// Builds `topology` if namespaces can be made here; else prints one
    /// line, `skipped <test>: <why>`, and returns `None`.
    pub fn build_or_skip(test: &str, topology: &Topology) -> Option<Net> {
        match Self::available() {
            Ok(()) => Some(Self::build(topology)),
            Err(why) => {
                println!("skipped {test}: network namespaces unavailable: {why}");
                None
            }
        }
    }

    /// Builds `topology`; panics if any step fails (after the namespaces
    /// made so far are deleted).
    pub fn build(topology: &Topology) -> Net {
        remove_stale();
        let prefix = format!(
            "{NS_PREFIX}{}-{}-",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut net = Net { hosts: BTreeMap::new(), guards: Vec::new() };
        let hub = format!("{prefix}hub");
        net.add_ns(&hub);
        run(&["ip", "-n", &hub, "link", "set", "lo", "up"]);
        run(&["ip", "netns", "exec", &hub, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        let mut bases = BTreeMap::new();
        for (i, (name, base)) in topology.segments.iter().enumerate() {
            let br = format!("br{i}");
            run(&["ip", "-n", &hub, "link", "add", &br, "type", "bridge"]);
            run(&["ip", "-n", &hub, "addr", "add", &cidr(*base, 1), "dev", &br]);
            run(&["ip", "-n", &hub, "link", "set", &br, "up"]);
            bases.insert(name.clone(), (i, *base, FIRST_HOST));
        }
        for (i, h) in topology.hosts.iter().enumerate() {
            let Some((seg, base, next)) = bases.get_mut(&h.segment) else {
                panic!("host {}: no segment {}", h.name, h.segment);
            };
            assert!(
                usize::from(*next - FIRST_HOST) < MAX_HOSTS_PER_SEGMENT,
                "segment {} is full",
                h.segment
            );
            let addr = with_host(*base, *next);
            let gateway = with_host(*base, 1).to_string();
            *next += 1;
            let ns = format!("{prefix}{}", h.name);
            net.add_ns(&ns);
            let port = format!("v{i}");
            run(&[
                "ip", "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            run(&["ip", "-n", &hub, "link", "set", &port, "master", &format!("br{seg}")]);
            run(&["ip", "-n", &hub, "link", "set", &port, "up"]);
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            run(&["ip", "-n", &ns, "addr", "add", &cidr(addr, host_octet(addr)), "dev", "eth0"]);
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            run(&["ip", "-n", &ns, "route", "add", "default", "via", &gateway]);
            nft(&ns, &loss_rules(h.loss_in, h.loss_out));
            net.hosts.insert(h.name.clone(), NetHost { ns, addr });
        }
        net
    }

    /// The host called `name`; panics if the topology has none.
    pub fn host(&self, name: &str) -> &NetHost {
        self.hosts.get(name).unwrap_or_else(|| panic!("no host {name} in the topology"))
    }

    /// Changes host `name`'s loss: `loss_in` percent of the UDP and TCP
    /// packets it receives and `loss_out` percent of those it sends are
    /// dropped from now on (100 cuts it off).
    pub fn set_loss(&self, name: &str, loss_in: u8, loss_out: u8) {
        assert!(loss_in <= 100 && loss_out <= 100, "host {name}: loss over 100%");
        nft(&self.host(name).ns, &loss_rules(loss_in, loss_out));
    }

    /// How many packets the loss rules of host `name` have dropped so far
    /// (0 for a lossless host).
    pub fn dropped(&self, name: &str) -> u64 {
        let ns = &self.host(name).ns;
        let Ok(out) = quiet("ip", &["netns", "exec", ns, "nft", "list", "ruleset"]) else {
            return 0;
        };
        String::from_utf8_lossy(&out.stdout)
            .split("counter packets ")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    fn add_ns(&mut self, ns: &str) {
        run(&["ip", "netns", "add", ns]);
        // Guarded at once, so that a panic later in `build` deletes it.
        self.guards.push(NsGuard(ns.to_owned()));
    }
}

/// The nftables ruleset for a host's loss: a random `percent` of UDP and of
/// TCP packets dropped on the way in and on the way out (loopback spared),
/// each rule with a counter for [`Net::dropped`].
fn loss_rules(loss_in: u8, loss_out: u8) -> String {
    let chain = |name: &str, hook: &str, iface: &str, percent: u8| {
        let mut c =
            format!("  chain {name} {{\n    type filter hook {hook} priority 0; policy accept;\n");
        if percent > 0 {
            // `numgen random mod 100` is 0-99: 100% needs no draw.
            let draw = if percent >= 100 {
                String::new()
            } else {
                format!(" numgen random mod 100 < {percent}")
            };
            for proto in ["udp", "tcp"] {
                c.push_str(&format!(
                    "    {iface} != \"lo\" meta l4proto {proto}{draw} counter drop\n"
                ));
            }
        }
        c.push_str("  }\n");
        c
    };
    // Declaring the table, then deleting it, makes the load replace any
    // earlier rules in one transaction.
    format!(
        "table inet p2pchat_loss\ndelete table inet p2pchat_loss\ntable inet p2pchat_loss {{\n{}{}}}\n",
        chain("input", "input", "iifname", loss_in),
        chain("output", "output", "oifname", loss_out)
    )
}

/// Loads `rules` into namespace `ns` with `nft -f -`.
pub(crate) fn nft(ns: &str, rules: &str) {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nft");
    child.stdin.take().expect("piped").write_all(rules.as_bytes()).expect("write nft rules");
    let out = child.wait_with_output().expect("wait for nft");
    assert!(
        out.status.success(),
        "nft -f in {ns} failed: {}\n{rules}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes namespaces of earlier test processes that are gone (killed
/// before their guards ran).
pub(crate) fn remove_stale() {
    let Ok(out) = quiet("ip", &["netns", "list"]) else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else { continue };
        let Some(rest) = name.strip_prefix(NS_PREFIX) else { continue };
        let Some(pid) = rest.split('-').next() else { continue };
        if !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = quiet("ip", &["netns", "del", name]);
        }
    }
}

fn with_host(base: Ipv4Addr, host: u8) -> Ipv4Addr {
    let [a, b, c, _] = base.octets();
    Ipv4Addr::new(a, b, c, host)
}

fn host_octet(addr: Ipv4Addr) -> u8 {
    addr.octets()[3]
}

fn cidr(base: Ipv4Addr, host: u8) -> String {
    format!("{}/24", with_host(base, host))
}

/// Runs a command; panics with its stderr if it fails.
pub(crate) fn run(argv: &[&str]) {
    if let Err(e) = quiet(argv[0], &argv[1..]) {
        panic!("`{}` failed: {e}", argv.join(" "));
    }
}

/// Runs a command quietly; `Err` with its stderr when it cannot start or
/// fails.
pub(crate) fn quiet(program: &str, args: &[&str]) -> Result<Output, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}
