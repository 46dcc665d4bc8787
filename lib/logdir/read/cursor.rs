//! A cursor: a durable position in a log directory, kept as nosh keeps it.
//!
//! A cursor directory holds `main`, the log directory (or a symbolic link
//! to it), and `last`, the position. nosh writes `last` as the stamp of
//! the last line taken, 24 hex digits and a LF, and skips every line
//! stamped then or before. That skips the lines that share the stamp and
//! were not yet taken, so `last` has a second line, ours, after nosh's:
//!
//! ```text
//! 4000000065432100075bcd15
//! rill after 4000000065432100075bcd15 2 mid
//! ```
//!
//! `after STAMP N end|mid`: after the N-th line stamped STAMP, which was
//! (`end`) or was not (`mid`) the last line of a finished file; `start`:
//! before the first line. The second line is padded with spaces to a fixed
//! length, so that the file is always 89 bytes. nosh reads the first line
//! only, and finds there what it expects. If nosh rewrites the first line,
//! the second no longer repeats its stamp and is ignored: the position is
//! then nosh's, every line stamped up to the first line's stamp.
//!
//! `last` is replaced atomically and durably: a new file `last.new` is
//! written and synced, renamed over `last`, and the directory synced. When
//! the cursor directory is not writable (nosh's advice for a follower that
//! should write nothing but `last`), `last` is rewritten in place with one
//! pwrite(2) and synced instead. A cursor directory is held with flock(2)
//! while in use, so that two followers never share a cursor.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::fs::{self, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::cli;
use crate::error::{Context, Error, Result};
use crate::format::stamp::Stamp;
use crate::logdir::read::reader::Position;
use crate::logdir::read_exact_at;
use crate::sys::atomic_file::{AtomicFile, write_all_at};

pub const MAIN: &str = "main";
pub const LAST: &str = "last";
const LAST_NEW: &str = "last.new";

/// How far the lines of a log directory have been taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Nothing yet.
    Start,
    /// Every line stamped at or before this (nosh's position).
    Through(Stamp),
    /// After the `same`-th line stamped `stamp`; `file_end`: the last line
    /// of a finished file.
    After {
        stamp: Stamp,
        same: u64,
        file_end: bool,
    },
}

const LINE1: usize = 25;
const LINE2: usize = 64;
/// The size of `last` as written here.
pub const RECORD_LEN: usize = LINE1 + LINE2;

impl Mark {
    /// Where a reader resumes.
    pub fn position(self) -> Position {
        match self {
            Mark::Start => Position::Start,
            Mark::Through(stamp) => Position::Since(stamp.succ()),
            Mark::After {
                stamp,
                same,
                file_end,
            } => Position::After {
                stamp,
                same,
                file_end,
            },
        }
    }

    /// The mark of a reader's position, if it is after a line.
    pub fn of(position: Position) -> Option<Mark> {
        match position {
            Position::After {
                stamp,
                same,
                file_end,
            } => Some(Mark::After {
                stamp,
                same,
                file_end,
            }),
            _ => None,
        }
    }

    /// The stamp nosh's line holds.
    fn nosh_stamp(self) -> Stamp {
        match self {
            Mark::Start => Stamp::ZERO,
            Mark::Through(stamp) | Mark::After { stamp, .. } => stamp,
        }
    }

    /// The contents of `last`.
    pub fn encode(self) -> [u8; RECORD_LEN] {
        let mut out = [b' '; RECORD_LEN];
        let stamp = self.nosh_stamp().label();
        out[..LINE1 - 1].copy_from_slice(&stamp[1..]);
        out[LINE1 - 1] = b'\n';
        let ours = match self {
            Mark::Start => "rill start".to_string(),
            Mark::Through(_) => "rill through".to_string(),
            Mark::After { same, file_end, .. } => format!(
                "rill after {} {same} {}",
                std::str::from_utf8(&stamp[1..]).unwrap_or_default(),
                if file_end { "end" } else { "mid" }
            ),
        };
        out[LINE1..LINE1 + ours.len()].copy_from_slice(ours.as_bytes());
        out[RECORD_LEN - 1] = b'\n';
        out
    }

