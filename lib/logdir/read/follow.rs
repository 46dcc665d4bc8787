//! Following many log directories through their cursors, for
//! follow-log-directories and export-to-remote. What a cursor's own files
//! beside `main` and `last` mean is the consumer's (`Settings`).
//!
//! Every subdirectory of CURSORS not starting with `.` is a cursor (see
//! `cursor`); cursors added later are picked up when CURSORS changes, and
//! ones removed are dropped. Each cursor has a reader resuming from its
//! saved mark. Lines are taken round robin, a bounded share from each
//! cursor in turn, so that a busy directory cannot hold up the others.
//!
//! Work grows with what changes, not with what exists: one inotify
//! instance watches every log directory, and only the cursors whose
//! directory changed are read (a queue of them). A quiet cursor's reader
//! is parked: it holds no file and no buffer, only where it stands; the
//! cursor keeps one descriptor, its lock. Delivered marks go to a saver
//! thread that writes them in groups (see `cursor::Saver`).
//!
//! What was taken is not what was delivered: the caller says, cursor by
//! cursor, how far delivery got (`delivered`), and only that is saved.
//! After a failed delivery, `rewind` goes back to the settled marks (the
//! delivered ones, or older if the caller says delivery may be undone).

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::fs::{self, AtFlags};

use crate::cli;
use crate::error::{Context, Result};
use crate::format::stamp::Stamp;
use crate::logdir;
use crate::logdir::read::cursor::{CursorFile, MAIN, Mark, OpenError, Saver};
use crate::logdir::read::reader::{Changed, Notice, Parked, Reader, Watcher};

/// What a consumer reads of each cursor's own files, beside `main` and
/// `last`, when the cursor is opened; `()` for nothing. A cursor whose
/// settings cannot be read is not used, and tried again later.
pub trait Settings: Sized {
    fn read(file: &CursorFile) -> Result<Self>;
}

impl Settings for () {
    fn read(_: &CursorFile) -> Result<()> {
        Ok(())
    }
}

/// What a consumer knows of a cursor.
#[derive(Clone, Debug)]
pub struct Info<S = ()> {
    /// Unique for the life of the process (indexes change as cursors come
    /// and go).
    pub id: u64,
    /// The cursor directory's name.
    pub name: String,
    pub settings: S,
}

/// One cursor being followed.
pub struct Cursor<S> {
    pub info: Info<S>,
    file: Arc<CursorFile>,
    ino: (u64, u64),
    /// The watch on its log directory.
    wd: i32,
    /// While lines are being taken; parked (no descriptor, no buffer)
    /// while the log directory is quiet.
    reader: Option<Reader>,
    parked: Option<Parked>,
    /// In the queue of cursors to read.
    queued: bool,
    /// Delivered, and handed to the saver.
    delivered: Mark,
    /// Beyond any resend: where a rewind goes back to.
    settled: Mark,
    /// The reader's mark when last told to the consumer.
    told: Option<Mark>,
}

impl<S> Cursor<S> {
    /// Where the reader stands as told to the consumer.
    fn told_position(&self) -> crate::logdir::read::reader::Position {
        self.told.unwrap_or(self.settled).position()
    }
}

/// What takes the lines.
pub trait Consumer<S = ()> {
    /// A line of cursor `c`: its stamp (`None` if it has none) and text.
    fn line(&mut self, c: &Info<S>, stamp: Option<Stamp>, text: &[u8]);
    /// Cursor `c` is now at `mark`: after the lines given so far.
    fn reached(&mut self, c: &Info<S>, mark: Mark);
    /// No more lines for now.
    fn full(&self) -> bool;
}

