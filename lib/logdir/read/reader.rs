//! Reading a log directory in order — its archives, `previous`, then
//! `current` — line by line, from a position that survives rotations and
//! restarts, and following it as it grows.
//!
//! A position is the stamp of the last line taken and how many lines with
//! exactly that stamp were taken: stamps strictly increase in directories
//! cyclog writes, but other writers (multilog) can repeat one, and a line
//! must never be skipped for sharing a stamp.
//!
//! Files are known by their stamps, never by their names' suffixes: an
//! archive can be renamed from `.u` to `.s` while it is read, and `current`
//! is renamed to an archive (or to `previous`) while it is read. The reader
//! reads the open file to its end, then finds it again by its inode to know
//! what comes after it; a file gone meanwhile (through a processor, which
//! writes a new file, or deleted by the size cap) is placed by stamps: the
//! archive it became is the oldest named after its last line.
//!
//! An archive a processor compressed (gzip, zstd) is read decompressed, as
//! it streams (see `compressed`): its lines are the lines it held before,
//! so a position inside it holds as well. One that cannot be read (another
//! compression, or damaged data) is said, with the lines it leaves out.

use std::ops::ControlFlow;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self, AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Context, Result};
use crate::format::line_buffer::LineBuffer;
use crate::format::stamp::Stamp;
use crate::logdir::read::compressed::{Decoded, Format};
use crate::logdir::summary::{self, Builder, Identity, Ranges, Summary};
use crate::logdir::{self, Archive, CURRENT, PREFIX_LEN, PREVIOUS};

/// Where reading starts, or has got to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// Before the first line of the oldest file.
    Start,
    /// After the `same`-th line stamped `stamp`; `file_end`: that line was
    /// the last of a finished file.
    After {
        stamp: Stamp,
        same: u64,
        file_end: bool,
    },
    /// Before the first line stamped at or after this; archives named
    /// before it are skipped whole.
    Since(Stamp),
    /// After all there is now: new lines only.
    End,
}

/// One line as read.
#[derive(Debug)]
pub struct Line<'a> {
    /// Its stamp; `None` for a line without one (another writer's).
    pub stamp: Option<Stamp>,
    /// The text after the stamp and its space (the whole line if none).
    pub text: &'a [u8],
}

/// Something the caller should be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The file holding the position was deleted (by the size cap) before
    /// it was read to its end: the lines after `after` and before `upto`
    /// are gone.
    Lost { after: Stamp, upto: Option<Stamp> },
    /// A file, or its rest, that could not be read: `why` says why and
    /// which lines are left out.
    Skipped { file: String, why: String },
}

/// The files of a directory, in reading order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Archive(Stamp),
    Previous,
    Current,
}

struct Open {
    slot: Slot,
    fd: OwnedFd,
    ino: (u64, u64),
    /// A line was returned from this file.
    returned: bool,
    /// Its content decompressed, if a processor compressed it.
    decoded: Option<Box<Decoded>>,
    /// The stamp of the last line read from it (returned or skipped).
    last: Option<Stamp>,
    /// Lines read from it.
    lines: u64,
    /// Its data went bad: why; the rest of it is not read.
    broken: Option<String>,
    /// The byte ranges still to read, the next last (from its summary:
    /// the rest cannot hold a line wanted); `None`: all of it.
    plan: Option<Vec<(u64, u64)>>,
    /// Where the next read starts (a plain file read by plan).
    at: u64,
    /// Its summary being made as it is read from its start, and where the
    /// next line starts.
    builder: Option<Box<(Builder, Identity)>>,
    offset: u64,
}

/// A line found by `seek_last`, in the file it was found in.
struct Found {
    slot: Slot,
    file: OwnedFd,
    name: String,
    /// Where the line starts in the file; `None` in a compressed file,
    /// read again from its start.
    offset: Option<u64>,
    stamp: Stamp,
}

/// What to skip before returning lines: the remainder of a seek.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    Nothing,
    Before(Stamp),
    /// Lines stamped before `stamp`, and the first `same` stamped `stamp`.
    Through {
        stamp: Stamp,
        same: u64,
    },
}

pub struct Reader {
    pub name: String,
    dir: OwnedFd,
    open: Option<Open>,
    /// The file last read to its end.
    left: Option<Slot>,
    skip: Skip,
    /// Check the first file opened for a loss after this position.
    check_loss: Option<Stamp>,
    pos: Position,
    notices: Vec<Notice>,
    /// What is read of the open file and not yet handed out.
    lines: LineBuffer,
    /// Which parts of an archive can hold lines wanted, from its summary
    /// (see `select`).
    select: Option<Select>,
    /// Lines failing `Select::lines` passed over since the last returned.
    passed: u64,
}

/// Which parts of a summarised archive hold lines that may be wanted.
pub struct Select {
    /// The keys of the summary that `parts` looks at.
    pub keys: Vec<String>,
    pub parts: Box<dyn FnMut(&Summary) -> Ranges>,
    /// A test that a line's text must pass to be wanted, made on every
    /// line read (of `current` too, which has no summary) before the line
    /// is handed out: a line failing it places the reader as a returned
    /// line does, and is not returned; except a line stamped after `until`
    /// (the caller stops there), and one in every `PASS_OVER` failing in a
    /// row, returned anyway so that the caller, which filters it out, gets
    /// to look at signals (`take_passed` says how many were passed over).
    /// `None`: every line is returned.
    pub lines: Option<LineTest>,
    pub until: Option<Stamp>,
}

/// A test of a line's text (after its stamp): whether it may be wanted.
pub type LineTest = Box<dyn FnMut(&[u8]) -> bool>;

/// At most this many lines failing `Select::lines` are passed over in a row.
const PASS_OVER: u64 = 4096;

/// A reader put away (see `Reader::park`): a few dozen bytes.
#[derive(Clone, Debug)]
pub struct Parked {
    pos: Position,
    skip: Skip,
    check_loss: Option<Stamp>,
    left: Option<Slot>,
    file: Option<ParkedFile>,
    /// Find the position again from `pos`, as `seek` does.
    reseek: bool,
    notices: Vec<Notice>,
}

#[derive(Clone, Copy, Debug)]
struct ParkedFile {
    slot: Slot,
    ino: (u64, u64),
    /// Its first line's stamp: an inode number freed and taken again by a
    /// new file is not the same file.
    first: Option<Stamp>,
    /// Where reading goes on.
    offset: u64,
    returned: bool,
    /// The stamp of the last line read from it, and how many were read.
    last: Option<Stamp>,
    lines: u64,
}

impl Parked {
    /// A reader that will read from `pos` on.
    pub fn at(pos: Position) -> Parked {
        Parked {
            pos,
            skip: Skip::Nothing,
            check_loss: None,
            left: None,
            file: None,
            reseek: true,
            notices: Vec::new(),
        }
    }
}

const READ: usize = 128 * 1024;

/// The longest line taken whole: a longer one (longer than any writer
/// makes) is read in pieces of this size, each a line, so that no file,
/// however damaged or decompressed, makes the reader hold an unbounded line.
const MAX_LINE: usize = 64 * 1024 * 1024;

impl Reader {
    pub fn open(path: &Path) -> Result<Reader> {
        let name = path.to_string_lossy().into_owned();
        let dir = logdir::open_dir(path.as_os_str()).context(|| format!("open {name}"))?;
        Ok(Reader {
            name,
            dir,
            open: None,
            left: None,
            skip: Skip::Nothing,
            check_loss: None,
            pos: Position::Start,
            notices: Vec::new(),
            lines: LineBuffer::new(MAX_LINE),
            select: None,
            passed: 0,
        })
    }

    /// Reads from archives only the blocks that `select` gives, where an
    /// archive has a summary that is its own; an archive without one is
    /// read whole, and its summary made as it is read from its start and
    /// kept (see `summary`). Lines from other blocks may still be
    /// returned: the caller filters them.
    pub fn select(&mut self, select: Select) {
        self.select = Some(select);
    }

