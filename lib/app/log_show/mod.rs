//! Showing logs to people (and, as the journal's fields, to programs):
//! log directories merged by stamp, or stamped lines from standard input;
//! a window of time, the last lines of it, newest first or not, and
//! following the directories as they grow, through a filter (`filter`)
//! and a layout (`layout`, `fields`).
//!
//! A directory that cannot be read is named in a warning and the others
//! are shown; the exit status then says so (111). When the filter leaves
//! every line out, the status is 1, as journalctl's.

pub mod boots;
pub mod fields;
pub mod filter;
pub mod layout;
mod reversed;
pub mod usage;
pub mod verify;

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use rustix::event::{PollFd, PollFlags};

use crate::cli::{self, EXIT_TEMPORARY};
use crate::format::line_buffer::LineBuffer;
use crate::format::stamp::Stamp;
use crate::logdir;
use crate::logdir::read::merge::{Event, Merge};
use crate::logdir::read::reader::{Notice, Position, Reader, Watcher};
use crate::sys::poll;
use crate::sys::signals::Signals;
use crate::sys::stdout::{Output, Wrote};
use filter::Filter;
use layout::Layout;
use reversed::Reversed;

/// Output is written once about this much is gathered.
const CHUNK: usize = 64 * 1024;
/// Signals are looked at after this many lines, between polls.
const LINES_BETWEEN_SIGNALS: u32 = 4096;
/// A line from standard input longer than this is shown in pieces.
const MAX_LINE: usize = 4 << 20;
/// Standard input is read this much at a time.
const READ: usize = 256 << 10;

/// Why showing stopped before the end.
enum Stop {
    /// A stop signal.
    Signal,
    /// The reader of the output went away (a pager quit, `| head`).
    Closed,
    Failed(std::io::Error),
}

/// A wait that failed: showing cannot go on.
fn failed_wait(e: crate::error::Error) -> Stop {
    Stop::Failed(std::io::Error::other(e))
}

pub struct Show<'a> {
    pub filter: Filter,
    pub layout: Layout,
    pub out: Output,
    pub signals: &'a Signals,
    /// Lines stamped at or after this.
    pub since: Option<Stamp>,
    /// Lines stamped at or before this.
    pub until: Option<Stamp>,
    /// Only the last this many lines shown of what there is.
    pub last: Option<u64>,
    /// The newest lines first (not when following).
    pub reverse: bool,
    /// The lines kept for `last`, as shown.
    ring: VecDeque<Vec<u8>>,
    /// The lines kept for `reverse`, without `last`.
    reversed: Option<Reversed>,
    count: u32,
    /// Lines the filter took.
    kept: u64,
    status: i32,
}

