//! An archive's summary: which values its lines' fields have, block by
//! block, so that a reader looking for a few lines (`-p err`, `-t sshd`,
//! `host=web1`) reads only the blocks that can hold them. See logdir(5).
//!
//! Kept in the log directory's `summaries/` subdirectory, one file per
//! archive, named `<archive stamp>.summary`. The writers of log
//! directories (multilog, s6-log, svlogd, cyclog) look only at names
//! starting with `@` in the directory itself: they ignore it. A summary is
//! a cache: made by the reader that first reads the archive whole, written
//! under a temporary name and renamed, and only trusted while it names the
//! archive exactly (its name, size and modification time) and its check
//! sum holds. A summary missing, stale, damaged or of another archive is
//! not used: the archive is read whole, as without summaries.
//!
//! The file is text, one item a line, each line ending with LF:
//!
//! ```text
//! rill-summary 2
//! archive @4000000069204f2a1c2d3e4f.s 16777300 1795219200 123456789
//! blocks 256 0 65601 131290 ...
//! v :severity =6 ffffffffffffffff...
//! v host =web1 0300000000000000...
//! l host =db1 7021:131 137410:129 ...
//! o :procid 0100000000000000...
//! end 9a3c5e71d2f40b18
//! ```
//!
//! - `archive`: the archive's name, size in bytes, and modification time
//!   (seconds and nanoseconds since the epoch) when it was summarised.
//! - `blocks`: how many blocks, then the offset of each block's first
//!   line, increasing from 0; a block runs to the next one's offset (the
//!   last to the end of the archive). A compressed archive has one block.
//! - `v KEY =VALUE BITS`: the blocks holding a line whose field `KEY` has
//!   the value `VALUE` (bytes 0x21 to 0x7e but `\` as they are, any other
//!   as `\xHH`). BITS: one bit per block, block `i` in bit `i % 8` of
//!   byte `i / 8`, each byte two lowercase hex digits.
//! - `l KEY =VALUE OFFSET:LENGTH ...`: a value found on few lines (up to
//!   512, and 2048 lines for all of a key's): each of those lines, where
//!   it starts and its length with its LF, in order; in place of its `v`.
//! - `o KEY BITS`: the blocks holding values of `KEY` not listed (more
//!   than 64 distinct values): any value may be there.
//! - `end`: a check sum of every byte before this line, in hex: FNV-1a's
//!   steps (64 bits) over each 8 bytes as a little-endian number (the last
//!   padded with zero bytes), then over their count.
//!
//! Keys are a reader line's field keys (`host`, `pid`, `SUBSYSTEM`, ...)
//! with their values unescaped (and as written too, where that differs),
//! and four of the line's head, which no field key can be: `:severity`
//! and `:facility` (their codes, in decimal), `:identifier` (the app of
//! the tag, empty for `-`) and `:procid`. A line that is not a reader line
//! counts as severity 6 (info) with no other key, as readers take it.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rustix::fs::{self, AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::format::decimal;
use crate::format::reader_line::{self, RecordView};
use crate::sys::atomic_file::AtomicFile;

/// The subdirectory of a log directory that holds the summaries.
pub const DIR: &str = "summaries";
/// Version 1 had a check sum a byte at a time; its summaries are made again.
const MAGIC: &str = "rill-summary 2";
/// Distinct values kept per key; more are counted as `o`.
const MAX_VALUES: usize = 64;
/// An archive has at most this many blocks (bigger blocks in big archives).
const MAX_BLOCKS: u64 = 1024;
const MIN_BLOCK: u64 = 64 * 1024;
/// A summary bigger than this is not read (none written is near it).
const MAX_SIZE: u64 = 4 << 20;

pub const SEVERITY: &str = ":severity";
pub const FACILITY: &str = ":facility";
pub const IDENTIFIER: &str = ":identifier";
pub const PROCID: &str = ":procid";

/// A set of blocks.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Blocks(Vec<u64>);

impl Blocks {
    pub fn none(n: usize) -> Blocks {
        Blocks(vec![0; n.div_ceil(64)])
    }

    pub fn all(n: usize) -> Blocks {
        let mut b = Blocks::none(n);
        for i in 0..n {
            b.set(i);
        }
        b
    }