    /// How many lines failing `Select::lines` were passed over just
    /// before the line last returned (or since); counted from now on.
    pub fn take_passed(&mut self) -> u64 {
        std::mem::take(&mut self.passed)
    }

    /// The position after the last line returned.
    pub fn position(&self) -> Position {
        self.pos
    }

    /// What happened while reading that the caller should say.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Reads from `pos` on.
    pub fn seek(&mut self, pos: Position) -> Result<()> {
        self.open = None;
        self.left = None;
        self.lines.clear();
        self.pos = pos;
        self.check_loss = None;
        self.skip = match pos {
            Position::Start | Position::End => Skip::Nothing,
            Position::Since(stamp) => Skip::Before(stamp),
            Position::After {
                stamp,
                same,
                file_end,
            } => {
                if !file_end {
                    self.check_loss = Some(stamp);
                }
                Skip::Through { stamp, same }
            }
        };
        if pos == Position::End && self.open_slot(Slot::Current)? {
            let open = self.open.as_ref().expect("just opened");
            let size = fs::fstat(&open.fd)
                .context(|| format!("fstat {}", self.file_name(Slot::Current)))?
                .st_size as u64;
            fs::seek(&open.fd, fs::SeekFrom::Start(size))
                .context(|| format!("seek {}", self.file_name(Slot::Current)))?;
            // Ending inside a line: its rest is not a line of its own.
            if logdir::last_byte(open.fd.as_fd(), size)
                .ok()
                .flatten()
                .is_some_and(|b| b != b'\n')
            {
                self.drop_partial_line()?;
            }
        }
        Ok(())
    }

