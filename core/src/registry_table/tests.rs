//! The table's own tests: rows, indices, lease order, the IPv6 side slab.

use super::*;
use crate::name::UserName;
use std::net::SocketAddr;

fn addr(i: u16) -> Addr {
    Addr::of(SocketAddr::from(([192, 0, 2, (i % 3) as u8], 4000 + i)))
}

fn id(t: &UserTable, name: &str) -> NameId {
    t.name_id(&UserName::new(name).expect("valid").key())
}

#[test]
fn rows_are_found_reused_and_expire_in_lease_order() {
    let mut t = UserTable::new(4, 2, [1; 16]);
    let names = ["ann", "bob", "carl", "dave"];
    for (i, n) in names.iter().enumerate() {
        let got = t.insert(n, id(&t, n), addr(i as u16), 7, &PublicKey([1; 32]), i as u32);
        assert_eq!(got, Some(i as u32));
    }
    assert_eq!(t.insert("eve", id(&t, "eve"), addr(9), 7, &PublicKey([1; 32]), 9), None);
    assert_eq!(t.find_name(id(&t, "BOB")), Some(1));
    assert_eq!(t.find_addr(&addr(2)), Some(2));
    assert_eq!(t.prefix_count(&addr(0)), 2, "ports 4000 and 4003 share 192.0.2.0");
    // Refreshing ann sends her to the back.
    t.refresh(0, 10, 8);
    assert_eq!(t.first_to_expire(), Some(1));
    assert_eq!(t.remove(1).0.name(), b"bob");
    assert_eq!(t.find_name(id(&t, "bob")), None);
    assert_eq!(t.next_occupied(1), Some(2));
    // The freed row is reused.
    assert_eq!(t.insert("eve", id(&t, "eve"), addr(9), 7, &PublicKey([1; 32]), 11), Some(1));
    let order: Vec<u32> =
        std::iter::successors(t.first_to_expire(), |&i| Some(t.row(i).next).filter(|&n| n != NIL))
            .collect();
    assert_eq!(order, vec![2, 3, 0, 1]);
    t.move_to(2, addr(12));
    assert_eq!(t.find_addr(&addr(2)), None);
    assert_eq!(t.find_addr(&addr(12)), Some(2));
    assert_eq!(t.addr(2).socket_addr(), addr(12).socket_addr());
    assert_eq!(t.prefix_count(&addr(2)), 0);
    for i in [0, 1, 2, 3] {
        t.remove(i);
    }
    assert_eq!((t.len(), t.first_to_expire(), t.next_occupied(0)), (0, None, None));
    assert!(t.per_v4.is_empty() && t.per_prefix.is_empty());
}

#[test]
fn a_row_is_104_bytes() {
    assert_eq!(std::mem::size_of::<Row>(), 104);
}

/// IPv6 addresses live in the side slab: found, listed, moved to and
/// from IPv4, their slots reused, and never confused with the
/// IPv4-mapped form or another port.
#[test]
fn ipv6_rows_keep_their_addresses_in_the_side_slab() {
    let a = |s: &str| Addr::of(s.parse::<SocketAddr>().expect("valid"));
    let mut t = UserTable::new(8, 8, [1; 16]);
    let key = PublicKey([1; 32]);
    let six = a("[2001:db8::1]:4000");
    let mapped = a("[::ffff:192.0.2.1]:4000");
    let four = a("192.0.2.1:4000");
    for (n, (name, at)) in [("ann", six), ("bob", mapped), ("carl", four)].iter().enumerate() {
        assert_eq!(t.insert(name, id(&t, name), *at, 7, &key, 1), Some(n as u32));
    }
    for (n, at) in [six, mapped, four].iter().enumerate() {
        assert_eq!(t.find_addr(at), Some(n as u32), "{:?}", at.socket_addr());
        assert_eq!(t.addr(n as u32), *at);
    }
    assert_eq!(t.find_addr(&a("[2001:db8::1]:4001")), None);
    assert_eq!(t.find_addr(&a("[2001:db8::2]:4000")), None);
    assert!(matches!(t.ip_octets(0), IpOctets::V6(ip) if *ip == six.ip));
    assert!(matches!(t.ip_octets(2), IpOctets::V4(&[192, 0, 2, 1])));
    assert_eq!(t.v6.len(), 2);
    // Ann moves to IPv4 and back to another IPv6 address: one slot.
    t.move_to(0, a("198.51.100.1:1"));
    assert_eq!(t.find_addr(&six), None);
    assert_eq!(t.addr(0), a("198.51.100.1:1"));
    let other = a("[2001:db8::9]:2");
    t.move_to(0, other);
    assert_eq!((t.find_addr(&other), t.addr(0)), (Some(0), other));
    assert_eq!(t.v6.len(), 2, "the freed slot was reused");
    // Removing bob frees his slot for dave.
    assert_eq!(t.remove(1).1, mapped);
    let dave = a("[2001:db8::d]:3");
    assert_eq!(t.insert("dave", id(&t, "dave"), dave, 7, &key, 2), Some(1));
    assert_eq!((t.find_addr(&dave), t.v6.len()), (Some(1), 2));
    assert_eq!(t.addr(0), other, "ann's slot is untouched");
    assert_eq!(t.prefix_count(&four), 1, "the mapped address no longer counts");
    // Many IPv6 rows on one port: lookups of other addresses meet them
    // in the index's probes, and must compare the whole address.
    let mut t = UserTable::new(256, 256, [1; 16]);
    let v6 = |i: u16| a(&format!("[2001:db8::{i:x}]:4000"));
    for i in 0..256 {
        let name = format!("u{i}");
        assert!(t.insert(&name, id(&t, &name), v6(i), 7, &key, 1).is_some());
    }
    assert!((0..256).all(|i| t.find_addr(&v6(i)) == Some(u32::from(i))));
    assert!((256..1024).all(|i| t.find_addr(&v6(i)).is_none()));
}

#[test]
fn a_name_has_one_id_whichever_path_finds_it() {
    let t = UserTable::new(4, 2, [1; 16]);
    for name in ["Mert", "rn0l", "m_o-l", "\u{e9}t\u{e9}", "\u{c3c6}"] {
        assert_eq!(t.name_id_of(name), Some(id(&t, name)), "{name:?}");
    }
    assert_eq!(t.name_id_of("a b"), None);
    assert_eq!(t.name_id_of("a\u{200b}"), None);
    assert_eq!(t.name_id_of("mert"), t.name_id_of("MERT"));
    assert_ne!(id(&t, "mert"), UserTable::new(4, 2, [2; 16]).name_id_of("mert").unwrap());
}