    pub fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    pub fn has(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn or(&mut self, other: &Blocks) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }

    pub fn and(&mut self, other: &Blocks) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= b;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    fn hex(&self, n: usize, out: &mut String) {
        use std::fmt::Write;
        for byte in 0..n.div_ceil(8) {
            let _ = write!(out, "{:02x}", (self.0[byte / 8] >> (byte % 8 * 8)) as u8);
        }
    }

    fn from_hex(text: &str, n: usize) -> Option<Blocks> {
        if text.len() != n.div_ceil(8) * 2 {
            return None;
        }
        let mut b = Blocks::none(n);
        for (byte, pair) in text.as_bytes().chunks(2).enumerate() {
            let v = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
            b.0[byte / 8] |= u64::from(v) << (byte % 8 * 8);
        }
        // No bit past the last block.
        (0..n.div_ceil(8) * 8)
            .skip(n)
            .all(|i| !b.has(i))
            .then_some(b)
    }
}

/// Who an archive is: a summary is trusted only for the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub size: u64,
    pub mtime: (i64, u64),
}

impl Identity {
    pub fn of(name: &str, file: BorrowedFd<'_>) -> std::io::Result<Identity> {
        let st = fs::fstat(file)?;
        Ok(Identity {
            name: name.to_string(),
            size: st.st_size as u64,
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as u64),
        })
    }
}

/// Parts of an archive: byte ranges, in order, apart from one another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ranges(pub Vec<(u64, u64)>);