pub struct Follower<S = ()> {
    root: PathBuf,
    root_fd: OwnedFd,
    /// Changes to CURSORS itself.
    root_watch: Watcher,
    /// Changes to the log directories: one watch per directory.
    watch: Watcher,
    cursors: HashMap<u64, Cursor<S>>,
    /// The cursors of each cursor directory (by device and inode) ...
    by_ino: HashMap<(u64, u64), u64>,
    /// ... and of each watch (two cursors may follow one directory).
    by_wd: HashMap<i32, Vec<u64>>,
    /// Cursors that may have lines, in the order they are read: a cursor
    /// leaves when it reaches the end of its log, and comes back when its
    /// directory changes. Quiet cursors cost nothing.
    queue: VecDeque<u64>,
    saver: Saver,
    next_id: u64,
    /// Cursor directories that could not be used, and what was said.
    refused: HashMap<(u64, u64), String>,
    rescan_at: Option<Instant>,
    /// Out of descriptors or inotify watches: how long until the next try.
    starved: Option<Duration>,
    /// The open files limit (soft, once raised).
    fd_limit: u64,
    /// Said that reading waits for descriptors.
    read_starved: bool,
}

/// Descriptors kept free for reading, saving and the consumer's own.
const FD_RESERVE: u64 = 64;

/// How soon cursors that could not be used are tried again.
const RETRY: Duration = Duration::from_secs(10);
/// Out of descriptors or watches: the first retry, doubled up to `RETRY`.
const STARVED_RETRY: Duration = Duration::from_millis(500);

impl<S: Settings> Follower<S> {
    /// Opens CURSORS and every cursor in it.
    pub fn open(root: &Path) -> Result<Follower<S>> {
        let fd_limit = raise_fd_limit();
        let name = root.to_string_lossy().into_owned();
        let root_fd = logdir::open_dir(root.as_os_str()).context(|| format!("open {name}"))?;
        let root_watch = Watcher::new()?;
        root_watch.add(root)?;
        let mut follower = Follower {
            root: root.to_path_buf(),
            root_fd,
            root_watch,
            watch: Watcher::new()?,
            cursors: HashMap::new(),
            by_ino: HashMap::new(),
            by_wd: HashMap::new(),
            queue: VecDeque::new(),
            saver: Saver::start()?,
            next_id: 0,
            refused: HashMap::new(),
            rescan_at: None,
            starved: None,
            fd_limit,
            read_starved: false,
        };
        follower.rescan()?;
        Ok(follower)
    }

