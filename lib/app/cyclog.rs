//! One input fed to a set of log directories: every byte read goes to every
//! directory, stamped, through one small blocking loop over poll(2).
//!
//! Input is taken in chunks; a chunk is consumed only once every directory
//! has written it. A directory that cannot write (disk full, I/O error)
//! holds the chunk, and so the input: nothing more is read, the writer
//! behind the pipe blocks, and the write is tried again with backoff until
//! it succeeds.

use std::ffi::{OsStr, OsString};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::fs::{self, AtFlags, Mode};
use rustix::io::Errno;

use crate::cli;
use crate::error::{Error, Usage};
use crate::format::stamp::Stamp;
use crate::logdir::write::finisher::Finisher;
use crate::logdir::write::split::Chunk;
use crate::logdir::write::writer::{DirWriter, Measure, Policy};
use crate::logdir::write::writer_state::chunk_hash;
use crate::logdir::{self, CURRENT, LOCK, WRITER_STATE};
use crate::sys::poll;
use crate::sys::signals::{self, Signals};
use crate::sys::stdin::{CHUNK, Fill, Input};

/// At a stop signal, at most this much more input is taken before stopping.
const MAX_DRAIN: usize = 4 << 20;

/// Refuses a word of a multilog or s6-log script given as a directory: such
/// a command line would otherwise make directories named `t` or `s1000000`.
/// Both peers take a directory only as a word starting with `.` or `/`, so
/// such a word is always a directory here too; others are refused only
/// when they are one of the peers' actions (svlogd's script is a file in
/// the directory, not words).
pub fn refuse_script_words(dirs: &[OsString]) -> Result<(), Usage> {
    for dir in dirs {
        if let Some(action) = script_action(dir.as_bytes()) {
            let word = dir.to_string_lossy();
            return Err(Usage(format!(
                "{word:?} is {action}, not a directory: cyclog does not take \
                 multilog or s6-log script actions yet (see cyclog(8) for its options; \
                 a directory of that name is written ./{word})"
            )));
        }
    }
    Ok(())
}

/// The multilog or s6-log action `word` is, if it is one.
fn script_action(word: &[u8]) -> Option<&'static str> {
    let number = |rest: &[u8]| !rest.is_empty() && rest.iter().all(u8::is_ascii_digit);
    let (&first, rest) = word.split_first()?;
    Some(match first {
        b'.' | b'/' => return None,
        b't' if rest.is_empty() => {
            "multilog's and s6-log's t (TAI64N stamps: cyclog always stamps)"
        }
        b'T' if rest.is_empty() => "s6-log's T (ISO 8601 stamps)",
        b'e' if rest.is_empty() => "multilog's and s6-log's e (copy to standard error)",
        b'2' if rest.is_empty() => "s6-log's 2 (alert on standard error)",
        b'1' if rest.is_empty() => "s6-log's 1 (copy to standard output)",
        b'f' if rest.is_empty() => "s6-log's f (select the lines not yet acted on)",
        b's' if number(rest) => "multilog's and s6-log's sSIZE (cyclog's --max-file-size)",
        b'n' if number(rest) => "multilog's and s6-log's nCOUNT (cyclog's --max-files)",
        b'S' if number(rest) => "s6-log's STOTAL (cyclog's --max-total-size)",
        b'l' if number(rest) => "s6-log's lTOLERANCE (cyclog's --margin)",
        b'r' if number(rest) => "s6-log's rCOOLDOWN (retry interval)",
        b'E' if number(rest) => "s6-log's ESIZE (alert size)",
        b'^' if number(rest) => "s6-log's ^SIZE (status file size)",
        b'!' => "multilog's and s6-log's !PROCESSOR (cyclog's --processor)",
        b'?' => "s6-log's ?PROCESSOR (cyclog's --processor)",
        b'+' | b'-' => "multilog's and s6-log's +PATTERN or -PATTERN (line selection)",
        b'=' => "multilog's and s6-log's =FILE (status file)",
        _ => return None,
    })
}

/// Why the set could not be opened: exit code and message.
pub struct OpenError {
    pub code: i32,
    pub message: String,
}

fn open_error(code: i32, message: String) -> OpenError {
    OpenError { code, message }
}

