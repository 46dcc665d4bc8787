//! What is in flight to the peer: for the lines sent, where they end in
//! the stream of messages and the cursor mark just after them. When the
//! peer has the stream up to an offset, every line ending there or before
//! is delivered, and each cursor's newest such mark may be saved.
//!
//! Lines of one cursor ending in the same KiB of the stream share one
//! entry (the last line's end and mark): a line is then known delivered
//! at most a KiB of stream after it really was, and the number of entries
//! stays small whatever the lines' lengths. Bounded: when full, no more
//! lines are sent until acknowledgements make room.

use std::collections::VecDeque;

use crate::cursor::Mark;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    end: u64,
    cursor: u64,
    mark: Mark,
}

pub struct Ledger {
    entries: VecDeque<Entry>,
    cap: usize,
}

/// Entries at most, by default: some 3 MiB, for 64 MiB in flight or more.
pub const CAP: usize = 64 * 1024;
/// The stretch of stream whose lines share an entry.
pub const GRANULE: u64 = 1024;

impl Ledger {
    pub fn new(cap: usize) -> Ledger {
        Ledger {
            entries: VecDeque::with_capacity(cap.min(4096)),
            cap: cap.max(1),
        }
    }

    /// Cursor `cursor` is at `mark` once the stream is delivered through
    /// offset `end` (offsets never decrease).
    pub fn push(&mut self, end: u64, cursor: u64, mark: Mark) {
        if let Some(last) = self.entries.back_mut()
            && last.cursor == cursor
            && last.end / GRANULE == end / GRANULE
        {
            last.end = end;
            last.mark = mark;
            return;
        }
        self.entries.push_back(Entry { end, cursor, mark });
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.cap
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Takes what the peer has through offset `acked`: for each cursor,
    /// its newest mark, into `out`.
    pub fn acked(&mut self, acked: u64, out: &mut Vec<(u64, Mark)>) {
        out.clear();
        while let Some(entry) = self.entries.front() {
            if entry.end > acked {
                break;
            }
            match out.iter_mut().find(|(c, _)| *c == entry.cursor) {
                Some(slot) => slot.1 = entry.mark,
                None => out.push((entry.cursor, entry.mark)),
            }
            self.entries.pop_front();
        }
    }

    /// Forgets everything in flight (the connection is gone).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp::Stamp;

    fn mark(n: u64) -> Mark {
        Mark::After {
            stamp: Stamp::from_parts(0x4000_0000_6000_0000 + n, 0).unwrap(),
            same: 1,
            file_end: false,
        }
    }

    #[test]
    fn only_acknowledged_lines_are_delivered_newest_mark_per_cursor() {
        let mut l = Ledger::new(10);
        l.push(1000, 1, mark(1));
        l.push(1500, 2, mark(2));
        l.push(2000, 1, mark(3));
        l.push(2600, 1, mark(4));
        assert_eq!(l.len(), 4);
        let mut out = Vec::new();
        l.acked(999, &mut out);
        assert!(out.is_empty());
        l.acked(2300, &mut out);
        assert_eq!(out, [(1, mark(3)), (2, mark(2))]);
        assert_eq!(l.len(), 1);
        l.acked(10_000, &mut out);
        assert_eq!(out, [(1, mark(4))]);
        assert!(l.is_empty());
    }

    #[test]
    fn lines_in_one_granule_share_an_entry_and_the_cap_holds() {
        let mut l = Ledger::new(2);
        l.push(10, 1, mark(1));
        l.push(20, 1, mark(2));
        assert_eq!(l.len(), 1);
        let mut out = Vec::new();
        l.acked(15, &mut out);
        assert!(out.is_empty(), "the shared entry ends with its last line");
        l.push(20, 2, mark(3));
        assert!(l.is_full());
        l.acked(20, &mut out);
        assert_eq!(out, [(1, mark(2)), (2, mark(3))]);
        l.push(5000, 1, mark(4));
        l.clear();
        assert!(l.is_empty() && !l.is_full());
    }
}