    /// Readable when a log directory changed.
    pub fn dirs_fd(&self) -> BorrowedFd<'_> {
        self.watch.as_fd()
    }

    /// Readable when CURSORS changed.
    pub fn root_fd(&self) -> BorrowedFd<'_> {
        self.root_watch.as_fd()
    }

    /// When to look again at cursors that could not be used, if any.
    pub fn rescan_due(&self) -> Option<Instant> {
        self.rescan_at
    }

    /// How many cursors are followed.
    pub fn len(&self) -> usize {
        self.cursors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cursors.is_empty()
    }

    /// Takes the events that woke the caller: the cursors of the
    /// directories that changed are read next.
    pub fn drain(&mut self) -> Result<()> {
        match self.watch.changed() {
            Changed::Nothing => {}
            Changed::Some(wds) => {
                for wd in wds {
                    for &id in self.by_wd.get(&wd).map_or(&[][..], |ids| &ids[..]) {
                        enqueue(&mut self.cursors, &mut self.queue, id);
                    }
                }
            }
            Changed::All => {
                let ids: Vec<u64> = self.cursors.keys().copied().collect();
                for id in ids {
                    enqueue(&mut self.cursors, &mut self.queue, id);
                }
            }
        }
        Ok(())
    }

    /// Looks at CURSORS again: new cursors are opened, ones gone dropped.
    pub fn rescan(&mut self) -> Result<()> {
        self.root_watch.drain();
        self.rescan_at = None;
        let mut seen = HashSet::new();
        let mut starved = None;
        let entries =
            fs::Dir::read_from(&self.root_fd).context(|| format!("list {}", self.root_name()))?;
        for entry in entries {
            let entry = entry.context(|| format!("list {}", self.root_name()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            // A directory, or a symbolic link to one.
            let Ok(st) = fs::statat(&self.root_fd, entry.file_name(), AtFlags::empty()) else {
                continue;
            };
            if !fs::FileType::from_raw_mode(st.st_mode).is_dir() {
                continue;
            }
            let ino = (st.st_dev, st.st_ino);
            seen.insert(ino);
            if self.by_ino.contains_key(&ino) || starved.is_some() {
                continue;
            }
            // Each cursor holds one descriptor; reading needs a few more.
            if self.cursors.len() as u64 + FD_RESERVE >= self.fd_limit {
                starved = Some(format!(
                    "the open files limit ({}) is reached",
                    self.fd_limit
                ));
                continue;
            }
            match self.open_cursor(&name, ino) {
                Ok(cursor) => {
                    if self.refused.remove(&ino).is_some() {
                        cli::info(&format!("{}: usable again", cursor.file.path));
                    }
                    cli::info(&format!(
                        "{}: following from {}",
                        cursor.file.path,
                        describe(cursor.delivered)
                    ));
                    self.add(cursor);
                }
                // Every other cursor would fail the same way: later.
                Err(Refusal::Starved(why)) => starved = Some(why),
                Err(Refusal::Unusable(why)) => {
                    if self.refused.get(&ino) != Some(&why) {
                        cli::warn(&format!(
                            "{}/{name}: {why}; will try again",
                            self.root_name()
                        ));
                        self.refused.insert(ino, why);
                    }
                    self.retry_in(RETRY);
                }
            }
        }
        let gone: Vec<(u64, u64)> = self
            .by_ino
            .keys()
            .filter(|ino| !seen.contains(ino))
            .copied()
            .collect();
        for ino in gone {
            if let Some(c) = self
                .by_ino
                .get(&ino)
                .copied()
                .and_then(|id| self.remove(id))
            {
                cli::info(&format!("{}: gone; no longer followed", c.file.path));
            }
        }
        self.refused.retain(|ino, _| seen.contains(ino));
        self.starve(starved);
        Ok(())
    }

    /// Out of descriptors or watches (`why`), or no longer: said once,
    /// tried again later and later.
    fn starve(&mut self, why: Option<String>) {
        match (why, self.starved) {
            (None, None) => {}
            (None, Some(_)) => {
                self.starved = None;
                cli::info(&format!("every cursor opened ({})", self.cursors.len()));
            }
            (Some(why), was) => {
                if was.is_none() {
                    cli::warn(&format!(
                        "{}: {why}, with {} cursors open; the others wait (see ulimit -n and fs.inotify.max_user_watches)",
                        self.root_name(),
                        self.cursors.len()
                    ));
                }
                let wait = was.map_or(STARVED_RETRY, |w| (w * 2).min(RETRY));
                self.starved = Some(wait);
                self.retry_in(wait);
            }
        }
    }

    fn retry_in(&mut self, wait: Duration) {
        let at = Instant::now() + wait;
        self.rescan_at = Some(self.rescan_at.map_or(at, |t| t.min(at)));
    }

    fn root_name(&self) -> String {
        self.root.to_string_lossy().into_owned()
    }

    fn add(&mut self, cursor: Cursor<S>) {
        let id = cursor.info.id;
        self.by_ino.insert(cursor.ino, id);
        self.by_wd.entry(cursor.wd).or_default().push(id);
        self.cursors.insert(id, cursor);
        enqueue(&mut self.cursors, &mut self.queue, id);
    }

    fn remove(&mut self, id: u64) -> Option<Cursor<S>> {
        let c = self.cursors.remove(&id)?;
        self.by_ino.remove(&c.ino);
        if let Some(ids) = self.by_wd.get_mut(&c.wd) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_wd.remove(&c.wd);
                self.watch.remove(c.wd);
            }
        }
        // Its place in the queue is skipped when reached.
        Some(c)
    }

    fn open_cursor(
        &mut self,
        name: &str,
        ino: (u64, u64),
    ) -> std::result::Result<Cursor<S>, Refusal> {
        let path = format!("{}/{name}", self.root_name());
        let file = match CursorFile::open(self.root_fd.as_fd(), name, path.clone()) {
            Ok(file) => Arc::new(file),
            Err(OpenError::Busy) => {
                return Err(Refusal::Unusable("in use by another follower".into()));
            }
            Err(OpenError::Failed(e)) => return Err(Refusal::of(&e)),
        };
        let main = self.root.join(name).join(MAIN);
        let mark = match file.load().map_err(|e| Refusal::of(&e))? {
            Some(mark) => mark,
            None => {
                cli::warn(&format!(
                    "{path}/last: not a position; starting from the oldest line"
                ));
                Mark::Start
            }
        };
        let settings = S::read(&file).map_err(|e| Refusal::of(&e))?;
        // Watched before the first read: nothing written meanwhile is missed.
        let wd = self.watch.add(&main).map_err(|e| Refusal::of(&e))?;
        self.next_id += 1;
        Ok(Cursor {
            info: Info {
                id: self.next_id,
                name: name.to_string(),
                settings,
            },
            file,
            ino,
            wd,
            reader: None,
            parked: Some(Parked::at(mark.position())),
            queued: false,
            delivered: mark,
            settled: mark,
            told: Some(mark),
        })
    }

    /// One round: up to `share` bytes of text from each cursor that may
    /// have lines, in turn, until the consumer is full. Whether any line
    /// was taken.
    pub fn read_round(&mut self, share: usize, out: &mut impl Consumer<S>) -> Result<bool> {
        let mut any = false;
        let mut failed = Vec::new();
        for _ in 0..self.queue.len() {
            if out.full() {
                break;
            }
            let Some(id) = self.queue.pop_front() else {
                break;
            };
            let Some(c) = self.cursors.get_mut(&id) else {
                continue; // removed meanwhile
            };
            match read_cursor(c, &self.root, share, out) {
                Ok(Read { took, more }) => {
                    any |= took;
                    if more {
                        self.queue.push_back(id);
                    } else {
                        c.queued = false;
                        park(c);
                    }
                }
                Err(e) if Refusal::of(&e).is_starved() => {
                    // Out of descriptors: this cursor and the rest wait.
                    park(c);
                    self.queue.push_front(id);
                    if !self.read_starved {
                        cli::warn(&format!("{}: {e}; reading waits", c.file.path));
                        self.read_starved = true;
                    }
                    self.retry_in(STARVED_RETRY);
                    return Ok(any);
                }
                Err(e) => failed.push((id, e)),
            }
        }
        if any && self.read_starved {
            self.read_starved = false;
        }
        // A cursor that cannot be read is dropped, to be picked up again.
        for (id, e) in failed {
            if let Some(c) = self.remove(id) {
                cli::warn(&format!("{}: {e}; will try again", c.file.path));
                self.refused.insert(c.ino, e.to_string());
                self.retry_in(RETRY);
            }
        }
        Ok(any)
    }

    /// Delivery of cursor `id` got to `mark`: saved, soon.
    pub fn delivered(&mut self, id: u64, mark: Mark) {
        if let Some(c) = self.cursors.get_mut(&id) {
            c.delivered = mark;
            self.saver.save(id, &c.file, mark);
        }
    }

    /// Cursor `id` need never go back before `mark` (see `rewind`).
    pub fn settled(&mut self, id: u64, mark: Mark) {
        if let Some(c) = self.cursors.get_mut(&id) {
            c.settled = mark;
        }
    }

    /// Goes back, in every cursor, to its settled mark: what was
    /// delivered, or further back where delivery may yet be undone. The
    /// lines are taken again, and saved again as they are delivered again
    /// (the saved cursor may step back meanwhile).
    pub fn rewind(&mut self) -> Result<()> {
        let ids: Vec<u64> = self.cursors.keys().copied().collect();
        for id in ids {
            let Some(c) = self.cursors.get_mut(&id) else {
                continue;
            };
            c.reader = None;
            c.parked = Some(Parked::at(c.settled.position()));
            c.told = Some(c.settled);
            enqueue(&mut self.cursors, &mut self.queue, id);
        }
        Ok(())
    }

    /// Waits until every delivered mark is written, at most `limit`.
    pub fn flush(&self, limit: Duration) -> bool {
        self.saver.flush(limit)
    }
}

