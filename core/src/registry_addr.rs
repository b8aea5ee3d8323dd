//! Addresses as the registry's table keeps them: compact, comparable, and
//! grouped the way the per-address cap counts them.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// An address as a row keeps it: an IPv4 address as its IPv4-mapped form,
/// the port, and which family it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Addr {
    /// The IPv6 address, or the IPv4 address in its IPv4-mapped form.
    pub(crate) ip: [u8; 16],
    /// The port.
    pub(crate) port: u16,
    /// Whether the address is IPv6 (else IPv4).
    pub(crate) v6: bool,
}

impl Addr {
    /// `addr` without its IPv6 flow label and scope id, which the registry
    /// neither compares nor lists.
    pub(crate) fn of(addr: SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(a) => {
                Self { ip: a.ip().to_ipv6_mapped().octets(), port: a.port(), v6: false }
            }
            SocketAddr::V6(a) => Self { ip: a.ip().octets(), port: a.port(), v6: true },
        }
    }

    pub(crate) fn socket_addr(self) -> SocketAddr {
        let ip = Ipv6Addr::from(self.ip);
        match (self.v6, ip.to_ipv4_mapped()) {
            (false, Some(v4)) => SocketAddr::new(IpAddr::V4(v4), self.port),
            (true, _) | (false, None) => SocketAddr::new(IpAddr::V6(ip), self.port),
        }
    }

    /// Whether the per-address cap counts both together.
    pub(crate) fn same_prefix(&self, other: &Addr) -> bool {
        self.prefix() == other.prefix()
    }

    /// What the per-address cap counts by: the IPv4 address, or the IPv6
    /// /64; an IPv4-mapped IPv6 address counts as its IPv4 address.
    pub(crate) fn prefix(self) -> Prefix {
        let mut v4 = [0; 4];
        v4.copy_from_slice(&self.ip[12..]);
        if !self.v6 || Ipv6Addr::from(self.ip).to_ipv4_mapped().is_some() {
            return Prefix::V4(u32::from_be_bytes(v4));
        }
        let mut net = [0; 8];
        net.copy_from_slice(&self.ip[..8]);
        Prefix::V6(u64::from_be_bytes(net))
    }
}

/// What the per-address cap counts by (see [`Addr::prefix`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prefix {
    /// An IPv4 address.
    V4(u32),
    /// The first 64 bits of an IPv6 address.
    V6(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_keep_their_family() {
        for a in ["192.0.2.1:5", "[2001:db8::1]:6", "[::ffff:192.0.2.1]:7", "[::1]:8"] {
            let a: SocketAddr = a.parse().expect("valid");
            assert_eq!(Addr::of(a).socket_addr(), a);
        }
        let v4 = Addr::of("192.0.2.1:5".parse().expect("valid"));
        let mapped = Addr::of("[::ffff:192.0.2.1]:5".parse().expect("valid"));
        assert_ne!(v4, mapped, "two addresses");
        assert_eq!(v4.prefix(), mapped.prefix(), "one prefix");
        let six = |a: &str| Addr::of(a.parse().expect("valid")).prefix();
        assert_eq!(six("[2001:db8::1]:1"), six("[2001:db8::2:3]:2"));
        assert_ne!(six("[2001:db8::1]:1"), six("[2001:db8:0:1::1]:1"));
    }
}
