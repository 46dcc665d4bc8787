//! One input fed to a set of log directories: every byte read goes to every
//! directory, stamped, through one small blocking loop over poll(2).
//!
//! Input is taken in chunks; a chunk is consumed only once every directory
//! has written it. A directory that cannot write (disk full, I/O error)
//! holds the chunk, and so the input: nothing more is read, the writer
//! behind the pipe blocks, and the write is tried again with backoff until
//! it succeeds.

pub mod script;
pub mod split_by;
pub mod svlogd;

use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::fs::{self, AtFlags, Mode};
use rustix::io::Errno;

use crate::cli;
use crate::error::Error;
use crate::format::stamp::Stamp;
use crate::logdir::write::finisher::Finisher;
use crate::logdir::write::split::Chunk;
use crate::logdir::write::split::Pieces;
use crate::logdir::write::writer::{DirWriter, Measure, Policy, Select};
use crate::logdir::write::writer_state::chunk_hash;
use crate::logdir::{self, CURRENT, LOCK, WRITER_STATE};
use crate::sys::poll;
use crate::sys::signals::{self, Signals};
use crate::sys::stdin::{CHUNK, Fill, Input};
use script::{Action, AlertForm, Script, StatusForm};

/// How often a script looks for the rest of a line it peeked without its end.
const LINE_WAIT: Duration = Duration::from_millis(20);

/// At a stop signal, at most this much more input is taken before stopping.
const MAX_DRAIN: usize = 4 << 20;

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
/// `policies[i]` is how `paths[i]` is kept.
pub fn open_all(paths: &[OsString], policies: &[Policy]) -> Result<Vec<DirWriter>, OpenError> {
    let mut created: Vec<&OsStr> = Vec::new();
    let result = open_each(paths, policies, &mut created);
    if result.is_err() {
        for path in created.iter().rev() {
            remove_created(path);
        }
    }
    result
}

fn open_each<'a>(
    paths: &'a [OsString],
    policies: &[Policy],
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
    for (path, policy) in paths.iter().zip(policies) {
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
    /// The directories that take part (all but with `--split-by`).
    involved: Vec<bool>,
}

/// A directory's part of a script: the lines it takes.
struct DirSelect {
    memo: Rc<Memo>,
    dir: usize,
}

impl Select for DirSelect {
    fn takes(&self, line: &[u8]) -> bool {
        self.memo.dir_takes(self.dir, line)
    }
}

/// The script's decisions on the lines of the chunk being planned and
/// written, made once per line: each directory asks for each line when the
/// chunk is measured and again when it is written. A line is known by where
/// it lies in the input buffer, which does not change until the chunk is
/// consumed; `forget` is called for each new chunk.
struct Memo {
    script: Rc<Script>,
    /// For each directory, its step in the script.
    steps: Vec<usize>,
    /// (address, length, the steps that act on it as bits), by address.
    lines: RefCell<Vec<(usize, usize, u64)>>,
    acts: RefCell<Vec<bool>>,
}

impl Memo {
    fn new(script: Rc<Script>) -> Memo {
        let steps = (0..script.dirs.len())
            .map(|d| {
                script
                    .steps
                    .iter()
                    .position(|s| matches!(s.action, Action::Dir(i) if i == d))
                    .expect("every directory has its step")
            })
            .collect();
        Memo {
            script,
            steps,
            lines: RefCell::new(Vec::new()),
            acts: RefCell::new(Vec::new()),
        }
    }

    fn forget(&self) {
        self.lines.borrow_mut().clear();
    }

    fn dir_takes(&self, dir: usize, line: &[u8]) -> bool {
        match self.acts_on(line) {
            Some(bits) => bits & (1 << self.steps[dir]) != 0,
            None => self.script.dir_takes(dir, line),
        }
    }

