//! One log directory being written: recovery at start, stamping and
//! appending, rotation, the size and count caps, and its processor.
//!
//! Rotation is crash-safe: `current` is synced, marked finished (0744),
//! renamed to its archive name, and the directory synced, in that order; a
//! crash at any point leaves every line in exactly one file.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Child;
use std::time::{Duration, Instant};

use rustix::fs::{self, AtFlags, Mode, OFlags};

use crate::cli;
use crate::error::{Context, Error, Result};
use crate::format::stamp::{LabelWriter, Stamp, StampClock};
use crate::logdir::write::finisher::{Finisher, Job};
use crate::logdir::write::processor;
use crate::logdir::write::sealing::{DirSeal, SealPolicy};
use crate::logdir::write::split::{Chunk, Piece, Pieces};
use crate::logdir::write::writer_state::{StateFile, WriterState, chunk_hash};
use crate::logdir::{self, Archive, CURRENT, NEWSTATE, PREFIX_LEN, PREVIOUS, PROCESSED};

/// How the directories are to be kept.
#[derive(Clone, Debug)]
pub struct Policy {
    pub max_file_size: u64,
    pub max_total_size: u64,
    pub max_files: Option<u64>,
    /// Rotate at a line end within this many bytes of `max_file_size`.
    pub margin: u64,
    /// The longest text of one line; longer lines are split.
    pub max_line: usize,
    pub rotate_every: Option<Duration>,
    pub processor: Option<String>,
    /// On a full disk, delete the oldest archives to make room.
    pub delete_when_full: bool,
    /// Seal the directory as it is written (logseal(7)).
    pub seal: Option<SealPolicy>,
}

impl Policy {
    /// The longest text a line may have: `max_line`, or less if a whole line
    /// must still fit in an empty file.
    pub fn line_limit(&self) -> usize {
        let fits = self
            .max_file_size
            .saturating_sub(PREFIX_LEN as u64 + 1)
            .max(1);
        (self.max_line as u64).min(fits).max(1) as usize
    }
}

/// Which lines a directory takes, judged on each line's text alone (a line
/// split at the limit, piece by piece): a chunk is then always cut the same
/// way, which recovery after a kill relies on. A piece that continues a line
/// already begun in `current` is always taken.
pub trait Select {
    fn takes(&self, line: &[u8]) -> bool;

    /// Where in `data` (the chunk) the next line it may take starts, at
    /// `from` (a line start) or after: the lines between are not taken.
    fn next_line(&self, _data: &[u8], from: usize) -> usize {
        from
    }
}

/// How much of a chunk a directory takes before it must rotate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measure {
    /// Input bytes to write now.
    pub stop: usize,
    /// Rotate once they are written.
    pub rotate: bool,
    /// Bytes they add to `current`.
    pub out_len: u64,
}

enum Processing {
    Running {
        child: Child,
        stamp: Stamp,
        failures: u32,
    },
    Waiting {
        stamp: Stamp,
        retry_at: Instant,
        failures: u32,
    },
}

/// The archives of the directory, oldest first, with their sizes: listed
/// once at start, then kept up to date at each rotation and deletion, so
/// that what a rotation costs does not grow with the number kept. Listed
/// again only when a deletion finds an archive gone (removed by hand).
#[derive(Default)]
struct Kept {
    archives: VecDeque<(Archive, u64)>,
    bytes: u64,
}

impl Kept {
    fn new(listed: Vec<(Archive, u64)>) -> Kept {
        let bytes = listed.iter().map(|(_, size)| size).sum();
        Kept {
            archives: listed.into(),
            bytes,
        }
    }

    fn add(&mut self, archive: Archive, size: u64) {
        self.bytes += size;
        // Newer than every other but for a clock set back: keep the order.
        let at = self
            .archives
            .partition_point(|(a, _)| a.stamp < archive.stamp);
        self.archives.insert(at, (archive, size));
    }

    fn count(&self) -> u64 {
        self.archives.len() as u64
    }
}

/// Why the oldest archive could not be deleted.
enum DeleteError {
    /// No archive is known.
    NoneKept,
    /// Neither of its names is there: the list is out of date.
    Gone,
    Failed(String),
}

/// What was found at open, for `recover` to act on.
struct Found {
    record: Option<WriterState>,
    finished: bool,
}

