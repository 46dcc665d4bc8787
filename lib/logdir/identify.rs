//! Telling a log directory (logdir(5)) from a directory that is not one,
//! such as the directory that holds them all (`/var/log/rill`), so that a
//! reader named the wrong one says so instead of showing nothing.
//!
//! A log directory holds `current`, `lock`, a processor's `state`, or an
//! archive (`@` + a TAI64N label, whatever follows: `.s`, `.u`, or what a
//! processor made of it). An empty directory counts as one: a log service
//! not started yet.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::format::stamp::LABEL_LEN;
use crate::logdir::{CURRENT, LOCK, STATE, WRITER_STATE};

/// What a directory is, to a reader of log directories.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    /// A log directory, or an empty directory.
    LogDir,
    /// Something else; `below` are the log directories right inside it.
    Other { below: Vec<PathBuf> },
}

/// Whether `path` is a log directory. Errors (missing, not a directory,
/// unreadable) are the caller's to report as it reports failed reads.
pub fn examine(path: &Path) -> io::Result<Kind> {
    let mut empty = true;
    let mut subdirs = Vec::new();
    for entry in fs::read_dir(path)? {
        let entry = entry?;
        empty = false;
        let name = entry.file_name();
        if is_log_file(name.as_encoded_bytes()) {
            return Ok(Kind::LogDir);
        }
        if entry
            .file_type()
            .is_ok_and(|t| t.is_dir() || t.is_symlink())
        {
            subdirs.push(entry.path());
        }
    }
    if empty {
        return Ok(Kind::LogDir);
    }
    let mut below: Vec<PathBuf> = subdirs
        .into_iter()
        .filter(|dir| holds_log_files(dir))
        .collect();
    below.sort();
    Ok(Kind::Other { below })
}

/// Whether `dir` holds a log directory's files (empty ones do not count
/// here: this only points at where logs are).
fn holds_log_files(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| is_log_file(e.file_name().as_encoded_bytes()))
    })
}

fn is_log_file(name: &[u8]) -> bool {
    let named = |n: &str| name == n.as_bytes();
    named(CURRENT)
        || named(LOCK)
        || named(STATE)
        || named(WRITER_STATE)
        || (name.len() >= LABEL_LEN
            && name[0] == b'@'
            && name[1..LABEL_LEN].iter().all(u8::is_ascii_hexdigit))
}