    /// The steps that act on `line`, as bits; none past 64 steps.
    fn acts_on(&self, line: &[u8]) -> Option<u64> {
        if self.script.steps.len() > 64 {
            return None;
        }
        let key = (line.as_ptr() as usize, line.len());
        let mut lines = self.lines.borrow_mut();
        let at = lines.partition_point(|&(addr, _, _)| addr < key.0);
        if let Some(&(addr, len, bits)) = lines.get(at)
            && (addr, len) == key
        {
            return Some(bits);
        }
        let mut acts = self.acts.borrow_mut();
        self.script.decide(line, &mut acts);
        let bits = acts
            .iter()
            .enumerate()
            .fold(0u64, |bits, (i, &a)| bits | (u64::from(a) << i));
        lines.insert(at, (key.0, key.1, bits));
        Some(bits)
    }
}

/// What a script adds to the set: chunks end at line ends (a line's
/// selection needs the whole line), and actions other than directories.
struct Lines {
    script: Rc<Script>,
    memo: Rc<Memo>,
    /// The longest line, as every directory cuts it.
    limit: usize,
    acts: Vec<bool>,
    /// For each status action, what it is to hold after this chunk.
    status: Vec<Option<Vec<u8>>>,
    alerts: Vec<u8>,
}

impl Lines {
    fn complete(&self, data: &[u8]) -> usize {
        complete_lines(data, self.limit)
    }

    /// Runs the status and alert actions on the lines of a chunk written.
    fn side_actions(&mut self, data: &[u8]) {
        let script = Rc::clone(&self.script);
        let label = Stamp::now().label();
        for piece in Pieces::new(Chunk::whole(data), 0, self.limit) {
            let line = &data[piece.start..piece.end];
            // Known from the writing of the chunk, mostly.
            match self.memo.acts_on(line) {
                Some(bits) => {
                    self.acts.clear();
                    self.acts
                        .extend((0..script.steps.len()).map(|i| bits & (1 << i) != 0));
                }
                None => script.decide(line, &mut self.acts),
            }
            for (i, step) in script.steps.iter().enumerate() {
                if !self.acts[i] {
                    continue;
                }
                match &step.action {
                    Action::Dir(_) => {}
                    Action::Status { form, stamped, .. } => {
                        let stamp: &[u8] = if *stamped { &label } else { b"" };
                        self.status[i] = Some(status_text(*form, stamp, line));
                    }
                    Action::Alert { form, stamped } => {
                        let stamp: &[u8] = if *stamped { &label } else { b"" };
                        alert_text(&mut self.alerts, *form, stamp, line);
                        self.alerts.push(b'\n');
                    }
                }
            }
        }
        for (i, step) in script.steps.iter().enumerate() {
            if let (Some(text), Action::Status { path, .. }) = (self.status[i].take(), &step.action)
                && let Err(e) = replace_status(Path::new(path), &text)
            {
                cli::warn(&format!("{}: {e}", path.to_string_lossy()));
            }
        }
        if !self.alerts.is_empty() {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(&self.alerts);
            let _ = stderr.flush();
            self.alerts.clear();
        }
    }
}

/// Where the complete lines of `data` end: after its last LF, or at the
/// limit for a line that long.
fn complete_lines(data: &[u8], limit: usize) -> usize {
    match memchr::memrchr(b'\n', data) {
        Some(i) => i + 1,
        None if data.len() > limit => limit,
        None => 0,
    }
}

/// An alert for `line`, as the script's peer writes it.
fn alert_text(out: &mut Vec<u8>, form: AlertForm, stamp: &[u8], line: &[u8]) {
    if matches!(form, AlertForm::S6Log { .. }) {
        out.extend_from_slice(cli::program().as_bytes());
        out.extend_from_slice(b": alert: ");
    }
    let at = out.len();
    if !stamp.is_empty() {
        out.extend_from_slice(stamp);
        out.push(b' ');
    }
    match form {
        AlertForm::Multilog => {
            out.extend_from_slice(line);
            out.truncate((at + 200).min(out.len()));
        }
        AlertForm::S6Log { limit } if limit > 0 && limit + 3 < line.len() => {
            out.extend_from_slice(&line[..limit]);
            out.extend_from_slice(b"...");
        }
        AlertForm::S6Log { .. } => out.extend_from_slice(line),
        AlertForm::Svlogd { window } => {
            out.extend_from_slice(&line[..line.len().min(window)]);
            if line.len() >= window {
                out.extend_from_slice(b"...");
            }
        }
    }
}

