//! Sealing a log directory as it is written (logseal(7)): the key file and
//! its two slots, the seal files in `seal/`, and the writer's durable steps
//! around the pure core of [`crate::logdir::seal`].
//!
//! Key file: two slots of [`SLOT`] bytes, each holding a key state line
//! (`rill-seal-key-1 ...`, see [`KeyChain::encode`]) padded with NUL bytes,
//! or NUL bytes only. The new state goes to the slot not holding the
//! current one and is synced; then the old slot is overwritten with NULs
//! and synced. A torn write leaves one whole state (the checksum tells);
//! with two whole states, the one of the higher index is the current one.
//!
//! Seal files: `seal/current`, the records of `current`, one line each;
//! `seal/@STAMP`, those of the archive of that stamp, renamed from
//! `seal/current` at its rotation, after its `end` record.
//!
//! Threads: the writer's thread only queues, in order, what happened
//! (lengths consumed, a seal asked for, a rotation after its rename, an
//! archive to delete); a tagging thread reads back the span of the next
//! seal (what `current` gained since the seal before) as it is consumed
//! and tags it under that seal's key; a sealing thread owns `seal/`, the
//! key file and the [`Sealer`] and makes each seal durable. A kill can
//! leave archives rotated before their end seals: [`DirSeal::open`] seals
//! them first (logseal(7), the crash rule).

use std::collections::{BTreeSet, VecDeque};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};
use rustix::fs::{self, AtFlags, Mode, OFlags};

use crate::cli;
use crate::error::{Context, Error, Result};
use crate::format::stamp::Stamp;
use crate::logdir::seal::{
    Cover, KeyChain, Record, SEAL_DIR, Sealed, Sealer, Seed, Span, SpanKeys, seal_file_stamp,
};
use crate::logdir::{self, CURRENT, MODE_FINISHED, read_exact_at};

/// Bytes of one slot of the key file: a key state is at most about 3.4 KB.
pub const SLOT: usize = 4096;

/// How a directory is sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealPolicy {
    pub key_file: PathBuf,
    /// Seal at least this often while lines come.
    pub every: Duration,
    /// Seal at least every this many lines.
    pub lines: u64,
}

fn path_error(path: &Path, what: &str, e: impl Into<std::io::Error>) -> Error {
    Error::new(format!("{}: {what}", path.display()), e.into())
}

/// Makes a new key: writes its state, for seal 0, to a new file `path`
/// (never over an existing one), durably; returns the seed, to be shown
/// once and kept off the machine.
pub fn make_key(path: &Path) -> Result<Seed> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::invalid("making a seal key", "the system's random source failed"))?;
    let seed = Seed::from_bytes(bytes);
    bytes.fill(0);
    let keys =
        KeyChain::at(&seed, 0).ok_or_else(|| Error::invalid("making a seal key", "no leaf 0"))?;
    let fd = fs::open(
        path,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| path_error(path, "create", e))?;
    let mut file = vec![0u8; 2 * SLOT];
    let state = keys.encode();
    file[..state.len()].copy_from_slice(&state);
    write_at(fd.as_fd(), &file, 0).map_err(|e| path_error(path, "write", e))?;
    fs::fsync(&fd).map_err(|e| path_error(path, "fsync", e))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = fs::open(
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        fs::fsync(&dir).map_err(|e| path_error(parent, "fsync", e))?;
    }
    Ok(seed)
}

fn write_at(fd: BorrowedFd<'_>, mut data: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !data.is_empty() {
        match rustix::io::pwrite(fd, data, offset) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                data = &data[n..];
                offset += n as u64;
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The writer's key file, open.
pub struct KeyFile {
    fd: OwnedFd,
    path: PathBuf,
    /// The slot holding the current state.
    slot: usize,
}

impl KeyFile {
    /// Opens the key file and reads its current state.
    pub fn open(path: &Path) -> Result<(KeyFile, KeyChain)> {
        let fd = fs::open(
            path,
            OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| path_error(path, "open", e))?;
        let st = fs::fstat(&fd).map_err(|e| path_error(path, "fstat", e))?;
        if fs::FileType::from_raw_mode(st.st_mode) != fs::FileType::RegularFile {
            return Err(Error::invalid(
                format!("{}", path.display()),
                "not a regular file",
            ));
        }
        let mut bytes = vec![0u8; 2 * SLOT];
        let got =
            read_exact_at(fd.as_fd(), &mut bytes, 0).map_err(|e| path_error(path, "read", e))?;
        let mut best: Option<(usize, KeyChain)> = None;
        let mut why = String::from("empty");
        for slot in 0..2 {
            let part = &bytes[slot * SLOT..(slot * SLOT + SLOT).min(got.max(slot * SLOT))];
            let Some(end) = memchr::memrchr(b'\n', part) else {
                continue;
            };
            match KeyChain::decode(&part[..=end]) {
                Ok(keys) if best.as_ref().is_none_or(|(_, b)| b.index() < keys.index()) => {
                    best = Some((slot, keys))
                }
                Ok(_) => {}
                Err(e) => why = e,
            }
        }
        let Some((slot, keys)) = best else {
            return Err(Error::invalid(
                format!("{}", path.display()),
                format!("no whole seal key state in it ({why})"),
            ));
        };
        let file = KeyFile {
            fd,
            path: path.to_owned(),
            slot,
        };
        Ok((file, keys))
    }

    /// Stores `keys` durably and destroys the state before it.
    pub fn store(&mut self, state: &[u8]) -> Result<()> {
        let other = 1 - self.slot;
        let mut slot = state.to_vec();
        slot.resize(SLOT, 0);
        let fail = |what: &str, e: std::io::Error| path_error(&self.path, what, e);
        write_at(self.fd.as_fd(), &slot, (other * SLOT) as u64).map_err(|e| fail("write", e))?;
        fs::fdatasync(&self.fd).map_err(|e| fail("fsync", e.into()))?;
        slot.fill(0);
        write_at(self.fd.as_fd(), &slot, (self.slot * SLOT) as u64)
            .map_err(|e| fail("write", e))?;
        fs::fdatasync(&self.fd).map_err(|e| fail("fsync", e.into()))?;
        self.slot = other;
        Ok(())
    }
}

/// The whole records at the start of a seal file, and where they end.
/// Err: a malformed record with more after it (not a torn last write).
fn whole_records(bytes: &[u8]) -> std::result::Result<(Vec<&[u8]>, usize), usize> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let end = memchr::memchr(b'\n', rest);
        match end
            .map(|e| &rest[..=e])
            .filter(|line| Record::parse(line).is_some())
        {
            Some(line) => {
                records.push(line);
                at += line.len();
            }
            // A record cut short, or NULs a power loss left: the tail.
            None if end.is_none() || rest.iter().all(|&c| c == 0) => break,
            None => return Err(records.len() + 1),
        }
    }
    Ok((records, at))
}

