//! The registry's user table: compact rows in one slab, two hash indices of
//! row numbers, and the lease order as a linked list through the rows.
//!
//! A row holds the name inline, the key, the address, the chat port, the
//! expiry and two links: 104 bytes, with no heap allocation of its own. An
//! IPv4 address takes 4 bytes in the row; an IPv6 address lives in a side
//! slab of 16-byte slots, and its row holds the slot's number in the same 4
//! bytes. Rows are found by name key and by address through
//! [`hashbrown::HashTable`]s holding only row numbers (4 bytes each), hashed
//! with SipHash keyed by a secret the caller derives from its own, so no
//! sender can force collisions. A row's name key is stored as its 128-bit
//! keyed hash ([`NameId`]): two keys are taken as equal when their ids are,
//! which without the secret nobody can arrange and by chance happens with
//! probability 2⁻¹²⁸ per pair.
//!
//! Every login and refresh gives the same lease, so lease order is the
//! order of the last refresh: a refresh moves its row to the tail of the
//! list (O(1)) and expiry pops rows from the head. Free rows are chained
//! through the same link and reused; rows never move, so a row number is a
//! stable place in the list, which is what list cursors hold. An occupancy
//! bitmap lets a page skip free rows 64 at a time.
//!
//! Capacity for every row and index entry is reserved up front: memory
//! never grows past what `max_users` needs, and the pages of the slab that
//! no user has touched cost nothing resident.

use std::hash::{BuildHasher, Hasher};

use hashbrown::{HashMap, HashTable};
use siphasher::sip::SipHasher13;
use siphasher::sip128::{Hasher128, SipHasher13 as SipHasher13x128};

use crate::key::{KEY_LEN, PublicKey};
use crate::name::{MAX_NAME_LEN, NameKey, UserName, ascii_key_into};
use crate::registry_addr::{Addr, Prefix};
use crate::server_codec::IpOctets;

/// "No row": the end of a list.
const NIL: u32 = u32::MAX;

/// A name key's 128-bit keyed hash, which stands for the key in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NameId([u32; 4]);

impl NameId {
    fn hash(self) -> u64 {
        u64::from(self.0[0]) | (u64::from(self.0[1]) << 32)
    }
}

/// One user, or a free row (`name_len == 0`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    name: [u8; MAX_NAME_LEN],
    name_len: u8,
    /// Whether the address is IPv6 (its octets in the side slab), else
    /// IPv4 (its octets in `ip`).
    v6: bool,
    port: u16,
    chat_port: u16,
    /// The IPv4 address's octets; for an IPv6 address, its slot in the
    /// table's side slab (a `u32` in native byte order).
    ip: [u8; 4],
    key: [u8; KEY_LEN],
    id: NameId,
    /// Lease end, in the server's ticks (see `RegistryServer`).
    expires: u32,
    /// Lease order (for a free row, `next` chains the free list).
    prev: u32,
    next: u32,
}

const FREE_ROW: Row = Row {
    name: [0; MAX_NAME_LEN],
    name_len: 0,
    v6: false,
    port: 0,
    chat_port: 0,
    ip: [0; 4],
    key: [0; KEY_LEN],
    id: NameId([0; 4]),
    expires: 0,
    prev: NIL,
    next: NIL,
};

impl Row {
    /// The name as written, in NFC (checked when the row was made).
    pub(crate) fn name(&self) -> &[u8] {
        &self.name[..usize::from(self.name_len)]
    }
    /// The slot of the row's IPv6 address in the side slab.
    fn slot(&self) -> usize {
        u32::from_ne_bytes(self.ip) as usize
    }
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
    pub(crate) fn chat_port(&self) -> u16 {
        self.chat_port
    }
    pub(crate) fn key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }
    pub(crate) fn public_key(&self) -> PublicKey {
        PublicKey(self.key)
    }
    pub(crate) fn expires(&self) -> u32 {
        self.expires
    }
}

/// SipHash-1-3 keyed with a secret, for the indices and the address counts.
#[derive(Debug, Clone, Copy)]
struct Keyed(u64, u64);

impl BuildHasher for Keyed {
    type Hasher = SipHasher13;
    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.0, self.1)
    }
}