/// A status file's contents for `line`, as the script's peer writes it.
fn status_text(form: StatusForm, stamp: &[u8], line: &[u8]) -> Vec<u8> {
    let mut text = Vec::with_capacity(1024);
    if !stamp.is_empty() {
        text.extend_from_slice(stamp);
        text.push(b' ');
    }
    text.extend_from_slice(line);
    match form {
        StatusForm::Multilog => {
            text.truncate(script::MULTILOG_SEEN);
            text.resize(script::MULTILOG_SEEN + 1, b'\n');
        }
        StatusForm::S6Log { size } => {
            text.push(b'\n');
            if size > 0 {
                if text.len() > size {
                    text.truncate(size);
                } else {
                    text.resize(size, b'\n');
                }
            }
        }
    }
    text
}

/// Replaces a status file whole: written beside it, then renamed over it,
/// so that a reader or a crash never finds it torn.
fn replace_status(path: &Path, text: &[u8]) -> std::io::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".new");
    std::fs::write(&temp, text)?;
    std::fs::rename(&temp, path)
}

pub struct LogSet {
    input: Input,
    dirs: Vec<DirWriter>,
    /// How each directory is kept.
    policies: Vec<Policy>,
    lines: Option<Lines>,
    split: Option<split_by::Split>,
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
    /// `policies[i]` is how `dirs[i]` is kept; with a script, `dirs` are
    /// its directories in its order.
    pub fn new(
        input: Input,
        mut dirs: Vec<DirWriter>,
        mut policies: Vec<Policy>,
        script: Option<Script>,
    ) -> std::io::Result<LogSet> {
        let lines = script.map(|script| {
            let script = Rc::new(script);
            let memo = Rc::new(Memo::new(Rc::clone(&script)));
            // Every directory cuts long lines at the same place, and within
            // a chunk: a chunk ends only where every directory's line ends.
            let limit = policies
                .iter()
                .map(Policy::line_limit)
                .min()
                .unwrap_or(1)
                .min(CHUNK / 2);
            for (i, (dir, policy)) in dirs.iter_mut().zip(&mut policies).enumerate() {
                policy.max_line = limit;
                dir.set_select(Box::new(DirSelect {
                    memo: Rc::clone(&memo),
                    dir: i,
                }));
            }
            Lines {
                status: script.steps.iter().map(|_| None).collect(),
                acts: Vec::with_capacity(script.steps.len()),
                alerts: Vec::new(),
                limit,
                script,
                memo,
            }
        });
        Ok(LogSet {
            input,
            dirs,
            policies,
            lines,
            split: None,
            finisher: Finisher::start()?,
            out: Vec::with_capacity(128 * 1024),
            inflight: None,
            backoff: None,
            eof: false,
            stopping: false,
            drain: 0,
        })
    }

    /// `cyclog --split-by`: `dirs` are those `split_by::open` opened.
    pub fn split(
        input: Input,
        mut dirs: Vec<DirWriter>,
        mut split: split_by::Split,
    ) -> std::io::Result<LogSet> {
        // As with a script: chunks end at line ends, long lines are cut
        // within a chunk.
        split.policy.max_line = split.policy.line_limit().min(CHUNK / 2);
        split.attach(&mut dirs);
        let policies = vec![split.policy.clone(); dirs.len()];
        let mut set = LogSet::new(input, dirs, policies, None)?;
        set.split = Some(split);
        Ok(set)
    }