    /// Reads, from here on, the last `n` lines that `keep` takes among
    /// those stamped within `since ..= until` (either end may be open).
    /// Files are read backwards from the newest, only as far as needed;
    /// files with no line in the window are not read at all, and reading
    /// goes on from the first of those lines, not from its file's start.
    ///
    /// What is read next goes on past `until` (the caller stops there),
    /// and may start with more lines than those `n` (fewer than `n` were
    /// there, or a line without a stamp was among them): keep the last `n`
    /// taken. A line without a stamp goes with the stamped line before it.
    pub fn seek_last(
        &mut self,
        n: u64,
        since: Option<Stamp>,
        until: Option<Stamp>,
        mut keep: impl FnMut(&Line<'_>) -> bool,
    ) -> Result<()> {
        if n == 0 {
            return self.seek(Position::End);
        }
        let Some(found) = self.find_last(n, since, until, &mut keep)? else {
            return self.seek(since.map_or(Position::Start, Position::Since));
        };
        self.seek(Position::Since(found.stamp))?;
        // The scanned file itself: by name, `current` may be another by now.
        if let Some(offset) = found.offset
            && self.take_file(found.slot, found.file, found.name.clone())?
        {
            let open = self.open.as_mut().expect("just taken");
            fs::seek(&open.fd, fs::SeekFrom::Start(offset))
                .context(|| format!("seek {}", found.name))?;
            // Read on from there, all of it, and no summary made of a part.
            open.plan = None;
            open.builder = None;
            open.at = offset;
            self.skip = Skip::Nothing;
        }
        Ok(())
    }

    /// Where the first of the last `n` lines is (or the stamped line just
    /// before it); `None`: there are fewer from the start of the window.
    fn find_last(
        &mut self,
        n: u64,
        since: Option<Stamp>,
        until: Option<Stamp>,
        keep: &mut impl FnMut(&Line<'_>) -> bool,
    ) -> Result<Option<Found>> {
        let archives =
            logdir::list_archives(self.dir.as_fd()).context(|| format!("list {}", self.name))?;
        let slots = archives
            .iter()
            .map(|(a, _)| Slot::Archive(a.stamp))
            .chain([Slot::Previous, Slot::Current]);
        let mut taken = 0u64;
        // Lines taken whose stamped line (before them) is not yet found.
        let mut unplaced = 0u64;
        for slot in slots.rev() {
            if let (Slot::Archive(name), Some(since)) = (slot, since)
                && name <= since
            {
                break; // it and the older ones hold only lines before `since`
            }
            let Some((file, name)) = self.open_file(slot)? else {
                continue;
            };
            if self.cannot_hold(slot, file.as_fd(), &name) {
                continue;
            }
            let format = Format::of(file.as_fd()).context(|| format!("read {name}"))?;
            if format != Format::Plain && !format.decodable() {
                continue; // said when it is read
            }
            let first = first_stamp(file.as_fd()).context(|| format!("read {name}"))?;
            if let (Some(first), Some(until)) = (first, until)
                && first > until
            {
                unplaced = 0;
                continue;
            }
            if format.decodable() {
                let mut last = LastLines {
                    n,
                    since,
                    until,
                    taken: &mut taken,
                    unplaced: &mut unplaced,
                };
                match last.in_decoded(file.as_fd(), format, keep) {
                    ControlFlow::Continue(()) => continue,
                    ControlFlow::Break(None) => return Ok(None),
                    ControlFlow::Break(Some(stamp)) => {
                        return Ok(Some(Found {
                            slot,
                            file,
                            name,
                            offset: None,
                            stamp,
                        }));
                    }
                }
            }
            let whole = slot != Slot::Current;
            let found = lines_backwards(file.as_fd(), whole, |raw, offset| {
                let Some((stamp, text)) = logdir::parse_line(raw) else {
                    if keep(&Line {
                        stamp: None,
                        text: raw,
                    }) {
                        unplaced += 1;
                    }
                    return ControlFlow::Continue(());
                };
                if until.is_some_and(|until| stamp > until) {
                    unplaced = 0;
                    return ControlFlow::Continue(());
                }
                if since.is_some_and(|since| stamp < since) {
                    return ControlFlow::Break(None);
                }
                taken += std::mem::take(&mut unplaced);
                if keep(&Line {
                    stamp: Some(stamp),
                    text,
                }) {
                    taken += 1;
                }
                if taken >= n {
                    return ControlFlow::Break(Some((stamp, offset)));
                }
                ControlFlow::Continue(())
            })
            .context(|| format!("read {name}"))?;
            match found {
                ControlFlow::Continue(()) => continue,
                ControlFlow::Break(None) => return Ok(None),
                ControlFlow::Break(Some((stamp, offset))) => {
                    return Ok(Some(Found {
                        slot,
                        file,
                        name,
                        offset: Some(offset),
                        stamp,
                    }));
                }
            }
        }
        Ok(None)
    }

    /// The next line, or `None` when there is none yet: the end of
    /// `current` (whose last line may still be being written).
    pub fn next_line(&mut self) -> Result<Option<Line<'_>>> {
        loop {
            if let Some(range) = self.lines.next_range() {
                let (from, to) = (range.start, range.end);
                let stamp = logdir::parse_line(self.lines.get(from..to)).map(|(s, _)| s);
                if let Some(open) = &mut self.open {
                    open.lines += 1;
                    open.last = stamp.or(open.last);
                    if let Some(b) = &mut open.builder {
                        let text = self.lines.get(from..to);
                        let text = if stamp.is_some() {
                            &text[PREFIX_LEN..]
                        } else {
                            text
                        };
                        b.0.line(open.offset, (to - from) as u64 + 1, text);
                        open.offset += (to - from) as u64 + 1;
                    }
                }
                if self.skipped(stamp) {
                    continue;
                }
                self.advance(stamp);
                let start = if stamp.is_some() {
                    from + PREFIX_LEN
                } else {
                    from
                };
                if let Some(Select {
                    lines: Some(test),
                    until,
                    ..
                }) = &mut self.select
                    && self.passed < PASS_OVER
                    && stamp.zip(*until).is_none_or(|(s, u)| s <= u)
                    && !test(self.lines.get(start..to))
                {
                    self.passed += 1;
                    continue;
                }
                return Ok(Some(Line {
                    stamp,
                    text: self.lines.get(start..to),
                }));
            }
            if self.open.is_none() && !self.open_next()? {
                return Ok(None);
            }
            if self.fill()? {
                continue;
            }
            let open = self.open.as_ref().expect("opened above");
            if open.slot == Slot::Current && !self.moved_away(open.ino)? {
                return Ok(None);
            }
            // A finished file, or a current just renamed away (read on to
            // its very end first).
            if self.fill()? {
                continue;
            }
            if let Some(why) = self.open.as_mut().and_then(|o| o.broken.take()) {
                // What is left of a line cut by the damage is no line.
                self.lines.clear();
                self.say_broken(why);
            } else if !self.lines.held().is_empty() {
                // A finished file whose last line has no LF: take it whole.
                self.lines.finish();
                continue;
            } else {
                self.summarised();
            }
            self.leave()?;
        }
    }

    fn skipped(&mut self, stamp: Option<Stamp>) -> bool {
        let skip = match (self.skip, stamp) {
            (Skip::Nothing, _) => false,
            // A line without a stamp cannot be placed: skipped while seeking.
            (_, None) => true,
            (Skip::Before(since), Some(s)) => s < since,
            (Skip::Through { stamp, same }, Some(s)) => {
                if s == stamp && same > 0 {
                    self.skip = Skip::Through {
                        stamp,
                        same: same - 1,
                    };
                    true
                } else {
                    s < stamp
                }
            }
        };
        if !skip {
            self.skip = Skip::Nothing;
        }
        skip
    }

    fn advance(&mut self, stamp: Option<Stamp>) {
        if let Some(open) = &mut self.open {
            open.returned = true;
        }
        let Some(s) = stamp else { return };
        self.pos = match self.pos {
            Position::After { stamp, same, .. } if stamp == s => Position::After {
                stamp: s,
                same: same + 1,
                file_end: false,
            },
            _ => Position::After {
                stamp: s,
                same: 1,
                file_end: false,
            },
        };
    }

    /// Reads more of the open file; whether anything came.
    fn fill(&mut self) -> Result<bool> {
        let Some(open) = &mut self.open else {
            return Ok(false);
        };
        if open.broken.is_some() {
            return Ok(false);
        }
        let slot = open.slot;
        let space = self.lines.space(READ);
        if let Some(decoded) = &mut open.decoded {
            let n = fill_decoded(decoded, space, &mut open.broken);
            self.lines.filled(n);
            return Ok(n > 0);
        }
        let mut want = space.len();
        if let Some(plan) = &mut open.plan {
            loop {
                let Some(&(start, end)) = plan.last() else {
                    return Ok(false);
                };
                if open.at >= end {
                    plan.pop();
                    continue;
                }
                if open.at < start {
                    if let Err(e) = fs::seek(&open.fd, fs::SeekFrom::Start(start)) {
                        return Err(e).context(|| format!("seek {}", self.file_name(slot)));
                    }
                    open.at = start;
                }
                want = want.min((end - open.at) as usize);
                break;
            }
        }
        loop {
            match rustix::io::read(&open.fd, &mut space[..want]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    open.at += n as u64;
                    self.lines.filled(n);
                    return Ok(true);
                }
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e).context(|| format!("read {}", self.file_name(slot))),
            }
        }
    }

    /// Whether the `current` we have open was renamed away by a rotation.
    fn moved_away(&self, ino: (u64, u64)) -> Result<bool> {
        match fs::statat(&self.dir, CURRENT, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok((st.st_dev, st.st_ino) != ino),
            Err(Errno::NOENT) => Ok(true),
            Err(e) => Err(e).context(|| format!("stat {}", self.file_name(Slot::Current))),
        }
    }

    /// Done with the open file: note where it stands in the order.
    fn leave(&mut self) -> Result<()> {
        let open = self.open.take().expect("a file is open");
        self.lines.clear();
        if open.returned
            && let Position::After { stamp, same, .. } = self.pos
        {
            self.pos = Position::After {
                stamp,
                same,
                file_end: true,
            };
        }
        let last = open.last.or(match self.pos {
            Position::After { stamp, .. } => Some(stamp),
            _ => None,
        });
        self.left = Some(match open.slot {
            // The renamed current is an archive now (or `previous`): placed
            // by its inode, so that it is not read twice.
            Slot::Current => match self.slot_of(open.ino)? {
                Some(slot) => slot,
                // Gone through a processor (a new inode, compressed
                // perhaps): the archive it became is the first named after
                // its last line; later rotations may have made more since.
                None => self.archive_after(last)?.unwrap_or(Slot::Previous),
            },
            slot => slot,
        });
        Ok(())
    }

    /// Where a file read to its end, whose last line was stamped `stamp`,
    /// stands among the archives, found by stamps alone (its inode is
    /// gone): the oldest archive named after `stamp` is the one it became,
    /// unless that one starts after `stamp` (the file's own archive is
    /// deleted already): then the file stands just before it.
    fn archive_after(&self, stamp: Option<Stamp>) -> Result<Option<Slot>> {
        let Some(stamp) = stamp else { return Ok(None) };
        let archives =
            logdir::list_archives(self.dir.as_fd()).context(|| format!("list {}", self.name))?;
        let Some(next) = archives.iter().map(|(a, _)| a.stamp).find(|&n| n > stamp) else {
            return Ok(None);
        };
        let first = match self.open_file(Slot::Archive(next))? {
            Some((file, _)) => first_stamp(file.as_fd()).unwrap_or(None),
            None => None,
        };
        Ok(Some(Slot::Archive(match first {
            Some(first) if first > stamp => stamp,
            _ => next,
        })))
    }

    fn slot_of(&self, ino: (u64, u64)) -> Result<Option<Slot>> {
        let is_it = |file: &str| {
            fs::statat(&self.dir, file, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| (st.st_dev, st.st_ino) == ino)
        };
        if is_it(PREVIOUS) {
            return Ok(Some(Slot::Previous));
        }
        // Not found in a listing (which is no snapshot) is not gone yet.
        for _ in 0..3 {
            let archives = logdir::list_archives(self.dir.as_fd())
                .context(|| format!("list {}", self.name))?;
            if let Some(stamp) = self.archive_of(&archives, ino) {
                return Ok(Some(Slot::Archive(stamp)));
            }
        }
        Ok(None)
    }

    /// The stamp of the archive listed in `archives` that is the file
    /// `ino`. Both names of each stamp are tried: the writer may have
    /// renamed `.u` to `.s` since the listing.
    fn archive_of(&self, archives: &[(Archive, u64)], ino: (u64, u64)) -> Option<Stamp> {
        let is_it = |file: &str| {
            fs::statat(&self.dir, file, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| (st.st_dev, st.st_ino) == ino)
        };
        archives.iter().rev().map(|(a, _)| a.stamp).find(|&stamp| {
            [true, false]
                .iter()
                .any(|&complete| is_it(&Archive { stamp, complete }.name()))
        })
    }

    /// Opens the file after the one last left; false if there is none yet.
    fn open_next(&mut self) -> Result<bool> {
        // A listing is no snapshot: a rotation, or an archive renamed from
        // `.u` to `.s`, while it is read can hide a file. So after opening
        // a file, look again: a file before it not seen the first time
        // means starting over. Each file can be hidden by one listing at
        // most (it is renamed once), so this ends quickly.
        for _ in 0..1000 {
            let listed = self.next_slots()?;
            let mut hidden = false;
            for &slot in &listed {
                if !self.open_slot(slot)? {
                    continue;
                }
                hidden = self
                    .next_slots()?
                    .iter()
                    .any(|s| *s < slot && !listed.contains(s));
                if hidden {
                    self.open = None;
                    break;
                }
                if let Some(after) = self.check_loss.take() {
                    self.note_loss(after)?;
                }
                return Ok(true);
            }
            if !hidden {
                return Ok(false);
            }
        }
        Ok(false)
    }

    /// The files that may come next, in order.
    fn next_slots(&self) -> Result<Vec<Slot>> {
        let archives =
            logdir::archive_stamps(self.dir.as_fd()).context(|| format!("list {}", self.name))?;
        let floor = match (self.left, self.skip) {
            (Some(_), _) | (None, Skip::Nothing) => None,
            // An archive named before the position holds only older lines.
            (None, Skip::Before(stamp) | Skip::Through { stamp, .. }) => Some(stamp),
        };
        Ok(archives
            .iter()
            .map(|&stamp| Slot::Archive(stamp))
            .filter(|slot| match (slot, floor) {
                (Slot::Archive(t), Some(floor)) => *t >= floor,
                _ => true,
            })
            .chain([Slot::Previous, Slot::Current])
            .filter(|slot| self.left.is_none_or(|left| slot > &left))
            .collect())
    }

    /// Opens a slot's file, if it exists and is stamped text.
    fn open_slot(&mut self, slot: Slot) -> Result<bool> {
        match self.open_file(slot)? {
            Some((fd, name)) => self.take_file(slot, fd, name),
            None => Ok(false),
        }
    }

    /// Reads from a slot's file next, if it is stamped text (compressed
    /// or not).
    fn take_file(&mut self, slot: Slot, fd: OwnedFd, name: String) -> Result<bool> {
        // `current` is never compressed: it may be empty or being written.
        let format = match slot {
            Slot::Current => Format::Plain,
            _ => Format::of(fd.as_fd()).context(|| format!("read {name}"))?,
        };
        let decoded = match format {
            Format::Plain => None,
            f if f.decodable() => Some(Box::new(
                Decoded::open(fd.as_fd(), f).context(|| format!("decompress {name}"))?,
            )),
            f => {
                let why = format!(
                    "{}-compressed, which is not read: its lines{} are skipped",
                    f.name(),
                    self.before_name(slot)
                );
                self.notices.push(Notice::Skipped { file: name, why });
                self.left = Some(slot);
                return Ok(false);
            }
        };
        let st = fs::fstat(&fd).context(|| format!("fstat {name}"))?;
        let size = st.st_size as u64;
        // The first line that can be at or after the position, found by
        // halving the file: stamps increase within a file.
        let mut at = 0;
        if let (None, Skip::Before(since)) = (&decoded, self.skip) {
            at = seek_point(fd.as_fd(), size, since).context(|| format!("read {name}"))?;
            if at > 0 {
                fs::seek(&fd, fs::SeekFrom::Start(at)).context(|| format!("seek {name}"))?;
            }
        }
        let mut plan = None;
        let mut builder = None;
        if let (Slot::Archive(_), Some(select)) = (slot, &mut self.select) {
            let base = name.rsplit('/').next().unwrap_or(&name);
            let identity = Identity::of(base, fd.as_fd()).context(|| format!("fstat {name}"))?;
            match summary::load(self.dir.as_fd(), &identity, Some(&select.keys)) {
                Some(summary) => {
                    let mut ranges = (select.parts)(&summary).0;
                    ranges.retain(|&(_, end)| end > at);
                    if ranges.is_empty() {
                        self.left = Some(slot);
                        return Ok(false);
                    }
                    ranges.reverse();
                    // A compressed archive is one block: read whole if wanted.
                    plan = decoded.is_none().then_some(ranges);
                }
                None if at == 0 => {
                    builder = Some(Box::new((Builder::new(size, decoded.is_some()), identity)));
                }
                None => {}
            }
        }
        self.open = Some(Open {
            slot,
            fd,
            ino: (st.st_dev, st.st_ino),
            returned: false,
            decoded,
            last: None,
            lines: 0,
            broken: None,
            plan,
            at,
            builder,
            offset: 0,
        });
        self.lines.clear();
        Ok(true)
    }

    /// Whether an archive's own summary says no block of it is selected.
    fn cannot_hold(&mut self, slot: Slot, file: BorrowedFd<'_>, name: &str) -> bool {
        let (Slot::Archive(_), Some(select)) = (slot, &mut self.select) else {
            return false;
        };
        let base = name.rsplit('/').next().unwrap_or(name);
        let Ok(identity) = Identity::of(base, file) else {
            return false;
        };
        summary::load(self.dir.as_fd(), &identity, Some(&select.keys))
            .is_some_and(|s| (select.parts)(&s).is_empty())
    }

    /// An archive read whole from its start without damage: its summary
    /// kept, if it is still the same file.
    fn summarised(&mut self) {
        let Some(open) = &mut self.open else { return };
        let Some(built) = open.builder.take() else {
            return;
        };
        let (builder, identity) = *built;
        let same = Identity::of(&identity.name, open.fd.as_fd()).is_ok_and(|now| now == identity);
        if !same || open.broken.is_some() {
            return;
        }
        if let Some(summary) = builder.finish(identity) {
            let oldest = logdir::list_archives(self.dir.as_fd())
                .ok()
                .and_then(|a| a.first().map(|(a, _)| a.name()));
            summary::store(self.dir.as_fd(), &summary, oldest.as_deref());
        }
    }

    /// A slot's file and its name for messages, if it exists.
    fn open_file(&self, slot: Slot) -> Result<Option<(OwnedFd, String)>> {
        let names = match slot {
            // `.s` again last: the `.u` may have become `.s` meanwhile.
            Slot::Archive(stamp) => [true, false, true]
                .iter()
                .map(|&complete| Archive { stamp, complete }.name())
                .collect(),
            Slot::Previous => vec![PREVIOUS.to_string()],
            Slot::Current => vec![CURRENT.to_string()],
        };
        for name in names {
            match fs::openat(
                &self.dir,
                &name,
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => return Ok(Some((fd, format!("{}/{name}", self.name)))),
                Err(Errno::NOENT) => continue, // renamed or deleted since the listing
                Err(e) => return Err(e).context(|| format!("open {}/{name}", self.name)),
            }
        }
        Ok(None)
    }

    /// On resuming inside a file: if the first file left starts after the
    /// position, the file that held it is gone, and with it the rest of it.
    fn note_loss(&mut self, after: Stamp) -> Result<()> {
        let open = self.open.as_ref().expect("just opened");
        // Damaged from its start: said as it is read.
        let first = first_stamp(open.fd.as_fd()).unwrap_or(None);
        if first.is_some_and(|f| f > after) {
            self.notices.push(Notice::Lost { after, upto: first });
        }
        Ok(())
    }

    /// Says that the rest of the open file could not be read, and which
    /// lines that leaves out.
    fn say_broken(&mut self, why: String) {
        let Some(open) = &self.open else { return };
        let after = match open.last {
            Some(stamp) => format!(" after line {} (the one stamped {stamp})", open.lines),
            None if open.lines > 0 => format!(" after line {}", open.lines),
            None => String::new(),
        };
        let why = format!(
            "{why}: its lines{after}{} are skipped",
            self.before_name(open.slot)
        );
        let file = self.file_name(open.slot);
        self.notices.push(Notice::Skipped { file, why });
    }

    /// For an archive, ", stamped before <its name>,": which lines it holds.
    fn before_name(&self, slot: Slot) -> String {
        match slot {
            Slot::Archive(stamp) => format!(", stamped before {stamp},"),
            _ => String::new(),
        }
    }

    fn drop_partial_line(&mut self) -> Result<()> {
        while self.fill()? {
            let held = self.lines.held();
            match memchr::memchr(b'\n', held) {
                Some(at) => {
                    self.lines.take(at + 1);
                    return Ok(());
                }
                None => {
                    self.lines.take(held.len());
                }
            }
        }
        Ok(())
    }

    fn file_name(&self, slot: Slot) -> String {
        match slot {
            Slot::Archive(stamp) => format!(
                "{}/{}",
                self.name,
                Archive {
                    stamp,
                    complete: true
                }
                .name()
            ),
            Slot::Previous => format!("{}/{PREVIOUS}", self.name),
            Slot::Current => format!("{}/{CURRENT}", self.name),
        }
    }

    /// Puts the reader away between reads: it keeps no descriptor and no
    /// buffer, only where it stands. The file it was reading is found
    /// again by its inode on `resume`, and read on from the same byte (a
    /// line not yet ended is read again whole).
    pub fn park(self) -> Parked {
        // A compressed file has no byte offset to go back to: it is found
        // again from the position, which is exact, like a damaged one.
        let file = self.open.as_ref().and_then(|open| {
            if open.decoded.is_some() || open.broken.is_some() {
                return None;
            }
            let at = fs::seek(&open.fd, fs::SeekFrom::Current(0)).ok()?;
            Some(ParkedFile {
                slot: open.slot,
                ino: open.ino,
                first: logdir::first_stamp(open.fd.as_fd()).ok()?,
                offset: at - self.lines.held().len() as u64,
                returned: open.returned,
                last: open.last,
                lines: open.lines,
            })
        });
        Parked {
            // Without the offset (it could not be had), the position is
            // found again from the stamps.
            reseek: self.open.is_some() && file.is_none(),
            pos: self.pos,
            skip: self.skip,
            check_loss: self.check_loss,
            left: self.left,
            file,
            notices: self.notices,
        }
    }

    /// A parked reader of the log directory `path`, back at work.
    pub fn resume(path: &Path, parked: Parked) -> Result<Reader> {
        let mut reader = Reader::open(path)?;
        reader.notices = parked.notices;
        if parked.reseek {
            reader.seek(parked.pos)?;
            return Ok(reader);
        }
        reader.pos = parked.pos;
        reader.skip = parked.skip;
        reader.check_loss = parked.check_loss;
        reader.left = parked.left;
        if let Some(file) = parked.file {
            reader.reopen(file)?;
        }
        Ok(reader)
    }

    /// Opens again the file being read when parked: where it was, or where
    /// a rotation renamed it. Gone (the size cap deleted it): found again
    /// from the position, as on a restart, with the loss said.
    fn reopen(&mut self, file: ParkedFile) -> Result<()> {
        let mut found = self.open_same(file.slot, &file)?;
        if found.is_none()
            && file.slot == Slot::Current
            && let Some(slot) = self.slot_of(file.ino)?
        {
            found = self.open_same(slot, &file)?;
        }
        let Some((slot, fd, name)) = found else {
            return self.seek(self.pos);
        };
        fs::seek(&fd, fs::SeekFrom::Start(file.offset)).context(|| format!("seek {name}"))?;
        self.open = Some(Open {
            slot,
            fd,
            ino: file.ino,
            returned: file.returned,
            decoded: None,
            last: file.last,
            lines: file.lines,
            broken: None,
            plan: None,
            at: file.offset,
            builder: None,
            offset: 0,
        });
        Ok(())
    }

    /// A slot's file if it is the file parked.
    fn open_same(&self, slot: Slot, file: &ParkedFile) -> Result<Option<(Slot, OwnedFd, String)>> {
        let Some((fd, name)) = self.open_file(slot)? else {
            return Ok(None);
        };
        let st = fs::fstat(&fd).context(|| format!("fstat {name}"))?;
        let same = (st.st_dev, st.st_ino) == file.ino
            && st.st_size as u64 >= file.offset
            && logdir::first_stamp(fd.as_fd()).context(|| format!("read {name}"))? == file.first;
        Ok(same.then_some((slot, fd, name)))
    }
}

