//! Following many log directories through their cursors: the engine of
//! follow-log-directories and export-to-remote.
//!
//! Every subdirectory of CURSORS not starting with `.` is a cursor (see
//! `cursor`); cursors added later are picked up when CURSORS changes, and
//! ones removed are dropped. Each cursor has a reader resuming from its
//! saved mark. Lines are taken round robin, a bounded share from each
//! cursor in turn, so that a busy directory cannot hold up the others.
//!
//! What was taken is not what was delivered: the caller says, cursor by
//! cursor, how far delivery got (`delivered`), and only that is saved.
//! After a failed delivery, `rewind` goes back to the settled marks (the
//! delivered ones, or older if the caller says delivery may be undone).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::fs::{self, AtFlags};

use crate::cli;
use crate::cursor::{CursorFile, MAIN, Mark, OpenError, Saver};
use crate::error::{Context, Result};
use crate::logdir;
use crate::logread::{Notice, Reader, Watcher};
use crate::record::Priority;
use crate::stamp::Stamp;

/// A cursor's own settings: files beside `main` and `last`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// `priority`: for lines that are not reader lines.
    pub priority: Option<Priority>,
    /// `plain` exists: the lines are a service's own output, never read
    /// as reader lines.
    pub plain: bool,
}

pub const PRIORITY_FILE: &str = "priority";
pub const PLAIN_FILE: &str = "plain";

/// What a consumer knows of a cursor.
#[derive(Clone, Debug)]
pub struct Info {
    /// Unique for the life of the process (indexes change as cursors come
    /// and go).
    pub id: u64,
    /// The cursor directory's name.
    pub name: String,
    pub settings: Settings,
}

/// One cursor being followed.
pub struct Cursor {
    pub info: Info,
    file: Arc<CursorFile>,
    ino: (u64, u64),
    reader: Reader,
    /// Delivered, and handed to the saver.
    delivered: Mark,
    /// Beyond any resend: where a rewind goes back to.
    settled: Mark,
    /// The reader's mark when last told to the consumer.
    told: Option<Mark>,
}

/// What takes the lines.
pub trait Consumer {
    /// A line of cursor `c`: its stamp (`None` if it has none) and text.
    fn line(&mut self, c: &Info, stamp: Option<Stamp>, text: &[u8]);
    /// Cursor `c` is now at `mark`: after the lines given so far.
    fn reached(&mut self, c: &Info, mark: Mark);
    /// No more lines for now.
    fn full(&self) -> bool;
}

pub struct Follower {
    root: PathBuf,
    root_fd: OwnedFd,
    /// Changes to CURSORS itself.
    root_watch: Watcher,
    /// Changes to the log directories.
    watch: Watcher,
    cursors: Vec<Cursor>,
    saver: Saver,
    next_id: u64,
    /// Where the next round starts.
    next: usize,
    /// Cursor directories that could not be used, and what was said.
    refused: Vec<((u64, u64), String)>,
    rescan_at: Option<Instant>,
}

/// How soon cursors that could not be used are tried again.
const RETRY: Duration = Duration::from_secs(10);