    /// Reads `last`: ours, or nosh's, or (`None`) neither. An empty file,
    /// as nosh's documentation suggests creating, is the start.
    pub fn decode(bytes: &[u8]) -> Option<Mark> {
        if bytes.is_empty() {
            return Some(Mark::Start);
        }
        if bytes.len() < LINE1 || bytes[LINE1 - 1] != b'\n' {
            return None;
        }
        let stamp = Stamp::parse_hex(&bytes[..LINE1 - 1])?;
        let rest = &bytes[LINE1..];
        let line2 = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
        let words: Vec<&[u8]> = line2
            .split(|&b| b == b' ')
            .filter(|w| !w.is_empty())
            .collect();
        let ours = match words[..] {
            [b"rill", b"start"] if stamp == Stamp::ZERO => Some(Mark::Start),
            [b"rill", b"after", hex, same, end]
                if Stamp::parse_hex(hex) == Some(stamp) && matches!(end, b"end" | b"mid") =>
            {
                std::str::from_utf8(same)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .map(|same| Mark::After {
                        stamp,
                        same,
                        file_end: end == b"end",
                    })
            }
            _ => None,
        };
        Some(ours.unwrap_or(if stamp == Stamp::ZERO {
            Mark::Start
        } else {
            Mark::Through(stamp)
        }))
    }
}

/// A cursor directory in use: held locked, its `last` read and written.
pub struct CursorFile {
    /// For messages: `CURSORS/NAME`.
    pub path: String,
    dir: OwnedFd,
    /// The device it is on (for one syncfs(2) per file system).
    dev: u64,
}

/// Why a cursor directory cannot be used now.
pub enum OpenError {
    /// Another follower holds it.
    Busy,
    Failed(Error),
}

impl CursorFile {
    /// Opens and locks the cursor directory `name` of `cursors`.
    pub fn open(
        cursors: BorrowedFd<'_>,
        name: &str,
        path: String,
    ) -> std::result::Result<CursorFile, OpenError> {
        let dir = fs::openat(
            cursors,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .context(|| format!("open {path}"))
        .map_err(OpenError::Failed)?;
        match fs::flock(&dir, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                let dev = fs::fstat(&dir)
                    .context(|| format!("fstat {path}"))
                    .map_err(OpenError::Failed)?
                    .st_dev;
                Ok(CursorFile { path, dir, dev })
            }
            Err(Errno::WOULDBLOCK) => Err(OpenError::Busy),
            Err(e) => Err(OpenError::Failed(Error::new(
                format!("lock {path}"),
                e.into(),
            ))),
        }
    }

    /// The saved mark; `Ok(None)` if `last` holds no position.
    pub fn load(&self) -> Result<Option<Mark>> {
        Ok(match self.read_small(LAST)? {
            None => Some(Mark::Start),
            Some(bytes) => Mark::decode(&bytes),
        })
    }

    /// Reads a small text file of the cursor directory, if there is one.
    pub fn read_setting(&self, file: &str) -> Result<Option<String>> {
        Ok(self
            .read_small(file)?
            .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string()))
    }

    /// The first 256 bytes of a file of the cursor directory, if it exists.
    fn read_small(&self, file: &str) -> Result<Option<Vec<u8>>> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        let fd = match fs::openat(&self.dir, file, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e).context(|| format!("open {}/{file}", self.path)),
        };
        let mut buf = vec![0u8; 256];
        let got = read_exact_at(fd.as_fd(), &mut buf, 0)
            .context(|| format!("read {}/{file}", self.path))?;
        buf.truncate(got);
        Ok(Some(buf))
    }

    /// Whether the cursor directory has an entry named `file`.
    pub fn has(&self, file: &str) -> bool {
        fs::statat(&self.dir, file, fs::AtFlags::empty()).is_ok()
    }

    /// Writes the mark durably: replaced atomically, or in place when the
    /// directory is not writable.
    pub fn save(&self, mark: Mark) -> Result<()> {
        let (how, fd) = self.stage(mark)?;
        match how {
            Staged::New => self.last().commit(&fd),
            Staged::InPlace => {
                fs::fdatasync(&fd).context(|| format!("fdatasync {}/{LAST}", self.path))
            }
        }
    }

    #[cfg(test)]
    fn rewrite(&self, bytes: &[u8]) -> Result<()> {
        let fd = self.write_in_place(bytes)?;
        fs::fdatasync(&fd).context(|| format!("fdatasync {}/{LAST}", self.path))
    }
}