pub struct DirWriter {
    pub name: String,
    dir: OwnedFd,
    lock: OwnedFd,
    state: StateFile,
    current: Option<OwnedFd>,
    size: u64,
    /// Text bytes of the line left open at the end of `current`.
    col: usize,
    /// `current` was cut short of bytes from here on and must be cut back.
    cut_back_to: Option<u64>,
    clock: StampClock,
    labels: LabelWriter,
    rotate_due: Option<Instant>,
    rotate_wanted: bool,
    /// Input bytes this directory already holds (written before a restart).
    skip: u64,
    /// Where the last chunk began (size, open line), until it is consumed.
    unconsumed: Option<(u64, usize)>,
    /// A failure to record `Idle` was reported and has not cleared since.
    idle_failing: bool,
    processing: Option<Processing>,
    found: Option<Found>,
    kept: Kept,
    /// The lines this directory takes; all if none.
    select: Option<Box<dyn Select>>,
    /// Its seals, if it is sealed.
    seal: Option<DirSeal>,
}

/// Output is written to `current` in pieces of about this size.
const FLUSH_AT: usize = 64 * 1024;

impl DirWriter {
    /// Takes over an opened, locked directory: settles what an earlier
    /// writer or processor left, and opens `current`. Call `recover` next.
    pub fn open(name: String, dir: OwnedFd, lock: OwnedFd, policy: &Policy) -> Result<DirWriter> {
        let state = StateFile::open(dir.as_fd(), &name)?;
        let mut w = DirWriter {
            name,
            dir,
            lock,
            state,
            current: None,
            size: 0,
            col: 0,
            cut_back_to: None,
            clock: StampClock::after(Stamp::ZERO),
            labels: LabelWriter::default(),
            rotate_due: None,
            rotate_wanted: false,
            skip: 0,
            unconsumed: None,
            idle_failing: false,
            processing: None,
            found: None,
            kept: Kept::default(),
            select: None,
            seal: None,
        };
        // Before the archives are listed: it may finish a sealed rotation.
        if let Some(seal) = &policy.seal {
            w.seal = Some(DirSeal::open(w.dir.as_fd(), &w.name, seal)?);
        }
        let archives = logdir::list_archives(w.dir.as_fd())
            .context(|| format!("unable to list the archives of {}", w.name))?;
        if let Some((newest, _)) = archives.last() {
            w.clock.observe(newest.stamp);
        }
        w.kept = Kept::new(archives);
        w.settle_processor_leftovers(policy)?;
        let record = w.state.read();
        let current = open_current_file(w.dir.as_fd(), &w.name)?;
        let st = fs::fstat(&current).context(|| format!("{}/{CURRENT}: fstat", w.name))?;
        w.size = st.st_size as u64;
        let last = logdir::last_stamp(current.as_fd(), w.size, 1 << 20)
            .context(|| format!("{}/{CURRENT}: read", w.name))?;
        if let Some(last) = last {
            w.clock.observe(last);
        }
        w.current = Some(current);
        w.found = Some(Found {
            record,
            finished: st.st_mode & 0o100 != 0,
        });
        Ok(w)
    }

    /// Bytes the directory holds: its archives and `current`.
    pub fn stored_bytes(&self) -> u64 {
        self.kept.bytes + self.size
    }

    /// Bytes in `current`.
    pub fn current_size(&self) -> u64 {
        self.size
    }

    /// The stamp of its oldest archive, if it has one.
    pub fn oldest_archive(&self) -> Option<Stamp> {
        self.kept.archives.front().map(|(a, _)| a.stamp)
    }

    /// Whether it can be closed now and opened again later as if it had
    /// stayed open: no line left open, nothing to skip or undo, no
    /// processor at work, no rotation asked for and not yet done.
    pub fn can_close(&self) -> bool {
        self.col == 0
            && !self.rotate_wanted
            && self.skip == 0
            && self.unconsumed.is_none()
            && self.processing.is_none()
            && self.found.is_none()
    }

    /// Takes only the lines `select` takes from now on.
    pub fn set_select(&mut self, select: Box<dyn Select>) {
        self.select = Some(select);
    }

    fn takes(&self, data: &[u8], piece: &Piece) -> bool {
        match &self.select {
            Some(select) if piece.starts_line => select.takes(&data[piece.start..piece.end]),
            _ => true,
        }
    }

    /// After a piece not taken that ends its line: on to the next line
    /// `select` may take, past those it surely does not.
    fn skip_lines(&self, data: &[u8], piece: &Piece, pieces: &mut Pieces) {
        if let Some(select) = &self.select
            && piece.ends_line()
        {
            pieces.skip_to(select.next_line(data, piece.raw_end()));
        }
    }

    /// The chunk (length, hash) a killed predecessor was writing, if any.
    pub fn pending_chunk(&self) -> Option<(u64, u64)> {
        match self.found.as_ref()?.record? {
            WriterState::Pending { len, hash, at, .. } if at <= self.size => Some((len, hash)),
            _ => None,
        }
    }

