//! `cyclog --split-by FIELD ROOT`: each reader line (see
//! `format::reader_line`) into the log directory `ROOT/<name>/`, where name
//! is the line's value of FIELD mapped by `format::host_dirname`; lines
//! without the field (or not reader lines at all) into `ROOT/%none/`, a
//! name no value maps to. Each directory is a normal log directory, made
//! on first use and kept with the usual caps.
//!
//! # Nothing lost or written twice, in each directory
//!
//! The split is the `LogSet` of cyclog with a directory set that changes:
//! a chunk of input is still written to every directory that takes lines
//! of it before it is consumed, each directory with its own `cyclog.state`
//! (`logdir::write::writer_state`), so the argument for one directory holds
//! for each: a directory whose record is `Pending` on a chunk still in the
//! pipe skips it on restart, or cuts its `current` back and writes it
//! again; any other directory writes its lines of it. Three things make it
//! hold across directories:
//!
//! - Which directory takes a line depends only on its first `--max-line`
//!   bytes, and all of a line within one chunk goes where its start goes,
//!   so a chunk read again after a kill goes to the same directories. (A
//!   chunk ends at a line end, or inside a line longer than `--max-line`
//!   when the rest has not come yet: the rest, in the next chunk, goes
//!   where its own first bytes say. A reader line has its fields at the
//!   end, so a line that long goes to `%none`: keep `--max-line` above the
//!   longest line the reader writes.)
//! - At start every directory under ROOT whose record is `Pending` is
//!   opened before the first chunk is planned, as one directory named on
//!   the command line is: all those that may hold part of the chunk at the
//!   head of the pipe settle it together.
//! - A directory is closed (for the bound on open directories) only
//!   between chunks, once its record is `Idle` and its last line complete:
//!   reopened, it finds itself as it was left. It is not synced then (a
//!   kill -9 loses nothing of the page cache, and one fsync per closing
//!   would cost a journal commit per host): at the stop one syncfs(2)
//!   makes every directory written durable before each `current` is
//!   marked finished, as `close` does for one directory with fsync(2).
//!
//! ROOT itself is locked (flock(2) on the directory) for the whole run:
//! one splitter per ROOT.
//!
//! # Caps
//!
//! The usual caps are each directory's. `--max-root-size` caps what all of
//! ROOT holds: past it the oldest archive of all directories goes, until
//! under it or no archive is left (`current` files are never deleted).

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{self, AtFlags, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::cli;
use crate::error::{Context, Error, Result};
use crate::format::host_dirname::{self, NONE_NAME};
use crate::format::reader_line::{self, RecordView};
use crate::format::stamp::Stamp;
use crate::logdir::write::writer::{DirWriter, Policy, Select};
use crate::logdir::write::writer_state::{StateFile, WriterState};
use crate::logdir::{self, CURRENT};

/// What a line is split by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// The facility's name (`auth`, `local3`).
    Facility,
    /// The severity's name (`err`, `info`).
    Severity,
    /// The app name of the tag (none for `-`).
    App,
    /// A field of the line (`host`, `from`, ...), unescaped.
    Key(String),
}

impl Field {
    pub fn parse(name: &str) -> std::result::Result<Field, String> {
        Ok(match name {
            "facility" => Field::Facility,
            "severity" => Field::Severity,
            "app" => Field::App,
            key if reader_line::is_key(key) => Field::Key(key.to_string()),
            _ => {
                return Err(format!(
                    "--split-by: {name:?} is not a field name \
                     (facility, severity, app, or a field key such as host)"
                ));
            }
        })
    }

    /// The directory name for `line`: its value's, or `%none`.
    pub fn dirname(&self, line: &[u8]) -> String {
        let Ok(view) = RecordView::parse(line) else {
            return NONE_NAME.to_string();
        };
        let escaped = match self {
            Field::Facility => return view.priority.facility.name().to_string(),
            Field::Severity => return view.priority.severity.name().to_string(),
            Field::App => {
                let app = match memchr::memchr(b'[', view.tag) {
                    Some(i) => &view.tag[..i],
                    None => view.tag,
                };
                if app == b"-" {
                    return NONE_NAME.to_string();
                }
                app
            }
            Field::Key(key) => match view.field(key) {
                Some(value) => value,
                None => return NONE_NAME.to_string(),
            },
        };
        if memchr::memchr(b'\\', escaped).is_none() {
            return host_dirname::dirname_of(escaped);
        }
        match reader_line::unescape(escaped) {
            Ok(value) => host_dirname::dirname_of(&value),
            // Not what a reader writes: a line of no value.
            Err(_) => NONE_NAME.to_string(),
        }
    }
}

