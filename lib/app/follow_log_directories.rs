//! follow-log-directories' loop: the new lines of the followed log
//! directories on standard output, each as it stands in the log (its
//! stamp's label, a space, its text), each cursor saved only as far as its
//! lines were written.
//!
//! One poll(2) loop: a round of lines from the cursors (a bounded share
//! from each, see `follow`) is gathered into a batch, the batch written
//! out, line by line as the pipe takes it, until a stop signal; then each
//! cursor is delivered the mark after its last line written. Where each
//! cursor's lines end in the batch is an exact `Ledger`: the export's,
//! known to the byte and with nothing kept to resend.

use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use crate::cli::{self, EXIT_TEMPORARY};
use crate::error::{Error, Result};
use crate::format::stamp::Stamp;
use crate::logdir::read::cursor::Mark;
use crate::logdir::read::follow::{Consumer, Follower, Info};
use crate::logdir::read::ledger::Ledger;
use crate::sys::poll;
use crate::sys::signals::Signals;
use crate::sys::stdout::{Output, Wrote};

/// The most bytes of lines gathered before they are written.
const BATCH: usize = 256 * 1024;
/// The share of each cursor in a round.
const SHARE: usize = 64 * 1024;
/// How long a stop waits for the cursors to be saved.
const SAVE_WAIT: Duration = Duration::from_secs(10);

/// Follows until a stop signal or an error; the exit status.
pub fn run(follower: &mut Follower, signals: &Signals) -> i32 {
    let mut out = Output::stdout();
    let mut batch = Batch::default();
    let code = match follow(follower, signals, &mut out, &mut batch) {
        Ok(()) => 0,
        Err(e) => {
            cli::message("fatal", &e.to_string());
            EXIT_TEMPORARY
        }
    };
    if !follower.flush(SAVE_WAIT) {
        cli::warn("stopping with a cursor not saved; its last lines will be written again");
        return EXIT_TEMPORARY;
    }
    code
}

/// Lines as they stand in the log, and where each cursor got to.
struct Batch {
    out: Vec<u8>,
    /// Where each cursor's marks fall in `out`.
    ledger: Ledger,
    delivered: Vec<(u64, Mark)>,
    settled: Vec<(u64, Mark)>,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch {
            out: Vec::new(),
            ledger: Ledger::exact(),
            delivered: Vec::new(),
            settled: Vec::new(),
        }
    }
}

impl Consumer for Batch {
    fn line(&mut self, _: &Info, stamp: Option<Stamp>, text: &[u8]) {
        if let Some(stamp) = stamp {
            self.out.extend_from_slice(&stamp.label());
            self.out.push(b' ');
        }
        self.out.extend_from_slice(text);
        self.out.push(b'\n');
    }

    fn reached(&mut self, c: &Info, mark: Mark) {
        self.ledger.push(self.out.len() as u64, c.id, mark);
    }

    fn full(&self) -> bool {
        self.out.len() >= BATCH
    }
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.out.is_empty() && self.ledger.is_empty()
    }

    /// Tells the follower how far the first `written` bytes took each
    /// cursor, and starts afresh.
    fn delivered(&mut self, written: usize, follower: &mut Follower) {
        self.ledger
            .acked(written as u64, &mut self.delivered, &mut self.settled);
        for &(id, mark) in &self.delivered {
            follower.delivered(id, mark);
        }
        self.ledger.clear();
        self.out.clear();
    }
}

fn follow(
    follower: &mut Follower,
    signals: &Signals,
    out: &mut Output,
    batch: &mut Batch,
) -> Result<()> {
    loop {
        let took = follower.read_round(SHARE, batch)?;
        if !batch.is_empty() {
            let data = std::mem::take(&mut batch.out);
            let wrote = out.write_all(&data, signals);
            let written = match wrote {
                Ok(Wrote::All) => data.len(),
                Ok(Wrote::Interrupted(n)) => n,
                Err(_) => 0,
            };
            batch.out = data;
            batch.delivered(written, follower);
            wrote.map_err(|e| Error::new("standard output", e))?;
        }
        let mut fds = [
            PollFd::new(signals, PollFlags::IN),
            PollFd::from_borrowed_fd(follower.root_fd(), PollFlags::IN),
            PollFd::from_borrowed_fd(follower.dirs_fd(), PollFlags::IN),
        ];
        // Lines were taken: look, and read on at once.
        let deadline = if took {
            Some(Instant::now())
        } else {
            follower.rescan_due()
        };
        if let Err(e) = poll::until(&mut fds, deadline) {
            cli::warn(&e.to_string());
        }
        let (sig, root_changed, dirs_changed) = (
            !fds[0].revents().is_empty(),
            !fds[1].revents().is_empty(),
            !fds[2].revents().is_empty(),
        );
        if sig && !signals.take().is_empty() {
            return Ok(());
        }
        if dirs_changed {
            follower.drain()?;
        }
        if root_changed || follower.rescan_due().is_some_and(|at| at <= Instant::now()) {
            follower.rescan()?;
        }
    }
}