    /// Finishes taking over, given the bytes now at the head of the input
    /// (at least `pending_chunk`'s length of them if there are that many).
    pub fn recover(&mut self, input_head: &[u8], policy: &Policy) -> Result<()> {
        let Some(found) = self.found.take() else {
            return Ok(());
        };
        let mut ours = false;
        match found.record {
            Some(WriterState::Pending {
                len,
                hash,
                at,
                out_len,
            }) if at <= self.size => {
                ours = true;
                let head = input_head.get(..len as usize);
                if head.is_some_and(|h| chunk_hash(h) == hash) {
                    if self.size >= at + out_len {
                        self.skip = len;
                    } else {
                        self.cut_back(at)?;
                        cli::info(&format!(
                            "{}: rewriting a chunk of {len} bytes cut short by the last stop",
                            self.name
                        ));
                    }
                }
            }
            Some(WriterState::Idle { size }) => ours = size == self.size,
            _ => {}
        }
        if let (Some(seal), Some(current)) = (&mut self.seal, &self.current) {
            seal.start(current.as_fd(), self.size)?;
        }
        let current = self
            .current
            .as_ref()
            .map(|c| c.as_fd())
            .expect("opened by open()");
        let ends_open = logdir::last_byte(current, self.size)
            .context(|| format!("{}/{CURRENT}: read", self.name))?
            .is_some_and(|b| b != b'\n');
        if ends_open && !ours && !found.finished {
            // Another writer's unfinished file, stopped inside a line: what
            // comes next cannot be known to continue it. Keep it apart.
            let archive = Archive {
                stamp: self.clock.tick(),
                complete: false,
            };
            let size = self.size;
            let kept = self.kept_after(archive.stamp, policy);
            let file = self.current.take().expect("opened by open()");
            if let Err(e) = self.rename_current(&archive.name()) {
                self.current = Some(file);
                return Err(e);
            }
            if let Some(seal) = &mut self.seal {
                seal.rotated(file.as_fd(), archive.stamp, size, kept)?;
            }
            self.kept.add(archive.clone(), size);
            cli::info(&format!(
                "{}: kept an unfinished current as {}",
                self.name,
                archive.name()
            ));
            self.open_current()?;
        } else if ends_open {
            self.col = self.open_line_len(policy)?;
        } else {
            self.col = 0;
        }
        let current = self.current.as_ref().expect("current is open");
        fs::fchmod(current, Mode::from_raw_mode(logdir::MODE_WRITING))
            .context(|| format!("{}/{CURRENT}: chmod", self.name))?;
        if let (Some(every), Some(first)) = (
            policy.rotate_every,
            logdir::first_stamp(current.as_fd()).ok().flatten(),
        ) {
            let age = age_of(first);
            self.rotate_due = Some(Instant::now() + every.saturating_sub(age));
        }
        self.record_idle();
        self.enforce_caps(policy);
        // The seal of a start, on what it found.
        self.seal_now()?;
        match &mut self.seal {
            Some(seal) => seal.started(),
            None => Ok(()),
        }
    }

    /// How much of `chunk` to write before this directory must rotate.
    pub fn measure(&self, chunk: Chunk, policy: &Policy) -> Measure {
        let can_rotate = self.can_rotate();
        let mut size = self.size;
        let mut out_len = 0;
        let mut pieces = Pieces::new(chunk, self.col, policy.line_limit());
        while let Some(piece) = pieces.next() {
            if !self.takes(chunk.data, &piece) {
                self.skip_lines(chunk.data, &piece, &mut pieces);
                continue;
            }
            let n = piece.out_len();
            if piece.starts_line
                && can_rotate
                && size > 0
                && (self.rotate_wanted || size + n > policy.max_file_size)
            {
                return Measure {
                    stop: piece.start,
                    rotate: true,
                    out_len,
                };
            }
            size += n;
            out_len += n;
            if piece.ends_line()
                && can_rotate
                && (self.rotate_wanted || size + policy.margin >= policy.max_file_size)
            {
                return Measure {
                    stop: piece.raw_end(),
                    rotate: true,
                    out_len,
                };
            }
        }
        Measure {
            stop: chunk.data.len(),
            rotate: false,
            out_len,
        }
    }

    /// Input bytes this directory already holds and must not write again.
    pub fn skip(&self) -> u64 {
        self.skip
    }