/// A mark written but not yet synced (see `save_all`).
enum Staged {
    /// In `last.new`, to be renamed over `last`.
    New,
    /// In `last` itself (the directory is not writable).
    InPlace,
}

impl CursorFile {
    /// Writes the mark without syncing it: to `last.new`, or over `last`
    /// when the directory is not writable; the file written.
    fn stage(&self, mark: Mark) -> Result<(Staged, OwnedFd)> {
        let bytes = mark.encode();
        match self.last().write_temp(&bytes) {
            Ok(fd) => Ok((Staged::New, fd)),
            Err(e) if matches!(e.errno(), Some(libc::EACCES | libc::EPERM | libc::EROFS)) => self
                .write_in_place(&bytes)
                .map(|fd| (Staged::InPlace, fd))
                .map_err(|_| e),
            Err(e) => Err(e),
        }
    }

    /// `last`, replaced through `last.new`.
    fn last(&self) -> AtomicFile<'_> {
        AtomicFile {
            dir: self.dir.as_fd(),
            shown: &self.path,
            name: Path::new(LAST),
            temp: Path::new(LAST_NEW),
            mode: Mode::from_raw_mode(0o644),
        }
    }

    fn write_in_place(&self, bytes: &[u8]) -> Result<OwnedFd> {
        let what = |op: &str| format!("{op} {}/{LAST}", self.path);
        let flags = OFlags::WRONLY | OFlags::CLOEXEC;
        let fd = fs::openat(&self.dir, LAST, flags, Mode::empty()).context(|| what("open"))?;
        write_all_at(fd.as_fd(), bytes).context(|| what("write"))?;
        fs::ftruncate(&fd, bytes.len() as u64).context(|| what("truncate"))?;
        Ok(fd)
    }
}

/// Below this many cursors to save at once, each is synced on its own.
const SYNCFS_FROM: usize = 8;

/// Saves many marks durably with two syncfs(2) per file system instead of
/// two fsync(2) per cursor: every `last.new` written, synced, renamed,
/// synced. What failed, for each cursor that failed.
fn save_all(work: &[(u64, (Arc<CursorFile>, Mark))]) -> HashMap<u64, Error> {
    let mut failed = HashMap::new();
    if work.len() < SYNCFS_FROM {
        for (id, (file, mark)) in work {
            if let Err(e) = file.save(*mark) {
                failed.insert(*id, e);
            }
        }
        return failed;
    }
    let mut staged = Vec::new();
    for (id, (file, mark)) in work {
        match file.stage(*mark) {
            Ok((how, _written)) => staged.push((*id, file, how)),
            Err(e) => {
                failed.insert(*id, e);
            }
        }
    }
    sync_file_systems(&mut staged, &mut failed);
    staged.retain(|(id, file, how)| match how {
        Staged::InPlace => false,
        Staged::New => match file.last().rename() {
            Ok(()) => true,
            Err(e) => {
                failed.insert(*id, e);
                false
            }
        },
    });
    sync_file_systems(&mut staged, &mut failed);
    failed
}

/// syncfs(2) once for each file system of `staged`; those on a file
/// system that failed move to `failed`.
fn sync_file_systems(
    staged: &mut Vec<(u64, &Arc<CursorFile>, Staged)>,
    failed: &mut HashMap<u64, Error>,
) {
    let mut synced: HashMap<u64, Option<Errno>> = HashMap::new();
    staged.retain(|(id, file, _)| {
        let result = *synced
            .entry(file.dev)
            .or_insert_with(|| fs::syncfs(&file.dir).err());
        match result {
            None => true,
            Some(e) => {
                failed.insert(*id, Error::new(format!("syncfs {}", file.path), e.into()));
                false
            }
        }
    });
}