/// Hands `each` the lines of a file (without their LF) and their offsets,
/// the last first, reading the file backwards in blocks, until `each`
/// breaks. `whole`: the file is finished and a last line without LF is a
/// line; otherwise that line is still being written, and left out.
fn lines_backwards<T>(
    file: BorrowedFd<'_>,
    whole: bool,
    mut each: impl FnMut(&[u8], u64) -> ControlFlow<T>,
) -> std::io::Result<ControlFlow<T>> {
    const BLOCK: u64 = 256 * 1024;
    let size = fs::fstat(file)?.st_size as u64;
    // The file from `lo` up to the end of the lines not yet handed out.
    let mut buf: Vec<u8> = Vec::new();
    let mut lo = size;
    let mut last = true;
    loop {
        let end = match buf.last() {
            Some(b'\n') => buf.len() - 1,
            _ => buf.len(),
        };
        let start = match memchr::memrchr(b'\n', &buf[..end]) {
            Some(at) => at + 1,
            None if lo == 0 => {
                if buf.is_empty() {
                    return Ok(ControlFlow::Continue(()));
                }
                0
            }
            None => {
                let from = lo.saturating_sub(BLOCK);
                let mut block = vec![0u8; (lo - from) as usize];
                if logdir::read_exact_at(file, &mut block, from)? < block.len() {
                    return Ok(ControlFlow::Continue(())); // cut short meanwhile
                }
                block.extend_from_slice(&buf);
                buf = block;
                lo = from;
                continue;
            }
        };
        let partial = last && !whole && end == buf.len();
        last = false;
        if !partial && let ControlFlow::Break(found) = each(&buf[start..end], lo + start as u64) {
            return Ok(ControlFlow::Break(found));
        }
        if start == 0 {
            return Ok(ControlFlow::Continue(()));
        }
        buf.truncate(start);
    }
}