impl Ranges {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What is in either.
    pub fn union(&self, other: &Ranges) -> Ranges {
        let mut all: Vec<(u64, u64)> = self.0.iter().chain(&other.0).copied().collect();
        all.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(all.len());
        for (start, end) in all {
            match out.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => out.push((start, end)),
            }
        }
        Ranges(out)
    }

    /// What is in both.
    pub fn intersect(&self, other: &Ranges) -> Ranges {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while let (Some(&a), Some(&b)) = (self.0.get(i), other.0.get(j)) {
            let (start, end) = (a.0.max(b.0), a.1.min(b.1));
            if start < end {
                out.push((start, end));
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        Ranges(out)
    }
}

/// Where a value is: in which blocks, or on which lines.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Found {
    Blocks(Blocks),
    /// Each line's offset and length (with its LF).
    Lines(Vec<(u64, u64)>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub archive: Identity,
    /// Each block's first offset.
    pub starts: Vec<u64>,
    values: HashMap<String, HashMap<Vec<u8>, Found>>,
    overflow: HashMap<String, Blocks>,
}

impl Summary {
    pub fn blocks(&self) -> usize {
        self.starts.len()
    }

    /// The whole archive.
    pub fn all(&self) -> Ranges {
        Ranges(vec![(0, self.archive.size)])
    }

    /// Where a line has `key` equal to one of `values`, or may have
    /// (values of `key` not listed there): whole lines or whole blocks.
    pub fn where_any(&self, key: &str, values: &[&[u8]]) -> Ranges {
        let mut blocks = Blocks::none(self.blocks());
        let mut lines = Vec::new();
        if let Some(listed) = self.values.get(key) {
            for v in values {
                match listed.get(*v) {
                    Some(Found::Blocks(b)) => blocks.or(b),
                    Some(Found::Lines(l)) => {
                        lines.extend(l.iter().map(|&(at, len)| (at, at + len)))
                    }
                    None => {}
                }
            }
        }
        if let Some(b) = self.overflow.get(key) {
            blocks.or(b);
        }
        Ranges(lines).union(&Ranges(self.ranges(&blocks)))
    }

    /// The byte ranges of the archive that `wanted` covers, in order,
    /// adjacent blocks as one.
    fn ranges(&self, wanted: &Blocks) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (i, &start) in self.starts.iter().enumerate() {
            if !wanted.has(i) {
                continue;
            }
            let end = self.starts.get(i + 1).copied().unwrap_or(self.archive.size);
            match out.last_mut() {
                Some(last) if last.1 == start => last.1 = end,
                _ => out.push((start, end)),
            }
        }
        out
    }

    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let n = self.blocks();
        let a = &self.archive;
        let mut out = format!(
            "{MAGIC}\narchive {} {} {} {}\nblocks {n}",
            a.name, a.size, a.mtime.0, a.mtime.1
        );
        for s in &self.starts {
            let _ = write!(out, " {s}");
        }
        out.push('\n');
        let mut keys: Vec<&String> = self.values.keys().collect();
        keys.sort();
        for key in keys {
            let mut values: Vec<_> = self.values[key].iter().collect();
            values.sort();
            for (value, found) in values {
                match found {
                    Found::Blocks(blocks) => {
                        let _ = write!(out, "v {key} =");
                        escape(value, &mut out);
                        out.push(' ');
                        blocks.hex(n, &mut out);
                    }
                    Found::Lines(lines) => {
                        let _ = write!(out, "l {key} =");
                        escape(value, &mut out);
                        for (at, len) in lines {
                            let _ = write!(out, " {at}:{len}");
                        }
                    }
                }
                out.push('\n');
            }
        }
        let mut keys: Vec<_> = self.overflow.iter().collect();
        keys.sort();
        for (key, blocks) in keys {
            let _ = write!(out, "o {key} ");
            blocks.hex(n, &mut out);
            out.push('\n');
        }
        let sum = fnv(out.as_bytes());
        let _ = writeln!(out, "end {sum:016x}");
        out
    }

    /// A summary read back; `None` if anything in it is not as written.
    pub fn parse(text: &[u8]) -> Option<Summary> {
        Summary::parse_keys(text, None)
    }

    /// A summary read back with only the values of `keys` (all, if
    /// `None`): the others are not asked about.
    pub fn parse_keys(text: &[u8], keys: Option<&[String]>) -> Option<Summary> {
        let text = std::str::from_utf8(text).ok()?;
        let body_end = text.strip_suffix('\n')?.rfind('\n')? + 1;
        let (body, end) = text.split_at(body_end);
        let sum = end.strip_prefix("end ")?.strip_suffix('\n')?;
        if sum.len() != 16 || u64::from_str_radix(sum, 16).ok()? != fnv(body.as_bytes()) {
            return None;
        }
        let mut lines = body.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let mut a = lines.next()?.strip_prefix("archive ")?.split(' ');
        let archive = Identity {
            name: a.next()?.to_string(),
            size: a.next()?.parse().ok()?,
            mtime: (a.next()?.parse().ok()?, a.next()?.parse().ok()?),
        };
        if a.next().is_some() {
            return None;
        }
        let mut b = lines.next()?.strip_prefix("blocks ")?.split(' ');
        let n: usize = b.next()?.parse().ok()?;
        let starts: Vec<u64> = b.map(|s| s.parse().ok()).collect::<Option<_>>()?;
        let increasing = starts.windows(2).all(|w| w[0] < w[1]);
        if n == 0 || starts.len() != n || starts[0] != 0 || !increasing {
            return None;
        }
        if starts[n - 1] >= archive.size.max(1) {
            return None;
        }
        let mut summary = Summary {
            archive,
            starts,
            values: HashMap::new(),
            overflow: HashMap::new(),
        };
        let size = summary.archive.size;
        for line in lines {
            if let Some(keys) = keys
                && let Some(key) = line.get(2..).and_then(|rest| rest.split(' ').next())
                && !keys.iter().any(|k| k == key)
            {
                continue;
            }
            let mut parts = line.split(' ');
            match (parts.next()?, parts.next()?, parts.next()?, parts.next()) {
                ("v", key, value, Some(bits)) if parts.next().is_none() => {
                    let value = unescape(value.strip_prefix('=')?)?;
                    let blocks = Found::Blocks(Blocks::from_hex(bits, n)?);
                    summary
                        .values
                        .entry(key.to_string())
                        .or_default()
                        .insert(value, blocks);
                }
                ("l", key, value, Some(first)) => {
                    let value = unescape(value.strip_prefix('=')?)?;
                    let mut lines = Vec::new();
                    let mut after = 0;
                    for part in std::iter::once(first).chain(parts) {
                        let (at, len) = part.split_once(':')?;
                        let (at, len): (u64, u64) = (at.parse().ok()?, len.parse().ok()?);
                        let end = at.checked_add(len)?;
                        if at < after || len == 0 || end > size {
                            return None;
                        }
                        after = end;
                        lines.push((at, len));
                    }
                    summary
                        .values
                        .entry(key.to_string())
                        .or_default()
                        .insert(value, Found::Lines(lines));
                }
                ("o", key, bits, None) => {
                    summary
                        .overflow
                        .insert(key.to_string(), Blocks::from_hex(bits, n)?);
                }
                _ => return None,
            }
        }
        Some(summary)
    }
}