impl<'a> Show<'a> {
    pub fn new(filter: Filter, layout: Layout, out: Output, signals: &'a Signals) -> Show<'a> {
        Show {
            filter,
            layout,
            out,
            signals,
            since: None,
            until: None,
            last: None,
            reverse: false,
            ring: VecDeque::new(),
            reversed: None,
            count: 0,
            kept: 0,
            status: 0,
        }
    }

    /// Shows directories, then, with `follow`, what they get until a stop
    /// signal, or until `deadline` once every line up to `until` is shown.
    /// Returns the exit status.
    pub fn dirs(mut self, paths: &[PathBuf], follow: bool, deadline: Option<SystemTime>) -> i32 {
        // Watched before the first read: nothing written meanwhile is missed.
        let watcher = match follow.then(Watcher::new).transpose() {
            Ok(w) => w,
            Err(e) => cli::fatal(EXIT_TEMPORARY, &e.to_string()),
        };
        let mut readers = Vec::new();
        let mut shown = Vec::new();
        for path in paths {
            let opened = Reader::open(path).and_then(|mut reader| {
                if let Some(w) = &watcher {
                    w.add(path)?;
                }
                self.place(&mut reader)?;
                Ok(reader)
            });
            match opened {
                Ok(reader) => {
                    readers.push(reader);
                    shown.push(path.as_path());
                }
                Err(e) => self.failed(&e.to_string()),
            }
        }
        if readers.is_empty() {
            return self.status.max(EXIT_TEMPORARY);
        }
        if readers.len() > 1 {
            self.layout.names = layout::short_names(&shown);
        }
        let names: Vec<String> = shown.iter().map(|p| p.display().to_string()).collect();
        self.layout.paths = names.clone();
        let mut merge = Merge::new(readers, self.until);
        let mut stop = self.history(&mut merge, &names);
        if let (Ok(()), Some(watcher)) = (&stop, &watcher) {
            stop = self.follow(&mut merge, &names, watcher, deadline);
        }
        self.end(stop)
    }

    /// Places a reader at the start of what is to be shown.
    fn place(&mut self, reader: &mut Reader) -> crate::error::Result<()> {
        if let Some(mut select) = self.filter.blocks() {
            select.until = self.until;
            reader.select(select);
        }
        let filter = &mut self.filter;
        match self.last {
            Some(n) => reader.seek_last(n, self.since, self.until, |line| filter.keep(line.text)),
            None => reader.seek(self.since.map_or(Position::Start, Position::Since)),
        }
    }

    /// Everything there is now in the window (or its last lines).
    fn history(&mut self, merge: &mut Merge, names: &[String]) -> Result<(), Stop> {
        let keep_last = self.last.is_some();
        let flow = merge.drain(|event| self.event(event, names, keep_last));
        if let ControlFlow::Break(stop) = flow {
            return Err(stop);
        }
        self.show_kept()
    }

    /// Shows the lines kept for `last` or `reverse`, in their order.
    fn show_kept(&mut self) -> Result<(), Stop> {
        loop {
            let line = match self.reverse {
                true => self.ring.pop_back(),
                false => self.ring.pop_front(),
            };
            let Some(line) = line else { break };
            self.out.buf().extend_from_slice(&line);
            if self.out.pending() >= CHUNK {
                self.flush()?;
            }
        }
        if let Some(mut reversed) = self.reversed.take() {
            let mut failed = None;
            let flow = reversed.drain(|entry| {
                self.out.buf().extend_from_slice(entry);
                if self.out.pending() >= CHUNK
                    && let Err(stop) = self.flush()
                {
                    return ControlFlow::Break(stop);
                }
                ControlFlow::Continue(())
            });
            match flow {
                Ok(ControlFlow::Break(stop)) => return Err(stop),
                Ok(ControlFlow::Continue(())) => {}
                Err(e) => failed = Some(e),
            }
            if let Some(e) = failed {
                self.failed(&e.to_string());
            }
        }
        self.flush()
    }

    /// Shows lines as they come, each wake's merged by stamp.
    fn follow(
        &mut self,
        merge: &mut Merge,
        names: &[String],
        watcher: &Watcher,
        deadline: Option<SystemTime>,
    ) -> Result<(), Stop> {
        loop {
            let until = match deadline {
                Some(d) => match d.duration_since(SystemTime::now()) {
                    Ok(left) => Some(Instant::now() + left),
                    Err(_) => return Ok(()),
                },
                None => None,
            };
            let mut fds = [
                PollFd::new(watcher, PollFlags::IN),
                PollFd::new(self.signals, PollFlags::IN),
            ];
            poll::until(&mut fds, until).map_err(failed_wait)?;
            if !self.signals.take().is_empty() {
                return Err(Stop::Signal);
            }
            watcher.drain();
            if let ControlFlow::Break(stop) = merge.drain(|event| self.event(event, names, false)) {
                return Err(stop);
            }
            self.flush()?;
            if deadline.is_some() && merge.finished() {
                return Ok(());
            }
        }
    }

    fn event(&mut self, event: Event<'_>, names: &[String], keep_last: bool) -> ControlFlow<Stop> {
        let name = |source: usize| names.get(source).map_or("", String::as_str);
        match event {
            Event::Line {
                source,
                stamp,
                text,
                passed,
            } => {
                // Lines the reader passed over count towards looking at signals.
                self.count = self
                    .count
                    .saturating_add(passed.min(u64::from(u32::MAX)) as u32);
                return self.line(source, stamp, text, keep_last);
            }
            Event::Notice {
                notice: Notice::Skipped { file, why },
                ..
            } => cli::warn(&format!("{file}: {why}")),
            Event::Notice {
                source,
                notice: Notice::Lost { after, upto },
            } => cli::warn(&format!(
                "{}: lines after {after} up to {} were deleted before they could be read",
                name(source),
                upto.map_or("now".to_string(), |u| u.to_string())
            )),
            Event::Failed { error, .. } => self.failed(&error.to_string()),
        }
        ControlFlow::Continue(())
    }

    /// Shows a line if the filter takes it; looks at signals now and then.
    fn line(
        &mut self,
        source: usize,
        stamp: Option<Stamp>,
        text: &[u8],
        keep_last: bool,
    ) -> ControlFlow<Stop> {
        self.count += 1;
        if self.count >= LINES_BETWEEN_SIGNALS {
            self.count = 0;
            if !self.signals.take().is_empty() {
                return ControlFlow::Break(Stop::Signal);
            }
        }
        if !self.filter.keep(text) {
            return ControlFlow::Continue(());
        }
        self.kept += 1;
        if keep_last {
            let limit = self.last.unwrap_or(0);
            if limit == 0 {
                return ControlFlow::Continue(());
            }
            let mut shown = if self.ring.len() as u64 >= limit {
                self.ring.pop_front().unwrap_or_default()
            } else {
                Vec::new()
            };
            shown.clear();
            self.layout.write(source, stamp, text, &mut shown);
            self.ring.push_back(shown);
            return ControlFlow::Continue(());
        }
        if self.reverse {
            let reversed = self.reversed.get_or_insert_with(Reversed::new);
            let entry = reversed.entry();
            self.layout.write(source, stamp, text, entry);
            if let Err(e) = reversed.push() {
                return ControlFlow::Break(Stop::Failed(e));
            }
            return ControlFlow::Continue(());
        }
        self.layout.write(source, stamp, text, self.out.buf());
        if self.out.pending() >= CHUNK
            && let Err(stop) = self.flush()
        {
            return ControlFlow::Break(stop);
        }
        ControlFlow::Continue(())
    }

    /// Shows stamped lines from standard input to its end (or the last of
    /// them); unstamped lines go with the stamped line before them.
    /// Returns the exit status.
    pub fn stdin(mut self) -> i32 {
        let stop = self.read_stdin().and_then(|()| self.show_kept());
        self.end(stop)
    }

    fn read_stdin(&mut self) -> Result<(), Stop> {
        let stdin = rustix::stdio::stdin();
        let keep_last = self.last.is_some();
        let mut lines = LineBuffer::new(MAX_LINE);
        let mut placed: Option<Stamp> = None;
        let mut eof = false;
        while !eof {
            let mut fds = [
                PollFd::new(&stdin, PollFlags::IN),
                PollFd::new(self.signals, PollFlags::IN),
            ];
            poll::until(&mut fds, None).map_err(failed_wait)?;
            if !self.signals.take().is_empty() {
                return Err(Stop::Signal);
            }
            if fds[0].revents().is_empty() {
                continue;
            }
            match rustix::io::read(stdin, lines.space(READ)) {
                Ok(0) => eof = true,
                Ok(n) => lines.filled(n),
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
                Err(e) => {
                    self.failed(&format!("standard input: {}", std::io::Error::from(e)));
                    eof = true;
                }
            }
            if eof {
                lines.finish();
            }
            while let Some(line) = lines.next_line() {
                let (stamp, text) = match logdir::parse_line(line) {
                    Some((stamp, text)) => (Some(stamp), text),
                    None => (None, line),
                };
                placed = stamp.or(placed);
                let inside = match placed {
                    Some(at) => {
                        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at <= u)
                    }
                    None => self.since.is_none() && self.until.is_none(),
                };
                if inside && let ControlFlow::Break(stop) = self.line(0, stamp, text, keep_last) {
                    return Err(stop);
                }
            }
        }
        Ok(())
    }