    /// Stamps and appends `chunk` (measured to `out_len`), all or nothing:
    /// on error `current` is cut back to where it was. A chunk of no input
    /// bytes may still have output: the split of a line left at the limit.
    pub fn write(
        &mut self,
        chunk: Chunk,
        hash: u64,
        out_len: u64,
        now: Stamp,
        out: &mut Vec<u8>,
        policy: &Policy,
    ) -> Result<()> {
        if self.skip > 0 {
            self.skip = self.skip.saturating_sub(chunk.data.len() as u64);
            return Ok(());
        }
        if out_len == 0 {
            return Ok(());
        }
        self.ensure_current()?;
        let at = self.size;
        let record = WriterState::Pending {
            len: chunk.data.len() as u64,
            hash,
            at,
            out_len,
        };
        self.state
            .write(record)
            .context(|| format!("{}/{}: write", self.name, logdir::WRITER_STATE))?;
        let (col, rotate_due) = (self.col, self.rotate_due);
        match self.append(chunk, now, out, policy) {
            Ok(lines) => {
                if let Some(seal) = &mut self.seal {
                    seal.wrote(lines);
                }
                // Recovery trusts out_len: it must be what was written.
                debug_assert_eq!(self.size, at + out_len, "{}: not as measured", self.name);
                self.unconsumed = Some((at, col));
                Ok(())
            }
            Err(e) => {
                self.col = col;
                self.rotate_due = rotate_due;
                // Undo the part written; if even that fails, do it before the next write.
                self.cut_back_to = Some(at);
                let _ = self.cut_back(at);
                Err(e)
            }
        }
    }

    fn append(
        &mut self,
        chunk: Chunk,
        now: Stamp,
        out: &mut Vec<u8>,
        policy: &Policy,
    ) -> Result<u64> {
        out.clear();
        let data = chunk.data;
        let mut col = self.col;
        let mut lines = 0;
        let mut pieces = Pieces::new(chunk, self.col, policy.line_limit());
        while let Some(piece) = pieces.next() {
            if !self.takes(data, &piece) {
                self.skip_lines(data, &piece, &mut pieces);
                continue;
            }
            col = if piece.ends_line() {
                0
            } else {
                col + (piece.end - piece.start)
            };
            if piece.starts_line {
                let stamp = self.clock.next_at(now);
                out.extend_from_slice(self.labels.label(stamp));
                out.push(b' ');
                if self.rotate_due.is_none() {
                    self.rotate_due = policy.rotate_every.map(|every| Instant::now() + every);
                }
            }
            out.extend_from_slice(&data[piece.start..piece.end]);
            if piece.ends_line() {
                out.push(b'\n');
                lines += 1;
            }
            if out.len() >= FLUSH_AT {
                self.flush(out)?;
            }
        }
        self.flush(out)?;
        self.col = col;
        Ok(lines)
    }

    fn flush(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let current = self.current.as_ref().expect("ensure_current() opened it");
        let mut done = 0;
        while done < out.len() {
            match rustix::io::write(current, &out[done..]) {
                Ok(n) => {
                    done += n;
                    self.size += n as u64;
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    return Err(Error::new(
                        format!("{}/{CURRENT}: write", self.name),
                        e.into(),
                    ));
                }
            }
        }
        out.clear();
        Ok(())
    }

    /// Records that nothing is in flight. A failure only weakens recovery
    /// after a kill -9, so it is reported, not fatal.
    ///
    /// Not while a chunk the last writer wrote is still to be skipped: it is
    /// in the pipe until consumed, and only its `Pending` record tells the
    /// next writer that `current` has it already.
    pub fn record_idle(&mut self) {
        if self.skip > 0 {
            return;
        }
        self.unconsumed = None;
        match self.state.write(WriterState::Idle { size: self.size }) {
            Ok(()) => self.idle_failing = false,
            // A full disk is reported by the next write of data, once.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)) => {}
            Err(e) if !self.idle_failing => {
                self.idle_failing = true;
                cli::warn(&format!("{}/{}: {e}", self.name, logdir::WRITER_STATE));
            }
            Err(_) => {}
        }
    }

    /// No processor at work, and no chunk still to skip: the `Pending`
    /// record of that chunk names `current`, which must stay where it is.
    fn can_rotate(&self) -> bool {
        self.processing.is_none() && self.skip == 0
    }

    /// Asks for a rotation at the next line boundary (SIGALRM, the timer).
    pub fn request_rotation(&mut self) {
        if self.size > 0 {
            self.rotate_wanted = true;
        }
    }

    /// Whether a rotation is due and possible right now, between lines.
    pub fn wants_rotation(&self, policy: &Policy) -> bool {
        self.col == 0
            && self.size > 0
            && self.can_rotate()
            && (self.rotate_wanted || self.size + policy.margin >= policy.max_file_size)
    }