/// Makes a summary from an archive's lines, read from its start.
pub struct Builder {
    block: u64,
    /// The line being noted: where it starts, its length with its LF.
    line: (u64, u64),
    /// One block only (a compressed archive: offsets are not the file's).
    single: bool,
    starts: Vec<u64>,
    values: HashMap<String, Key>,
    overflow: HashMap<String, Blocks>,
    scratch: Vec<u8>,
}

type Noted = (Blocks, Option<Vec<(u64, u64)>>);

/// A key's values as they are noted.
#[derive(Default)]
struct Key {
    /// Each value's blocks, and its lines while they are few.
    values: HashMap<Vec<u8>, Noted>,
    /// The lines listed for all its values.
    listed: usize,
}

/// A value on at most this many lines has them listed.
const MAX_LINES: usize = 512;
/// And this many for all of a key's values.
const MAX_KEY_LINES: usize = 2048;

impl Builder {
    /// For a plain archive of `size` bytes, or (`compressed`) one whose
    /// lines are read decompressed.
    pub fn new(size: u64, compressed: bool) -> Builder {
        Builder {
            block: MIN_BLOCK.max(size.div_ceil(MAX_BLOCKS)),
            line: (0, 0),
            single: compressed,
            starts: Vec::new(),
            values: HashMap::new(),
            overflow: HashMap::new(),
            scratch: Vec::new(),
        }
    }

    /// A line (its text, after the stamp if it has one) that starts at
    /// `offset` in the archive and takes `len` bytes with its LF.
    pub fn line(&mut self, offset: u64, len: u64, text: &[u8]) {
        self.line = (offset, len);
        let new_block = match self.starts.last() {
            None => true,
            Some(&s) => !self.single && offset >= s + self.block,
        };
        if new_block {
            if self.starts.len() as u64 >= MAX_BLOCKS {
                // Only past a block size given too small: stay in the last.
            } else {
                self.starts
                    .push(if self.starts.is_empty() { 0 } else { offset });
            }
        }
        let block = self.starts.len() - 1;
        let Ok(view) = RecordView::parse(text) else {
            self.note(block, SEVERITY, b"6");
            return;
        };
        let mut number = [0u8; decimal::MAX_LEN];
        let severity = view.priority.severity.code();
        self.note(
            block,
            SEVERITY,
            decimal::decimal(severity.into(), &mut number),
        );
        let facility = view.priority.facility.code();
        self.note(
            block,
            FACILITY,
            decimal::decimal(facility.into(), &mut number),
        );
        let app = reader_line::app_of(view.tag);
        self.note_value(block, IDENTIFIER, if app == b"-" { b"" } else { app });
        if let Some(procid) = reader_line::procid_of(view.tag) {
            self.note_value(block, PROCID, procid);
        }
        for field in view.fields.unwrap_or(b"").split(|&b| b == b' ') {
            let Some(eq) = memchr::memchr(b'=', field) else {
                continue;
            };
            if let Ok(key) = std::str::from_utf8(&field[..eq]) {
                self.note_value(block, key, &field[eq + 1..]);
            }
        }
    }

    /// A value as written, and unescaped.
    fn note_value(&mut self, block: usize, key: &str, value: &[u8]) {
        self.note(block, key, value);
        if memchr::memchr(b'\\', value).is_some()
            && let Ok(plain) = reader_line::unescape(value)
        {
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            scratch.extend_from_slice(&plain);
            self.note(block, key, &scratch);
            self.scratch = scratch;
        }
    }

