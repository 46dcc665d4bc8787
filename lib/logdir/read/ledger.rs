//! What is in flight to the peer, and what it acknowledged lately: for the
//! lines sent, where they end in the stream of messages and the cursor
//! mark just after them.
//!
//! - When the peer has the stream up to an offset, every line ending there
//!   or before is delivered: each cursor's newest such mark may be saved.
//! - An acknowledged line stays in the history while fewer than `keep`
//!   bytes were acknowledged after it: the peer's kernel acknowledges what
//!   its program may not have read yet, and loses it if the program stops
//!   first. After a break, each cursor resends from the mark just before
//!   its oldest line in the history: its settled mark, the only one saved.
//!   Lines leave the history as newer ones push them out, or all at once
//!   when the peer confirmed it read everything (`settle`: it ended its
//!   stream in answer to ours).
//!
//! Lines of one cursor ending in the same KiB of the stream share one
//! entry (the last line's end and mark): a line is then known delivered
//! at most a KiB of stream after it really was, and the number of entries
//! stays small whatever the lines' lengths. Bounded: when full, no more
//! lines are sent until acknowledgements make room.
//!
//! Where delivery is known to the byte and final (what a write to a pipe
//! took), the ledger is `exact`: no history, no entries shared.

use std::collections::VecDeque;

use crate::logdir::read::cursor::Mark;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    end: u64,
    cursor: u64,
    mark: Mark,
}

pub struct Ledger {
    /// Sent, not yet acknowledged; oldest first.
    entries: VecDeque<Entry>,
    /// Acknowledged lately; oldest first.
    history: VecDeque<Entry>,
    cap: usize,
    keep: u64,
    /// Lines of one cursor ending in one stretch this long share an entry.
    granule: u64,
}

/// Entries in flight at most, by default: some 3 MiB, for 64 MiB in flight
/// or more.
pub const CAP: usize = 64 * 1024;
/// The stretch of stream whose lines share an entry.
pub const GRANULE: u64 = 1024;

impl Ledger {
    /// A ledger keeping the last `keep` bytes acknowledged as history.
    pub fn new(cap: usize, keep: u64) -> Ledger {
        Ledger {
            entries: VecDeque::with_capacity(cap.min(4096)),
            history: VecDeque::new(),
            cap: cap.max(1),
            keep,
            granule: GRANULE,
        }
    }

    /// A ledger of every line's own end, unbounded, with no history:
    /// delivered is final.
    pub fn exact() -> Ledger {
        Ledger {
            granule: 1,
            ..Ledger::new(usize::MAX, 0)
        }
    }

    /// Cursor `cursor` is at `mark` once the stream is delivered through
    /// offset `end` (offsets never decrease).
    pub fn push(&mut self, end: u64, cursor: u64, mark: Mark) {
        if let Some(last) = self.entries.back_mut()
            && last.cursor == cursor
            && last.end / self.granule == end / self.granule
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

    /// Nothing in flight.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Acknowledged lines not yet settled.
    pub fn has_history(&self) -> bool {
        !self.history.is_empty()
    }

    /// Takes what the peer has through offset `acked`: for each cursor,
    /// its newest mark, into `delivered`; and for each cursor whose lines
    /// left the history, its newest such mark, into `settled`.
    pub fn acked(
        &mut self,
        acked: u64,
        delivered: &mut Vec<(u64, Mark)>,
        settled: &mut Vec<(u64, Mark)>,
    ) {
        delivered.clear();
        settled.clear();
        while let Some(entry) = self.entries.front() {
            if entry.end > acked {
                break;
            }
            newest(delivered, entry);
            self.history.push_back(*entry);
            self.entries.pop_front();
        }
        while let Some(entry) = self.history.front() {
            if entry.end + self.keep > acked {
                break;
            }
            newest(settled, entry);
            self.history.pop_front();
        }
    }

    /// Everything acknowledged is settled (the peer confirmed reading it):
    /// for each cursor, its newest mark, into `settled`.
    pub fn settle(&mut self, settled: &mut Vec<(u64, Mark)>) {
        settled.clear();
        for entry in self.history.drain(..) {
            newest(settled, &entry);
        }
    }

    /// Forgets everything (the connection is gone).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.history.clear();
    }