/// Opens, creating the missing ones, and locks every directory, or none:
/// on failure the directories created here are removed again.
pub fn open_all(paths: &[OsString], policy: &Policy) -> Result<Vec<DirWriter>, OpenError> {
    let mut created: Vec<&OsStr> = Vec::new();
    let result = open_each(paths, policy, &mut created);
    if result.is_err() {
        for path in created.iter().rev() {
            remove_created(path);
        }
    }
    result
}

fn open_each<'a>(
    paths: &'a [OsString],
    policy: &Policy,
    created: &mut Vec<&'a OsStr>,
) -> Result<Vec<DirWriter>, OpenError> {
    for path in paths {
        let name = path.to_string_lossy();
        match fs::stat(path.as_os_str()) {
            Ok(st) if fs::FileType::from_raw_mode(st.st_mode) == fs::FileType::Directory => {}
            Ok(_) => {
                return Err(open_error(
                    cli::EXIT_TEMPORARY,
                    format!("{name}: not a directory"),
                ));
            }
            Err(Errno::NOENT) => {}
            Err(e) => {
                return Err(open_error(
                    cli::EXIT_TEMPORARY,
                    format!("{name}: stat: {}", std::io::Error::from(e)),
                ));
            }
        }
    }
    let mut seen = Vec::new();
    let mut writers = Vec::new();
    for path in paths {
        let name = path.to_string_lossy().into_owned();
        let fail = |op: &str, e: std::io::Error| {
            open_error(cli::EXIT_TEMPORARY, format!("{name}: {op}: {e}"))
        };
        match fs::mkdir(path.as_os_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) => created.push(path),
            Err(Errno::EXIST) => {}
            Err(e) => return Err(fail("mkdir", e.into())),
        }
        let dir = logdir::open_dir(path).map_err(|e| fail("open", e))?;
        let st = fs::fstat(&dir).map_err(|e| fail("fstat", e.into()))?;
        if seen.contains(&(st.st_dev, st.st_ino)) {
            return Err(open_error(cli::EXIT_USAGE, format!("{name}: named twice")));
        }
        seen.push((st.st_dev, st.st_ino));
        let lock = match logdir::lock(dir.as_fd(), &name)
            .map_err(|e| open_error(cli::EXIT_TEMPORARY, e.to_string()))?
        {
            Some(lock) => lock,
            None => {
                let text = format!("{name}: locked: another writer is using this log directory");
                return Err(open_error(cli::EXIT_TEMPORARY, text));
            }
        };
        let writer = DirWriter::open(name, dir, lock, policy)
            .map_err(|e| open_error(cli::EXIT_TEMPORARY, e.to_string()))?;
        writers.push(writer);
    }
    Ok(writers)
}

/// Removes a directory this run created, with what it put there.
fn remove_created(path: &OsStr) {
    if let Ok(dir) = logdir::open_dir(path) {
        for file in [CURRENT, LOCK, WRITER_STATE] {
            let _ = fs::unlinkat(&dir, file, AtFlags::empty());
        }
    }
    let _ = fs::rmdir(path);
}

/// Retrying a failed write or rotation.
struct Backoff {
    next_at: Instant,
    delay: Duration,
    since: Instant,
}

/// A chunk being written: how far, and which directories have it.
struct Inflight {
    len: usize,
    hash: u64,
    measures: Vec<Option<Measure>>,
    done: Vec<bool>,
}

pub struct LogSet {
    input: Input,
    dirs: Vec<DirWriter>,
    policy: Policy,
    out: Vec<u8>,
    inflight: Option<Inflight>,
    backoff: Option<Backoff>,
    finisher: Finisher,
    /// The input has ended.
    eof: bool,
    /// A stop signal came: take at most `drain` more bytes, then stop.
    /// It also ends a wait for a full disk (the chunk stays in the pipe).
    stopping: bool,
    drain: usize,
}

impl LogSet {
    pub fn new(input: Input, dirs: Vec<DirWriter>, policy: Policy) -> std::io::Result<LogSet> {
        Ok(LogSet {
            input,
            dirs,
            policy,
            finisher: Finisher::start()?,
            out: Vec::with_capacity(128 * 1024),
            inflight: None,
            backoff: None,
            eof: false,
            stopping: false,
            drain: 0,
        })
    }

    /// Takes over after the last writer: peeks at the input for the chunk
    /// it may have been writing when it died.
    pub fn recover(&mut self) -> crate::error::Result<()> {
        let need = self
            .dirs
            .iter()
            .filter_map(|d| d.pending_chunk())
            .map(|(len, _)| len)
            .filter(|&len| len > 0)
            .max();
        if let Some(len) = need
            && self.input_ready_now()
        {
            self.input
                .fill(len as usize)
                .map_err(|e| Error::new("standard input: read", e))?;
        }
        for dir in &mut self.dirs {
            dir.recover(self.input.buffered(), &self.policy)?;
        }
        Ok(())
    }