    fn note(&mut self, block: usize, key: &str, value: &[u8]) {
        let n = MAX_BLOCKS as usize;
        let line = self.line;
        let entry = match self.values.get_mut(key) {
            Some(v) => v,
            None => self.values.entry(key.to_string()).or_default(),
        };
        if let Some((b, lines)) = entry.values.get_mut(value) {
            b.set(block);
            if let Some(l) = lines
                && l.last() != Some(&line)
            {
                if l.len() < MAX_LINES && entry.listed < MAX_KEY_LINES {
                    l.push(line);
                    entry.listed += 1;
                } else {
                    entry.listed -= l.len();
                    *lines = None;
                }
            }
        } else if entry.values.len() < MAX_VALUES {
            let mut b = Blocks::none(n);
            b.set(block);
            let lines = (entry.listed < MAX_KEY_LINES).then(|| vec![line]);
            entry.listed += lines.is_some() as usize;
            entry.values.insert(value.to_vec(), (b, lines));
        } else {
            self.overflow
                .entry(key.to_string())
                .or_insert_with(|| Blocks::none(n))
                .set(block);
        }
    }

    /// The summary of the archive read, if it had a line.
    pub fn finish(self, archive: Identity) -> Option<Summary> {
        if self.starts.is_empty() {
            return None;
        }
        let n = self.starts.len();
        let trim = |b: Blocks| Blocks(b.0[..n.div_ceil(64)].to_vec());
        Some(Summary {
            archive,
            starts: self.starts,
            values: self
                .values
                .into_iter()
                .map(|(k, key)| {
                    let values = key.values.into_iter().map(|(v, (b, lines))| {
                        let found = match lines {
                            Some(lines) => Found::Lines(lines),
                            None => Found::Blocks(trim(b)),
                        };
                        (v, found)
                    });
                    (k, values.collect())
                })
                .collect(),
            overflow: self
                .overflow
                .into_iter()
                .map(|(k, b)| (k, trim(b)))
                .collect(),
        })
    }
}

fn file_name(stamp_name: &str) -> String {
    let stamp = stamp_name.split('.').next().unwrap_or(stamp_name);
    format!("{stamp}.summary")
}