/// Where to start reading a file of `size` bytes for the lines stamped at
/// or after `since`: a line start before which every stamped line is
/// stamped before `since` (0 if none is known to be). Halves the file
/// until the span left is small.
fn seek_point(file: BorrowedFd<'_>, size: u64, since: Stamp) -> std::io::Result<u64> {
    const SMALL: u64 = 64 * 1024;
    const LOOK: usize = 8 * 1024;
    let mut lo = 0;
    let mut hi = size;
    let mut buf = vec![0u8; LOOK + PREFIX_LEN];
    while hi - lo > SMALL {
        let mid = lo + (hi - lo) / 2;
        // The first stamped line starting after `mid` and before `hi`.
        let mut from = mid;
        let mut found = None;
        'scan: while from < hi {
            let got = logdir::read_exact_at(file, &mut buf, from)?;
            if got == 0 {
                break;
            }
            let scanned = got.min(LOOK);
            for lf in memchr::memchr_iter(b'\n', &buf[..scanned]) {
                let start = from + lf as u64 + 1;
                if start >= hi {
                    break 'scan;
                }
                let mut prefix = [0u8; PREFIX_LEN];
                let n = logdir::read_exact_at(file, &mut prefix, start)?;
                if let Some((stamp, _)) = logdir::parse_line(&prefix[..n]) {
                    found = Some((start, stamp));
                    break 'scan;
                }
            }
            from += scanned as u64;
        }
        match found {
            Some((start, stamp)) if stamp < since => lo = start,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

/// Decodes more of a compressed file into `space`; how much came.
/// Damaged data sets `broken`: the file ends there.
fn fill_decoded(decoded: &mut Decoded, space: &mut [u8], broken: &mut Option<String>) -> usize {
    use std::io::Read;
    loop {
        match decoded.read(space) {
            Ok(n) => return n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                *broken = Some(format!("compressed data damaged or cut short ({e})"));
                return 0;
            }
        }
    }
}

/// The stamp of the first line of a file, compressed or not.
fn first_stamp(file: BorrowedFd<'_>) -> std::io::Result<Option<Stamp>> {
    let mut prefix = [0u8; PREFIX_LEN];
    let got = crate::logdir::read::compressed::read_head(file, &mut prefix)?;
    Ok(logdir::parse_line(&prefix[..got]).map(|(s, _)| s))
}

/// `seek_last` through a compressed file, which is read forwards: the
/// same count as `lines_backwards` gives, kept in memory bounded by `n`.
struct LastLines<'a> {
    n: u64,
    since: Option<Stamp>,
    until: Option<Stamp>,
    /// Lines taken in the newer files.
    taken: &'a mut u64,
    /// Lines without a stamp at the start of the newer files: they go
    /// with the last stamped line of this one.
    unplaced: &'a mut u64,
}