/// Writes cursors out in a thread of its own, so that following never
/// waits for the disk: the newest mark given for a cursor replaces any
/// older one not yet written. Marks are gathered for `GATHER` after the
/// first one given, then written together: a cursor that moves with every
/// line is written a few times a second, not once a line, and no mark
/// waits longer than `GATHER` (and the disk's time) to be saved.
pub struct Saver {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    pending: HashMap<u64, (Arc<CursorFile>, Mark)>,
    /// When the oldest pending mark was given.
    since: Option<Instant>,
    /// Someone waits in `flush`: write now.
    hurry: bool,
    busy: bool,
    stop: bool,
}

/// The longest a delivered mark waits to be written (see `Saver`).
pub const GATHER: Duration = Duration::from_millis(200);

/// How long a failed write waits before it is tried again.
const RETRY: Duration = Duration::from_secs(1);

impl Saver {
    pub fn start() -> Result<Saver> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("cursor-saver".into())
            .spawn(move || run(&theirs))
            .context(|| "start the cursor saver thread".to_string())?;
        Ok(Saver {
            shared,
            thread: Some(thread),
        })
    }

    /// Saves `mark` for cursor `id`, soon.
    pub fn save(&self, id: u64, file: &Arc<CursorFile>, mark: Mark) {
        let mut state = lock(&self.shared.state);
        state.pending.insert(id, (file.clone(), mark));
        if state.since.is_none() {
            state.since = Some(Instant::now());
            self.shared.wake.notify_one();
        }
    }

    /// Waits until every mark given is written, at most `limit`; whether
    /// all were.
    pub fn flush(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut state = lock(&self.shared.state);
        state.hurry = true;
        self.shared.wake.notify_all();
        while state.busy || !state.pending.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = match self.shared.wake.wait_timeout(state, left) {
                Ok((s, _)) => s,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }
}