    /// Closes `current` into an archive (or into `previous` for the
    /// processor) and starts a new one. Safe to call again after an error.
    pub fn rotate(&mut self, policy: &Policy, finisher: &Finisher) -> Result<()> {
        self.ensure_current()?;
        if self.size == 0 || self.col != 0 || !self.can_rotate() {
            self.rotate_wanted &= self.size > 0;
            return Ok(());
        }
        if let Some(seal) = &self.seal {
            // Unsealed rotations stay few: wait for the sealing thread.
            seal.room()?;
        }
        let stamp = self.clock.tick();
        if policy.processor.is_some() {
            // The processor reads a finished file: finish it here and now.
            self.finish_current()?;
            self.rename_current(PREVIOUS)?;
            self.processing = Some(Processing::Waiting {
                stamp,
                retry_at: Instant::now(),
                failures: 0,
            });
            self.run_processor(policy);
        } else {
            let unfinished = Archive {
                stamp,
                complete: false,
            }
            .name();
            let kept = self.kept_after(stamp, policy);
            let file = self.current.take().expect("ensure_current() opened it");
            if let Err(e) = fs::renameat(&self.dir, CURRENT, &self.dir, &unfinished) {
                self.current = Some(file);
                return Err(e)
                    .context(|| format!("{}: renaming {CURRENT} to {unfinished}", self.name));
            }
            // Its end seal follows on the sealing thread, in order.
            if let Some(seal) = &mut self.seal {
                seal.rotated(file.as_fd(), stamp, self.size, kept)?;
            }
            let dir = rustix::io::fcntl_dupfd_cloexec(&self.dir, 0)
                .context(|| format!("{}: dup", self.name))?;
            let archive = Archive {
                stamp,
                complete: true,
            };
            finisher.finish(Job {
                dir_name: self.name.clone(),
                dir,
                file,
                from: unfinished,
                to: archive.name(),
            });
            // Known by its final name, though it may still be `.u` a while.
            self.kept.add(archive, self.size);
            self.forget_current();
        }
        self.rotate_wanted = false;
        self.rotate_due = None;
        self.enforce_caps(policy);
        self.open_current()
    }

    /// Syncs `current` and marks it finished.
    fn finish_current(&mut self) -> Result<()> {
        let current = self.current.as_ref().expect("ensure_current() opened it");
        fs::fsync(current).context(|| format!("{}/{CURRENT}: fsync", self.name))?;
        fs::fchmod(current, Mode::from_raw_mode(logdir::MODE_FINISHED))
            .context(|| format!("{}/{CURRENT}: chmod", self.name))
    }

    fn rename_current(&mut self, target: &str) -> Result<()> {
        fs::renameat(&self.dir, CURRENT, &self.dir, target)
            .context(|| format!("{}: renaming {CURRENT} to {target}", self.name))?;
        if let Err(e) = fs::fsync(&self.dir) {
            cli::warn(&format!(
                "{}: fsync: {}",
                self.name,
                std::io::Error::from(e)
            ));
        }
        self.forget_current();
        Ok(())
    }

    /// After `current` was renamed away: nothing is open.
    fn forget_current(&mut self) {
        self.current = None;
        self.size = 0;
        self.col = 0;
    }

    fn open_current(&mut self) -> Result<()> {
        let current = open_current_file(self.dir.as_fd(), &self.name)?;
        fs::fchmod(&current, Mode::from_raw_mode(logdir::MODE_WRITING))
            .context(|| format!("{}/{CURRENT}: chmod", self.name))?;
        self.size = fs::fstat(&current)
            .context(|| format!("{}/{CURRENT}: fstat", self.name))?
            .st_size as u64;
        self.current = Some(current);
        self.col = 0;
        self.record_idle();
        Ok(())
    }

    fn ensure_current(&mut self) -> Result<()> {
        if self.current.is_none() {
            self.open_current()?;
        }
        if let Some(at) = self.cut_back_to {
            self.cut_back(at)?;
        }
        Ok(())
    }

    fn cut_back(&mut self, at: u64) -> Result<()> {
        let current = self.current.as_ref().expect("current is open");
        fs::ftruncate(current, at).context(|| format!("{}/{CURRENT}: truncate", self.name))?;
        self.size = at;
        self.cut_back_to = None;
        Ok(())
    }