    /// Writes what is gathered, waiting for room unless a stop signal
    /// comes first.
    fn flush(&mut self) -> Result<(), Stop> {
        match self.out.flush_all(self.signals) {
            Ok(Wrote::All) => Ok(()),
            Ok(Wrote::Interrupted(_)) => Err(Stop::Signal),
            Err(e) if e.kind() == ErrorKind::BrokenPipe => Err(Stop::Closed),
            Err(e) => Err(Stop::Failed(e)),
        }
    }

    fn failed(&mut self, message: &str) {
        cli::warn(message);
        self.status = EXIT_TEMPORARY;
    }

    /// Finishes the output (what was shown before a stop signal too); the
    /// exit status. Nothing shown at all: `-- No entries --` (for people),
    /// and 1 if the filter left every line out, as journalctl says it.
    fn end(mut self, stop: Result<(), Stop>) -> i32 {
        let nothing = matches!(stop, Ok(())) && self.kept == 0 && self.last != Some(0);
        if nothing && self.layout.format.for_people() {
            self.out.buf().extend_from_slice(b"-- No entries --\n");
        }
        if nothing && self.filter.selects() && self.status == 0 {
            self.status = 1;
        }
        let done = match stop {
            Ok(()) | Err(Stop::Signal) => self.flush(),
            Err(stop) => Err(stop),
        };
        if let Err(Stop::Failed(e)) = done {
            self.failed(&format!("standard output: {e}"));
        }
        self.status
    }
}