    /// Runs until the input ends or a stop signal; returns the exit code.
    pub fn run(&mut self, signals: &Signals) -> i32 {
        loop {
            for signal in signals.take() {
                self.on_signal(signal);
            }
            let now = Instant::now();
            for dir in &mut self.dirs {
                if dir.deadline().is_some_and(|due| due <= now) {
                    dir.on_time(now, &self.policy);
                }
            }
            if self.backoff.as_ref().is_none_or(|b| b.next_at <= now) {
                match self.step() {
                    Ok(()) => self.recovered(),
                    Err(e) => self.failed(&e),
                }
            }
            let nothing_left = self.input.buffered().is_empty() && self.inflight.is_none();
            let drained = self.stopping && self.drain == 0;
            if (nothing_left && (self.eof || drained)) || (self.stopping && self.backoff.is_some())
            {
                break;
            }
            self.wait(signals);
        }
        self.close()
    }

    fn on_signal(&mut self, signal: i32) {
        match signal {
            signals::SIGALRM => self.dirs.iter_mut().for_each(DirWriter::request_rotation),
            signals::SIGCHLD => {
                for dir in &mut self.dirs {
                    dir.reap_processor(&self.policy, false);
                }
            }
            _ if !self.stopping => {
                // Write what the pipe holds now (within reason), then stop.
                self.stopping = true;
                self.drain = self.input.waiting().unwrap_or(0).min(MAX_DRAIN);
            }
            _ => {}
        }
    }