impl LastLines<'_> {
    /// Break(Some(stamp)): the first of the last `n` is the line stamped
    /// `stamp` here; Break(None): there are fewer from the window's start;
    /// Continue: go on to the older files. Damaged data ends the file
    /// early: what was read counts (reading it says the rest).
    fn in_decoded(
        &mut self,
        file: BorrowedFd<'_>,
        format: Format,
        keep: &mut impl FnMut(&Line<'_>) -> bool,
    ) -> ControlFlow<Option<Stamp>> {
        use std::collections::VecDeque;
        let need = self.n - *self.taken;
        // Stamped lines in the window, each with the lines kept that go
        // with it: only the last of them that can still be needed.
        let mut groups: VecDeque<(Stamp, u64)> = VecDeque::new();
        let mut sum = 0u64;
        let mut open_group: Option<(Stamp, u64)> = None;
        let mut lead = 0u64;
        let mut before_since = false;
        let mut close =
            |group: (Stamp, u64), groups: &mut VecDeque<(Stamp, u64)>, sum: &mut u64| {
                let (stamp, count) = group;
                if self.until.is_some_and(|u| stamp > u) {
                    return;
                }
                if self.since.is_some_and(|s| stamp < s) {
                    before_since = true;
                    groups.clear();
                    *sum = 0;
                    return;
                }
                if count > 0 {
                    groups.push_back(group);
                    *sum += count;
                }
                while groups.front().is_some_and(|f| *sum - f.1 >= need) {
                    *sum -= groups.pop_front().map_or(0, |f| f.1);
                }
            };
        let each = |raw: &[u8]| match logdir::parse_line(raw) {
            Some((stamp, text)) => {
                if let Some(group) = open_group.take() {
                    close(group, &mut groups, &mut sum);
                }
                let kept = keep(&Line {
                    stamp: Some(stamp),
                    text,
                });
                open_group = Some((stamp, u64::from(kept)));
            }
            None => {
                let kept = keep(&Line {
                    stamp: None,
                    text: raw,
                });
                match &mut open_group {
                    Some((_, count)) => *count += u64::from(kept),
                    None => lead += u64::from(kept),
                }
            }
        };
        let _ = lines_forward(file, format, each);
        match open_group {
            Some((stamp, count)) => {
                let carried = std::mem::take(self.unplaced);
                close((stamp, count + carried), &mut groups, &mut sum);
            }
            None => lead += std::mem::take(self.unplaced),
        }
        if sum >= need
            && let Some(&(stamp, _)) = groups.front()
        {
            return ControlFlow::Break(Some(stamp));
        }
        if before_since {
            return ControlFlow::Break(None);
        }
        *self.taken += sum;
        *self.unplaced = lead;
        ControlFlow::Continue(())
    }
}

/// Hands `each` the lines of a compressed file, first to last, decoding
/// as it goes, cut as `next_line` cuts them; a last line without LF is a
/// line. Stops at damaged data (the error).
fn lines_forward(
    file: BorrowedFd<'_>,
    format: Format,
    mut each: impl FnMut(&[u8]),
) -> std::io::Result<()> {
    let mut decoded = Decoded::open(file, format)?;
    let mut lines = LineBuffer::new(MAX_LINE);
    let mut broken = None;
    loop {
        while let Some(line) = lines.next_line() {
            each(line);
        }
        let n = fill_decoded(&mut decoded, lines.space(READ), &mut broken);
        if n == 0 {
            break;
        }
        lines.filled(n);
    }
    match broken {
        Some(why) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why)),
        None => {
            lines.finish();
            while let Some(line) = lines.next_line() {
                each(line);
            }
            Ok(())
        }
    }
}

/// Wakes a follower when watched directories change (inotify). One
/// instance serves any number of directories: each event names the watch
/// it came from, so that only the directories that changed are read.
pub struct Watcher {
    fd: OwnedFd,
}

/// Which watches had events.
#[derive(Debug, Default, PartialEq, Eq)]
pub enum Changed {
    #[default]
    Nothing,
    /// These watches (each once, in no order).
    Some(Vec<i32>),
    /// The kernel's queue overflowed: events were lost, any may have changed.
    All,
}

/// The fixed part of a `struct inotify_event`: wd, mask, cookie, len.
const EVENT_HEAD: usize = 16;
const IN_Q_OVERFLOW: u32 = 0x4000;

impl Watcher {
    pub fn new() -> Result<Watcher> {
        use fs::inotify::CreateFlags;
        let fd = fs::inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC)
            .context(|| "make an inotify instance".to_string())?;
        Ok(Watcher { fd })
    }

    /// Watches a directory for files written, created, renamed or deleted;
    /// its watch descriptor (the same for every path to one directory).
    pub fn add(&self, dir: &Path) -> Result<i32> {
        use fs::inotify::WatchFlags as W;
        let flags =
            W::MODIFY | W::CREATE | W::MOVED_TO | W::MOVED_FROM | W::DELETE | W::CLOSE_WRITE;
        fs::inotify::add_watch(&self.fd, dir, flags)
            .context(|| format!("watch {}", dir.to_string_lossy()))
    }

    /// Stops watching; a watch already gone (its directory deleted) is no error.
    pub fn remove(&self, wd: i32) {
        let _ = fs::inotify::remove_watch(&self.fd, wd);
    }

    /// Reads away the events that woke the caller, who then reads on.
    pub fn drain(&self) {
        let mut buf = [0u8; 4096];
        while rustix::io::read(&self.fd, &mut buf).is_ok_and(|n| n > 0) {}
    }

    /// Reads away the events that woke the caller: which watches they came from.
    pub fn changed(&self) -> Changed {
        let mut buf = vec![0u8; 64 * 1024];
        let mut wds: Vec<i32> = Vec::new();
        loop {
            let n = match rustix::io::read(&self.fd, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut at = 0;
            while at + EVENT_HEAD <= n {
                let word = |i: usize| {
                    let b = &buf[at + 4 * i..at + 4 * i + 4];
                    [b[0], b[1], b[2], b[3]]
                };
                let wd = i32::from_ne_bytes(word(0));
                let mask = u32::from_ne_bytes(word(1));
                let len = u32::from_ne_bytes(word(3)) as usize;
                if mask & IN_Q_OVERFLOW != 0 {
                    self.drain();
                    return Changed::All;
                }
                wds.push(wd);
                at += EVENT_HEAD + len;
            }
        }
        wds.sort_unstable();
        wds.dedup();
        if wds.is_empty() {
            Changed::Nothing
        } else {
            Changed::Some(wds)
        }
    }
}