/// Why a cursor cannot be followed now.
enum Refusal {
    /// Out of descriptors or inotify watches: the next cursors would fail too.
    Starved(String),
    Unusable(String),
}

impl Refusal {
    fn is_starved(&self) -> bool {
        matches!(self, Refusal::Starved(_))
    }

    fn of(e: &crate::error::Error) -> Refusal {
        match e.errno() {
            Some(libc::EMFILE | libc::ENFILE | libc::ENOSPC | libc::ENOMEM) => {
                Refusal::Starved(e.to_string())
            }
            _ => Refusal::Unusable(e.to_string()),
        }
    }
}

/// Puts cursor `id` in the queue to be read, unless it is there.
fn enqueue<S>(cursors: &mut HashMap<u64, Cursor<S>>, queue: &mut VecDeque<u64>, id: u64) {
    if let Some(c) = cursors.get_mut(&id)
        && !c.queued
    {
        c.queued = true;
        queue.push_back(id);
    }
}

/// Raises the soft limit on open descriptors to the hard one (each cursor
/// holds one, its lock); the soft limit now.
fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return limit.maximum.unwrap_or(u64::MAX),
            Err(e) => cli::warn(&format!("unable to raise the open files limit: {e}")),
        }
    }
    limit.current.unwrap_or(u64::MAX)
}

