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

use std::collections::BTreeSet;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};
use rustix::fs::{self, AtFlags, Mode, OFlags};

use crate::cli;
use crate::error::{Context, Error, Result};
use crate::format::stamp::Stamp;
use crate::logdir::seal::{
    Cover, FileHash, KeyChain, Record, SEAL_DIR, Sealed, Sealer, Seed, seal_file_stamp,
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

/// The seals of one log directory being written.
pub struct DirSeal {
    name: String,
    policy: SealPolicy,
    seal_dir: OwnedFd,
    seal_current: OwnedFd,
    key: KeyFile,
    sealer: Sealer,
    /// The running hash of `current`, on its own thread.
    hasher: Hasher,
    /// The oldest sealed archive kept, as the last seal said or the next will.
    first: Option<Stamp>,
    /// The archives that have a seal file.
    sealed: BTreeSet<Stamp>,
    last_at: Stamp,
    lines_since: u64,
    due: Option<Instant>,
    /// A seal is wanted at the next chance (the kept archives changed).
    wanted: bool,
    /// Records made (their keys destroyed) not yet appended whole.
    pending: Vec<Vec<u8>>,
    /// An end seal made for this archive, its rotation not yet done.
    ended: Option<Stamp>,
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

impl DirSeal {
    /// Opens the seals of log directory `dir` (creating `seal/`), before
    /// its archives are listed and `current` opened: cuts a record a crash
    /// left short, finishes a rotation whose `end` seal was written but
    /// whose renames were not, and resumes the key after the last record.
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
        let archive_exists = |stamp: Stamp| {
            [true, false]
                .into_iter()
                .any(|complete| exists(dir, &logdir::Archive { stamp, complete }.name()))
        };
        let mut last_line = current_records.last().cloned();
        if let Some(line) = &last_line
            && let Some(Record {
                file: Sealed::Archive(stamp),
                cover,
                ..
            }) = Record::parse(line)
        {
            // The end seal is written; the renames are not, or not both.
            if !archive_exists(stamp) {
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
                && !archive_exists(stamp)
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
                .filter(|&s| !archive_exists(s))
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
        let sealer = Sealer::resume(keys, last_line.as_deref())
            .map_err(|e| Error::invalid(format!("{name}: resuming the seals"), e.to_string()))?;
        let mut key = key;
        if sealer.next_seq() != resumed_at {
            // Killed between a record and its key: the key moved past the
            // record in memory only; store it before any other record.
            key.store(&sealer.key_state())?;
        }
        let seal_current = fs::openat(
            &seal_dir,
            CURRENT,
            OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .context(|| format!("{}: open", at("/current")))?;
        Ok(DirSeal {
            name: name.to_owned(),
            policy: policy.clone(),
            seal_dir,
            seal_current,
            key,
            sealer,
            hasher: Hasher::start(name)?,
            first: last.as_ref().and_then(|r| r.first),
            last_at: last.as_ref().map_or(Stamp::ZERO, |r| r.at),
            sealed,
            lines_since: 0,
            due: None,
            wanted: true,
            pending: Vec::new(),
            ended: None,
        })
    }

    /// Takes `current` as it is now, once recovery has settled its length:
    /// the hashing thread hashes it from its first byte.
    pub fn start(&mut self, current: BorrowedFd<'_>, size: u64) -> Result<()> {
        self.hasher.follow(current, &self.name)?;
        self.hasher.settled(size)
    }

    /// `current` is `size` bytes long, all of them consumed input (never
    /// to be cut back): the hashing thread may hash them ahead of the seal.
    pub fn settled(&mut self, current: BorrowedFd<'_>, size: u64) -> Result<()> {
        if self.hasher.file.is_none() {
            self.hasher.follow(current, &self.name)?;
        }
        self.hasher.settled(size)
    }

    /// The cover of `current`'s first `size` bytes, synced meanwhile.
    fn synced_cover(&mut self, current: BorrowedFd<'_>, size: u64) -> Result<Cover> {
        if self.hasher.file.is_none() {
            self.hasher.follow(current, &self.name)?;
        }
        let reply = self.hasher.ask(size)?;
        // The sync runs while the hashing thread finishes.
        let synced = fs::fdatasync(current).context(|| format!("{}/{CURRENT}: fsync", self.name));
        let cover = reply
            .recv()
            .map_err(|_| {
                Error::invalid(
                    format!("{}/{CURRENT}", self.name),
                    "the hashing thread is gone",
                )
            })?
            .map_err(|why| Error::invalid(format!("{}/{CURRENT}", self.name), why))?;
        synced?;
        Ok(cover)
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

    fn stamp(&mut self) -> Stamp {
        self.last_at = Stamp::now().max(self.last_at);
        self.last_at
    }

    /// Seals `current` (a `mid` seal) up to its `size` bytes.
    pub fn seal_mid(&mut self, current: BorrowedFd<'_>, size: u64) -> Result<()> {
        let cover = self.synced_cover(current, size)?;
        let at = self.stamp();
        let record = self
            .sealer
            .seal(Sealed::Current, at, self.first, cover)
            .map_err(|e| Error::invalid(format!("{}: sealing", self.name), e.to_string()))?;
        self.append(record)?;
        self.lines_since = 0;
        self.due = None;
        self.wanted = false;
        Ok(())
    }

    /// Seals `current` as it ends, to become the archive `archive`; with
    /// the cap's deletions to come, `kept` (oldest first) is what remains.
    /// The caller then renames `current` and calls [`DirSeal::rotated`].
    pub fn seal_end(
        &mut self,
        current: BorrowedFd<'_>,
        size: u64,
        archive: Stamp,
        kept: &[Stamp],
    ) -> Result<()> {
        if self.ended == Some(archive) {
            // Made already; the rotation failed after: its record only.
            let name = format!("{}/{SEAL_DIR}/current", self.name);
            return match self.pending.is_empty() {
                true => Ok(()),
                false => self.append_rest(&name),
            };
        }
        let cover = self.synced_cover(current, size)?;
        let oldest_sealed = kept
            .iter()
            .copied()
            .find(|s| self.sealed.contains(s) || *s == archive)
            .unwrap_or(archive);
        let first = Some(oldest_sealed).max(self.first);
        let at = self.stamp();
        let record = self
            .sealer
            .seal(Sealed::Archive(archive), at, first, cover)
            .map_err(|e| Error::invalid(format!("{}: sealing", self.name), e.to_string()))?;
        self.ended = Some(archive);
        self.first = first;
        self.append(record)
    }

    /// The archive an end seal was made for, its rotation not yet done: a
    /// rotation tried again must use its stamp.
    pub fn ended(&self) -> Option<Stamp> {
        self.ended
    }

    /// After the rotation's rename of `current` to `archive`: its seals
    /// follow it, and the next `current` starts a new seal file.
    pub fn rotated(&mut self, archive: Stamp) -> Result<()> {
        let target = archive.to_string();
        fs::renameat(&self.seal_dir, CURRENT, &self.seal_dir, &target)
            .context(|| format!("{}/{SEAL_DIR}: rename current to {target}", self.name))?;
        fs::fsync(&self.seal_dir).context(|| format!("{}/{SEAL_DIR}: fsync", self.name))?;
        self.sealed.insert(archive);
        self.ended = None;
        self.seal_current = fs::openat(
            &self.seal_dir,
            CURRENT,
            OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .context(|| format!("{}/{SEAL_DIR}/current: open", self.name))?;
        self.hasher.forget();
        self.lines_since = 0;
        self.due = None;
        Ok(())
    }

    /// An archive was deleted at the old end: its seal file goes too, and
    /// the next seal names the new oldest one if it was the first kept.
    pub fn deleted(&mut self, archive: Stamp) {
        if !self.sealed.remove(&archive) {
            return;
        }
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
        if self.first.is_some_and(|f| f <= archive) {
            if let Some(&next) = self.sealed.range(archive..).next() {
                self.first = Some(next);
            }
            self.wanted = true;
        }
    }

    /// Appends a record to `seal/current` durably (after any that a failure
    /// left pending: their keys are gone, they must go out), then stores
    /// the key that follows, destroying the one used. A failed write is cut
    /// back and tried again at the next seal.
    fn append(&mut self, record: Vec<u8>) -> Result<()> {
        self.pending.push(record);
        let name = format!("{}/{SEAL_DIR}/current", self.name);
        self.append_rest(&name)
    }

    fn append_rest(&mut self, name: &str) -> Result<()> {
        while let Some(record) = self.pending.first() {
            let len = fs::fstat(&self.seal_current)
                .context(|| format!("{name}: fstat"))?
                .st_size as u64;
            if let Err(e) = write_at(self.seal_current.as_fd(), record, len) {
                let _ = fs::ftruncate(&self.seal_current, len);
                return Err(Error::new(format!("{name}: write"), e));
            }
            self.pending.remove(0);
        }
        fs::fdatasync(&self.seal_current).context(|| format!("{name}: fsync"))?;
        self.key.store(&self.sealer.key_state())
    }
}

/// The running SHA-256 of `current` on a thread of its own, so that the
/// writer's thread does not spend its time hashing: it is given the bytes
/// of `current` as they are consumed (never a byte that could be cut back)
/// and asked for the cover at each seal.
struct Hasher {
    jobs: Option<SyncSender<HashJob>>,
    thread: Option<JoinHandle<()>>,
    /// `current` is being followed (after a rotation, not yet).
    file: Option<()>,
    /// The length given to hash so far.
    sent: u64,
}

enum HashJob {
    /// Hash this file from its first byte from now on.
    Follow(OwnedFd),
    /// Hash it up to this length.
    To(u64),
    /// The cover of exactly this length.
    Cover(u64, SyncSender<std::result::Result<Cover, String>>),
}

/// Hash jobs that may wait before the writer waits.
const HASH_QUEUE: usize = 256;

impl Hasher {
    fn start(name: &str) -> Result<Hasher> {
        let (jobs, queue) = sync_channel(HASH_QUEUE);
        let thread = std::thread::Builder::new()
            .name("hasher".into())
            .spawn(move || hash_jobs(queue))
            .map_err(|e| Error::new(format!("{name}: starting the hashing thread"), e))?;
        Ok(Hasher {
            jobs: Some(jobs),
            thread: Some(thread),
            file: None,
            sent: 0,
        })
    }

    fn send(&self, job: HashJob) -> Result<()> {
        match &self.jobs {
            Some(jobs) if jobs.send(job).is_ok() => Ok(()),
            _ => Err(Error::invalid("sealing", "the hashing thread is gone")),
        }
    }

    fn follow(&mut self, current: BorrowedFd<'_>, name: &str) -> Result<()> {
        let fd = rustix::io::fcntl_dupfd_cloexec(current, 0)
            .context(|| format!("{name}/{CURRENT}: dup"))?;
        self.send(HashJob::Follow(fd))?;
        self.file = Some(());
        self.sent = 0;
        Ok(())
    }

    /// After a rotation: the next `current` is followed from its start.
    fn forget(&mut self) {
        self.file = None;
        self.sent = 0;
    }

    fn settled(&mut self, size: u64) -> Result<()> {
        if size <= self.sent {
            return Ok(());
        }
        self.sent = size;
        self.send(HashJob::To(size))
    }

    fn ask(&mut self, size: u64) -> Result<Receiver<std::result::Result<Cover, String>>> {
        let (reply, answer) = sync_channel(1);
        self.send(HashJob::Cover(size, reply))?;
        self.sent = self.sent.max(size);
        Ok(answer)
    }
}

impl Drop for Hasher {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn hash_jobs(queue: Receiver<HashJob>) {
    let mut file: Option<OwnedFd> = None;
    let mut hash = FileHash::new();
    let mut failed: Option<String> = None;
    let mut buf = vec![0u8; 1 << 20];
    let mut hash_to = |file: &Option<OwnedFd>,
                       hash: &mut FileHash,
                       size: u64|
     -> std::result::Result<(), String> {
        let Some(file) = file else {
            return Err("no file to hash".into());
        };
        while hash.bytes() < size {
            let want = buf.len().min((size - hash.bytes()) as usize);
            match read_exact_at(file.as_fd(), &mut buf[..want], hash.bytes()) {
                Ok(0) => return Err("shorter than written: cut by someone else".into()),
                Ok(got) => hash.update(&buf[..got]),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        Ok(())
    };
    for job in queue {
        match job {
            HashJob::Follow(fd) => {
                file = Some(fd);
                hash = FileHash::new();
                failed = None;
            }
            HashJob::To(size) => {
                if failed.is_none()
                    && let Err(why) = hash_to(&file, &mut hash, size)
                {
                    failed = Some(why);
                }
            }
            HashJob::Cover(size, reply) => {
                let result = match &failed {
                    Some(why) => Err(why.clone()),
                    None => hash_to(&file, &mut hash, size).and_then(|()| {
                        if hash.bytes() == size {
                            Ok(hash.cover())
                        } else {
                            Err("cut back below what was hashed".into())
                        }
                    }),
                };
                let _ = reply.send(result);
            }
        }
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