    /// Text bytes of the line left open at the end of `current`.
    fn open_line_len(&self, policy: &Policy) -> Result<usize> {
        let current = self.current.as_ref().expect("current is open").as_fd();
        let limit = policy.line_limit();
        let look = (limit + PREFIX_LEN + 1) as u64;
        let from = self.size.saturating_sub(look);
        let mut tail = vec![0u8; (self.size - from) as usize];
        let got = logdir::read_exact_at(current, &mut tail, from)
            .context(|| format!("{}/{CURRENT}: read", self.name))?;
        let tail = &tail[..got];
        let line = match memchr::memrchr(b'\n', tail) {
            Some(i) => &tail[i + 1..],
            None if from == 0 => tail,
            None => return Ok(limit), // longer than any line we write
        };
        let text = if logdir::parse_line(line).is_some() {
            line.len() - PREFIX_LEN
        } else {
            line.len()
        };
        Ok(text.min(limit))
    }

    /// Deletes the oldest archives while over the count or total-size cap.
    pub fn enforce_caps(&mut self, policy: &Policy) {
        let mut listed_again = false;
        loop {
            let over_count = policy.max_files.is_some_and(|max| self.kept.count() > max);
            if !over_count && self.size + self.kept.bytes <= policy.max_total_size {
                return;
            }
            match self.delete_oldest(false) {
                Ok(_) => {}
                Err(DeleteError::Gone) if !listed_again => {
                    listed_again = true;
                    if let Err(e) = self.list_again() {
                        return cli::warn(&e.to_string());
                    }
                }
                Err(DeleteError::Gone | DeleteError::NoneKept) => return,
                Err(DeleteError::Failed(why)) => return cli::warn(&why),
            }
        }
    }

    /// Deletes the oldest archive to free space; its name, if there was one.
    pub fn make_room(&mut self) -> Option<String> {
        match self.delete_oldest(true) {
            Ok(name) => Some(name),
            Err(DeleteError::Gone) => {
                self.list_again().ok()?;
                self.delete_oldest(true).ok()
            }
            Err(DeleteError::NoneKept | DeleteError::Failed(_)) => None,
        }
    }

    /// Deletes the oldest archive known, by the name it has now: one just
    /// rotated may still be `.u` (or a `.u` found at start since renamed
    /// `.s` by this writer's finisher). In a sealed directory the sealing
    /// thread deletes it, after the end seal that names a newer oldest one
    /// and its own seal file, unless the space is needed `now` (a full
    /// disk: then only its seal file is left to that thread).
    fn delete_oldest(&mut self, now: bool) -> std::result::Result<String, DeleteError> {
        let Some((archive, size)) = self.kept.archives.front().cloned() else {
            return Err(DeleteError::NoneKept);
        };
        let other = Archive {
            complete: !archive.complete,
            ..archive.clone()
        };
        if let Some(seal) = &mut self.seal
            && !now
        {
            seal.deleted(archive.stamp, true);
            self.kept.archives.pop_front();
            self.kept.bytes -= size;
            return Ok(archive.name());
        }
        let mut deleted = None;
        for name in [archive.name(), other.name()] {
            match fs::unlinkat(&self.dir, &name, AtFlags::empty()) {
                Ok(()) => {
                    deleted = Some(name);
                    break;
                }
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => {
                    let e = std::io::Error::from(e);
                    return Err(DeleteError::Failed(format!(
                        "unable to delete {}/{name}: {e}",
                        self.name
                    )));
                }
            }
        }
        let name = deleted.ok_or(DeleteError::Gone)?;
        if let Some(seal) = &mut self.seal {
            seal.deleted(archive.stamp, false);
        }
        self.kept.archives.pop_front();
        self.kept.bytes -= size;
        Ok(name)
    }

    /// Lists the archives again, after finding the list out of date.
    fn list_again(&mut self) -> Result<()> {
        let listed = logdir::list_archives(self.dir.as_fd())
            .context(|| format!("unable to list the archives of {}", self.name))?;
        self.kept = Kept::new(listed);
        Ok(())
    }

    /// Takes back the last chunk written: it was not consumed after all.
    pub fn undo_write(&mut self) -> Result<()> {
        if let Some((at, col)) = self.unconsumed.take() {
            self.cut_back(at)?;
            self.col = col;
        }
        Ok(())
    }

    /// Completes an open line, syncs `current` and marks it finished: the
    /// directory is left whole for the next writer or reader.
    pub fn close(&mut self) -> Result<()> {
        self.end_line()?;
        self.finish_current()?;
        self.record_idle();
        // The seal of a stop, and every seal asked for before: nothing is
        // left unsealed.
        self.seal_now()?;
        match &self.seal {
            Some(seal) => seal.wait_idle(),
            None => Ok(()),
        }
    }

    /// `close` in two halves, for many directories made durable by one
    /// syncfs(2) between them: first the last line completed...
    pub fn end_line(&mut self) -> Result<()> {
        self.ensure_current()?;
        if self.col != 0 {
            let mut nl = vec![b'\n'];
            self.flush(&mut nl)?;
            self.col = 0;
        }
        Ok(())
    }

