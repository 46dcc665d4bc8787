//! The log directory, as multilog, s6-log, svlogd and nosh's cyclog lay it
//! out, and each line in it. Written by cyclog; read by every program that
//! follows or shows logs. See logdir(5).
//!
//! - `lock`: held with flock(2) by the one writer;
//! - `current`: the file being written; mode 0644 while written, 0744 once
//!   finished cleanly;
//! - `@<TAI64N>.s`: an archive, complete; `@<TAI64N>.u`: recovered after an
//!   unclean stop, possibly incomplete. An archive's name is the stamp of its
//!   rotation: every line in it is stamped before its name;
//! - `previous`, `processed`, `state`, `newstate`: a processor's input, output
//!   and state, as multilog and s6-log name them;
//! - `cyclog.state`: cyclog's record of the chunk it is writing (its crash
//!   recovery); nobody else reads it.
//!
//! Each line is `@` + 24 hex digits (the stamp) + a space + the text + LF.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::fs::{self, AtFlags, FlockOperation, Mode, OFlags};

use crate::error::Context;
use crate::format::stamp::{LABEL_LEN, Stamp};

pub mod identify;
pub mod read;
pub mod seal;
pub mod summary;
pub mod write;

pub const CURRENT: &str = "current";
pub const LOCK: &str = "lock";
pub const PREVIOUS: &str = "previous";
pub const PROCESSED: &str = "processed";
pub const STATE: &str = "state";
pub const NEWSTATE: &str = "newstate";
pub const WRITER_STATE: &str = "cyclog.state";

/// `@` + 24 hex digits + a space: what precedes each line's text.
pub const PREFIX_LEN: usize = LABEL_LEN + 1;

/// The permission bits that mark a finished (cleanly closed) file.
pub const MODE_FINISHED: u32 = 0o744;
/// The permission bits of a file being written.
pub const MODE_WRITING: u32 = 0o644;

/// Splits a stamped line (without its LF) into its stamp and its text.
pub fn parse_line(line: &[u8]) -> Option<(Stamp, &[u8])> {
    if line.len() < PREFIX_LEN || line[LABEL_LEN] != b' ' {
        return None;
    }
    Some((Stamp::parse_label(&line[..LABEL_LEN])?, &line[PREFIX_LEN..]))
}

/// An archive: a finished file of a log directory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Archive {
    /// When the file was rotated; every line in it is stamped before this.
    pub stamp: Stamp,
    /// `.s` (complete) rather than `.u` (recovered, possibly incomplete).
    pub complete: bool,
}

impl Archive {
    /// Parses `@` + 24 lowercase hex digits + `.s` or `.u`.
    pub fn from_name(name: &[u8]) -> Option<Archive> {
        if name.len() != LABEL_LEN + 2 || name[LABEL_LEN] != b'.' {
            return None;
        }
        if name[1..LABEL_LEN].iter().any(|c| c.is_ascii_uppercase()) {
            return None;
        }
        let complete = match name[LABEL_LEN + 1] {
            b's' => true,
            b'u' => false,
            _ => return None,
        };
        Some(Archive {
            stamp: Stamp::parse_label(&name[..LABEL_LEN])?,
            complete,
        })
    }

    pub fn name(&self) -> String {
        format!("{}.{}", self.stamp, if self.complete { 's' } else { 'u' })
    }
}