/// How the split is kept, besides each directory's `Policy`.
#[derive(Clone, Debug)]
pub struct Options {
    pub field: Field,
    pub root: OsString,
    /// Directories open at once, at most (more only while a chunk needs them).
    pub max_open: usize,
    /// What all of ROOT may hold.
    pub max_root_size: Option<u64>,
}

/// What is known of a directory, open or not: for the cap on ROOT.
#[derive(Clone, Copy, Debug, Default)]
struct Held {
    bytes: u64,
    oldest: Option<Stamp>,
    /// `current` is not empty (for ALRM).
    writing: bool,
}

/// Which open directory takes each line of the chunk being written, by
/// where the line starts in the input buffer (which does not move until
/// the chunk is consumed).
#[derive(Default)]
pub struct Routes {
    base: usize,
    /// (offset of a line's start, index of its directory), in order.
    starts: Vec<(usize, usize)>,
    /// For each directory, the offsets of its lines' starts, in order.
    by_dir: Vec<Vec<usize>>,
}

impl Routes {
    fn dir_of(&self, line: &[u8]) -> Option<usize> {
        let at = (line.as_ptr() as usize).checked_sub(self.base)?;
        let i = self.starts.partition_point(|&(start, _)| start <= at);
        Some(self.starts.get(i.checked_sub(1)?)?.1)
    }
}

/// A directory's part of the split.
pub struct RouteSelect {
    routes: std::rc::Rc<std::cell::RefCell<Routes>>,
    dir: usize,
}

impl Select for RouteSelect {
    fn takes(&self, line: &[u8]) -> bool {
        self.routes.borrow().dir_of(line) == Some(self.dir)
    }

    fn next_line(&self, data: &[u8], from: usize) -> usize {
        let routes = self.routes.borrow();
        // Offsets are from the routed chunk's start, `data`'s too.
        if data.as_ptr() as usize != routes.base {
            return from;
        }
        let Some(starts) = routes.by_dir.get(self.dir) else {
            return data.len();
        };
        let i = starts.partition_point(|&start| start < from);
        starts.get(i).copied().unwrap_or(data.len())
    }
}

pub struct Split {
    pub options: Options,
    pub policy: Policy,
    root: OwnedFd,
    root_name: String,
    /// For each open directory (as `LogSet::dirs`): its name, and the chunk
    /// that last used it.
    pub names: Vec<String>,
    used: Vec<u64>,
    index: HashMap<String, usize>,
    /// Directories closed while running: their `current` is synced and
    /// marked finished at the stop.
    released: std::collections::BTreeSet<String>,
    /// The directories not open, and what they hold in all.
    held: HashMap<String, Held>,
    held_bytes: u64,
    routes: std::rc::Rc<std::cell::RefCell<Routes>>,
    chunks: u64,
    /// Directories to rotate (ALRM) that were not open.
    pub to_rotate: Vec<String>,
    /// The cap on ROOT could not be met: said once until it can.
    over_said: bool,
}