/// The summary of the archive `archive` (open as `file`) in the log
/// directory `dir`, if there is one and it is of this very archive.
/// Only the values of `keys` are read (all, if `None`).
pub fn load(dir: BorrowedFd<'_>, archive: &Identity, keys: Option<&[String]>) -> Option<Summary> {
    let path = format!("{DIR}/{}", file_name(&archive.name));
    let fd = fs::openat(
        dir,
        path.as_str(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = fs::fstat(&fd).ok()?;
    if fs::FileType::from_raw_mode(st.st_mode) != fs::FileType::RegularFile
        || st.st_size as u64 > MAX_SIZE
    {
        return None;
    }
    let mut buf = vec![0u8; st.st_size as usize];
    if super::read_exact_at(fd.as_fd(), &mut buf, 0).ok()? != buf.len() {
        return None;
    }
    Summary::parse_keys(&buf, keys).filter(|s| s.archive == *archive)
}

/// Keeps a summary beside its archive, if the directory can be written
/// (a reader without the right to leaves it: summaries are a cache).
/// Summaries of archives older than the oldest there is are removed.
pub fn store(dir: BorrowedFd<'_>, summary: &Summary, oldest: Option<&str>) {
    match fs::mkdirat(dir, DIR, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(_) => return,
    }
    let Ok(sub) = fs::openat(
        dir,
        DIR,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    let name = file_name(&summary.archive.name);
    let temp = format!(".{name}.{}.tmp", std::process::id());
    let file = AtomicFile {
        dir: sub.as_fd(),
        shown: DIR,
        name: Path::new(&name),
        temp: Path::new(&temp),
        mode: Mode::from_raw_mode(0o644),
    };
    if file.write_temp(summary.to_text().as_bytes()).is_err() || file.rename().is_err() {
        let _ = fs::unlinkat(&sub, temp.as_str(), AtFlags::empty());
        return;
    }
    if let Some(oldest) = oldest {
        let oldest = file_name(oldest);
        let Ok(entries) = fs::Dir::read_from(&sub) else {
            return;
        };
        for entry in entries.flatten() {
            let gone = entry.file_name().to_str().is_ok_and(|n| {
                n.starts_with('@') && n.ends_with(".summary") && n < oldest.as_str()
            });
            if gone {
                let _ = fs::unlinkat(&sub, entry.file_name(), AtFlags::empty());
            }
        }
    }
}

fn escape(value: &[u8], out: &mut String) {
    use std::fmt::Write;
    for &b in value {
        match b {
            0x21..=0x7e if b != b'\\' => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
}

fn unescape(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 4)?).ok()?;
            out.push(u8::from_str_radix(hex.strip_prefix('x')?, 16).ok()?);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// FNV-1a's steps (64 bits) over 8 bytes at a time, little-endian, the
/// last word padded with zeros, then over the length. A step a byte was
/// most of the time of reading a summary (a `-p err` query reads 1.2 MiB
/// of them over a gigabyte). Each step is a bijection of the hash for a
/// given word: any one word changed changes the sum.
fn fnv(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut words = bytes.chunks_exact(8);
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(PRIME);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(PRIME);
    }
    (h ^ bytes.len() as u64).wrapping_mul(PRIME)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            name: "@400000006543210000000000.s".into(),
            size: 300_000,
            mtime: (1_700_000_000, 5),
        }
    }

    fn built() -> Summary {
        let mut b = Builder::new(300_000, false);
        for i in 0..600 {
            b.line(i * 100, 100, b"user.info a: filler");
        }
        b.line(
            60_000,
            100,
            b"daemon.err sshd[15]: no\thost=web\\x201 pid=15",
        );
        b.line(70_000, 100, b"plain output");
        b.line(140_000, 100, b"kern.info -: x\tSUBSYSTEM=usb");
        b.finish(identity()).unwrap()
    }

    #[test]
    fn a_summary_reads_back_as_written_and_says_where_values_are() {
        let s = built();
        assert_eq!(s.starts, [0, 70_000, 140_000]);
        let back = Summary::parse(s.to_text().as_bytes()).unwrap();
        assert_eq!(back, s);
        let at = |key, v: &[u8]| s.where_any(key, &[v]).0;
        let line = |at: u64| vec![(at, at + 100)];
        assert_eq!(at(SEVERITY, b"3"), line(60_000));
        // On more lines than are listed: its blocks.
        assert_eq!(at(SEVERITY, b"6"), [(0, 300_000)]);
        assert_eq!(at(IDENTIFIER, b"sshd"), line(60_000));
        assert_eq!(at(IDENTIFIER, b""), line(140_000));
        assert_eq!(at(PROCID, b"15"), line(60_000));
        assert_eq!(at("host", b"web 1"), line(60_000));
        assert_eq!(at("host", b"web\\x201"), line(60_000));
        assert_eq!(at("SUBSYSTEM", b"usb"), line(140_000));
        assert_eq!(at(FACILITY, b"0"), line(140_000));
        assert!(at("nothing", b"0").is_empty());
        let err_or_kern = s.where_any(SEVERITY, &[b"3", b"6"]);
        assert_eq!(err_or_kern.0, [(0, 300_000)]);
        let sshd = s.where_any(IDENTIFIER, &[b"sshd"]);
        assert_eq!(err_or_kern.intersect(&sshd).0, line(60_000));
        assert_eq!(
            sshd.union(&s.where_any(FACILITY, &[b"0"])).0,
            [line(60_000)[0], line(140_000)[0]]
        );
    }

    #[test]
    fn a_damaged_summary_is_no_summary() {
        let text = built().to_text();
        for cut in [0, 10, text.len() / 2, text.len() - 1] {
            assert!(Summary::parse(&text.as_bytes()[..cut]).is_none(), "{cut}");
        }
        let changed = text.replacen("sshd", "sshe", 1);
        assert!(Summary::parse(changed.as_bytes()).is_none());
    }

    #[test]
    fn values_past_the_limit_make_their_key_any_value() {
        let mut b = Builder::new(1000, false);
        for i in 0..100 {
            b.line(i * 10, 10, format!("user.info a: m\tpid={i}").as_bytes());
        }
        let s = b.finish(identity()).unwrap();
        assert_eq!(s.where_any("pid", &[b"99"]).0, [(0, 300_000)]);
        // Listed, but the values not listed may be anywhere too.
        assert_eq!(s.where_any("pid", &[b"1"]).0, [(0, 300_000)]);
        assert_eq!(s.where_any(IDENTIFIER, &[b"a"]).0, [(0, 1000)]);
        assert!(s.where_any("uid", &[b"1"]).is_empty());
    }
}
