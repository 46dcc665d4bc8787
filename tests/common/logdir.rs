//! Log directories: a reader written independently of the library's, so
//! that a format bug in the library cannot hide itself, and makers of
//! directories, cursors and stamped lines.

use std::fs;
use std::path::{Path, PathBuf};

use super::{CYCLOG, joined, path_arg, run_with_input};

/// One line of a log directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// The file it is in: an archive name or `current`.
    pub file: String,
    /// The 24 hex digits of its stamp.
    pub stamp: String,
    pub text: Vec<u8>,
}

pub fn is_archive_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 27
        && b[0] == b'@'
        && b[1..25]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        && b[25] == b'.'
        && (b[26] == b's' || b[26] == b'u')
}

/// Archive names of a directory, oldest first.
pub fn archives(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read log directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| is_archive_name(n))
        .collect();
    names.sort();
    names
}

/// Every line of a log directory, archives first, then `current`; fails on
/// anything that is not a stamped line ending in LF. For a directory no
/// writer is using.
pub fn read_logdir(dir: &Path) -> Vec<LogLine> {
    read_logdir_once(dir, false).expect("a log file vanished while the directory was read")
}

/// The same, while a writer may be rotating it and writing `current`: an
/// archive renamed `.u` to `.s`, or `current` rotated, under the reader
/// makes it start again; a last line still being written is left out.
pub fn read_logdir_live(dir: &Path) -> Vec<LogLine> {
    for _ in 0..100 {
        if let Some(lines) = read_logdir_once(dir, true) {
            return lines;
        }
    }
    panic!("{}: could not read a consistent directory", dir.display());
}

fn read_logdir_once(dir: &Path, live: bool) -> Option<Vec<LogLine>> {
    let mut files = archives(dir);
    if dir.join("current").exists() {
        files.push("current".to_string());
    }
    let mut lines = Vec::new();
    for file in files {
        let mut bytes = match fs::read(dir.join(&file)) {
            Ok(bytes) => bytes,
            Err(e) if live && e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("{file}: {e}"),
        };
        if bytes.is_empty() {
            continue;
        }
        if live && file == "current" && bytes.last() != Some(&b'\n') {
            let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            bytes.truncate(keep);
            if bytes.is_empty() {
                continue;
            }
        }
        assert_eq!(bytes.last(), Some(&b'\n'), "{file} does not end with LF");
        for line in bytes[..bytes.len() - 1].split(|&b| b == b'\n') {
            assert!(
                line.len() >= 26,
                "{file}: short line {:?}",
                String::from_utf8_lossy(line)
            );
            let stamp = std::str::from_utf8(&line[1..25]).expect("stamp is ASCII");
            assert!(
                line[0] == b'@'
                    && line[25] == b' '
                    && stamp
                        .bytes()
                        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
                "{file}: not a stamped line: {:?}",
                String::from_utf8_lossy(line)
            );
            lines.push(LogLine {
                file: file.clone(),
                stamp: stamp.to_string(),
                text: line[26..].to_vec(),
            });
        }
    }
    Some(lines)
}

pub fn texts(lines: &[LogLine]) -> Vec<Vec<u8>> {
    lines.iter().map(|l| l.text.clone()).collect()
}

/// Stamps strictly increase from line to line, and every archive's name is
/// after each of its lines and before every line of the next file.
pub fn assert_ordered(dir: &Path, lines: &[LogLine]) {
    for pair in lines.windows(2) {
        assert!(
            pair[0].stamp < pair[1].stamp,
            "stamps do not increase: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
    for line in lines {
        if line.file != "current" {
            let name_stamp = &line.file[1..25];
            assert!(
                line.stamp.as_str() < name_stamp,
                "{} holds a line stamped after it",
                line.file
            );
        }
    }
    let names = archives(dir);
    for (i, name) in names.iter().enumerate() {
        let next_file = names
            .get(i + 1)
            .cloned()
            .unwrap_or_else(|| "current".into());
        if let Some(first) = lines.iter().find(|l| l.file == next_file) {
            assert!(
                &name[1..25] < first.stamp.as_str(),
                "{next_file} has a line before {name}"
            );
        }
    }
}

/// The current time as TAI64N hex digits, true TAI (UTC + 37 s).
pub fn tai_now_hex() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    format!(
        "{:016x}{:08x}",
        (1u64 << 62) + now.as_secs() + 37,
        now.subsec_nanos()
    )
}

/// Writes `lines` into the log directory `dir` with cyclog (`args` first),
/// to EOF.
pub fn cyclog_write(dir: &Path, args: &[&str], lines: &[Vec<u8>]) {
    let all = [args, &[path_arg(dir)]].concat();
    let (code, err) = run_with_input(CYCLOG, &all, &joined(lines));
    assert_eq!(code, 0, "cyclog: {err}");
}

/// Makes the cursor directory `cursors/name`, its `main` a symbolic link
/// to `logdir`, as for nosh.
pub fn cursor_dir(cursors: &Path, name: &str, logdir: &Path) -> PathBuf {
    let dir = cursors.join(name);
    fs::create_dir_all(&dir).expect("cursor directory");
    std::os::unix::fs::symlink(logdir, dir.join("main")).expect("main symlink");
    dir
}

/// A stamped line as a log directory holds it (without LF), for TAI64N
/// seconds `secs` past 2^62 + 1.7e9 and `nanos`.
pub fn stamped(secs: u64, nanos: u32, text: &str) -> String {
    format!(
        "@{:016x}{nanos:08x} {text}",
        (1u64 << 62) + 1_700_000_000 + secs
    )
}