impl AsFd for Watcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs as stdfs;
    use std::os::unix::fs::PermissionsExt;

    use crate::testutil::scratch::Scratch;

    fn dir(tag: &str) -> Scratch {
        Scratch::new(&format!("reader-{tag}"))
    }

    fn stamp(n: u64) -> Stamp {
        Stamp::from_parts(0x4000_0000_6000_0000 + n, 0).unwrap()
    }

    fn lines(stamps: &[u64], tag: &str) -> String {
        stamps
            .iter()
            .map(|&n| format!("{} {tag}{n}\n", stamp(n)))
            .collect()
    }

    fn write(d: &Scratch, name: &str, body: &str) {
        stdfs::write(d.join(name), body).unwrap();
        stdfs::set_permissions(d.join(name), stdfs::Permissions::from_mode(0o744)).unwrap();
    }

    fn archive(n: u64) -> String {
        Archive {
            stamp: stamp(n),
            complete: true,
        }
        .name()
    }

    fn read_all(r: &mut Reader) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(line) = r.next_line().unwrap() {
            out.push(String::from_utf8_lossy(line.text).into_owned());
        }
        out
    }

    #[test]
    fn reads_archives_then_current_and_resumes_after_a_position() {
        let d = dir("order");
        write(&d, &archive(3), &lines(&[1, 2], "a"));
        write(&d, &archive(6), &lines(&[4, 5], "b"));
        write(&d, "current", &lines(&[7, 8], "c"));
        write(&d, "@zzz.s", "not an archive\n");
        let mut r = Reader::open(d.path()).unwrap();
        assert_eq!(read_all(&mut r), ["a1", "a2", "b4", "b5", "c7", "c8"]);
        let pos = Position::After {
            stamp: stamp(4),
            same: 1,
            file_end: false,
        };
        r.seek(pos).unwrap();
        assert_eq!(read_all(&mut r), ["b5", "c7", "c8"]);
        r.seek(Position::Since(stamp(5))).unwrap();
        assert_eq!(read_all(&mut r), ["b5", "c7", "c8"]);
        r.seek(Position::End).unwrap();
        assert!(read_all(&mut r).is_empty());
        assert!(r.take_notices().is_empty());
    }

    #[test]
    fn lines_sharing_a_stamp_are_each_read_once() {
        let d = dir("same");
        write(&d, "current", &lines(&[1, 2, 2, 2, 3], "x"));
        let mut r = Reader::open(d.path()).unwrap();
        r.seek(Position::After {
            stamp: stamp(2),
            same: 2,
            file_end: false,
        })
        .unwrap();
        assert_eq!(read_all(&mut r), ["x2", "x3"]);
        assert_eq!(
            r.position(),
            Position::After {
                stamp: stamp(3),
                same: 1,
                file_end: false
            }
        );
    }

    #[test]
    fn follows_current_through_a_rotation() {
        let d = dir("rotate");
        write(&d, "current", &lines(&[1, 2], "x"));
        let mut r = Reader::open(d.path()).unwrap();
        assert_eq!(read_all(&mut r), ["x1", "x2"]);
        // The writer appends, rotates (to .u, then .s), and starts anew.
        stdfs::OpenOptions::new()
            .append(true)
            .open(d.join("current"))
            .unwrap()
            .write_all(lines(&[3], "x").as_bytes())
            .unwrap();
        let u = Archive {
            stamp: stamp(4),
            complete: false,
        }
        .name();
        stdfs::rename(d.join("current"), d.join(&u)).unwrap();
        write(&d, "current", &lines(&[5], "y"));
        assert_eq!(read_all(&mut r), ["x3", "y5"]);
        stdfs::rename(d.join(&u), d.join(archive(4))).unwrap();
        write(&d, "current", &lines(&[5, 6], "y"));
        assert_eq!(read_all(&mut r), ["y6"]);
    }

    #[test]
    fn a_parked_reader_resumes_where_it_was_across_rotations_and_half_lines() {
        let d = dir("park");
        write(
            &d,
            "current",
            &format!("{}{} half", lines(&[1], "x"), stamp(2)),
        );
        let mut r = Reader::open(d.path()).unwrap();
        assert_eq!(read_all(&mut r), ["x1"]);
        let parked = r.park();
        // The half line ends, more comes, and current is rotated away.
        stdfs::OpenOptions::new()
            .append(true)
            .open(d.join("current"))
            .unwrap()
            .write_all(format!(" done\n{}", lines(&[3], "x")).as_bytes())
            .unwrap();
        stdfs::rename(d.join("current"), d.join(archive(4))).unwrap();
        write(&d, "current", &lines(&[5], "y"));
        let mut r = Reader::resume(d.path(), parked).unwrap();
        assert_eq!(read_all(&mut r), ["half done", "x3", "y5"]);
        // Parked at the end of current, which the size cap then deletes
        // after a rotation: found again from the position, the loss said.
        let parked = r.park();
        stdfs::OpenOptions::new()
            .append(true)
            .open(d.join("current"))
            .unwrap()
            .write_all(lines(&[6], "y").as_bytes())
            .unwrap();
        stdfs::rename(d.join("current"), d.join(archive(7))).unwrap();
        stdfs::remove_file(d.join(archive(7))).unwrap();
        write(&d, "current", &lines(&[8], "z"));
        let mut r = Reader::resume(d.path(), parked).unwrap();
        assert_eq!(read_all(&mut r), ["z8"]);
        assert!(matches!(r.take_notices()[..], [Notice::Lost { .. }]));
        // A reader parked before its first read reads from its position.
        let parked = Parked::at(Position::After {
            stamp: stamp(3),
            same: 1,
            file_end: false,
        });
        let mut r = Reader::resume(d.path(), parked).unwrap();
        assert_eq!(read_all(&mut r), ["z8"]);
    }

    #[test]
    fn a_partial_last_line_waits_for_its_end() {
        let d = dir("partial");
        write(
            &d,
            "current",
            &format!("{} whole\n{} half", stamp(1), stamp(2)),
        );
        let mut r = Reader::open(d.path()).unwrap();
        assert_eq!(read_all(&mut r), ["whole"]);
        stdfs::OpenOptions::new()
            .append(true)
            .open(d.join("current"))
            .unwrap()
            .write_all(b" done\n")
            .unwrap();
        assert_eq!(read_all(&mut r), ["half done"]);
    }

    #[test]
    fn a_deleted_file_under_the_position_is_reported() {
        let d = dir("lost");
        write(&d, &archive(9), &lines(&[7, 8], "b"));
        write(&d, "current", &lines(&[10], "c"));
        let mut r = Reader::open(d.path()).unwrap();
        // The position was inside a file (stamps up to 6) now deleted.
        r.seek(Position::After {
            stamp: stamp(4),
            same: 1,
            file_end: false,
        })
        .unwrap();
        assert_eq!(read_all(&mut r), ["b7", "b8", "c10"]);
        assert_eq!(
            r.take_notices(),
            [Notice::Lost {
                after: stamp(4),
                upto: Some(stamp(7))
            }]
        );
        // At the end of a finished file, the next one starting later is no loss.
        r.seek(Position::After {
            stamp: stamp(6),
            same: 1,
            file_end: true,
        })
        .unwrap();
        assert_eq!(read_all(&mut r), ["b7", "b8", "c10"]);
        assert!(r.take_notices().is_empty());
    }

    #[test]
    fn a_renamed_current_is_placed_even_when_renamed_again_since_the_listing() {
        let d = dir("relist");
        write(&d, "current", &lines(&[1], "x"));
        let r = Reader::open(d.path()).unwrap();
        let ino = |name: &str| {
            let st = stdfs::metadata(d.join(name)).unwrap();
            (st.dev(), st.ino())
        };
        let current = ino("current");
        let u = Archive {
            stamp: stamp(2),
            complete: false,
        };
        stdfs::rename(d.join("current"), d.join(u.name())).unwrap();
        let listed = [(u.clone(), 0)];
        // The syncer finishes the archive between the listing and the look.
        stdfs::rename(d.join(u.name()), d.join(archive(2))).unwrap();
        assert_eq!(r.archive_of(&listed, current), Some(stamp(2)));
        assert_eq!(r.archive_of(&listed, (0, 0)), None);
    }

    #[test]
    fn a_reader_racing_fast_rotations_misses_no_line() {
        let d = dir("race");
        let path = d.path().to_path_buf();
        // A writer as cyclog: fill current, rename it to .u, then to .s.
        let writer = std::thread::spawn(move || {
            let mut n = 0;
            for file in 0..300u64 {
                let body: String = (0..4)
                    .map(|_| {
                        n += 1;
                        format!("{} l{n}\n", stamp(n))
                    })
                    .collect();
                stdfs::write(path.join("current.new"), body).unwrap();
                stdfs::rename(path.join("current.new"), path.join("current")).unwrap();
                let a = |complete| {
                    Archive {
                        stamp: stamp(n).succ(),
                        complete,
                    }
                    .name()
                };
                if file < 299 {
                    stdfs::rename(path.join("current"), path.join(a(false))).unwrap();
                    stdfs::rename(path.join(a(false)), path.join(a(true))).unwrap();
                }
            }
            n
        });
        let mut r = Reader::open(d.path()).unwrap();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while got.len() < 1200 && std::time::Instant::now() < deadline {
            got.extend(read_all(&mut r));
        }
        assert_eq!(writer.join().unwrap(), 1200);
        let want: Vec<String> = (1..=1200).map(|n| format!("l{n}")).collect();
        if let Some(i) = (0..want.len()).find(|&i| got.get(i) != Some(&want[i])) {
            panic!(
                "{} lines; from line {i}: {:?}",
                got.len(),
                &got[i.min(got.len())..(i + 6).min(got.len())]
            );
        }
    }

    #[test]
    fn a_current_whose_archive_is_deleted_while_read_is_followed_by_the_next_archive() {
        let d = dir("deleted-archive");
        write(&d, "current", &lines(&[1, 2], "x"));
        let mut r = Reader::open(d.path()).unwrap();
        assert_eq!(read_all(&mut r), ["x1", "x2"]);
        // Rotated, rotated again, and its archive deleted by the size cap,
        // all while the reader held it open.
        stdfs::rename(d.join("current"), d.join(archive(3))).unwrap();
        write(&d, "current", &lines(&[4, 5], "y"));
        stdfs::rename(d.join("current"), d.join(archive(6))).unwrap();
        write(&d, "current", &lines(&[7], "z"));
        stdfs::remove_file(d.join(archive(3))).unwrap();
        assert_eq!(read_all(&mut r), ["y4", "y5", "z7"]);
    }

    fn gzip(body: &str) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(body.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_archives_are_read_and_other_compressions_skipped_and_said() {
        let d = dir("gzip");
        stdfs::write(d.join(archive(3)), gzip(&lines(&[1, 2], "a"))).unwrap();
        stdfs::write(d.join(archive(5)), b"BZh91AY&SY").unwrap();
        write(&d, "current", &lines(&[6], "c"));
        let mut r = Reader::open(d.path()).unwrap();
        assert_eq!(read_all(&mut r), ["a1", "a2", "c6"]);
        let notices = r.take_notices();
        assert!(
            matches!(&notices[..], [Notice::Skipped { why, .. }] if why.starts_with("bzip2")),
            "{notices:?}"
        );
        // Resuming inside the compressed archive.
        r.seek(Position::After {
            stamp: stamp(1),
            same: 1,
            file_end: false,
        })
        .unwrap();
        assert_eq!(read_all(&mut r), ["a2", "c6"]);
        assert!(matches!(&r.take_notices()[..], [Notice::Skipped { .. }]));
        assert_eq!(last(&mut r, 2, None, None), ["a2", "c6"]);
    }

    #[test]
    fn a_cut_compressed_archive_gives_its_whole_lines_and_says_the_rest() {
        let d = dir("gzip-cut");
        let whole = gzip(&lines(&(1..=2000).collect::<Vec<_>>(), "a"));
        stdfs::write(d.join(archive(2001)), &whole[..whole.len() / 2]).unwrap();
        write(&d, "current", &lines(&[2002], "c"));
        let mut r = Reader::open(d.path()).unwrap();
        let got = read_all(&mut r);
        assert!(got.len() > 2 && got.len() < 2001, "{}", got.len());
        let n = got.len() - 1;
        assert_eq!(got[n - 1], format!("a{n}"), "whole lines only");
        assert_eq!(got[n], "c2002");
        let notices = r.take_notices();
        let [Notice::Skipped { file, why }] = &notices[..] else {
            panic!("{notices:?}")
        };
        assert!(file.ends_with(&archive(2001)), "{file}");
        assert!(why.contains(&format!("after line {n} ")), "{why}");
        assert!(why.contains(&stamp(2001).to_string()), "{why}");
    }

    #[test]
    fn a_current_processed_into_compressed_archives_while_read_is_read_on_exactly() {
        let d = dir("processed");
        write(&d, "current", &lines(&[1, 2], "x"));
        let mut r = Reader::open(d.path()).unwrap();
        assert_eq!(read_all(&mut r), ["x1", "x2"]);
        // Two rotations through a processor while the reader holds the
        // first current open: each becomes `previous`, then a compressed
        // archive under a new inode, and `previous` goes.
        stdfs::OpenOptions::new()
            .append(true)
            .open(d.join("current"))
            .unwrap()
            .write_all(lines(&[3], "x").as_bytes())
            .unwrap();
        let rotate = |rotation: u64, body: &str, next: &str| {
            stdfs::rename(d.join("current"), d.join("previous")).unwrap();
            write(&d, "current", next);
            stdfs::write(d.join(archive(rotation)), gzip(body)).unwrap();
            stdfs::remove_file(d.join("previous")).unwrap();
        };
        rotate(4, &lines(&[1, 2, 3], "x"), &lines(&[5, 6], "y"));
        rotate(7, &lines(&[5, 6], "y"), &lines(&[8], "z"));
        assert_eq!(read_all(&mut r), ["x3", "y5", "y6", "z8"]);
    }

    fn last(r: &mut Reader, n: u64, since: Option<u64>, until: Option<u64>) -> Vec<String> {
        r.seek_last(n, since.map(stamp), until.map(stamp), |_| true)
            .unwrap();
        read_all(r)
    }

    #[test]
    fn seek_last_reads_only_the_last_files_needed() {
        let d = dir("last");
        // Reading this "archive" fails: it must not be read.
        stdfs::create_dir(d.join(archive(1))).unwrap();
        write(&d, &archive(6), &lines(&[2, 3, 4, 5], "a"));
        write(&d, &archive(9), &lines(&[7, 8], "b"));
        write(&d, "current", &lines(&[10, 11], "c"));
        let mut r = Reader::open(d.path()).unwrap();
        assert_eq!(last(&mut r, 1, None, None), ["c11"]);
        assert_eq!(last(&mut r, 3, None, None), ["b8", "c10", "c11"]);
        assert_eq!(
            last(&mut r, 5, None, None),
            ["a5", "b7", "b8", "c10", "c11"]
        );
        assert!(last(&mut r, 0, None, None).is_empty());
        // The window: lines past `until` follow (the caller stops there).
        assert_eq!(last(&mut r, 2, None, Some(8)), ["b7", "b8", "c10", "c11"]);
        assert_eq!(last(&mut r, 2, None, Some(9)), ["b7", "b8", "c10", "c11"]);
        assert_eq!(last(&mut r, 9, Some(5), Some(8))[..3], ["a5", "b7", "b8"]);
        assert_eq!(last(&mut r, 9, Some(6), None), ["b7", "b8", "c10", "c11"]);
        assert!(r.next_line().is_ok());
        // Only the lines `keep` takes count.
        r.seek_last(2, None, None, |l| {
            l.text.ends_with(b"5") || l.text.ends_with(b"7")
        })
        .unwrap();
        assert_eq!(read_all(&mut r), ["a5", "b7", "b8", "c10", "c11"]);
        // Asking for everything reaches the unreadable one.
        assert!(r.seek_last(100, None, None, |_| true).is_err());
    }

    #[test]
    fn seek_last_skips_a_line_being_written_and_places_unstamped_lines() {
        let d = dir("last-partial");
        let body = format!(
            "{}unstamped after 1\n{}{} half",
            lines(&[1], "a"),
            lines(&[2], "a"),
            stamp(3)
        );
        write(&d, "current", &body);
        let mut r = Reader::open(d.path()).unwrap();
        assert_eq!(last(&mut r, 1, None, None), ["a2"]);
        assert_eq!(
            last(&mut r, 2, None, None),
            ["a1", "unstamped after 1", "a2"]
        );
        // An unstamped line after a line past `until` is past it too.
        assert_eq!(
            last(&mut r, 1, None, Some(1))[..2],
            ["a1", "unstamped after 1"]
        );
        assert_eq!(
            last(&mut r, 2, None, Some(1))[..2],
            ["a1", "unstamped after 1"]
        );
    }

    #[test]
    fn seek_last_finds_lines_longer_than_its_blocks() {
        let d = dir("last-long");
        let long = "x".repeat(700_000);
        let body = format!(
            "{}{} {long}\n{}",
            lines(&[1], "a"),
            stamp(2),
            lines(&[3], "c")
        );
        write(&d, &archive(4), &body);
        let mut r = Reader::open(d.path()).unwrap();
        let got = last(&mut r, 2, None, None);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], long);
        assert_eq!(got[1], "c3");
        assert_eq!(last(&mut r, 3, None, None)[0], "a1");
    }

    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
}