    /// With `--split-by`: one policy per open directory again, after some
    /// were opened or closed.
    fn match_policies(&mut self) {
        if let Some(split) = &self.split {
            self.policies.resize(self.dirs.len(), split.policy.clone());
        }
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
        for (dir, policy) in self.dirs.iter_mut().zip(&self.policies) {
            dir.recover(self.input.buffered(), policy)?;
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
            for (dir, policy) in self.dirs.iter_mut().zip(&self.policies) {
                if dir.deadline().is_some_and(|due| due <= now) {
                    dir.on_time(now, policy);
                }
            }
            if self.backoff.as_ref().is_none_or(|b| b.next_at <= now) {
                match self.step() {
                    Ok(()) => self.recovered(),
                    Err(e) => self.failed(&e),
                }
            }
            if self.backoff.is_none() {
                for dir in &mut self.dirs {
                    // Between chunks: a seal due by lines or time.
                    if let Err(e) = dir.seal_if_due() {
                        self.failed(&e);
                        break;
                    }
                }
            }
            let nothing_left = self.plannable() == 0 && self.inflight.is_none();
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
            signals::SIGALRM => {
                self.dirs.iter_mut().for_each(DirWriter::request_rotation);
                if let Some(split) = &mut self.split {
                    split.to_rotate = split.closed_writing();
                }
            }
            signals::SIGCHLD => {
                for (dir, policy) in self.dirs.iter_mut().zip(&self.policies) {
                    dir.reap_processor(policy, false);
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
            let mut rotated = false;
            for (dir, policy) in self.dirs.iter_mut().zip(&self.policies) {
                if dir.wants_rotation(policy) {
                    dir.rotate(policy, &self.finisher)?;
                    rotated = true;
                }
            }
            if let Some(split) = &mut self.split {
                // ALRM for the directories that were not open: each opened
                // (closing others, rotated above) and rotated in turn.
                while let Some(name) = split.to_rotate.last() {
                    let i = split.ensure_open(&name.clone(), &mut self.dirs, &[])?;
                    split.to_rotate.pop();
                    self.dirs[i].request_rotation();
                    self.policies.resize(self.dirs.len(), split.policy.clone());
                    self.dirs[i].rotate(&self.policies[i], &self.finisher)?;
                    rotated = true;
                }
            }
            if let Some(split) = &mut self.split
                && rotated
            {
                split.enforce_root_cap(&mut self.dirs)?;
                self.match_policies();
            }
            let mut len = self.plannable();
            if len > 0 {
                let involved = match &mut self.split {
                    Some(split) => {
                        let buffered = self.input.buffered();
                        let routed = split.route(&buffered[..len], &mut self.dirs, buffered)?;
                        self.match_policies();
                        len = routed.0;
                        Some(routed.1)
                    }
                    None => None,
                };
                self.inflight = Some(self.plan(len, involved));
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
            let policy = &self.policies[i];
            loop {
                match dir.write(data, chunk.hash, out_len, now, &mut self.out, policy) {
                    Ok(()) => break,
                    Err(e) if e.is_disk_full() && policy.delete_when_full => {
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
        if let Some(lines) = &mut self.lines
            && lines.script.has_side_actions()
        {
            lines.side_actions(&self.input.buffered()[..chunk.len]);
        }
        self.input
            .consume(chunk.len)
            .map_err(|e| Error::new("standard input: read", e))?;
        for ((dir, measure), involved) in self
            .dirs
            .iter_mut()
            .zip(&chunk.measures)
            .zip(&chunk.involved)
        {
            if !involved {
                continue;
            }
            // Also where the chunk was skipped: it is consumed now.
            dir.record_idle();
            if measure.is_some_and(|m| m.rotate && m.stop == chunk.len) {
                dir.request_rotation();
            }
        }
        if let Some(split) = &mut self.split {
            split.enforce_root_cap(&mut self.dirs)?;
            self.match_policies();
        }
        Ok(())
    }

    /// Chooses the next chunk: as far as every directory can go before it
    /// must rotate or has bytes to skip.
    /// How much of the input a chunk may take now: all of it, or with a
    /// script its complete lines (all of it once no more will come).
    fn plannable(&self) -> usize {
        let data = self.input.buffered();
        match (&self.lines, &self.split) {
            (Some(lines), _) if !self.input_final() => lines.complete(data),
            (_, Some(split)) if !self.input_final() => complete_lines(data, split.policy.max_line),
            _ => data.len(),
        }
    }

    /// No more input will come after what is buffered: its last line is
    /// complete as it is (when peeking, a stop leaves it in the pipe).
    fn input_final(&self) -> bool {
        self.eof || (self.stopping && self.drain == 0 && !self.input.is_peeking())
    }

    fn plan(&self, len: usize, involved: Option<Vec<bool>>) -> Inflight {
        let involved = involved.unwrap_or_else(|| vec![true; self.dirs.len()]);
        if let Some(lines) = &self.lines {
            lines.memo.forget();
        }
        let data = &self.input.buffered()[..len];
        let mut measures: Vec<Option<Measure>> = Vec::with_capacity(self.dirs.len());
        let mut len = len;
        for ((dir, policy), &involved) in self.dirs.iter().zip(&self.policies).zip(&involved) {
            if !involved {
                measures.push(None);
            } else if dir.skip() > 0 {
                len = len.min(dir.skip() as usize);
                measures.push(None);
            } else {
                let m = dir.measure(Chunk::head(self.input.buffered(), data.len()), policy);
                len = len.min(m.stop);
                measures.push(Some(m));
            }
        }
        let data = self.input.buffered();
        for ((dir, m), policy) in self
            .dirs
            .iter()
            .zip(measures.iter_mut())
            .zip(&self.policies)
        {
            if m.is_some_and(|m| m.stop != len) {
                *m = Some(dir.measure(Chunk::head(data, len), policy));
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
            done: involved.iter().map(|i| !i).collect(),
            measures,
            involved,
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
        let busy = self.plannable() > 0 || self.inflight.is_some();
        let mut deadline = self.dirs.iter().filter_map(DirWriter::deadline).min();
        if let Some(b) = &self.backoff {
            deadline = Some(deadline.map_or(b.next_at, |d| d.min(b.next_at)));
        } else if busy {
            deadline = Some(now); // more to write: don't sleep
        }
        let want_input =
            !(busy || self.backoff.is_some() || self.eof || (self.stopping && self.drain == 0));
        // A line not yet ended, peeked: the pipe stays readable with it, so
        // look for more in it now and then rather than wait on it.
        let line_open = want_input && !self.input.buffered().is_empty() && self.input.is_peeking();
        if line_open {
            if self.input.waiting().is_some_and(|more| more > 0) {
                return self.take_input();
            }
            let soon = now + LINE_WAIT;
            deadline = Some(deadline.map_or(soon, |d| d.min(soon)));
        }
        let mut fds = vec![PollFd::new(signals, PollFlags::IN)];
        if want_input && !line_open {
            fds.push(PollFd::from_borrowed_fd(self.input.fd(), PollFlags::IN));
        }
        if let Err(e) = poll::until(&mut fds, deadline) {
            cli::warn(&e.to_string());
        }
        if line_open {
            if self.input.waiting().is_some_and(|more| more > 0) {
                self.take_input();
            } else if self.input_hung_up() {
                // The writers are gone: the line ends here.
                self.eof = true;
            }
            return;
        }
        let input_ready = want_input && fds.get(1).is_some_and(|fd| !fd.revents().is_empty());
        if input_ready {
            self.take_input();
        }
    }

    /// Whether every writer of the input has closed it.
    fn input_hung_up(&self) -> bool {
        let mut fds = [PollFd::from_borrowed_fd(self.input.fd(), PollFlags::IN)];
        poll::until(&mut fds, Some(Instant::now())).is_ok()
            && fds[0].revents().contains(PollFlags::HUP)
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
        let had = self.input.buffered().len();
        let max = if self.stopping {
            self.drain.min(CHUNK)
        } else {
            CHUNK
        };
        let filled = if had == 0 {
            self.input.fill(max)
        } else {
            self.input.refill(had + max)
        };
        match filled {
            Ok(Fill::Data) => {
                if self.stopping {
                    let new = self.input.buffered().len().saturating_sub(had);
                    self.drain -= new.min(self.drain);
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
        for (dir, policy) in self.dirs.iter_mut().zip(&self.policies) {
            dir.reap_processor(policy, true);
            if self.split.is_none()
                && let Err(e) = dir.close()
            {
                cli::warn(&e.to_string());
                code = cli::EXIT_TEMPORARY;
            }
        }
        if let Some(split) = &mut self.split
            && !split.close(&mut self.dirs)
        {
            code = cli::EXIT_TEMPORARY;
        }
        self.finisher.stop();
        code
    }
}