/// The table. Row numbers are `u32`: `max_users` is capped below `u32::MAX`.
pub(crate) struct UserTable {
    rows: Vec<Row>,
    /// One bit per row, set while the row holds a user.
    occupied: Vec<u64>,
    free: u32,
    len: usize,
    max: usize,
    by_name: HashTable<u32>,
    by_addr: HashTable<u32>,
    /// The IPv6 addresses of the rows that have one (each row holds its
    /// slot's number), and the slots no row holds.
    v6: Vec<[u8; 16]>,
    v6_free: Vec<u32>,
    per_prefix: HashMap<u64, u32, Keyed>,
    per_v4: HashMap<u32, u32, Keyed>,
    /// Lease order: `head` expires first.
    head: u32,
    tail: u32,
    hasher: Keyed,
    name_keys: (u64, u64),
}

impl UserTable {
    /// A table for at most `max` users (capped at `u32::MAX - 1`), with
    /// room reserved for `reserve` of them; `secret` keys every hash.
    pub(crate) fn new(max: usize, reserve: usize, secret: [u8; 16]) -> Self {
        let max = max.min(NIL as usize - 1);
        let reserve = reserve.min(max);
        let derive = |domain: &[u8]| {
            let mut h = SipHasher13x128::new_with_key(&secret);
            h.write(domain);
            let out = h.finish128();
            (out.h1, out.h2)
        };
        let (k0, k1) = derive(b"p2pchat registry index");
        let hasher = Keyed(k0, k1);
        Self {
            rows: Vec::with_capacity(reserve),
            occupied: Vec::with_capacity(reserve.div_ceil(64)),
            free: NIL,
            len: 0,
            max,
            by_name: HashTable::with_capacity(reserve),
            by_addr: HashTable::with_capacity(reserve),
            v6: Vec::new(),
            v6_free: Vec::new(),
            per_prefix: HashMap::with_hasher(hasher),
            per_v4: HashMap::with_hasher(hasher),
            head: NIL,
            tail: NIL,
            hasher,
            name_keys: derive(b"p2pchat registry name id"),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The id that stands for `key` in this table.
    pub(crate) fn name_id(&self, key: &NameKey) -> NameId {
        let mut h = self.name_hasher();
        h.write(key.as_str().as_bytes());
        finish_id(h)
    }

    /// The id of the name `name` asks for, if it is valid (`None` if not):
    /// through the ASCII fast path where it applies, else the full rules.
    pub(crate) fn name_id_of(&self, name: &str) -> Option<NameId> {
        let mut h = self.name_hasher();
        match ascii_key_into(name, |b| h.write(b)) {
            Some(valid) => valid.then(|| finish_id(h)),
            None => UserName::new(name).ok().map(|n| self.name_id(&n.key())),
        }
    }

    fn name_hasher(&self) -> SipHasher13x128 {
        SipHasher13x128::new_with_keys(self.name_keys.0, self.name_keys.1)
    }

    fn addr_hash(&self, addr: &Addr) -> u64 {
        addr_hash_with(self.hasher, addr)
    }

    pub(crate) fn row(&self, i: u32) -> &Row {
        &self.rows[i as usize]
    }

    /// Row `i`'s address.
    pub(crate) fn addr(&self, i: u32) -> Addr {
        addr_of(&self.rows[i as usize], &self.v6)
    }

    /// Row `i`'s IP's octets as the list shows them (4 for IPv4, 16 for
    /// IPv6).
    pub(crate) fn ip_octets(&self, i: u32) -> IpOctets<'_> {
        let row = &self.rows[i as usize];
        match v6_ip(row, &self.v6) {
            Some(ip) => IpOctets::V6(ip),
            None => IpOctets::V4(&row.ip),
        }
    }

    pub(crate) fn find_addr(&self, addr: &Addr) -> Option<u32> {
        let (rows, v6) = (&self.rows, &self.v6);
        let hash = self.addr_hash(addr);
        self.by_addr.find(hash, |&i| holds(&rows[i as usize], v6, addr)).copied()
    }

    pub(crate) fn find_name(&self, id: NameId) -> Option<u32> {
        let rows = &self.rows;
        self.by_name.find(id.hash(), |&i| rows[i as usize].id == id).copied()
    }

    /// How many rows the address's prefix holds.
    pub(crate) fn prefix_count(&self, addr: &Addr) -> usize {
        let n = match addr.prefix() {
            Prefix::V4(p) => self.per_v4.get(&p),
            Prefix::V6(p) => self.per_prefix.get(&p),
        };
        n.map_or(0, |&n| n as usize)
    }

    fn count_prefix(&mut self, addr: &Addr, up: bool) {
        let (n, gone) = match addr.prefix() {
            Prefix::V4(p) => (self.per_v4.entry(p).or_insert(0), Prefix::V4(p)),
            Prefix::V6(p) => (self.per_prefix.entry(p).or_insert(0), Prefix::V6(p)),
        };
        if up {
            *n += 1;
            return;
        }
        *n = n.saturating_sub(1);
        if *n == 0 {
            match gone {
                Prefix::V4(p) => self.per_v4.remove(&p),
                Prefix::V6(p) => self.per_prefix.remove(&p),
            };
        }
    }

    /// Adds a user at the tail of the lease order. The caller has checked
    /// that neither the id nor the address is held and that there is room;
    /// `name` is a valid name (at most [`MAX_NAME_LEN`] bytes). Returns
    /// `None` only when the table is full.
    pub(crate) fn insert(
        &mut self,
        name: &str,
        id: NameId,
        addr: Addr,
        chat_port: u16,
        key: &PublicKey,
        expires: u32,
    ) -> Option<u32> {
        if self.len >= self.max || name.is_empty() || name.len() > MAX_NAME_LEN {
            return None;
        }
        let mut row = FREE_ROW;
        row.name[..name.len()].copy_from_slice(name.as_bytes());
        // At most MAX_NAME_LEN (32), checked above.
        row.name_len = name.len() as u8;
        self.place(&mut row, &addr);
        row.chat_port = chat_port;
        row.key = key.0;
        row.id = id;
        row.expires = expires;
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.rows[i as usize].next;
            self.rows[i as usize] = row;
            i
        } else {
            // `len < max <= NIL - 1` and every row is in use, so this fits.
            let i = self.rows.len() as u32;
            self.rows.push(row);
            if self.occupied.len() * 64 < self.rows.len() {
                self.occupied.push(0);
            }
            i
        };
        self.occupied[i as usize / 64] |= 1 << (i % 64);
        self.len += 1;
        self.link_tail(i);
        let rows = &self.rows;
        self.by_name.insert_unique(id.hash(), i, |&j| rows[j as usize].id.hash());
        self.index_addr(i, &addr);
        Some(i)
    }