impl Follower {
    /// Opens CURSORS and every cursor in it.
    pub fn open(root: &Path) -> Result<Follower> {
        let name = root.to_string_lossy().into_owned();
        let root_fd = logdir::open_dir(root.as_os_str()).context(|| name.clone())?;
        let root_watch = Watcher::new()?;
        root_watch.add(root)?;
        let mut follower = Follower {
            root: root.to_path_buf(),
            root_fd,
            root_watch,
            watch: Watcher::new()?,
            cursors: Vec::new(),
            saver: Saver::start()?,
            next_id: 0,
            next: 0,
            refused: Vec::new(),
            rescan_at: None,
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

    /// Takes the events that woke the caller.
    pub fn drain(&mut self) -> Result<()> {
        self.watch.drain();
        Ok(())
    }

    /// Looks at CURSORS again: new cursors are opened, ones gone dropped.
    pub fn rescan(&mut self) -> Result<()> {
        self.root_watch.drain();
        self.rescan_at = None;
        let mut seen = Vec::new();
        let entries = fs::Dir::read_from(&self.root_fd).context(|| self.root_name())?;
        for entry in entries {
            let entry = entry.context(|| self.root_name())?;
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
            seen.push(ino);
            if self.cursors.iter().any(|c| c.ino == ino) {
                continue;
            }
            match self.open_cursor(&name, ino) {
                Ok(cursor) => {
                    self.refused.retain(|(i, _)| *i != ino);
                    cli::info(&format!(
                        "{}: following from {}",
                        cursor.file.path,
                        describe(cursor.delivered)
                    ));
                    self.cursors.push(cursor);
                }
                Err(why) => {
                    if !self.refused.iter().any(|(i, w)| *i == ino && *w == why) {
                        cli::warn(&format!(
                            "{}/{name}: {why}; will try again",
                            self.root_name()
                        ));
                        self.refused.retain(|(i, _)| *i != ino);
                        self.refused.push((ino, why));
                    }
                    self.rescan_at = Some(Instant::now() + RETRY);
                }
            }
        }
        let before = self.cursors.len();
        self.cursors.retain(|c| {
            let kept = seen.contains(&c.ino);
            if !kept {
                cli::info(&format!("{}: gone; no longer followed", c.file.path));
            }
            kept
        });
        if self.cursors.len() != before {
            self.next = 0;
        }
        Ok(())
    }

    fn root_name(&self) -> String {
        self.root.to_string_lossy().into_owned()
    }

    fn open_cursor(&mut self, name: &str, ino: (u64, u64)) -> std::result::Result<Cursor, String> {
        let path = format!("{}/{name}", self.root_name());
        let file = match CursorFile::open(self.root_fd.as_fd(), name, path.clone()) {
            Ok(file) => Arc::new(file),
            Err(OpenError::Busy) => return Err("in use by another follower".into()),
            Err(OpenError::Failed(e)) => return Err(e.to_string()),
        };
        let main = self.root.join(name).join(MAIN);
        let mut reader = Reader::open(&main).map_err(|e| e.to_string())?;
        let mark = match file.load().map_err(|e| e.to_string())? {
            Some(mark) => mark,
            None => {
                cli::warn(&format!(
                    "{path}/last: not a position; starting from the oldest line"
                ));
                Mark::Start
            }
        };
        reader.seek(mark.position()).map_err(|e| e.to_string())?;
        self.watch.add(&main).map_err(|e| e.to_string())?;
        let settings = read_settings(&file).map_err(|e| e.to_string())?;
        self.next_id += 1;
        Ok(Cursor {
            info: Info {
                id: self.next_id,
                name: name.to_string(),
                settings,
            },
            file,
            ino,
            reader,
            delivered: mark,
            settled: mark,
            told: Some(mark),
        })
    }

    /// One round: up to `share` bytes of text from each cursor in turn,
    /// until the consumer is full. Whether any line was taken.
    pub fn read_round(&mut self, share: usize, out: &mut impl Consumer) -> Result<bool> {
        let mut any = false;
        let count = self.cursors.len();
        let mut failed = Vec::new();
        for k in 0..count {
            if out.full() {
                break;
            }
            let i = (self.next + k) % count;
            match read_cursor(&mut self.cursors[i], share, out) {
                Ok(took) => any |= took,
                Err(e) => failed.push((i, e)),
            }
        }
        if count > 0 {
            self.next = (self.next + 1) % count;
        }
        // A cursor that cannot be read is dropped, to be picked up again.
        for (i, e) in failed.into_iter().rev() {
            let c = self.cursors.remove(i);
            cli::warn(&format!("{}: {e}; will try again", c.file.path));
            self.refused.push((c.ino, e.to_string()));
            self.rescan_at = Some(Instant::now() + RETRY);
            self.next = 0;
        }
        Ok(any)
    }

    /// Delivery of cursor `id` got to `mark`: saved, soon.
    pub fn delivered(&mut self, id: u64, mark: Mark) {
        if let Some(c) = self.cursors.iter_mut().find(|c| c.info.id == id) {
            c.delivered = mark;
            self.saver.save(id, &c.file, mark);
        }
    }

    /// Cursor `id` need never go back before `mark` (see `rewind`).
    pub fn settled(&mut self, id: u64, mark: Mark) {
        if let Some(c) = self.cursors.iter_mut().find(|c| c.info.id == id) {
            c.settled = mark;
        }
    }

    /// Goes back, in every cursor, to its settled mark: what was
    /// delivered, or further back where delivery may yet be undone. The
    /// lines are taken again, and saved again as they are delivered again
    /// (the saved cursor may step back meanwhile).
    pub fn rewind(&mut self) -> Result<()> {
        for c in &mut self.cursors {
            c.reader.seek(c.settled.position())?;
            c.told = Some(c.settled);
        }
        Ok(())
    }

    /// Waits until every delivered mark is written, at most `limit`.
    pub fn flush(&self, limit: Duration) -> bool {
        self.saver.flush(limit)
    }
}

fn read_cursor(c: &mut Cursor, share: usize, out: &mut impl Consumer) -> Result<bool> {
    let mut taken = 0;
    let mut any = false;
    while taken < share && !out.full() {
        let Some(line) = c.reader.next_line()? else {
            break;
        };
        taken += line.text.len() + 1;
        out.line(&c.info, line.stamp, line.text);
        any = true;
        tell(c, out);
    }
    tell(c, out);
    for notice in c.reader.take_notices() {
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
    Ok(any)
}

/// Tells the consumer where the reader is, if that changed.
fn tell(c: &mut Cursor, out: &mut impl Consumer) {
    let mark = Mark::of(c.reader.position());
    if mark.is_some() && mark != c.told {
        c.told = mark;
        if let Some(mark) = mark {
            out.reached(&c.info, mark);
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

fn read_settings(file: &CursorFile) -> Result<Settings> {
    let priority = match file.read_setting(PRIORITY_FILE)? {
        None => None,
        Some(text) => match Priority::parse(&text) {
            Some(p) => Some(p),
            None => {
                cli::warn(&format!(
                    "{}/{PRIORITY_FILE}: {text:?} is not facility.severity; using the default",
                    file.path
                ));
                None
            }
        },
    };
    Ok(Settings {
        priority,
        plain: file.has(PLAIN_FILE),
    })
}