/// Parks a cursor's reader: a quiet cursor holds no file and no buffer.
fn park<S>(c: &mut Cursor<S>) {
    if let Some(reader) = c.reader.take() {
        c.parked = Some(reader.park());
    }
}

struct Read {
    took: bool,
    /// Stopped short of the end: there may be more.
    more: bool,
}

fn read_cursor<S>(
    c: &mut Cursor<S>,
    root: &Path,
    share: usize,
    out: &mut impl Consumer<S>,
) -> Result<Read> {
    let reader = match c.reader.take() {
        Some(reader) => reader,
        None => {
            let parked = c
                .parked
                .take()
                .unwrap_or_else(|| Parked::at(c.told_position()));
            Reader::resume(&root.join(&c.info.name).join(MAIN), parked)?
        }
    };
    let reader = c.reader.insert(reader);
    let mut taken = 0;
    let mut any = false;
    let mut more = false;
    loop {
        if taken >= share || out.full() {
            more = true;
            break;
        }
        let Some(line) = reader.next_line()? else {
            break;
        };
        taken += line.text.len() + 1;
        out.line(&c.info, line.stamp, line.text);
        any = true;
        tell(reader, &mut c.told, &c.info, out);
    }
    tell(reader, &mut c.told, &c.info, out);
    for notice in reader.take_notices() {
        match notice {
            Notice::Lost { after, upto } => cli::warn(&format!(
                "{}: lines lost: the size cap deleted those after {after}{} before they were taken",
                c.file.path,
                match upto {
                    Some(upto) => format!(" up to {upto} ({} of log)", span(after, upto)),
                    None => String::new(),
                }
            )),
            Notice::Skipped { file, why } => cli::warn(&format!("{file}: {why}")),
        }
    }
    Ok(Read { took: any, more })
}

/// Tells the consumer where the reader is, if that changed.
fn tell<S>(reader: &Reader, told: &mut Option<Mark>, info: &Info<S>, out: &mut impl Consumer<S>) {
    let mark = Mark::of(reader.position());
    if mark.is_some() && mark != *told {
        *told = mark;
        if let Some(mark) = mark {
            out.reached(info, mark);
        }
    }
}

/// How long a stretch of log lies between two stamps, roughly.
fn span(from: Stamp, to: Stamp) -> String {
    let secs = to.secs().saturating_sub(from.secs());
    humantime::format_duration(Duration::from_secs(secs.max(1))).to_string()
}

fn describe(mark: Mark) -> String {
    match mark {
        Mark::Start => "the oldest line".into(),
        Mark::Through(stamp) => format!("after every line stamped up to {stamp}"),
        Mark::After { stamp, same: 1, .. } => format!("after the line stamped {stamp}"),
        Mark::After { stamp, same, .. } => format!("after line {same} stamped {stamp}"),
    }
}