    /// Writes `addr` into `row`, taking a slot of the side slab for an
    /// IPv6 address.
    fn place(&mut self, row: &mut Row, addr: &Addr) {
        row.v6 = addr.v6;
        row.port = addr.port;
        if !addr.v6 {
            row.ip.copy_from_slice(&addr.ip[12..]);
            return;
        }
        let slot = match self.v6_free.pop() {
            Some(slot) => {
                self.v6[slot as usize] = addr.ip;
                slot
            }
            None => {
                // One slot per row at most, and rows are numbered in u32.
                self.v6.push(addr.ip);
                (self.v6.len() - 1) as u32
            }
        };
        row.ip = slot.to_ne_bytes();
    }

    /// Gives back row `i`'s slot of the side slab, if it holds one.
    fn release_slot(&mut self, i: u32) {
        let row = &self.rows[i as usize];
        if row.v6 {
            self.v6_free.push(u32::from_ne_bytes(row.ip));
        }
    }

    /// Adds row `i`, which holds `addr`, to the address index and counts.
    fn index_addr(&mut self, i: u32, addr: &Addr) {
        let hash = self.addr_hash(addr);
        let (rows, v6, hasher) = (&self.rows, &self.v6, self.hasher);
        self.by_addr
            .insert_unique(hash, i, |&j| addr_hash_with(hasher, &addr_of(&rows[j as usize], v6)));
        self.count_prefix(addr, true);
    }

    /// Takes row `i`, which holds `addr`, out of the address index and
    /// counts.
    fn unindex_addr(&mut self, i: u32, addr: &Addr) {
        let hash = self.addr_hash(addr);
        if let Ok(e) = self.by_addr.find_entry(hash, |&j| j == i) {
            e.remove();
        }
        self.count_prefix(addr, false);
    }

    /// Removes row `i` and returns what it held, with its address.
    pub(crate) fn remove(&mut self, i: u32) -> (Row, Addr) {
        let row = self.rows[i as usize];
        let addr = self.addr(i);
        if let Ok(e) = self.by_name.find_entry(row.id.hash(), |&j| j == i) {
            e.remove();
        }
        self.unindex_addr(i, &addr);
        self.release_slot(i);
        self.unlink(i);
        self.occupied[i as usize / 64] &= !(1 << (i % 64));
        self.rows[i as usize] = FREE_ROW;
        self.rows[i as usize].next = self.free;
        self.free = i;
        self.len -= 1;
        (row, addr)
    }