impl Drop for Saver {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn run(shared: &Shared) {
    let mut failing: HashMap<u64, String> = HashMap::new();
    let mut state = lock(&shared.state);
    loop {
        if state.pending.is_empty() {
            if state.stop {
                return;
            }
            state = match shared.wake.wait(state) {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
            continue;
        }
        let due = state.since.map_or(Instant::now(), |since| since + GATHER);
        let now = Instant::now();
        if now < due && !state.hurry && !state.stop {
            state = match shared.wake.wait_timeout(state, due - now) {
                Ok((s, _)) => s,
                Err(poisoned) => poisoned.into_inner().0,
            };
            continue;
        }
        let work: Vec<_> = state.pending.drain().collect();
        state.since = None;
        state.busy = true;
        drop(state);
        let mut retry = Vec::new();
        let mut failed = save_all(&work);
        for (id, (file, mark)) in work {
            match failed.remove(&id).map_or(Ok(()), Err) {
                Ok(()) => {
                    if failing.remove(&id).is_some() {
                        cli::info(&format!("{}: cursor saved again", file.path));
                    }
                }
                // The cursor directory was removed: nothing to keep.
                Err(e) if e.errno() == Some(libc::ENOENT) => {
                    failing.remove(&id);
                }
                Err(e) => {
                    let text = e.to_string();
                    if failing.get(&id) != Some(&text) {
                        cli::warn(&format!("cannot save the cursor: {text}; retrying"));
                        failing.insert(id, text);
                    }
                    retry.push((id, (file, mark)));
                }
            }
        }
        state = lock(&shared.state);
        state.busy = false;
        if !retry.is_empty() && state.since.is_none() {
            state.since = Some(Instant::now());
        }
        for (id, entry) in retry {
            state.pending.entry(id).or_insert(entry);
        }
        if state.pending.is_empty() {
            state.hurry = false;
        }
        shared.wake.notify_all();
        if !failing.is_empty() && !state.stop {
            state = match shared.wake.wait_timeout(state, RETRY) {
                Ok((s, _)) => s,
                Err(poisoned) => poisoned.into_inner().0,
            };
        } else if !failing.is_empty() {
            // Stopping with a cursor that cannot be written: the next run
            // resends from the older position.
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(n: u64) -> Stamp {
        Stamp::from_parts(0x4000_0000_6543_2100 + n, 123_456_789).unwrap()
    }

    #[test]
    fn marks_round_trip_in_a_fixed_size() {
        for mark in [
            Mark::Start,
            Mark::Through(stamp(1)),
            Mark::After {
                stamp: stamp(2),
                same: 1,
                file_end: false,
            },
            Mark::After {
                stamp: stamp(3),
                same: u64::MAX,
                file_end: true,
            },
        ] {
            let bytes = mark.encode();
            assert_eq!(Mark::decode(&bytes), Some(mark));
            assert_eq!(bytes[LINE1 - 1], b'\n');
            assert_eq!(bytes[RECORD_LEN - 1], b'\n');
        }
        let text = Mark::After {
            stamp: stamp(0),
            same: 2,
            file_end: false,
        }
        .encode();
        assert!(
            text.starts_with(
                b"4000000065432100075bcd15\nrill after 4000000065432100075bcd15 2 mid "
            )
        );
    }

    #[test]
    fn nosh_files_read_as_nosh_means_them() {
        assert_eq!(Mark::decode(b""), Some(Mark::Start));
        assert_eq!(
            Mark::decode(b"000000000000000000000000\n"),
            Some(Mark::Start)
        );
        assert_eq!(
            Mark::decode(b"4000000065432100075bcd15\n"),
            Some(Mark::Through(stamp(0)))
        );
        // nosh rewrote the first line of ours in place: the rest is stale.
        let mut ours = Mark::After {
            stamp: stamp(0),
            same: 5,
            file_end: false,
        }
        .encode();
        ours[..24].copy_from_slice(b"4000000065432101075bcd15");
        assert_eq!(Mark::decode(&ours), Some(Mark::Through(stamp(1))));
        let mut start = Mark::Start.encode();
        start[..24].copy_from_slice(b"4000000065432101075bcd15");
        assert_eq!(Mark::decode(&start), Some(Mark::Through(stamp(1))));
        for bad in [
            &b"garbage"[..],
            b"4000000065432100075bcd1\n",
            b"x000000065432100075bcd15\n",
        ] {
            assert_eq!(Mark::decode(bad), None);
        }
    }

    #[test]
    fn saved_atomically_or_in_place_and_read_back() {
        use std::os::unix::fs::MetadataExt;
        let scratch = crate::testutil::scratch::Scratch::new("cursor");
        let root = scratch.path();
        std::fs::create_dir_all(root.join("c")).unwrap();
        let cursors = crate::logdir::open_dir(root.as_os_str()).unwrap();
        let file = match CursorFile::open(cursors.as_fd(), "c", "c".into()) {
            Ok(file) => file,
            Err(_) => panic!("open"),
        };
        assert_eq!(file.load().unwrap(), Some(Mark::Start), "no last yet");
        let mark = Mark::After {
            stamp: stamp(7),
            same: 3,
            file_end: true,
        };
        file.save(mark).unwrap();
        assert_eq!(file.load().unwrap(), Some(mark));
        assert!(!root.join("c/last.new").exists());
        // In place (as for a cursor directory we may not write): same file.
        let inode = std::fs::metadata(root.join("c/last")).unwrap().ino();
        file.rewrite(&Mark::Through(stamp(8)).encode()).unwrap();
        assert_eq!(file.load().unwrap(), Some(Mark::Through(stamp(8))));
        assert_eq!(std::fs::metadata(root.join("c/last")).unwrap().ino(), inode);
        assert!(matches!(
            CursorFile::open(cursors.as_fd(), "c", "c".into()),
            Err(OpenError::Busy)
        ));
        drop(file);
    }

    #[test]
    fn a_through_mark_resumes_after_its_stamp() {
        assert_eq!(
            Mark::Through(stamp(4)).position(),
            Position::Since(stamp(4).succ())
        );
        assert_eq!(Mark::of(Position::Start), None);
    }
}