/// Opens and locks ROOT (made if missing), learns what each directory in
/// it holds, and opens those a killed writer left a chunk `Pending` in.
pub fn open(options: Options, policy: Policy) -> Result<(Split, Vec<DirWriter>)> {
    let root_name = options.root.to_string_lossy().into_owned();
    match fs::mkdir(options.root.as_os_str(), Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e).context(|| format!("{root_name}: mkdir")),
    }
    let root =
        logdir::open_dir(&options.root).map_err(|e| Error::new(format!("{root_name}: open"), e))?;
    match fs::flock(&root, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => {
            return Err(Error::new(
                format!("{root_name}: locked"),
                std::io::Error::other("another cyclog --split-by is using this directory"),
            ));
        }
        Err(e) => return Err(e).context(|| format!("{root_name}: flock")),
    }
    let mut split = Split {
        options,
        policy,
        root,
        root_name,
        names: Vec::new(),
        used: Vec::new(),
        index: HashMap::new(),
        held: HashMap::new(),
        released: Default::default(),
        held_bytes: 0,
        routes: Default::default(),
        chunks: 0,
        to_rotate: Vec::new(),
        over_said: false,
    };
    let mut dirs = Vec::new();
    let entries =
        fs::Dir::read_from(&split.root).context(|| format!("{}: read", split.root_name))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.context(|| format!("{}: read", split.root_name))?;
        let Ok(name) = std::str::from_utf8(entry.file_name().to_bytes()) else {
            continue;
        };
        if name == NONE_NAME || host_dirname::value_of(name).is_ok() {
            names.push(name.to_string());
        }
    }
    names.sort();
    for name in names {
        let Ok(dir) = fs::openat(
            &split.root,
            name.as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            continue; // not a directory of ours
        };
        if matches!(
            StateFile::read_in(dir.as_fd()),
            Some(WriterState::Pending { .. })
        ) {
            let writer = split.open_writer(&name, dir)?;
            split.opened(name);
            dirs.push(writer);
        } else {
            let held = held_in(dir.as_fd())
                .context(|| format!("unable to list {}/{name}", split.root_name))?;
            split.held_bytes += held.bytes;
            split.held.insert(name, held);
        }
    }
    Ok((split, dirs))
}