    /// Renews row `i`'s lease to `expires` (the latest of all: every lease
    /// is the same length) and its chat port.
    pub(crate) fn refresh(&mut self, i: u32, expires: u32, chat_port: u16) {
        let row = &mut self.rows[i as usize];
        row.expires = expires;
        row.chat_port = chat_port;
        if self.tail != i {
            self.unlink(i);
            self.link_tail(i);
        }
    }

    /// Rewrites row `i`'s name as written (same key, other case or form).
    pub(crate) fn rename(&mut self, i: u32, name: &str) {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return;
        }
        let row = &mut self.rows[i as usize];
        row.name = [0; MAX_NAME_LEN];
        row.name[..name.len()].copy_from_slice(name.as_bytes());
        row.name_len = name.len() as u8;
    }

    /// Moves row `i` to address `to`, which no row holds.
    pub(crate) fn move_to(&mut self, i: u32, to: Addr) {
        let old = self.addr(i);
        self.unindex_addr(i, &old);
        self.release_slot(i);
        let mut row = self.rows[i as usize];
        self.place(&mut row, &to);
        self.rows[i as usize] = row;
        self.index_addr(i, &to);
    }

    /// The row whose lease ends first.
    pub(crate) fn first_to_expire(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// The first row holding a user at or after row `from`.
    pub(crate) fn next_occupied(&self, from: usize) -> Option<u32> {
        let mut word = from / 64;
        let mut bits = self.occupied.get(word)? & (!0u64 << (from % 64));
        loop {
            if bits != 0 {
                // Below `rows.len() <= u32::MAX`.
                return Some((word * 64 + bits.trailing_zeros() as usize) as u32);
            }
            word += 1;
            bits = *self.occupied.get(word)?;
        }
    }

    /// Every user's row number, in row order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        std::iter::successors(self.next_occupied(0), |&i| self.next_occupied(i as usize + 1))
    }

    fn link_tail(&mut self, i: u32) {
        self.rows[i as usize].prev = self.tail;
        self.rows[i as usize].next = NIL;
        if self.tail == NIL {
            self.head = i;
        } else {
            self.rows[self.tail as usize].next = i;
        }
        self.tail = i;
    }

    fn unlink(&mut self, i: u32) {
        let Row { prev, next, .. } = self.rows[i as usize];
        if prev == NIL {
            self.head = next;
        } else {
            self.rows[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.rows[next as usize].prev = prev;
        }
    }
}

fn finish_id(h: SipHasher13x128) -> NameId {
    let out = h.finish128();
    // Four words rather than two keep a row 4-aligned (and so smaller);
    // the truncations split each half in two.
    NameId([out.h1 as u32, (out.h1 >> 32) as u32, out.h2 as u32, (out.h2 >> 32) as u32])
}

/// The address's hash for the index: an IPv4 address and its port in one
/// word (one SipHash block), an IPv6 address in full.
fn addr_hash_with(hasher: Keyed, addr: &Addr) -> u64 {
    let mut h = hasher.build_hasher();
    if addr.v6 {
        h.write(&addr.ip);
        h.write_u16(addr.port);
    } else {
        let v4 =
            u64::from(u32::from_be_bytes([addr.ip[12], addr.ip[13], addr.ip[14], addr.ip[15]]));
        h.write_u64((v4 << 16) | u64::from(addr.port));
    }
    h.finish()
}

/// The address `row` holds; `v6` is the table's side slab.
fn addr_of(row: &Row, v6: &[[u8; 16]]) -> Addr {
    let mut ip = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0];
    match v6_ip(row, v6) {
        Some(v6) => ip = *v6,
        None => ip[12..].copy_from_slice(&row.ip),
    }
    Addr { ip, port: row.port, v6: row.v6 }
}

/// The IPv6 address of `row` in the side slab `v6`, if it holds one (else
/// its IPv4 address is in the row).
fn v6_ip<'a>(row: &Row, v6: &'a [[u8; 16]]) -> Option<&'a [u8; 16]> {
    if row.v6 { v6.get(row.slot()) } else { None }
}

/// Whether `row` holds `addr`, without building the row's `Addr`.
fn holds(row: &Row, v6: &[[u8; 16]], addr: &Addr) -> bool {
    if row.port != addr.port || row.v6 != addr.v6 {
        return false;
    }
    if addr.v6 { v6.get(row.slot()) == Some(&addr.ip) } else { row.ip[..] == addr.ip[12..] }
}

#[cfg(test)]
mod tests;
