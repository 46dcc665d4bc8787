//! The kernel log reader's loop: records from a `Source`, one reader line
//! each on standard output, in one small blocking loop over poll(2).
//!
//! A burst is read to its end (or to a chunk's worth of lines), then
//! written out at once. While output is waiting to be written nothing more
//! is read: the kernel's ring buffer holds the rest, and when it overflows
//! the reader says how many records were lost. The state file, if any, is
//! updated only behind what was written.

use std::time::Instant;

use rustix::event::{PollFd, PollFlags};

use crate::cli;
use crate::format::event_time::UnixTime;
use crate::format::kmsg::{self, End, Framer, MAX_RECORD};
use crate::format::reader_line::Record;
use crate::kernel::source::{Kind, Read, Source};
use crate::kernel::state::{self, Admit, Keeper, Sequence};
use crate::sys::poll;
use crate::sys::signals::Signals;
use crate::sys::stdout::{CHUNK, Flush, Output};

pub struct Reader {
    source: Source,
    out: Output,
    framer: Framer,
    lines: Lines,
    keeper: Option<Keeper>,
    buf: Box<[u8]>,
    /// The source may have more to read without waiting.
    readable: bool,
    /// stdout was full at the last write.
    blocked: bool,
    /// The source ended (or failed): write what was read, then stop.
    eof: bool,
    /// A stop signal came: write what was read, then stop.
    stopping: bool,
    /// Reading failed: exit 111 once what was read is written.
    failed: bool,
}

/// Turns records into lines, following the sequence numbers.
struct Lines {
    sequence: Sequence,
    /// When the boot started, as of the last records read: their event
    /// times are taken from it.
    booted: Option<UnixTime>,
    /// The last record put in the output since it was last written.
    unwritten_seq: Option<u64>,
}

impl Lines {
    fn add(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        let entry = match kmsg::parse(raw) {
            Ok(entry) => entry,
            Err(why) => return push_line(&kmsg::malformed_record(raw, why), out),
        };
        if let Some(seq) = entry.seq {
            match self.sequence.admit(seq) {
                Admit::Skip => return,
                Admit::Write => {}
                Admit::AfterLoss { first, last } => push_line(&kmsg::loss_record(first, last), out),
            }
            self.unwritten_seq = Some(seq);
        }
        push_line(&entry.to_record(self.booted), out);
    }
}

fn push_line(record: &Record, out: &mut Vec<u8>) {
    record.write(out);
    out.push(b'\n');
}

impl Reader {
    /// With `new_boot`, the id of a boot not read before: its boot marker
    /// goes first.
    pub fn new(
        source: Source,
        mut out: Output,
        sequence: Sequence,
        keeper: Option<Keeper>,
        new_boot: Option<&str>,
    ) -> Reader {
        if let Some(id) = new_boot {
            push_line(&kmsg::boot_record(id, state::boot_time()), out.buf());
        }
        Reader {
            source,
            out,
            framer: Framer::default(),
            lines: Lines {
                sequence,
                booted: None,
                unwritten_seq: None,
            },
            keeper,
            buf: vec![0u8; MAX_RECORD].into_boxed_slice(),
            readable: true,
            blocked: false,
            eof: false,
            stopping: false,
            failed: false,
        }
    }

    /// Runs until a stop signal or the end of the source, and everything
    /// read is written; returns the exit code.
    pub fn run(&mut self, signals: &Signals) -> i32 {
        loop {
            if !signals.take().is_empty() && !self.stopping {
                self.stopping = true;
                // A last line still open will get no more bytes from us.
                self.drain(End::Eof);
            }
            if let Some(keeper) = &mut self.keeper {
                keeper.save_if_due(Instant::now());
            }
            if self.out.pending() == 0 {
                if self.stopping || self.eof {
                    return self.finish();
                }
                if self.readable {
                    // It reads until lines are ready, the source has
                    // nothing more for now, or it ended: never idle twice.
                    self.fill();
                    continue;
                }
            } else if !self.blocked {
                match self.out.flush() {
                    Ok(Flush::Done) => {
                        self.written();
                        continue;
                    }
                    Ok(Flush::Blocked) => self.blocked = true,
                    Err(e) => {
                        cli::warn(&format!("standard output: {e}"));
                        self.failed = true;
                        return self.finish();
                    }
                }
            }
            self.wait(signals);
        }
    }

    /// Reads until the source has nothing more for now, or a chunk of
    /// lines is ready.
    fn fill(&mut self) {
        while self.out.pending() < CHUNK {
            match self.source.read(&mut self.buf) {
                Ok(Read::Data(n)) => {
                    self.framer.push(&self.buf[..n]);
                    self.drain(match self.source.kind() {
                        Kind::Device => End::Burst,
                        Kind::Stream => End::More,
                    });
                }
                // The gap shows in the next record's sequence number.
                Ok(Read::Overrun) => {}
                Ok(Read::Empty) => {
                    self.readable = false;
                    self.drain(End::Burst);
                    return;
                }
                Ok(Read::Eof) => {
                    self.eof = true;
                    self.drain(End::Eof);
                    return;
                }
                Err(e) => {
                    cli::warn(&e.to_string());
                    self.failed = true;
                    self.eof = true;
                    self.drain(End::Eof);
                    return;
                }
            }
        }
    }

    fn drain(&mut self, end: End) {
        self.lines.booted = Some(state::boot_time());
        while let Some(raw) = self.framer.next(end) {
            self.lines.add(raw, self.out.buf());
        }
    }

    /// Everything gathered is written: the state may say so.
    fn written(&mut self) {
        if let (Some(seq), Some(keeper)) = (self.lines.unwritten_seq.take(), &mut self.keeper) {
            keeper.written(seq);
        }
    }

    /// Sleeps until a signal, a record, room in the pipe, or a state save.
    fn wait(&mut self, signals: &Signals) {
        let want_input = self.out.pending() == 0 && !self.readable && !self.eof && !self.stopping;
        let want_output = self.out.pending() > 0 && self.blocked;
        let mut fds = vec![PollFd::new(signals, PollFlags::IN)];
        if want_input {
            fds.push(PollFd::new(&self.source, PollFlags::IN));
        }
        if want_output {
            fds.push(PollFd::new(&self.out, PollFlags::OUT));
        }
        let deadline = self.keeper.as_ref().and_then(Keeper::deadline);
        if let Err(e) = poll::until(&mut fds, deadline) {
            cli::warn(&e.to_string());
        }
        let ready = |i: usize| fds.get(i).is_some_and(|fd| !fd.revents().is_empty());
        if want_input && ready(1) {
            self.readable = true;
        }
        if want_output && ready(fds.len() - 1) {
            self.blocked = false;
        }
    }

    fn finish(&mut self) -> i32 {
        if let Some(keeper) = &mut self.keeper {
            keeper.save();
        }
        if self.failed { cli::EXIT_TEMPORARY } else { 0 }
    }
}