    /// ... then, once `current` is on disk, marked finished.
    pub fn mark_finished(&mut self) -> Result<()> {
        let current = self.current.as_ref().expect("end_line() opened it");
        fs::fchmod(current, Mode::from_raw_mode(logdir::MODE_FINISHED))
            .context(|| format!("{}/{CURRENT}: chmod", self.name))?;
        self.record_idle();
        Ok(())
    }

    /// Leaves the directory for now, to be opened again by this writer:
    /// its record says `Idle` at the size of `current`, which stays as it
    /// is (synced later, with the others, at the stop). Only when
    /// `can_close`.
    pub fn release(mut self) {
        self.record_idle();
    }

    // The processor.

    /// At open: `previous` not yet processed becomes work to do again (or an
    /// archive, if no processor is configured now); partial output goes.
    fn settle_processor_leftovers(&mut self, policy: &Policy) -> Result<()> {
        let dir = self.dir.as_fd();
        let _ = fs::unlinkat(dir, NEWSTATE, AtFlags::empty());
        let has_previous = processor::exists(dir, PREVIOUS);
        if processor::exists(dir, PROCESSED) {
            if has_previous {
                let _ = fs::unlinkat(dir, PROCESSED, AtFlags::empty());
            } else {
                // The processor's finished output, its archive never named;
                // its lines come before everything in `current`.
                let stamp = self.clock.last().succ();
                self.clock.observe(stamp);
                self.archive_leftover(PROCESSED, stamp)?;
            }
        }
        if has_previous {
            let stamp = self.previous_stamp()?;
            self.clock.observe(stamp);
            match policy.processor {
                Some(_) => {
                    self.processing = Some(Processing::Waiting {
                        stamp,
                        retry_at: Instant::now(),
                        failures: 0,
                    })
                }
                None => self.archive_leftover(PREVIOUS, stamp)?,
            }
        }
        Ok(())
    }

    /// The archive stamp for `previous`: just after its last line.
    fn previous_stamp(&mut self) -> Result<Stamp> {
        let file = logdir::open_file(self.dir.as_fd(), PREVIOUS, OFlags::RDONLY, 0)
            .context(|| format!("unable to open {}/{PREVIOUS}", self.name))?;
        let size = fs::fstat(&file)
            .context(|| format!("{}/{PREVIOUS}: fstat", self.name))?
            .st_size as u64;
        let last = logdir::last_stamp(file.as_fd(), size, 1 << 20)
            .context(|| format!("{}/{PREVIOUS}: read", self.name))?;
        Ok(match last {
            Some(last) => last.max(self.clock.last()).succ(),
            None => self.clock.last().succ(),
        })
    }

    fn archive_leftover(&mut self, file: &str, stamp: Stamp) -> Result<()> {
        // Readers open archives: a link renamed into one would hand them
        // whatever it points to.
        let st = logdir::check_regular(self.dir.as_fd(), file)
            .context(|| format!("unable to archive {}/{file}", self.name))?;
        let complete = st.st_mode & 0o100 != 0;
        let archive = Archive { stamp, complete };
        fs::renameat(&self.dir, file, &self.dir, archive.name())
            .context(|| format!("{}: renaming {file} to {}", self.name, archive.name()))?;
        self.kept.add(archive.clone(), st.st_size as u64);
        cli::info(&format!(
            "{}: archived a leftover {file} as {}",
            self.name,
            archive.name()
        ));
        Ok(())
    }

    /// Starts the processor if it has work and its retry time has come.
    pub fn run_processor(&mut self, policy: &Policy) {
        let Some(command) = &policy.processor else {
            return;
        };
        let Some(Processing::Waiting {
            stamp,
            retry_at,
            failures,
        }) = self.processing
        else {
            return;
        };
        if Instant::now() < retry_at {
            return;
        }
        match processor::spawn(command, self.dir.as_fd(), self.lock.as_fd(), &self.name) {
            Ok(child) => {
                self.processing = Some(Processing::Running {
                    child,
                    stamp,
                    failures,
                })
            }
            Err(e) => self.processor_failed(&e.to_string(), stamp, failures),
        }
    }

