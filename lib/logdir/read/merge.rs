//! Several log directories read as one: a k-way merge of their readers by
//! stamp, stable (on equal stamps, the directory given first comes first).
//!
//! A line without a stamp keeps the place of the stamped line before it
//! in its directory. A directory is done at its first line stamped after
//! the end of the window (stamps increase within a directory), or when it
//! cannot be read any further.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::ControlFlow;

use crate::error::Error;
use crate::format::stamp::Stamp;
use crate::logdir::read::reader::{Notice, Reader};

/// What a merge hands out, directory by directory (`source` is the
/// reader's index).
pub enum Event<'a> {
    Line {
        source: usize,
        stamp: Option<Stamp>,
        text: &'a [u8],
        /// Lines the reader passed over just before this one (see
        /// `reader::Select::lines`).
        passed: u64,
    },
    Notice {
        source: usize,
        notice: Notice,
    },
    /// The directory could not be read further; it is done.
    Failed {
        source: usize,
        error: Error,
    },
}

struct Source {
    reader: Reader,
    /// The line read and not yet handed out: its text and stamp.
    head: Vec<u8>,
    stamp: Option<Stamp>,
    passed: u64,
    /// Where the head sorts: its stamp, or the last stamp before it.
    order: Stamp,
    done: bool,
}

pub struct Merge {
    sources: Vec<Source>,
    until: Option<Stamp>,
    heap: BinaryHeap<Reverse<(Stamp, usize)>>,
}

impl Merge {
    /// Merges readers already placed where they are to start; lines
    /// stamped after `until` end a reader.
    pub fn new(readers: Vec<Reader>, until: Option<Stamp>) -> Merge {
        let sources = readers
            .into_iter()
            .map(|reader| Source {
                reader,
                head: Vec::new(),
                stamp: None,
                passed: 0,
                order: Stamp::ZERO,
                done: false,
            })
            .collect();
        Merge {
            sources,
            until,
            heap: BinaryHeap::new(),
        }
    }

    pub fn name(&self, source: usize) -> &str {
        self.sources.get(source).map_or("", |s| &s.reader.name)
    }

    /// Every reader is done: all past `until`, or failed.
    pub fn finished(&self) -> bool {
        self.sources.iter().all(|s| s.done)
    }

    /// Hands `sink` every line there is now, in stamp order, and what the
    /// readers have to say, until there is no more now or `sink` breaks.
    pub fn drain<B>(
        &mut self,
        mut sink: impl FnMut(Event<'_>) -> ControlFlow<B>,
    ) -> ControlFlow<B> {
        self.heap.clear();
        for i in 0..self.sources.len() {
            if self.advance(i, &mut sink)? {
                self.heap.push(Reverse((self.sources[i].order, i)));
            }
        }
        while let Some(Reverse((_, i))) = self.heap.pop() {
            let s = &self.sources[i];
            sink(Event::Line {
                source: i,
                stamp: s.stamp,
                text: &s.head,
                passed: s.passed,
            })?;
            if self.advance(i, &mut sink)? {
                self.heap.push(Reverse((self.sources[i].order, i)));
            }
        }
        ControlFlow::Continue(())
    }

    /// Reads a source's next line into its head: whether there is one.
    fn advance<B>(
        &mut self,
        i: usize,
        sink: &mut impl FnMut(Event<'_>) -> ControlFlow<B>,
    ) -> ControlFlow<B, bool> {
        let until = self.until;
        let s = &mut self.sources[i];
        if s.done {
            return ControlFlow::Continue(false);
        }
        let got = match s.reader.next_line() {
            Ok(Some(line)) if line.stamp.zip(until).is_some_and(|(t, u)| t > u) => {
                s.done = true;
                Ok(false)
            }
            Ok(Some(line)) => {
                s.head.clear();
                s.head.extend_from_slice(line.text);
                s.stamp = line.stamp;
                s.order = line.stamp.unwrap_or(s.order);
                s.passed = s.reader.take_passed();
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(error) => {
                s.done = true;
                Err(error)
            }
        };
        for notice in s.reader.take_notices() {
            sink(Event::Notice { source: i, notice })?;
        }
        match got {
            Ok(more) => ControlFlow::Continue(more),
            Err(error) => {
                sink(Event::Failed { source: i, error })?;
                ControlFlow::Continue(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logdir::Archive;
    use crate::logdir::read::reader::Position;
    use crate::testutil::scratch::Scratch;
    use std::fs;

    fn dir(tag: &str, files: &[(&str, &[(u64, &str)])]) -> Scratch {
        let d = Scratch::new(&format!("merge-{tag}"));
        let p = d.path();
        for (name, lines) in files {
            let body: String = lines
                .iter()
                .map(|&(n, text)| match n {
                    0 => format!("{text}\n"),
                    n => format!("{} {text}\n", stamp(n)),
                })
                .collect();
            fs::write(p.join(name), body).unwrap();
        }
        d
    }

    fn stamp(n: u64) -> Stamp {
        Stamp::from_parts(0x4000_0000_6000_0000 + n, 0).unwrap()
    }

    fn all(merge: &mut Merge) -> Vec<String> {
        let mut out = Vec::new();
        let _ = merge.drain(|e| {
            match e {
                Event::Line { source, text, .. } => {
                    out.push(format!("{source}:{}", String::from_utf8_lossy(text)))
                }
                Event::Notice { source, .. } => out.push(format!("{source}:notice")),
                Event::Failed { source, .. } => out.push(format!("{source}:failed")),
            }
            ControlFlow::<()>::Continue(())
        });
        out
    }

    #[test]
    fn lines_merge_by_stamp_stably_and_stop_after_until() {
        let archive = Archive {
            stamp: stamp(4),
            complete: true,
        }
        .name();
        let a = dir(
            "a",
            &[
                (&archive, &[(1, "a1"), (3, "a3")]),
                ("current", &[(5, "a5"), (0, "a-plain"), (7, "a7")]),
            ],
        );
        let b = dir(
            "b",
            &[("current", &[(2, "b2"), (5, "b5"), (6, "b6"), (9, "b9")])],
        );
        let readers = vec![
            Reader::open(a.path()).unwrap(),
            Reader::open(b.path()).unwrap(),
        ];
        let mut merge = Merge::new(readers, None);
        assert_eq!(
            all(&mut merge),
            [
                "0:a1",
                "1:b2",
                "0:a3",
                "0:a5",
                "0:a-plain",
                "1:b5",
                "1:b6",
                "0:a7",
                "1:b9"
            ]
        );
        assert!(!merge.finished());
        assert!(all(&mut merge).is_empty());
        let readers = vec![
            Reader::open(a.path()).unwrap(),
            Reader::open(b.path()).unwrap(),
        ];
        let mut merge = Merge::new(readers, Some(stamp(6)));
        assert_eq!(
            all(&mut merge),
            ["0:a1", "1:b2", "0:a3", "0:a5", "0:a-plain", "1:b5", "1:b6"]
        );
        assert!(merge.finished());
    }

    #[test]
    fn a_directory_that_fails_ends_alone() {
        let a = dir("fail-a", &[("current", &[(1, "a1"), (3, "a3")])]);
        let b = dir("fail-b", &[]);
        let archive = Archive {
            stamp: stamp(9),
            complete: true,
        }
        .name();
        fs::create_dir(b.join(archive)).unwrap();
        let mut rb = Reader::open(b.path()).unwrap();
        rb.seek(Position::Start).unwrap();
        let mut merge = Merge::new(vec![Reader::open(a.path()).unwrap(), rb], None);
        assert_eq!(all(&mut merge), ["1:failed", "0:a1", "0:a3"]);
    }
}
