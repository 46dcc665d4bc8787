//! follow-log-directories: write the new lines of log directories to
//! standard output, each as it stands in the log, through durable cursors.

use std::path::PathBuf;
use std::process::exit;
use std::time::Instant;

use rill::cli::{self, EXIT_TEMPORARY};
use rill::format::stamp::Stamp;
use rill::logdir::read::cursor::Mark;
use rill::logdir::read::follow::{Consumer, Follower, Info};
use rill::sys::signals::{self, Signals};
use rill::sys::stdout::{Output, Wrote};
use rustix::event::{PollFd, PollFlags};

const SYNOPSIS: &str = "follow-log-directories CURSORS";

/// `--help`: each option of the man page, as it writes it.
const OPTIONS: &str = "";

/// The most bytes of lines gathered before they are written.
const BATCH: usize = 256 * 1024;
/// The share of each cursor in a round.
const SHARE: usize = 64 * 1024;

fn parse_args() -> Result<PathBuf, String> {
    use lexopt::prelude::*;
    let mut dirs = Vec::new();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(cli::lexopt_error)? {
        match arg {
            Short('h') | Long("help") => cli::help(SYNOPSIS, OPTIONS, 1),
            Long("version") => cli::version(),
            Value(dir) => dirs.push(PathBuf::from(dir)),
            _ => return Err(cli::lexopt_error(arg.unexpected())),
        }
    }
    match <[PathBuf; 1]>::try_from(dirs) {
        Ok([dir]) => Ok(dir),
        Err(dirs) => Err(format!(
            "one directory of cursors is required (given {})",
            dirs.len()
        )),
    }
}

/// Lines as they stand in the log, and where each cursor got to.
#[derive(Default)]
struct Batch {
    out: Vec<u8>,
    /// The marks after the lines of each cursor, each cursor once.
    marks: Vec<(u64, Mark)>,
    /// Where each mark's lines end in `out`.
    ends: Vec<usize>,
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
        self.marks.push((c.id, mark));
        self.ends.push(self.out.len());
    }

    fn full(&self) -> bool {
        self.out.len() >= BATCH
    }
}

impl Batch {
    /// Tells the follower how far the first `written` bytes took each cursor.
    fn delivered(&mut self, written: usize, follower: &mut Follower) {
        let mut last: Vec<(u64, Mark)> = Vec::new();
        for (&(id, mark), &end) in self.marks.iter().zip(&self.ends) {
            if end > written {
                break;
            }
            match last.iter_mut().find(|(i, _)| *i == id) {
                Some(entry) => entry.1 = mark,
                None => last.push((id, mark)),
            }
        }
        for (id, mark) in last {
            follower.delivered(id, mark);
        }
        self.out.clear();
        self.marks.clear();
        self.ends.clear();
    }
}

rill::block_signals_before_main!(&[signals::SIGTERM, signals::SIGINT, signals::SIGHUP]);

fn main() {
    cli::set_program("follow-log-directories");
    let root = parse_args().unwrap_or_else(|e| cli::usage(&e, SYNOPSIS));
    let stop = [signals::SIGTERM, signals::SIGINT, signals::SIGHUP];
    // SIGPIPE stays ignored (Rust's default): a closed pipe is an EPIPE.
    let signals = Signals::block(&stop)
        .unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &format!("signals: {e}")));
    let mut follower =
        Follower::open(&root).unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &e.to_string()));
    let mut out = Output::stdout();
    let mut batch = Batch::default();
    let code = match run(&mut follower, &signals, &mut out, &mut batch) {
        Ok(()) => 0,
        Err(e) => {
            cli::message("fatal", &e);
            EXIT_TEMPORARY
        }
    };
    if !follower.flush(std::time::Duration::from_secs(10)) {
        cli::warn("stopping with a cursor not saved; its last lines will be written again");
        exit(EXIT_TEMPORARY);
    }
    exit(code);
}

/// Follows until a stop signal, or an error.
fn run(
    follower: &mut Follower,
    signals: &Signals,
    out: &mut Output,
    batch: &mut Batch,
) -> Result<(), String> {
    loop {
        let took = follower
            .read_round(SHARE, batch)
            .map_err(|e| e.to_string())?;
        if !batch.out.is_empty() || !batch.marks.is_empty() {
            let data = std::mem::take(&mut batch.out);
            let wrote = out.write_all(&data, signals);
            let written = match wrote {
                Ok(Wrote::All) => data.len(),
                Ok(Wrote::Interrupted(n)) => n,
                Err(_) => 0,
            };
            batch.out = data;
            batch.delivered(written, follower);
            wrote.map_err(|e| format!("standard output: {e}"))?;
        }
        let mut fds = [
            PollFd::new(signals, PollFlags::IN),
            PollFd::from_borrowed_fd(follower.root_fd(), PollFlags::IN),
            PollFd::from_borrowed_fd(follower.dirs_fd(), PollFlags::IN),
        ];
        let timeout = if took {
            Some(rustix::time::Timespec::default())
        } else {
            follower.rescan_due().map(|at| {
                let t = at.saturating_duration_since(Instant::now());
                rustix::time::Timespec {
                    tv_sec: t.as_secs() as i64,
                    tv_nsec: i64::from(t.subsec_nanos()),
                }
            })
        };
        let _ = rustix::event::poll(&mut fds, timeout.as_ref());
        let (sig, root_changed, dirs_changed) = (
            !fds[0].revents().is_empty(),
            !fds[1].revents().is_empty(),
            !fds[2].revents().is_empty(),
        );
        if sig && !signals.take().is_empty() {
            return Ok(());
        }
        if dirs_changed {
            follower.drain().map_err(|e| e.to_string())?;
        }
        if root_changed || follower.rescan_due().is_some_and(|at| at <= Instant::now()) {
            follower.rescan().map_err(|e| e.to_string())?;
        }
    }
}