/// The archives of a directory, oldest first, with their sizes.
pub fn list_archives(dir: BorrowedFd<'_>) -> io::Result<Vec<(Archive, u64)>> {
    let mut found = Vec::new();
    let entries = fs::Dir::read_from(dir)?;
    for entry in entries {
        let entry = entry?;
        let Some(archive) = Archive::from_name(entry.file_name().to_bytes()) else {
            continue;
        };
        match fs::statat(dir, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => found.push((archive, st.st_size as u64)),
            // Finished meanwhile (`.u` renamed `.s`): known by its stamp.
            Err(rustix::io::Errno::NOENT) if !archive.complete => {
                let done = Archive {
                    stamp: archive.stamp,
                    complete: true,
                };
                if let Ok(st) = fs::statat(dir, done.name(), AtFlags::SYMLINK_NOFOLLOW) {
                    found.push((done, st.st_size as u64));
                }
            }
            Err(rustix::io::Errno::NOENT) => continue, // deleted meanwhile
            Err(e) => return Err(e.into()),
        }
    }
    found.sort();
    // A file listed under both names, as it was renamed: once, as `.s`.
    found.dedup_by(|later, earlier| {
        let same = later.0.stamp == earlier.0.stamp;
        if same {
            std::mem::swap(later, earlier);
        }
        same
    });
    Ok(found)
}

/// The stamps of a directory's archives, oldest first, each once: its
/// listing alone, no file looked at (an archive deleted meanwhile may be
/// listed; opening it says so).
pub fn archive_stamps(dir: BorrowedFd<'_>) -> io::Result<Vec<Stamp>> {
    let mut found = Vec::new();
    // A reader lists its directory for each file it opens: in one read of
    // a buffer big enough for hundreds of archives (`Dir` starts small and
    // grows: four getdents(2) for 55 names).
    let this = fs::openat(
        dir,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut buf = Vec::with_capacity(32 * 1024);
    let mut entries = fs::RawDir::new(&this, buf.spare_capacity_mut());
    while let Some(entry) = entries.next() {
        if let Some(archive) = Archive::from_name(entry?.file_name().to_bytes()) {
            found.push(archive.stamp);
        }
    }
    found.sort_unstable();
    found.dedup();
    Ok(found)
}

/// Opens a log directory's `lock` (creating it) and takes it, without
/// waiting. `Ok(None)`: another writer holds it.
pub fn lock(dir: BorrowedFd<'_>, dir_name: &str) -> crate::error::Result<Option<OwnedFd>> {
    let fd = open_file(
        dir,
        LOCK,
        OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE,
        0o644,
    )
    .context(|| format!("unable to open {dir_name}/{LOCK}"))?;
    match fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(fd)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e).context(|| format!("unable to lock {dir_name}/{LOCK}")),
    }
}

/// Opens (`flags` may create, with `mode`) a file of a log directory that a
/// writer writes, changes or hands to its processor: never through a
/// symbolic link, which could point anywhere outside the directory, and
/// only a regular file (a FIFO or device planted there would block or
/// swallow the log). Nonblocking, so that a FIFO is refused rather than
/// waited on; the flag means nothing to the regular file returned.
pub fn open_file(dir: BorrowedFd<'_>, file: &str, flags: OFlags, mode: u32) -> io::Result<OwnedFd> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match fs::openat(dir, file, flags, Mode::from_raw_mode(mode)) {
        Ok(fd) => fd,
        // With O_NOFOLLOW, ELOOP says the name itself is a symbolic link.
        Err(rustix::io::Errno::LOOP) => return Err(refusal(SYMLINK)),
        // A FIFO without a reader, opened for writing without blocking.
        Err(rustix::io::Errno::NXIO) => return Err(refusal(NOT_REGULAR)),
        Err(e) => return Err(e.into()),
    };
    let st = fs::fstat(&fd)?;
    if fs::FileType::from_raw_mode(st.st_mode) != fs::FileType::RegularFile {
        return Err(refusal(NOT_REGULAR));
    }
    Ok(fd)
}

/// Fails unless `file` in `dir` is a regular file (not following a link):
/// for a file about to be renamed into an archive, which readers open.
pub fn check_regular(dir: BorrowedFd<'_>, file: &str) -> io::Result<fs::Stat> {
    let st = fs::statat(dir, file, AtFlags::SYMLINK_NOFOLLOW)?;
    match fs::FileType::from_raw_mode(st.st_mode) {
        fs::FileType::RegularFile => Ok(st),
        fs::FileType::Symlink => Err(refusal(SYMLINK)),
        _ => Err(refusal(NOT_REGULAR)),
    }
}