    /// Does the next piece of work: a due rotation, or one chunk.
    fn step(&mut self) -> crate::error::Result<()> {
        if self.inflight.is_none() {
            for dir in &mut self.dirs {
                if dir.wants_rotation(&self.policy) {
                    dir.rotate(&self.policy, &self.finisher)?;
                }
            }
            if !self.input.buffered().is_empty() {
                self.inflight = Some(self.plan());
            }
        }
        let Some(chunk) = &mut self.inflight else {
            return Ok(());
        };
        // The byte after the chunk goes with it: it decides a split at its end.
        let data = Chunk::head(self.input.buffered(), chunk.len);
        let now = Stamp::now();
        for (i, dir) in self.dirs.iter_mut().enumerate() {
            if chunk.done[i] {
                continue;
            }
            let out_len = chunk.measures[i].map_or(0, |m| m.out_len);
            loop {
                match dir.write(data, chunk.hash, out_len, now, &mut self.out, &self.policy) {
                    Ok(()) => break,
                    Err(e) if e.is_disk_full() && self.policy.delete_when_full => {
                        match dir.make_room() {
                            Some(name) => {
                                cli::warn(&format!("{}: disk full: deleted {name}", dir.name))
                            }
                            None => return Err(e),
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            chunk.done[i] = true;
        }
        let chunk = self.inflight.take().expect("checked above");
        self.input
            .consume(chunk.len)
            .map_err(|e| Error::new("standard input: read", e))?;
        for (dir, measure) in self.dirs.iter_mut().zip(&chunk.measures) {
            // Also where the chunk was skipped: it is consumed now.
            dir.record_idle();
            if measure.is_some_and(|m| m.rotate && m.stop == chunk.len) {
                dir.request_rotation();
            }
        }
        Ok(())
    }

    /// Chooses the next chunk: as far as every directory can go before it
    /// must rotate or has bytes to skip.
    fn plan(&self) -> Inflight {
        let data = self.input.buffered();
        let mut measures: Vec<Option<Measure>> = Vec::with_capacity(self.dirs.len());
        let mut len = data.len();
        for dir in &self.dirs {
            if dir.skip() > 0 {
                len = len.min(dir.skip() as usize);
                measures.push(None);
            } else {
                let m = dir.measure(Chunk::whole(data), &self.policy);
                len = len.min(m.stop);
                measures.push(Some(m));
            }
        }
        for (dir, m) in self.dirs.iter().zip(measures.iter_mut()) {
            if m.is_some_and(|m| m.stop != len) {
                *m = Some(dir.measure(Chunk::head(data, len), &self.policy));
            }
        }
        // Every chunk moves something: input, output or a rotation; one that
        // moved nothing would be planned again and again, and cyclog spin.
        debug_assert!(
            len > 0 || measures.iter().flatten().any(|m| m.out_len > 0 || m.rotate),
            "a chunk that does nothing"
        );
        let hash = if measures.iter().any(Option::is_some) {
            chunk_hash(&data[..len])
        } else {
            0
        };
        Inflight {
            len,
            hash,
            done: vec![false; self.dirs.len()],
            measures,
        }
    }

    fn failed(&mut self, error: &Error) {
        let now = Instant::now();
        let backoff = match self.backoff.take() {
            None => {
                cli::warn(&format!(
                    "{error}; holding input, retrying until it can be written"
                ));
                Backoff {
                    next_at: now,
                    delay: Duration::from_millis(100),
                    since: now,
                }
            }
            Some(b) => Backoff {
                delay: (b.delay * 2).min(Duration::from_secs(5)),
                ..b
            },
        };
        self.backoff = Some(Backoff {
            next_at: now + backoff.delay,
            ..backoff
        });
    }

    fn recovered(&mut self) {
        if let Some(b) = self.backoff.take() {
            cli::info(&format!(
                "writing again after {:.1}s",
                b.since.elapsed().as_secs_f64()
            ));
        }
    }

    /// Sleeps until input, a signal, or the next deadline.
    fn wait(&mut self, signals: &Signals) {
        let now = Instant::now();
        let busy = !self.input.buffered().is_empty() || self.inflight.is_some();
        let mut deadline = self.dirs.iter().filter_map(DirWriter::deadline).min();
        if let Some(b) = &self.backoff {
            deadline = Some(deadline.map_or(b.next_at, |d| d.min(b.next_at)));
        } else if busy {
            deadline = Some(now); // more to write: don't sleep
        }
        let want_input =
            !(busy || self.backoff.is_some() || self.eof || (self.stopping && self.drain == 0));
        let mut fds = vec![PollFd::new(signals, PollFlags::IN)];
        if want_input {
            fds.push(PollFd::from_borrowed_fd(self.input.fd(), PollFlags::IN));
        }
        if let Err(e) = poll::until(&mut fds, deadline) {
            cli::warn(&e.to_string());
        }
        let input_ready = want_input && fds.get(1).is_some_and(|fd| !fd.revents().is_empty());
        if input_ready {
            self.take_input();
        }
    }

    /// Whether input is ready now; a failed look counts as not ready.
    fn input_ready_now(&self) -> bool {
        let mut fds = [PollFd::from_borrowed_fd(self.input.fd(), PollFlags::IN)];
        match poll::until(&mut fds, Some(Instant::now())) {
            Ok(ready) => ready > 0,
            Err(e) => {
                cli::warn(&e.to_string());
                false
            }
        }
    }

    fn take_input(&mut self) {
        let max = if self.stopping {
            self.drain.min(CHUNK)
        } else {
            CHUNK
        };
        match self.input.fill(max) {
            Ok(Fill::Data) => {
                if self.stopping {
                    self.drain -= self.input.buffered().len().min(self.drain);
                }
            }
            Ok(Fill::Empty) => {}
            Ok(Fill::Eof) => self.eof = true,
            Err(e) => {
                cli::warn(&format!("standard input: {e}; stopping"));
                self.eof = true;
            }
        }
    }

    /// Leaves every directory whole: processors finished, the last line
    /// completed, `current` synced and marked finished.
    fn close(&mut self) -> i32 {
        let mut code = 0;
        if let Some(chunk) = self.inflight.take()
            && self.input.is_peeking()
        {
            // The chunk stays in the pipe for the next writer: take it
            // back from the directories that have it, or it would be twice.
            for (dir, done) in self.dirs.iter_mut().zip(chunk.done) {
                if done && let Err(e) = dir.undo_write() {
                    cli::warn(&e.to_string());
                }
            }
        }
        if !self.input.buffered().is_empty() && !self.input.is_peeking() {
            let lost = self.input.buffered().len();
            cli::warn(&format!("stopping with {lost} bytes read but not written"));
            code = cli::EXIT_TEMPORARY;
        }
        for dir in &mut self.dirs {
            dir.reap_processor(&self.policy, true);
            if let Err(e) = dir.close() {
                cli::warn(&e.to_string());
                code = cli::EXIT_TEMPORARY;
            }
        }
        self.finisher.stop();
        code
    }
}
