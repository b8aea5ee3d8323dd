//! The registry's read-only answers: a lookup and a page of the list,
//! each encoded straight into the outbox from the table's rows.

use std::net::SocketAddr;

use crate::codec::MAX_DATAGRAM_LEN;
use crate::registry_msg::RequestId;
use crate::registry_table::UserTable;
use crate::server_codec;

use super::RegistryServer;

impl RegistryServer {
    pub(super) fn lookup(&mut self, to: SocketAddr, id: RequestId, name: &str) {
        let found = self.table.name_id_of(name).and_then(|id| self.table.find_name(id));
        let (buf, start) = self.out.begin();
        server_codec::write_reply_header(buf, id);
        buf.push(server_codec::FOUND_TAG);
        match found {
            Some(i) => {
                buf.push(1);
                write_row(buf, &self.table, i);
            }
            None => buf.push(0),
        }
        self.out.commit(to, start);
        self.stats.replied += 1;
    }

    /// One page of the list, resuming strictly after the row in `after`, as
    /// long as fits in one datagram. A cursor this server cannot have
    /// handed out gets an empty last page.
    pub(super) fn page(&mut self, to: SocketAddr, id: RequestId, after: Option<&str>) {
        let first = match after.map(server_codec::parse_cursor) {
            None => Some(0),
            Some(row) => row.map(|r| r as usize + 1),
        };
        let (buf, start) = self.out.begin();
        buf.reserve(MAX_DATAGRAM_LEN);
        server_codec::write_reply_header(buf, id);
        buf.push(server_codec::LIST_PAGE_TAG);
        // The entry count: one varint byte, as a page holds far fewer than
        // 128 entries (each takes at least 41 bytes).
        let count_at = buf.len();
        buf.push(0);
        let limit = start + MAX_DATAGRAM_LEN - server_codec::CURSOR_ROOM;
        let mut count = 0u8;
        let mut last = None;
        let mut more = false;
        let mut next = first.and_then(|f| self.table.next_occupied(f));
        while let Some(i) = next {
            let before = buf.len();
            write_row(buf, &self.table, i);
            if buf.len() > limit {
                buf.truncate(before);
                more = true;
                break;
            }
            count += 1;
            last = Some(i);
            next = self.table.next_occupied(i as usize + 1);
        }
        buf[count_at] = count;
        // Every entry fits in an empty page, so a page stops early only
        // after taking at least one: `last` is then `Some`.
        server_codec::write_cursor(buf, last.filter(|_| more));
        debug_assert!(self.out.len_since(start) <= MAX_DATAGRAM_LEN);
        self.out.commit(to, start);
        self.stats.replied += 1;
    }
}

fn write_row(buf: &mut Vec<u8>, table: &UserTable, i: u32) {
    let row = table.row(i);
    server_codec::write_entry(
        buf,
        row.name(),
        table.ip_octets(i),
        row.port(),
        row.chat_port(),
        row.key(),
    );
}