fn read_all(dir: BorrowedFd<'_>, file: &str) -> std::io::Result<Vec<u8>> {
    let fd = logdir::open_file(dir, file, OFlags::RDONLY, 0)?;
    let size = fs::fstat(&fd)?.st_size as usize;
    let mut bytes = vec![0u8; size];
    let got = read_exact_at(fd.as_fd(), &mut bytes, 0)?;
    bytes.truncate(got);
    Ok(bytes)
}

fn exists(dir: BorrowedFd<'_>, name: &str) -> bool {
    fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
}

/// Bytes the tagging thread reads back at a time: small enough that what
/// it reads is still in the CPU cache when tagged.
const READ_BLOCK: usize = 128 * 1024;

/// Bytes consumed that the tagging thread is told of at once, at least
/// (a seal tells it of the rest).
const SETTLE_STEP: u64 = 1 << 20;

/// Rotations whose `end` seal may wait to be made before a rotation waits:
/// what is not yet sealed stays bounded by this many files and `current`.
const UNSEALED_ROTATIONS: usize = 2;

/// The durable side of the seals of one log directory: `seal/`, the key
/// file and the sealer. Used at open to finish what a killed writer left,
/// then owned by the sealing thread.
struct SealCore {
    name: String,
    /// The log directory, for deleting archives under the cap.
    dir: OwnedFd,
    seal_dir: OwnedFd,
    seal_current: OwnedFd,
    key: KeyFile,
    sealer: Sealer,
    /// The oldest sealed archive kept, as the last seal said or the next will.
    first: Option<Stamp>,
    /// The archives that have a seal file.
    sealed: BTreeSet<Stamp>,
    last_at: Stamp,
    /// Records made (their keys destroyed) not yet appended whole.
    pending: Vec<Vec<u8>>,
    /// Records appended, `seal/current` not yet synced since.
    unsynced: bool,
    /// Records synced, the key state that follows them not yet stored.
    key_due: bool,
    /// An end record made for this archive; its seal file not yet renamed.
    ended: Option<Stamp>,
    /// What the last mid seal in `seal/current` covers (none: no mid seal
    /// since the last end seal): where the next seal's span begins.
    group_cover: Option<Cover>,
    /// Where spans are read back.
    buf: Vec<u8>,
    /// Seals made for no job (see [`State::extra_seals`]).
    extra_seals: u64,
}

fn archive_exists(dir: BorrowedFd<'_>, stamp: Stamp) -> bool {
    [true, false]
        .into_iter()
        .any(|complete| exists(dir, &logdir::Archive { stamp, complete }.name()))
}