    /// Keeps the last `keep` bytes acknowledged as history from now on.
    pub fn set_keep(&mut self, keep: u64) {
        self.keep = keep;
    }
}

fn newest(out: &mut Vec<(u64, Mark)>, entry: &Entry) {
    match out.iter_mut().find(|(c, _)| *c == entry.cursor) {
        Some(slot) => slot.1 = entry.mark,
        None => out.push((entry.cursor, entry.mark)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::stamp::Stamp;

    fn mark(n: u64) -> Mark {
        Mark::After {
            stamp: Stamp::from_parts(0x4000_0000_6000_0000 + n, 0).unwrap(),
            same: 1,
            file_end: false,
        }
    }

    #[test]
    fn only_acknowledged_lines_are_delivered_newest_mark_per_cursor() {
        let mut l = Ledger::new(10, 0);
        l.push(1000, 1, mark(1));
        l.push(1500, 2, mark(2));
        l.push(2000, 1, mark(3));
        l.push(2600, 1, mark(4));
        assert_eq!(l.len(), 4);
        let (mut out, mut settled) = (Vec::new(), Vec::new());
        l.acked(999, &mut out, &mut settled);
        assert!(out.is_empty());
        l.acked(2300, &mut out, &mut settled);
        assert_eq!(out, [(1, mark(3)), (2, mark(2))]);
        assert_eq!(settled, out, "nothing kept: settled at once");
        assert_eq!(l.len(), 1);
        l.acked(10_000, &mut out, &mut settled);
        assert_eq!(out, [(1, mark(4))]);
        assert!(l.is_empty());
    }

    #[test]
    fn acknowledged_lines_settle_once_pushed_out_of_the_history() {
        let mut l = Ledger::new(10, 5000);
        let (mut out, mut settled) = (Vec::new(), Vec::new());
        l.push(1000, 1, mark(1));
        l.push(3000, 1, mark(2));
        l.acked(3000, &mut out, &mut settled);
        assert_eq!(out, [(1, mark(2))]);
        assert!(settled.is_empty(), "within the last 5000 bytes");
        l.push(7000, 2, mark(3));
        l.acked(7000, &mut out, &mut settled);
        assert_eq!(settled, [(1, mark(1))], "1000 + 5000 <= 7000; 3000 not yet");
        l.settle(&mut settled);
        assert_eq!(settled, [(1, mark(2)), (2, mark(3))]);
    }

    #[test]
    fn an_exact_ledger_delivers_to_the_byte_and_keeps_nothing() {
        let mut l = Ledger::exact();
        l.push(10, 1, mark(1));
        l.push(20, 1, mark(2));
        l.push(20, 1, mark(3));
        l.push(30, 2, mark(4));
        assert_eq!(l.len(), 3, "only marks at one end share an entry");
        let (mut out, mut settled) = (Vec::new(), Vec::new());
        l.acked(19, &mut out, &mut settled);
        assert_eq!(out, [(1, mark(1))]);
        l.acked(20, &mut out, &mut settled);
        assert_eq!(out, [(1, mark(3))]);
        assert!(!l.has_history() && !l.is_full());
    }

    #[test]
    fn lines_in_one_granule_share_an_entry_and_the_cap_holds() {
        let mut l = Ledger::new(2, 0);
        l.push(10, 1, mark(1));
        l.push(20, 1, mark(2));
        assert_eq!(l.len(), 1);
        let (mut out, mut settled) = (Vec::new(), Vec::new());
        l.acked(15, &mut out, &mut settled);
        assert!(out.is_empty(), "the shared entry ends with its last line");
        l.push(20, 2, mark(3));
        assert!(l.is_full());
        l.acked(20, &mut out, &mut settled);
        assert_eq!(out, [(1, mark(2)), (2, mark(3))]);
        l.push(5000, 1, mark(4));
        l.clear();
        assert!(l.is_empty() && !l.is_full());
    }
}