/// What a closed directory holds.
fn held_in(dir: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Held> {
    let archives = logdir::list_archives(dir)?;
    let current = match fs::statat(dir, CURRENT, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st.st_size as u64,
        Err(_) => 0,
    };
    Ok(Held {
        bytes: archives.iter().map(|(_, size)| size).sum::<u64>() + current,
        oldest: archives.first().map(|(a, _)| a.stamp),
        writing: current > 0,
    })
}

impl Split {
    pub fn routes(&self) -> std::rc::Rc<std::cell::RefCell<Routes>> {
        std::rc::Rc::clone(&self.routes)
    }

    fn select(&self, dir: usize) -> Box<dyn Select> {
        Box::new(RouteSelect {
            routes: self.routes(),
            dir,
        })
    }

    /// Locks and opens the directory `name` of ROOT, as `open_all` does one
    /// named on the command line.
    fn open_writer(&self, name: &str, dir: OwnedFd) -> Result<DirWriter> {
        let path = format!("{}/{name}", self.root_name);
        let lock = logdir::lock(dir.as_fd(), &path)?.ok_or_else(|| {
            Error::new(
                format!("{path}: locked"),
                std::io::Error::other("another writer is using this log directory"),
            )
        })?;
        DirWriter::open(path, dir, lock, &self.policy)
    }

    /// Records a directory just opened as `dirs[names.len()]`.
    fn opened(&mut self, name: String) {
        let held = self.held.remove(&name).unwrap_or_default();
        self.held_bytes -= held.bytes;
        self.index.insert(name.clone(), self.names.len());
        self.names.push(name);
        self.used.push(self.chunks);
    }

    /// Sets each open directory's part of the split (after `open`).
    pub fn attach(&self, dirs: &mut [DirWriter]) {
        for (i, dir) in dirs.iter_mut().enumerate() {
            dir.set_select(self.select(i));
        }
    }

    /// Opens `name` (made if missing), closing the least recently used
    /// directory first if as many as allowed are open. `recover` gets the
    /// input's head. Its index in `dirs`.
    pub fn ensure_open(
        &mut self,
        name: &str,
        dirs: &mut Vec<DirWriter>,
        input_head: &[u8],
    ) -> Result<usize> {
        if let Some(&i) = self.index.get(name) {
            self.used[i] = self.chunks;
            return Ok(i);
        }
        if dirs.len() >= self.options.max_open.max(1) {
            self.close_least_used(dirs)?;
        }
        let path = format!("{}/{name}", self.root_name);
        match fs::mkdirat(&self.root, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).context(|| format!("{path}: mkdir")),
        }
        let dir = fs::openat(
            &self.root,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .context(|| format!("{path}: open"))?;
        let mut writer = self.open_writer(name, dir)?;
        writer.recover(input_head, &self.policy)?;
        writer.set_select(self.select(dirs.len()));
        self.opened(name.to_string());
        dirs.push(writer);
        Ok(dirs.len() - 1)
    }

    /// Closes the open directory used longest ago that is not used by the
    /// chunk being planned and can be closed; none if there is none.
    fn close_least_used(&mut self, dirs: &mut Vec<DirWriter>) -> Result<()> {
        let victim = (0..dirs.len())
            .filter(|&i| self.used[i] < self.chunks && dirs[i].can_close())
            .min_by_key(|&i| self.used[i]);
        let Some(i) = victim else {
            return Ok(());
        };
        let writer = dirs.swap_remove(i);
        let name = self.names.swap_remove(i);
        self.used.swap_remove(i);
        self.index.remove(&name);
        if i < dirs.len() {
            self.index.insert(self.names[i].clone(), i);
            dirs[i].set_select(self.select(i));
        }
        let held = held_of(&writer);
        writer.release();
        self.held_bytes += held.bytes;
        self.held.insert(name.clone(), held);
        self.released.insert(name);
        Ok(())
    }

    /// Routes the lines of `data` (complete lines but for a line longer
    /// than the limit) to their directories, opening them. The chunk ends
    /// before the line that would need one directory more than may be
    /// open: returns its length and which directories take part.
    pub fn route(
        &mut self,
        data: &[u8],
        dirs: &mut Vec<DirWriter>,
        input_head: &[u8],
    ) -> Result<(usize, Vec<bool>)> {
        self.chunks += 1;
        // Names first: opening may close a directory and move another.
        let mut names: Vec<String> = Vec::new();
        let mut lines: Vec<(usize, usize)> = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let end = memchr::memchr(b'\n', &data[at..]).map_or(data.len(), |i| at + i);
            let judged = end.min(at + self.policy.max_line);
            let name = self.options.field.dirname(&data[at..judged]);
            let n = match names.iter().position(|n| *n == name) {
                Some(n) => n,
                None if names.len() >= self.options.max_open.max(1) => break,
                None => {
                    names.push(name);
                    names.len() - 1
                }
            };
            lines.push((at, n));
            at = end + 1;
        }
        for name in &names {
            if let Some(&i) = self.index.get(name) {
                self.used[i] = self.chunks;
            }
        }
        for name in &names {
            self.ensure_open(name, dirs, input_head)?;
        }
        let index: Vec<usize> = names.iter().map(|n| self.index[n]).collect();
        let mut routes = self.routes.borrow_mut();
        routes.base = data.as_ptr() as usize;
        routes.starts.clear();
        routes
            .starts
            .extend(lines.iter().map(|&(start, n)| (start, index[n])));
        let by_dir = &mut routes.by_dir;
        by_dir.iter_mut().for_each(Vec::clear);
        by_dir.resize_with(dirs.len(), Vec::new);
        for &(start, n) in &lines {
            by_dir[index[n]].push(start);
        }
        let mut involved: Vec<bool> = dirs.iter().map(|d| d.skip() > 0).collect();
        for i in index {
            involved[i] = true;
        }
        Ok((at.min(data.len()), involved))
    }

    /// What all of ROOT holds.
    fn total(&self, dirs: &[DirWriter]) -> u64 {
        self.held_bytes + dirs.iter().map(DirWriter::stored_bytes).sum::<u64>()
    }

    /// Deletes the oldest archives of all ROOT while over `--max-root-size`.
    pub fn enforce_root_cap(&mut self, dirs: &mut Vec<DirWriter>) -> Result<()> {
        let Some(cap) = self.options.max_root_size else {
            return Ok(());
        };
        // Bounded: each turn deletes an archive or stops.
        let mut turns = 0;
        while self.total(dirs) > cap && turns < 100_000 {
            turns += 1;
            let open_oldest = dirs
                .iter()
                .enumerate()
                .filter_map(|(i, d)| Some((d.oldest_archive()?, i)))
                .min();
            let closed_oldest = self
                .held
                .iter()
                .filter_map(|(name, h)| Some((h.oldest?, name)))
                .min();
            let i = match (open_oldest, closed_oldest) {
                (None, None) => {
                    if !self.over_said {
                        self.over_said = true;
                        cli::warn(&format!(
                            "{}: over --max-root-size with no archive left to delete",
                            self.root_name
                        ));
                    }
                    return Ok(());
                }
                (Some((a, i)), Some((b, _))) if a <= b => i,
                (Some((_, i)), None) => i,
                (_, Some((_, name))) => {
                    let name = name.clone();
                    // Opened to delete; the chunk being planned uses it not.
                    self.ensure_open(&name, dirs, &[])?
                }
            };
            if dirs[i].make_room().is_none() {
                // The cap waits; the input does not.
                if !self.over_said {
                    self.over_said = true;
                    cli::warn(&format!(
                        "{}: over --max-root-size, unable to delete its oldest archive",
                        dirs[i].name
                    ));
                }
                return Ok(());
            }
        }
        self.over_said = false;
        Ok(())
    }

    /// At the stop: completes the last line of each open directory, makes
    /// every directory written durable with one syncfs(2) (rather than an
    /// fsync of each `current`: one journal commit, not one per host),
    /// then marks each `current` finished. Problems are said; whether all
    /// went well.
    pub fn close(&mut self, dirs: &mut [DirWriter]) -> bool {
        let mut ok = true;
        let mut fail = |e: &dyn std::fmt::Display| {
            cli::warn(&e.to_string());
            ok = false;
        };
        for dir in dirs.iter_mut() {
            if let Err(e) = dir.end_line() {
                fail(&e);
            }
        }
        if let Err(e) = fs::syncfs(&self.root) {
            fail(&format!(
                "{}: syncfs: {}",
                self.root_name,
                std::io::Error::from(e)
            ));
        }
        for dir in dirs.iter_mut() {
            if let Err(e) = dir.mark_finished() {
                fail(&e);
            }
        }
        for name in std::mem::take(&mut self.released) {
            if self.index.contains_key(&name) {
                continue; // open again, and done above
            }
            let path = format!("{}/{name}", self.root_name);
            let finished = fs::openat(
                &self.root,
                name.as_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(std::io::Error::from)
            .and_then(|dir| logdir::open_file(dir.as_fd(), CURRENT, OFlags::RDONLY, 0))
            .and_then(|current| {
                fs::fchmod(&current, Mode::from_raw_mode(logdir::MODE_FINISHED))
                    .map_err(std::io::Error::from)
            });
            if let Err(e) = finished {
                fail(&format!("{path}/{CURRENT}: marking it finished: {e}"));
            }
        }
        ok
    }

    /// ALRM: the directories not open that have lines in `current`.
    pub fn closed_writing(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .held
            .iter()
            .filter(|(_, h)| h.writing)
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    }

    /// The name of ROOT as given.
    pub fn root_name(&self) -> &str {
        &self.root_name
    }
}

fn held_of(dir: &DirWriter) -> Held {
    Held {
        bytes: dir.stored_bytes(),
        oldest: dir.oldest_archive(),
        writing: dir.current_size() > 0,
    }
}

/// A name of ROOT's directory as a path, for messages and tests.
pub fn dir_path(root: &OsString, name: &str) -> OsString {
    let mut path = root.clone();
    path.push("/");
    path.push(std::ffi::OsStr::from_bytes(name.as_bytes()));
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_goes_by_its_field_unescaped_and_mapped() {
        let host = Field::parse("host").unwrap();
        assert_eq!(
            host.dirname(b"user.info app: hi\thost=web01 pid=1"),
            "web01"
        );
        assert_eq!(host.dirname(b"user.info app: hi\thost=a/b"), "a%2Fb");
        assert_eq!(
            host.dirname(b"user.info app: hi\thost=..\\x2F.."),
            "%2E.%2F.."
        );
        assert_eq!(host.dirname(b"user.info app: hi\thost=\\xff"), "%FF");
        assert_eq!(host.dirname(b"user.info app: hi\thost="), "%empty");
        assert_eq!(host.dirname(b"user.info app: hi\tfrom=1.2.3.4"), NONE_NAME);
        assert_eq!(host.dirname(b"not a reader line"), NONE_NAME);
        assert_eq!(host.dirname(b"user.info app: hi\thost=bad\\q"), NONE_NAME);
    }

    #[test]
    fn facility_severity_and_app_come_from_the_line_head() {
        let line = b"auth.notice sshd[12]: accepted\thost=h";
        assert_eq!(Field::parse("facility").unwrap().dirname(line), "auth");
        assert_eq!(Field::parse("severity").unwrap().dirname(line), "notice");
        assert_eq!(Field::parse("app").unwrap().dirname(line), "sshd");
        assert_eq!(
            Field::parse("app").unwrap().dirname(b"user.info -: x"),
            NONE_NAME
        );
        assert!(Field::parse("a b").is_err());
        assert!(Field::parse("").is_err());
    }
}