/// Opens an archive by its stamp, `.s` or `.u`, whichever it is now.
fn open_archive(dir: BorrowedFd<'_>, stamp: Stamp) -> std::io::Result<OwnedFd> {
    let mut last = std::io::Error::from(std::io::ErrorKind::NotFound);
    for complete in [true, false, true] {
        let name = logdir::Archive { stamp, complete }.name();
        match logdir::open_file(dir, &name, OFlags::RDONLY, 0) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// A span tagged by the tagging thread: the cover of seal `seq`, its
/// span from `from`.
#[derive(Clone, Copy, Debug)]
struct Tagged {
    seq: u64,
    from: Cover,
    cover: Cover,
}

/// The cover of `file` to `size` bytes, its span from `from` read back and
/// tagged under `key`.
fn tag_span(
    key: &crate::logdir::seal::SpanKey,
    from: Cover,
    file: BorrowedFd<'_>,
    size: u64,
    buf: &mut Vec<u8>,
) -> std::result::Result<Cover, String> {
    let mut span = Span::new(key, from);
    read_into(&mut span, file, size, buf)?;
    Ok(span.finish())
}

/// Reads `file` back into `span` from where it stands to `size` bytes.
fn read_into(
    span: &mut Span,
    file: BorrowedFd<'_>,
    size: u64,
    buf: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    if size < span.bytes() {
        return Err(format!(
            "{size} bytes, cut back below what was sealed or tagged ({})",
            span.bytes()
        ));
    }
    buf.resize(READ_BLOCK, 0);
    while span.bytes() < size {
        let want = buf.len().min((size - span.bytes()) as usize);
        match read_exact_at(file, &mut buf[..want], span.bytes()) {
            Ok(0) => {
                return Err(format!(
                    "{} bytes, not the {size} written: cut by someone else",
                    span.bytes()
                ));
            }
            Ok(got) => span.update_mut(&mut buf[..got]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    Ok(())
}

impl SealCore {
    /// A seal's stamp: when it was asked for (for the seal at a start, before
    /// any rotation's stamp), never before the seal before it.
    fn stamp(&mut self, asked: Stamp) -> Stamp {
        self.last_at = asked.max(self.last_at);
        self.last_at
    }

    fn sealing_error(&self, e: crate::logdir::seal::SealError) -> Error {
        Error::invalid(format!("{}: sealing", self.name), e.to_string())
    }

    /// The cover of the next seal of the file being sealed (`file`, named
    /// `what`), to `size` bytes, its span from where the last seal of the
    /// file ended: as the tagging thread tagged it, if that was for this
    /// seal and from there; if not, read back and tagged here.
    fn span_to(
        &mut self,
        file: BorrowedFd<'_>,
        what: &str,
        size: u64,
        tagged: Option<Tagged>,
    ) -> Result<Cover> {
        let from = self.group_cover.unwrap_or(Cover::START);
        if let Some(t) = tagged
            && t.seq == self.sealer.next_seq()
            && t.from == from
            && t.cover.bytes == size
        {
            return Ok(t.cover);
        }
        tag_span(&self.sealer.span_key(), from, file, size, &mut self.buf)
            .map_err(|why| Error::invalid(format!("{}/{what}", self.name), why))
    }

    /// A `mid` seal of the file followed, `current` when it was asked for:
    /// its covered bytes made durable, then the record, then the key. With
    /// `made`, the record was made by an earlier try: it only goes out.
    fn mid(
        &mut self,
        file: BorrowedFd<'_>,
        size: u64,
        tagged: Option<Tagged>,
        asked: Stamp,
        made: &mut bool,
    ) -> Result<()> {
        if !*made {
            let cover = self.span_to(file, CURRENT, size, tagged)?;
            fs::fdatasync(file).context(|| format!("{}/{CURRENT}: fsync", self.name))?;
            if self.group_cover.is_none() {
                // The first seal of a new current: its name must be on
                // disk too (a power loss could lose the file it seals).
                fs::fsync(&self.dir).context(|| format!("{}: fsync", self.name))?;
            }
            let at = self.stamp(asked);
            let record = self
                .sealer
                .seal(Sealed::Current, at, self.first, cover)
                .map_err(|e| self.sealing_error(e))?;
            self.pending.push(record);
            self.group_cover = Some(cover);
            *made = true;
        }
        self.flush()
    }

    /// The `end` seal of the file followed, renamed to `archive`; `kept`
    /// (oldest first) are the archives the cap keeps once it is added.
    /// Then its seal file is renamed beside it, and a new one begun.
    fn end(
        &mut self,
        file: BorrowedFd<'_>,
        archive: Stamp,
        size: u64,
        tagged: Option<Tagged>,
        kept: &[Stamp],
        asked: Stamp,
    ) -> Result<()> {
        if self.ended != Some(archive) {
            let cover = self.span_to(file, &archive.to_string(), size, tagged)?;
            fs::fdatasync(file).context(|| format!("{}/{archive}: fsync", self.name))?;
            // The rename to the archive too, before a seal says it was made.
            fs::fsync(&self.dir).context(|| format!("{}: fsync", self.name))?;
            let oldest_sealed = kept
                .iter()
                .copied()
                .find(|s| self.sealed.contains(s) || *s == archive)
                .unwrap_or(archive);
            let first = Some(oldest_sealed).max(self.first);
            let at = self.stamp(asked);
            let record = self
                .sealer
                .seal(Sealed::Archive(archive), at, first, cover)
                .map_err(|e| self.sealing_error(e))?;
            self.pending.push(record);
            self.ended = Some(archive);
            self.first = first;
        }
        self.flush()?;
        self.close_seal_file(archive)
    }

    /// After an end record: `seal/current` becomes `seal/@archive`
    /// durably, and a new `seal/current` is begun.
    fn close_seal_file(&mut self, archive: Stamp) -> Result<()> {
        let target = archive.to_string();
        match fs::renameat(&self.seal_dir, CURRENT, &self.seal_dir, &target) {
            Ok(()) => {}
            // Renamed by a try that failed after.
            Err(rustix::io::Errno::NOENT) if exists(self.seal_dir.as_fd(), &target) => {}
            Err(e) => {
                return Err(e)
                    .context(|| format!("{}/{SEAL_DIR}: rename current to {target}", self.name));
            }
        }
        fs::fsync(&self.seal_dir).context(|| format!("{}/{SEAL_DIR}: fsync", self.name))?;
        self.sealed.insert(archive);
        self.seal_current = open_seal_current(self.seal_dir.as_fd(), &self.name)?;
        self.ended = None;
        self.group_cover = None;
        Ok(())
    }

    /// Appends the records made to `seal/current` durably (those a failure
    /// left first: their keys are gone, they must go out), then stores the
    /// key that follows, destroying the one used. A failed write is cut
    /// back and tried again.
    fn flush(&mut self) -> Result<()> {
        let name = format!("{}/{SEAL_DIR}/current", self.name);
        while let Some(record) = self.pending.first() {
            let len = fs::fstat(&self.seal_current)
                .context(|| format!("{name}: fstat"))?
                .st_size as u64;
            if let Err(e) = write_at(self.seal_current.as_fd(), record, len) {
                let _ = fs::ftruncate(&self.seal_current, len);
                return Err(Error::new(format!("{name}: write"), e));
            }
            self.pending.remove(0);
            self.unsynced = true;
        }
        if self.unsynced {
            fs::fdatasync(&self.seal_current).context(|| format!("{name}: fsync"))?;
            self.unsynced = false;
            self.key_due = true;
        }
        if self.key_due {
            self.key.store(&self.sealer.key_state())?;
            self.key_due = false;
        }
        Ok(())
    }

    /// An archive deleted at the old end: its seal file first, then (with
    /// `unlink`) the archive, so that a crash between leaves an archive
    /// older than the sealed start rather than seals behind a gap. If the
    /// last seal still keeps it (a deletion no end seal foresaw: at a
    /// start, on a full disk), a seal naming the next one kept is made
    /// first: the last seal never keeps an archive whose seals are gone.
    fn deleted(&mut self, archive: Stamp, unlink: bool) -> Result<()> {
        if self.sealed.contains(&archive) {
            let next = self
                .sealed
                .range(archive..)
                .find(|&&s| s > archive)
                .copied();
            if let Some(next) = next
                && self.first.is_some_and(|f| f <= archive)
            {
                let at = self.stamp(Stamp::now());
                let cover = self.group_cover.unwrap_or(Cover::START);
                let record = self
                    .sealer
                    .seal(Sealed::Current, at, Some(next), cover)
                    .map_err(|e| self.sealing_error(e))?;
                self.pending.push(record);
                self.extra_seals += 1;
                self.first = Some(next);
            }
            self.flush()?;
            let name = archive.to_string();
            if let Err(e) = fs::unlinkat(&self.seal_dir, &name, AtFlags::empty())
                && e != rustix::io::Errno::NOENT
            {
                cli::warn(&format!(
                    "unable to delete {}/{SEAL_DIR}/{name}: {}",
                    self.name,
                    std::io::Error::from(e)
                ));
            }
            self.sealed.remove(&archive);
        }
        if unlink {
            // `.u` may become `.s` meanwhile (the finisher): both, twice.
            for complete in [true, false, true] {
                let name = logdir::Archive {
                    stamp: archive,
                    complete,
                }
                .name();
                match fs::unlinkat(&self.dir, &name, AtFlags::empty()) {
                    Ok(()) => break,
                    Err(rustix::io::Errno::NOENT) => continue,
                    Err(e) => {
                        cli::warn(&format!(
                            "unable to delete {}/{name}: {}",
                            self.name,
                            std::io::Error::from(e)
                        ));
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Does one job.
    fn run(&mut self, job: &mut SealJob) -> Result<()> {
        match job {
            SealJob::Mid {
                file,
                size,
                tagged,
                asked,
                made,
            } => self.mid(file.as_fd(), *size, *tagged, *asked, made),
            SealJob::End {
                archive,
                file,
                size,
                tagged,
                kept,
                asked,
            } => self.end(file.as_fd(), *archive, *size, *tagged, kept, *asked),
            SealJob::Deleted { archive, unlink } => self.deleted(*archive, *unlink),
        }
    }
}

fn open_seal_current(seal_dir: BorrowedFd<'_>, name: &str) -> Result<OwnedFd> {
    fs::openat(
        seal_dir,
        CURRENT,
        OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .context(|| format!("{name}/{SEAL_DIR}/current: open"))
}

/// What the sealing thread is given, in the order of the writer's steps.
enum SealJob {
    /// A `mid` seal of `current` (`file`) to `size` bytes, asked for then.
    Mid {
        file: Arc<OwnedFd>,
        size: u64,
        /// Its span, if the tagging thread tagged it.
        tagged: Option<Tagged>,
        asked: Stamp,
        /// The record is made (a try failed after): it only goes out.
        made: bool,
    },
    /// `current` (`file`) was renamed to `archive` at `size` bytes: its
    /// `end` seal.
    End {
        archive: Stamp,
        file: Arc<OwnedFd>,
        size: u64,
        tagged: Option<Tagged>,
        kept: Vec<Stamp>,
        asked: Stamp,
    },
    /// An archive deleted at the old end, after the seals before.
    Deleted { archive: Stamp, unlink: bool },
}

/// The queues between the writer's thread, the tagging thread and the
/// sealing thread, and what they tell one another.
#[derive(Default)]
struct State {
    to_tag: VecDeque<TagJob>,
    to_seal: VecDeque<SealJob>,
    /// A thread is at work on a job it took.
    tagging: bool,
    sealing: bool,
    /// The tagging thread has ended: no more jobs will come to seal.
    tagged_all: bool,
    /// Seals made by the sealing thread for no job of the writer's (at a
    /// deletion no end seal foresaw): the tagging thread's keys skip them.
    extra_seals: u64,
    /// Rotations whose end seal is not yet durable.
    ends: usize,
    /// Why the sealing thread's job fails, while it tries again.
    failure: Option<String>,
    /// No more jobs will come.
    closing: bool,
    /// Stop trying a failing job: what is left is sealed by the next
    /// start, as after a crash.
    give_up: bool,
}

impl State {
    fn idle(&self) -> bool {
        self.to_tag.is_empty() && self.to_seal.is_empty() && !self.tagging && !self.sealing
    }
}

struct Shared {
    state: Mutex<State>,
    /// Each thread waits on its own: a job for the tagging thread does not
    /// wake the sealing thread, nor the other way round.
    tagger: Condvar,
    sealer: Condvar,
    writer: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The threads do not panic while holding it; if one did, its state
        // is still whole (every change is one assignment).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, on: &Condvar, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        on.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    fn wake_all(&self) {
        self.tagger.notify_all();
        self.sealer.notify_all();
        self.writer.notify_all();
    }
}

/// The seals of one log directory being written. The writer's thread only
/// says what happened (lines consumed, a seal due, a rotation, a deletion)
/// in order; a tagging thread tags `current` as it is consumed, and a
/// sealing thread makes the seals durable and owns `seal/` and the key.
pub struct DirSeal {
    name: String,
    policy: SealPolicy,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// `current`, once taken (after a rotation, not yet).
    current: Option<Arc<OwnedFd>>,
    /// The length of it given to tag so far.
    sent: u64,
    lines_since: u64,
    due: Option<Instant>,
    /// A seal is wanted at the next chance (the start).
    wanted: bool,
    /// No seal was ever made here: the first is awaited at the start.
    fresh: bool,
}

impl DirSeal {
    /// Opens the seals of log directory `dir` (creating `seal/`), before
    /// its archives are listed and `current` opened: cuts a record a crash
    /// left short, finishes a rotation whose `end` seal was written but
    /// whose renames were not, resumes the key after the last record, and
    /// makes the `end` seals of archives rotated before theirs were made
    /// (logseal(7), the crash rule).
    pub fn open(dir: BorrowedFd<'_>, name: &str, policy: &SealPolicy) -> Result<DirSeal> {
        let at = |what: &str| format!("{name}/{SEAL_DIR}{what}");
        match fs::mkdirat(dir, SEAL_DIR, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e).context(|| format!("{}: mkdir", at(""))),
        }
        let seal_dir = fs::openat(
            dir,
            SEAL_DIR,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .context(|| format!("{}: open", at("")))?;
        let (key, keys) = KeyFile::open(&policy.key_file)?;
        let mut sealed = BTreeSet::new();
        for entry in fs::Dir::read_from(&seal_dir).context(|| format!("{}: list", at("")))? {
            let entry = entry.context(|| format!("{}: list", at("")))?;
            if let Some(stamp) = seal_file_stamp(entry.file_name().to_bytes()) {
                sealed.insert(stamp);
            }
        }
        // seal/current: whole records only.
        let mut current_records = Vec::new();
        if exists(seal_dir.as_fd(), CURRENT) {
            let bytes = read_all(seal_dir.as_fd(), CURRENT)
                .context(|| format!("{}: read", at("/current")))?;
            let (records, end) = whole_records(&bytes).map_err(|n| {
                Error::invalid(
                    at("/current"),
                    format!("record {n} is not a seal record; not sealing over it"),
                )
            })?;
            if end < bytes.len() {
                let fd = logdir::open_file(seal_dir.as_fd(), CURRENT, OFlags::WRONLY, 0)
                    .context(|| format!("{}: open", at("/current")))?;
                fs::ftruncate(&fd, end as u64)
                    .context(|| format!("{}: truncate", at("/current")))?;
                fs::fsync(&fd).context(|| format!("{}: fsync", at("/current")))?;
                cli::info(&format!(
                    "{}: cut {} bytes of a seal record cut short",
                    at("/current"),
                    bytes.len() - end
                ));
            }
            current_records = records.into_iter().map(<[u8]>::to_vec).collect();
        }
        let sealing_began = current_records
            .first()
            .and_then(|line| Record::parse(line))
            .map(|r| r.at);
        let mut last_line = current_records.last().cloned();
        if let Some(line) = &last_line
            && let Some(Record {
                file: Sealed::Archive(stamp),
                cover,
                ..
            }) = Record::parse(line)
        {
            // The end seal is written; the renames are not, or not both.
            if !archive_exists(dir, stamp) {
                finish_rename(dir, name, stamp, cover.bytes)?;
            }
            fs::renameat(&seal_dir, CURRENT, &seal_dir, stamp.to_string())
                .context(|| format!("{}: rename current to {stamp}", at("")))?;
            fs::fsync(&seal_dir).context(|| format!("{}: fsync", at("")))?;
            sealed.insert(stamp);
            cli::info(&format!(
                "{name}: finished a rotation cut short, to {stamp}"
            ));
        } else if last_line.is_none()
            && let Some(&newest) = sealed.iter().next_back()
        {
            let bytes = read_all(seal_dir.as_fd(), &newest.to_string())
                .context(|| format!("{}: read", at(&format!("/{newest}"))))?;
            let (records, _) = whole_records(&bytes).map_err(|n| {
                Error::invalid(
                    at(&format!("/{newest}")),
                    format!("record {n} is not a seal record"),
                )
            })?;
            last_line = records.last().map(|l| l.to_vec());
            if let Some(Record {
                file: Sealed::Archive(stamp),
                cover,
                ..
            }) = last_line.as_deref().and_then(Record::parse)
                && stamp == newest
                && !archive_exists(dir, stamp)
            {
                // seal/current renamed, current not.
                finish_rename(dir, name, stamp, cover.bytes)?;
            }
        }
        let last = last_line.as_deref().and_then(Record::parse);
        // Seal files of archives the cap deleted, left by a crash before
        // the seals of newer ones went: they would stand behind a gap.
        if let Some(first) = last.as_ref().and_then(|r| r.first) {
            let gone: Vec<Stamp> = sealed
                .range(..first)
                .copied()
                .filter(|&s| !archive_exists(dir, s))
                .collect();
            for stamp in gone {
                match fs::unlinkat(&seal_dir, stamp.to_string(), AtFlags::empty()) {
                    Ok(()) | Err(rustix::io::Errno::NOENT) => {
                        sealed.remove(&stamp);
                    }
                    Err(e) => {
                        return Err(e).context(|| format!("{}: unlink {stamp}", at("")));
                    }
                }
            }
        }
        match &last {
            None if keys.index() > 0 => {
                return Err(Error::invalid(
                    name,
                    format!(
                        "no seal record, but the key {} has made {} seals: it is another \
                         directory's key, or this directory's seals were removed",
                        policy.key_file.display(),
                        keys.index()
                    ),
                ));
            }
            Some(record) if keys.index() < record.seq => {
                return Err(Error::invalid(
                    name,
                    format!(
                        "the key {} is behind the seals here (at seal {}, the last is {}): \
                         not this directory's key",
                        policy.key_file.display(),
                        keys.index(),
                        record.seq
                    ),
                ));
            }
            _ => {}
        }
        let resumed_at = keys.index();
        let fresh = last.is_none();
        let sealer = Sealer::resume(keys, last_line.as_deref())
            .map_err(|e| Error::invalid(format!("{name}: resuming the seals"), e.to_string()))?;
        let seal_current = open_seal_current(seal_dir.as_fd(), name)?;
        let log_dir = rustix::io::fcntl_dupfd_cloexec(dir, 0).context(|| format!("{name}: dup"))?;
        let mut core = SealCore {
            name: name.to_owned(),
            dir: log_dir,
            seal_dir,
            seal_current,
            key,
            sealer,
            first: last.as_ref().and_then(|r| r.first),
            last_at: last.as_ref().map_or(Stamp::ZERO, |r| r.at),
            sealed,
            pending: Vec::new(),
            unsynced: false,
            // Killed between a record and its key: the key moved past the
            // record in memory only; store it before any other record.
            key_due: false,
            ended: None,
            group_cover: last
                .as_ref()
                .filter(|r| r.file == Sealed::Current)
                .map(|r| r.cover),
            buf: Vec::new(),
            extra_seals: 0,
        };
        if core.sealer.next_seq() != resumed_at {
            core.key.store(&core.sealer.key_state())?;
        }
        core.seal_unsealed_archives(sealing_began)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            tagger: Condvar::new(),
            sealer: Condvar::new(),
            writer: Condvar::new(),
        });
        let tagger = Tagger {
            keys: core.sealer.span_keys(),
            file: None,
            at: core.group_cover.unwrap_or(Cover::START),
            span: None,
            skipped: 0,
            buf: Vec::new(),
        };
        let mut seal = DirSeal {
            name: name.to_owned(),
            policy: policy.clone(),
            shared: Arc::clone(&shared),
            threads: Vec::new(),
            current: None,
            sent: 0,
            lines_since: 0,
            due: None,
            wanted: true,
            fresh,
        };
        // Each thread pushed as it starts: a failure to start the next
        // closes and joins it (Drop).
        let spawned = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("tagger".into())
                .spawn(move || tag_jobs(&shared, tagger))
        };
        seal.threads.push(
            spawned.map_err(|e| Error::new(format!("{name}: starting the tagging thread"), e))?,
        );
        let spawned = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("sealer".into())
                .spawn(move || seal_jobs(&shared, core))
        };
        seal.threads.push(
            spawned.map_err(|e| Error::new(format!("{name}: starting the sealing thread"), e))?,
        );
        Ok(seal)
    }

    fn push(&self, job: TagJob) {
        let mut state = self.shared.lock();
        // A later length supersedes the lengths and mid seals asked for
        // before it and not yet taken: "a seal at least every N lines" is
        // a seal asked for; one covering more makes it.
        let superseded: fn(&TagJob) -> bool = match job {
            TagJob::Settled { .. } => |j| matches!(j, TagJob::Settled { .. }),
            TagJob::Seal(SealJob::Mid { .. }) => |j| {
                matches!(
                    j,
                    TagJob::Settled { .. } | TagJob::Seal(SealJob::Mid { .. })
                )
            },
            TagJob::Seal(_) => |_| false,
        };
        while state.to_tag.back().is_some_and(superseded) {
            state.to_tag.pop_back();
        }
        state.to_tag.push_back(job);
        drop(state);
        self.shared.tagger.notify_one();
    }

    /// Takes `current` for the seals to come, if not yet taken.
    fn follow(&mut self, current: BorrowedFd<'_>) -> Result<Arc<OwnedFd>> {
        if let Some(fd) = &self.current {
            return Ok(Arc::clone(fd));
        }
        let fd = Arc::new(
            rustix::io::fcntl_dupfd_cloexec(current, 0)
                .context(|| format!("{}/{CURRENT}: dup", self.name))?,
        );
        self.current = Some(Arc::clone(&fd));
        Ok(fd)
    }

    /// Takes `current` as it is now, once recovery has settled its length.
    pub fn start(&mut self, current: BorrowedFd<'_>, size: u64) -> Result<()> {
        self.current = None;
        self.sent = 0;
        self.settled(current, size)
    }

    /// `current` is `size` bytes long, all of them consumed input (never
    /// to be cut back): the tagging thread may tag them ahead of the seal.
    pub fn settled(&mut self, current: BorrowedFd<'_>, size: u64) -> Result<()> {
        let file = self.follow(current)?;
        // A step at a time: each wakes the tagging thread.
        if size >= self.sent + SETTLE_STEP {
            self.sent = size;
            self.push(TagJob::Settled { file, size });
        }
        Ok(())
    }

    /// `lines` more lines were written to `current`.
    pub fn wrote(&mut self, lines: u64) {
        self.lines_since += lines;
        if self.due.is_none() {
            self.due = Some(Instant::now() + self.policy.every);
        }
    }

    /// When a seal is due by time, if lines wait for one.
    pub fn deadline(&self) -> Option<Instant> {
        self.due
    }

    /// Whether a seal is due now.
    pub fn is_due(&self, now: Instant) -> bool {
        self.wanted || self.lines_since >= self.policy.lines || self.due.is_some_and(|d| d <= now)
    }

    /// Asks for a `mid` seal of `current`'s first `size` bytes, consumed.
    pub fn seal_mid(&mut self, current: BorrowedFd<'_>, size: u64) -> Result<()> {
        let file = self.follow(current)?;
        self.sent = self.sent.max(size);
        self.push(TagJob::Seal(SealJob::Mid {
            file,
            size,
            tagged: None,
            asked: Stamp::now(),
            made: false,
        }));
        self.lines_since = 0;
        self.due = None;
        self.wanted = false;
        Ok(())
    }

    /// Before a rotation: waits while too many rotations wait for their
    /// `end` seals. Err: the sealing thread fails (it goes on trying).
    pub fn room(&self) -> Result<()> {
        self.wait_for(|state| state.ends < UNSEALED_ROTATIONS)
    }

    /// After the rotation's rename of `current` (`size` bytes) to
    /// `archive`: its `end` seal is to be made, naming the oldest sealed
    /// archive of `kept` (oldest first, the archives the cap keeps once it
    /// is added). The next `current` is followed from its start.
    pub fn rotated(
        &mut self,
        file: BorrowedFd<'_>,
        archive: Stamp,
        size: u64,
        kept: Vec<Stamp>,
    ) -> Result<()> {
        let file = self.follow(file)?;
        self.current = None;
        self.sent = 0;
        self.shared.lock().ends += 1;
        self.push(TagJob::Seal(SealJob::End {
            archive,
            file,
            size,
            tagged: None,
            kept,
            asked: Stamp::now(),
        }));
        self.lines_since = 0;
        self.due = None;
        Ok(())
    }

    /// An archive is deleted at the old end: the sealing thread deletes
    /// its seal file, and then, with `unlink`, the archive itself, after
    /// the seals before (the `end` seal that names a newer oldest one).
    pub fn deleted(&mut self, archive: Stamp, unlink: bool) {
        self.push(TagJob::Seal(SealJob::Deleted { archive, unlink }));
    }

    /// At a start, after asking for its seal: in a directory never sealed,
    /// waits until it is made, so that no line is ever in a directory
    /// without a seal record (which verifies as never sealed).
    pub fn started(&mut self) -> Result<()> {
        if !self.fresh {
            return Ok(());
        }
        self.wait_idle()?;
        self.fresh = false;
        Ok(())
    }

    /// Waits until every seal asked for is made. Err: the sealing thread
    /// fails.
    pub fn wait_idle(&self) -> Result<()> {
        self.wait_for(State::idle)
    }

    /// Waits until `ready` holds of the sealing threads' state. Err: the
    /// sealing thread fails (it goes on trying).
    fn wait_for(&self, ready: impl Fn(&State) -> bool) -> Result<()> {
        let mut state = self.shared.lock();
        loop {
            if let Some(why) = &state.failure {
                return Err(Error::invalid(
                    format!("{}: sealing", self.name),
                    format!("{why} ({} rotations wait for their seals)", state.ends),
                ));
            }
            if ready(&state) {
                return Ok(());
            }
            state = self.shared.wait(&self.shared.writer, state);
        }
    }
}

impl Drop for DirSeal {
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.closing = true;
            state.give_up = true;
        }
        self.shared.wake_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// What the tagging thread is given, in the order of the writer's steps.
enum TagJob {
    /// `file` (`current`) is this long, all of it consumed input: its span
    /// may be tagged so far ahead of the seal.
    Settled { file: Arc<OwnedFd>, size: u64 },
    /// For the sealing thread, once its span is tagged.
    Seal(SealJob),
}

/// The tagging thread's own: the span keys of the seals to come, and the
/// span of the next seal, tagged as far as `current` was consumed.
struct Tagger {
    keys: SpanKeys,
    /// The file followed (none before the first job, and after a rotation).
    file: Option<Arc<OwnedFd>>,
    /// Where the next seal's span begins.
    at: Cover,
    /// That span, under the key of seal `keys.seq()`, tagged so far.
    span: Option<Span>,
    /// Of [`State::extra_seals`], those its keys have skipped.
    skipped: u64,
    buf: Vec<u8>,
}

impl Tagger {
    /// Follows `file`: a new one begins at its first byte.
    fn follow(&mut self, file: &Arc<OwnedFd>) {
        match &self.file {
            Some(f) if Arc::ptr_eq(f, file) => {}
            Some(_) => {
                self.file = Some(Arc::clone(file));
                self.at = Cover::START;
                self.span = None;
            }
            None => self.file = Some(Arc::clone(file)),
        }
    }

    /// Tags the span on to `size` bytes of the file followed.
    fn extend(&mut self, size: u64) -> std::result::Result<(), String> {
        let Some(file) = &self.file else {
            return Err("no file followed".into());
        };
        let span = self
            .span
            .get_or_insert_with(|| Span::new(&self.keys.key(), self.at));
        read_into(span, file.as_fd(), size, &mut self.buf)
    }

    /// The cover of the next seal, to `size` bytes, if it can be tagged
    /// (if not, the sealing thread tries and says why); the span of the
    /// seal after it begins there.
    fn seal(&mut self, file: &Arc<OwnedFd>, size: u64) -> Option<Tagged> {
        self.follow(file);
        let (seq, from) = (self.keys.seq(), self.at);
        let done = self.extend(size);
        let span = self.span.take();
        // The job is seal `seq` all the same (or the writer fails).
        let _ = self.keys.advance();
        done.ok()?;
        let cover = span?.finish();
        self.at = cover;
        Some(Tagged { seq, from, cover })
    }

    /// Seals the sealing thread made for no job: their numbers are skipped,
    /// and a span begun under a skipped key begun again.
    fn skip_to(&mut self, extra: u64) {
        while self.skipped < extra {
            if self.keys.advance().is_err() {
                break;
            }
            self.skipped += 1;
            self.span = None;
        }
    }
}

/// The tagging thread: the span of the next seal read back from the page
/// cache as `current` is consumed and tagged under the key of the seal it
/// will be; each seal job passed on in order with its tag. The sealing
/// thread takes a tag only if it is for the seal it makes, from where that
/// seal's span begins: otherwise it tags the span itself.
fn tag_jobs(shared: &Shared, mut tagger: Tagger) {
    // It catches up with the input: the input thread comes first.
    crate::sys::background::lower_this_thread();
    loop {
        let (job, extra) = {
            let mut state = shared.lock();
            loop {
                if let Some(job) = state.to_tag.pop_front() {
                    state.tagging = true;
                    break (Some(job), state.extra_seals);
                }
                if state.closing {
                    state.tagged_all = true;
                    break (None, 0);
                }
                state = shared.wait(&shared.tagger, state);
            }
        };
        let Some(job) = job else {
            shared.wake_all();
            return;
        };
        tagger.skip_to(extra);
        let out = match job {
            TagJob::Settled { file, size } => {
                tagger.follow(&file);
                if tagger.extend(size).is_err() {
                    // Tried again from the start of the span at the seal.
                    tagger.span = None;
                }
                None
            }
            TagJob::Seal(mut job) => {
                match &mut job {
                    SealJob::Mid {
                        file, size, tagged, ..
                    } => *tagged = tagger.seal(file, *size),
                    SealJob::End {
                        file, size, tagged, ..
                    } => {
                        *tagged = tagger.seal(file, *size);
                        tagger.file = None;
                        tagger.at = Cover::START;
                    }
                    SealJob::Deleted { .. } => {}
                }
                Some(job)
            }
        };
        let mut state = shared.lock();
        state.tagging = false;
        let for_sealer = out.is_some();
        if let Some(job) = out {
            state.to_seal.push_back(job);
        }
        let maybe_idle = state.to_tag.is_empty();
        drop(state);
        if for_sealer {
            shared.sealer.notify_one();
        }
        if maybe_idle {
            shared.writer.notify_all();
        }
    }
}

/// The sealing thread: each job made durable in order, a failing one tried
/// again (said once) until it succeeds or the writer gives up.
fn seal_jobs(shared: &Shared, mut core: SealCore) {
    loop {
        let job = {
            let mut state = shared.lock();
            loop {
                if let Some(job) = state.to_seal.pop_front() {
                    state.sealing = true;
                    break Some(job);
                }
                if state.tagged_all {
                    break None;
                }
                state = shared.wait(&shared.sealer, state);
            }
        };
        let Some(mut job) = job else {
            return;
        };
        let mut delay = Duration::from_millis(100);
        let mut said = false;
        loop {
            let outcome = core.run(&mut job).map_err(|e| e.to_string());
            if let Err(why) = &outcome
                && !said
            {
                cli::warn(&format!("{why}; trying again"));
                said = true;
            }
            // Told with the outcome: a failed try may have made its seal.
            let mut state = shared.lock();
            state.extra_seals = core.extra_seals;
            match outcome {
                Ok(()) => {
                    state.sealing = false;
                    if matches!(job, SealJob::End { .. }) {
                        state.ends = state.ends.saturating_sub(1);
                    }
                    if state.failure.take().is_some() {
                        cli::info(&format!("{}: sealing again", core.name));
                    }
                    drop(state);
                    shared.writer.notify_all();
                    break;
                }
                Err(why) => {
                    state.failure = Some(why);
                    shared.writer.notify_all();
                    if state.give_up {
                        state.sealing = false;
                        state.to_seal.clear();
                        drop(state);
                        shared.writer.notify_all();
                        return;
                    }
                    let (state, _) = shared
                        .sealer
                        .wait_timeout(state, delay)
                        .unwrap_or_else(|e| e.into_inner());
                    drop(state);
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

impl SealCore {
    /// At open: the archives newer than the last `end` seal (rotated, the
    /// writer killed before their `end` seals) get them now, in order. The
    /// `mid` seals in `seal/current` are of the oldest of them.
    fn seal_unsealed_archives(&mut self, sealing_began: Option<Stamp>) -> Result<()> {
        let archives = logdir::list_archives(self.dir.as_fd())
            .context(|| format!("unable to list the archives of {}", self.name))?;
        let newest_sealed = self.sealed.iter().next_back().copied();
        let unsealed: Vec<Stamp> = archives
            .iter()
            .map(|(a, _)| a.stamp)
            .filter(|&s| match (newest_sealed, sealing_began) {
                (Some(newest), _) => s > newest,
                (None, Some(began)) => s >= began,
                (None, None) => false,
            })
            .collect();
        let kept: Vec<Stamp> = archives.iter().map(|(a, _)| a.stamp).collect();
        for archive in unsealed {
            let fd = open_archive(self.dir.as_fd(), archive)
                .context(|| format!("{}/{archive}: open, to seal it", self.name))?;
            let size = fs::fstat(&fd)
                .context(|| format!("{}/{archive}: fstat", self.name))?
                .st_size as u64;
            self.end(fd.as_fd(), archive, size, None, &kept, Stamp::now())?;
            cli::info(&format!(
                "{}: sealed {archive}, rotated before its end seal",
                self.name
            ));
        }
        Ok(())
    }
}

/// Finishes a rotation cut short after its seal: `current` (of `bytes`
/// bytes, as sealed) becomes the archive `stamp`.
fn finish_rename(dir: BorrowedFd<'_>, name: &str, stamp: Stamp, bytes: u64) -> Result<()> {
    let current = logdir::open_file(dir, CURRENT, OFlags::RDONLY, 0)
        .context(|| format!("{name}/{CURRENT}: open, to finish a sealed rotation"))?;
    let size = fs::fstat(&current)
        .context(|| format!("{name}/{CURRENT}: fstat"))?
        .st_size as u64;
    if size != bytes {
        return Err(Error::invalid(
            format!("{name}/{CURRENT}"),
            format!("{size} bytes, but its end seal covers {bytes}: not the file sealed"),
        ));
    }
    fs::fsync(&current).context(|| format!("{name}/{CURRENT}: fsync"))?;
    fs::fchmod(&current, Mode::from_raw_mode(MODE_FINISHED))
        .context(|| format!("{name}/{CURRENT}: chmod"))?;
    let archive = logdir::Archive {
        stamp,
        complete: true,
    }
    .name();
    fs::renameat(dir, CURRENT, dir, &archive)
        .context(|| format!("{name}: renaming {CURRENT} to {archive}"))?;
    fs::fsync(dir).context(|| format!("{name}: fsync"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logdir::seal::{Verdict, Verifier};
    use crate::testutil::scratch::Scratch;

    /// The sealing side of a new log directory `log` in `s`, on a new key.
    fn new_core(s: &Scratch) -> (SealCore, Seed) {
        let key = s.join("key");
        let seed = make_key(&key).expect("key");
        let log = s.join("log");
        std::fs::create_dir_all(log.join(SEAL_DIR)).expect("mkdir");
        let dir = logdir::open_dir(log.as_os_str()).expect("open");
        let seal_dir = fs::openat(
            &dir,
            SEAL_DIR,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("open seal/");
        let seal_current = open_seal_current(seal_dir.as_fd(), "log").expect("seal/current");
        let (key, keys) = KeyFile::open(&key).expect("key file");
        let core = SealCore {
            name: "log".into(),
            dir,
            seal_dir,
            seal_current,
            key,
            sealer: Sealer::resume(keys, None).expect("sealer"),
            first: None,
            sealed: BTreeSet::new(),
            last_at: Stamp::ZERO,
            pending: Vec::new(),
            unsynced: false,
            key_due: false,
            ended: None,
            group_cover: None,
            buf: Vec::new(),
            extra_seals: 0,
        };
        (core, seed)
    }

    #[test]
    fn records_made_before_a_failed_write_go_out_first_when_it_works_again() {
        let s = Scratch::new("sealing-full");
        let (mut core, seed) = new_core(&s);
        let text = b"@400000006b00f7540ae5ce12 a line\n";
        std::fs::write(s.join("log/current"), text).expect("current");
        let file = std::fs::File::open(s.join("log/current")).expect("open");
        let size = text.len() as u64;
        // seal/current on a full disk.
        let full = fs::open("/dev/full", OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
            .expect("/dev/full");
        let seal_current = std::mem::replace(&mut core.seal_current, full);
        let mut first = false;
        assert!(
            core.mid(file.as_fd(), size, None, Stamp::now(), &mut first)
                .is_err()
        );
        assert!(first, "its record is made, its key gone");
        // Another seal asked for meanwhile: two records wait.
        let mut second = false;
        assert!(
            core.mid(file.as_fd(), size, None, Stamp::now(), &mut second)
                .is_err()
        );
        assert_eq!(core.pending.len(), 2);
        // Space again: the second tried again goes out after the first.
        core.seal_current = seal_current;
        core.mid(file.as_fd(), size, None, Stamp::now(), &mut second)
            .expect("sealed");
        assert!(core.pending.is_empty());
        let records = std::fs::read(s.join("log/seal/current")).expect("records");
        let mut v = Verifier::new(&seed);
        v.seal_file("seal/current", &records);
        v.begin_current();
        v.feed(text);
        match v.finish() {
            Verdict::Intact(summary) => assert_eq!(summary.last_seq, 1),
            other => panic!("{other:?}"),
        }
        let (_, keys) = KeyFile::open(&s.join("key")).expect("key file");
        assert_eq!(keys.index(), 2, "the key stored past both seals");
    }
}