const SYMLINK: &str = "it is a symbolic link, refusing to follow it";
const NOT_REGULAR: &str = "it is not a regular file";

fn refusal(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

/// Opens a directory for use as a log directory (following a symlink to one).
pub fn open_dir(path: &OsStr) -> io::Result<OwnedFd> {
    Ok(fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The stamp of the last stamped line among the last bytes of a file of
/// `size` bytes: looks back at most `limit` bytes.
pub fn last_stamp(file: BorrowedFd<'_>, size: u64, limit: u64) -> io::Result<Option<Stamp>> {
    const BLOCK: u64 = 64 * 1024;
    let floor = size.saturating_sub(limit);
    let mut end = size;
    let mut buf = vec![0u8; (BLOCK as usize) + PREFIX_LEN];
    while end > floor {
        let start = end.saturating_sub(BLOCK).max(floor);
        // Read PREFIX_LEN bytes past the block so a line starting at its end is whole.
        let want = ((end - start) as usize + PREFIX_LEN).min((size - start) as usize);
        let got = read_exact_at(file, &mut buf[..want], start)?;
        let block = &buf[..got];
        let scan_len = (end - start) as usize;
        // Line starts in [start, end): after each LF, and at 0 of the file.
        let mut candidates = memchr::memrchr_iter(b'\n', &block[..scan_len.min(got)])
            .map(|i| i + 1)
            .chain((start == 0).then_some(0));
        if let Some(stamp) = candidates.find_map(|at| {
            block
                .get(at..at + PREFIX_LEN)
                .and_then(|p| parse_line(p).map(|(s, _)| s))
        }) {
            return Ok(Some(stamp));
        }
        end = start;
    }
    Ok(None)
}

/// The stamp of the first line of a file, if it is a stamped line.
pub fn first_stamp(file: BorrowedFd<'_>) -> io::Result<Option<Stamp>> {
    let mut prefix = [0u8; PREFIX_LEN];
    let got = read_exact_at(file, &mut prefix, 0)?;
    Ok(parse_line(&prefix[..got]).map(|(s, _)| s))
}

/// The last byte of a file of `size` bytes, if any.
pub fn last_byte(file: BorrowedFd<'_>, size: u64) -> io::Result<Option<u8>> {
    if size == 0 {
        return Ok(None);
    }
    let mut byte = [0u8; 1];
    Ok((read_exact_at(file, &mut byte, size - 1)? == 1).then_some(byte[0]))
}

/// Reads as much of `buf` as the file holds from `offset`; returns the count.
pub fn read_exact_at(file: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(file, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names() {
        let a = Archive::from_name(b"@400000006543210000000000.s").unwrap();
        assert!(a.complete);
        assert_eq!(a.name(), "@400000006543210000000000.s");
        let u = Archive::from_name(b"@400000006543210000000001.u").unwrap();
        assert!(!u.complete && a < u);
        for bad in [
            &b"@400000006543210000000000.x"[..],
            b"@40000000654321000000000.s",
            b"@40000000654321000000000A.s",
            b"current",
            b"@400000006543210000000000.s~",
        ] {
            assert_eq!(
                Archive::from_name(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn lines() {
        let (s, text) = parse_line(b"@400000006543210000000000 hello").unwrap();
        assert_eq!(s, Stamp::parse_hex(b"400000006543210000000000").unwrap());
        assert_eq!(text, b"hello");
        assert_eq!(parse_line(b"@400000006543210000000000 ").unwrap().1, b"");
        assert!(parse_line(b"@400000006543210000000000").is_none());
        assert!(parse_line(b"@400000006543210000000000xhello").is_none());
        assert!(parse_line(b"hello").is_none());
    }
}