    /// Collects a finished processor: archives its output, or schedules a retry.
    pub fn reap_processor(&mut self, policy: &Policy, wait: bool) {
        let Some(Processing::Running {
            child,
            stamp,
            failures,
        }) = &mut self.processing
        else {
            return;
        };
        let (stamp, failures) = (*stamp, *failures);
        let status = if wait {
            child.wait().map(Some)
        } else {
            child.try_wait()
        };
        let status = match status {
            Ok(Some(status)) => status,
            Ok(None) => return,
            Err(e) => return self.processor_failed(&format!("waiting: {e}"), stamp, failures),
        };
        if !status.success() {
            processor::discard(self.dir.as_fd());
            return self.processor_failed(&format!("processor {status}"), stamp, failures);
        }
        match processor::finish(self.dir.as_fd(), stamp, &self.name) {
            Ok((archive, size)) => {
                self.kept.add(archive, size);
                self.processing = None;
                self.enforce_caps(policy);
            }
            Err(e) => self.processor_failed(&e.to_string(), stamp, failures),
        }
    }

    fn processor_failed(&mut self, why: &str, stamp: Stamp, failures: u32) {
        let failures = failures + 1;
        let delay = Duration::from_secs(1 << (failures - 1).min(6)).min(Duration::from_secs(60));
        cli::warn(&format!(
            "{}: {why}; {PREVIOUS} kept, trying again in {}s",
            self.name,
            delay.as_secs()
        ));
        self.processing = Some(Processing::Waiting {
            stamp,
            retry_at: Instant::now() + delay,
            failures,
        });
    }

    /// The next instant something is due here without input: a timed
    /// rotation or a processor retry.
    pub fn deadline(&self) -> Option<Instant> {
        let retry = match &self.processing {
            Some(Processing::Waiting { retry_at, .. }) => Some(*retry_at),
            _ => None,
        };
        let seal = self.seal.as_ref().and_then(DirSeal::deadline);
        [self.rotate_due.filter(|_| self.size > 0), retry, seal]
            .into_iter()
            .flatten()
            .min()
    }

    /// Acts on what `deadline` said was due.
    pub fn on_time(&mut self, now: Instant, policy: &Policy) {
        if self.rotate_due.is_some_and(|due| due <= now) {
            self.rotate_due = None;
            self.request_rotation();
        }
        self.run_processor(policy);
    }

    // Sealing (logseal(7)).

    /// Seals `current` if a seal is due, between chunks.
    pub fn seal_if_due(&mut self) -> Result<()> {
        let (Some(seal), None, Some(current)) = (&mut self.seal, self.unconsumed, &self.current)
        else {
            return Ok(());
        };
        if seal.is_due(Instant::now()) {
            return self.seal_now();
        }
        // Consumed: the tagging thread may tag it ahead of the next seal.
        seal.settled(current.as_fd(), self.size)
    }

    fn seal_now(&mut self) -> Result<()> {
        match (&mut self.seal, &self.current) {
            (Some(seal), Some(current)) => seal.seal_mid(current.as_fd(), self.size),
            _ => Ok(()),
        }
    }

    /// In a sealed directory, the archives the cap will keep once `current`
    /// is added as the archive `stamp`, oldest first: its end seal names
    /// the oldest sealed one.
    fn kept_after(&self, stamp: Stamp, policy: &Policy) -> Vec<Stamp> {
        if self.seal.is_none() {
            return Vec::new();
        }
        let mut kept: VecDeque<(Stamp, u64)> = self
            .kept
            .archives
            .iter()
            .map(|(a, size)| (a.stamp, *size))
            .collect();
        kept.push_back((stamp, self.size));
        let mut bytes = self.kept.bytes + self.size;
        // As enforce_caps will see it, with the next current empty.
        while policy.max_files.is_some_and(|max| kept.len() as u64 > max)
            || bytes > policy.max_total_size
        {
            match kept.pop_front() {
                Some((_, size)) => bytes -= size,
                None => break,
            }
        }
        kept.into_iter().map(|(s, _)| s).collect()
    }
}

/// Opens (creating it) `current`, never through a symbolic link.
fn open_current_file(dir: BorrowedFd<'_>, name: &str) -> Result<OwnedFd> {
    logdir::open_file(
        dir,
        CURRENT,
        OFlags::RDWR | OFlags::APPEND | OFlags::CREATE,
        logdir::MODE_WRITING,
    )
    .context(|| format!("unable to open {name}/{CURRENT}"))
}

/// How long ago a stamp was, by the real-time clock (zero if in the future).
fn age_of(stamp: Stamp) -> Duration {
    let (now, then) = (Stamp::now().to_utc(), stamp.to_utc());
    let secs = now.unix - then.unix;
    if secs < 0 {
        return Duration::ZERO;
    }
    (Duration::from_secs(secs as u64) + Duration::from_nanos(u64::from(now.nanos)))
        .saturating_sub(Duration::from_nanos(u64::from(then.nanos)))
}
