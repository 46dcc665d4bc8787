//! Boots, as klog-read marks them: a boot marker line (`boot_id=`, and
//! `time=` when the boot started; klog-read(8)) in a directory of kernel
//! lines. A boot's lines, in every directory, are those written from its
//! start to the next boot's start; the boots are numbered as journalctl
//! numbers them: 0 the last, -1 the one before ..., 1 the first, 2 the
//! second ...
//!
//! Finding the markers reads every line of the directories (a marker is
//! told by a cheap search for its key first); a boot's first and last
//! lines are then found by seeking, as `--since` and `-n` do.

use std::io::Write;
use std::path::PathBuf;

use crate::error::Result;
use crate::format::event_time;
use crate::format::reader_line::{self, RecordView};
use crate::format::stamp::Stamp;
use crate::format::wallclock::{Convention, TimeWriter};
use crate::logdir::read::reader::{Position, Reader};
use crate::sys::signals::Signals;

use super::fields;

/// Lines read between two looks at the signals.
const LINES_BETWEEN_SIGNALS: u32 = 4096;

/// One boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boot {
    /// As `/proc/sys/kernel/random/boot_id` has it.
    pub id: String,
    /// When it started, as a stamp.
    pub start: Stamp,
}

/// What stopped a search.
pub enum Stopped {
    /// A stop signal.
    Signal,
}

/// The boots marked in `dirs`, in the order they started (a boot marked
/// twice, by a klog-read started afresh, once, at its first marker). A
/// directory that cannot be read is skipped with a warning, through
/// `warn`.
pub fn find(
    dirs: &[PathBuf],
    convention: Convention,
    signals: &Signals,
    warn: &mut dyn FnMut(String),
) -> std::result::Result<Vec<Boot>, Stopped> {
    let mut boots: Vec<Boot> = Vec::new();
    let mut count = 0u32;
    for dir in dirs {
        let scanned = scan(dir, &mut |text| {
            count += 1;
            if count >= LINES_BETWEEN_SIGNALS {
                count = 0;
                if !signals.take().is_empty() {
                    return Err(Stopped::Signal);
                }
            }
            if let Some(boot) = marker(text, convention)
                && !boots.iter().any(|b| same_id(&b.id, &boot.id))
            {
                boots.push(boot);
            }
            Ok(())
        });
        match scanned {
            Ok(Ok(())) => {}
            Ok(Err(stopped)) => return Err(stopped),
            Err(e) => warn(e.to_string()),
        }
    }
    boots.sort_by_key(|b| b.start);
    Ok(boots)
}

/// Hands `each` every line's text in `dir`.
fn scan<E>(
    dir: &std::path::Path,
    each: &mut dyn FnMut(&[u8]) -> std::result::Result<(), E>,
) -> Result<std::result::Result<(), E>> {
    let mut reader = Reader::open(dir)?;
    reader.seek(Position::Start)?;
    while let Some(line) = reader.next_line()? {
        if let Err(e) = each(line.text) {
            return Ok(Err(e));
        }
    }
    Ok(Ok(()))
}

/// The boot a line marks, if it is klog-read's boot marker.
pub fn marker(text: &[u8], convention: Convention) -> Option<Boot> {
    memchr::memmem::find(text, b"boot_id=")?;
    let view = RecordView::parse(text).ok()?;
    if view.tag != b"klog-read" {
        return None;
    }
    let fields = view.fields?;
    let id = fields::value_of(fields, reader_line::BOOT_ID)?;
    let time = fields::value_of(fields, reader_line::TIME)?;
    let t = event_time::parse_rfc3339(time)?;
    let id = std::str::from_utf8(id).ok().filter(|id| is_boot_id(id))?;
    Some(Boot {
        id: id.to_string(),
        start: convention.from_unix(t.unix, t.nanos),
    })
}

/// 32 hexadecimal digits, dashes between them or not.
pub fn is_boot_id(id: &str) -> bool {
    let digits = id.bytes().filter(|&b| b != b'-').count();
    digits == 32 && id.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit())
}

/// Whether two boot ids are the same, written with dashes or without.
pub fn same_id(a: &str, b: &str) -> bool {
    let plain = |s: &str| -> String {
        s.chars()
            .filter(|&c| c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    plain(a) == plain(b)
}

/// Which boot `-b` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Which {
    /// 0 the last, -1 the one before, 1 the first, 2 the second ...
    Offset(i64),
    Id(String),
}

impl Which {
    /// `-b`'s value: an offset (`0`, `-1`, `+2`, `2`) or a boot id.
    pub fn parse(text: &str) -> Option<Which> {
        if is_boot_id(text) {
            return Some(Which::Id(text.to_string()));
        }
        let digits = text.strip_prefix('+').unwrap_or(text);
        digits.parse::<i64>().ok().map(Which::Offset)
    }

    /// The index in `boots` (oldest first) of the boot named.
    pub fn index(&self, boots: &[Boot]) -> Option<usize> {
        let n = boots.len() as i64;
        let i = match self {
            Which::Id(id) => return boots.iter().position(|b| same_id(&b.id, id)),
            Which::Offset(o) if *o <= 0 => n - 1 + o,
            Which::Offset(o) => o - 1,
        };
        (0..n).contains(&i).then_some(i as usize)
    }
}

/// The window of stamps of the `i`th boot: from its start up to, not
/// including, the next one's (open for the last).
pub fn window(boots: &[Boot], i: usize) -> (Stamp, Option<Stamp>) {
    let end = boots.get(i + 1).map(|next| before(next.start));
    (boots[i].start, end)
}

/// The stamp just before `s` (or `s`, the first of all).
fn before(s: Stamp) -> Stamp {
    match (s.nanos(), s.secs()) {
        (0, 0) => s,
        (0, secs) => Stamp::from_parts(secs - 1, 999_999_999).unwrap_or(s),
        (nanos, secs) => Stamp::from_parts(secs, nanos - 1).unwrap_or(s),
    }
}

/// The first and last stamps of the lines of `dirs` written within
/// `since ..= until`; a directory that cannot be read is skipped, with a
/// warning through `warn`.
pub fn first_and_last(
    dirs: &[PathBuf],
    since: Stamp,
    until: Option<Stamp>,
    warn: &mut dyn FnMut(String),
) -> Option<(Stamp, Stamp)> {
    let mut span: Option<(Stamp, Stamp)> = None;
    let mut add = |s: Stamp| {
        span = Some(match span {
            None => (s, s),
            Some((a, b)) => (a.min(s), b.max(s)),
        })
    };
    let inside = |s: Stamp| s >= since && until.is_none_or(|u| s <= u);
    for dir in dirs {
        let found = (|| -> Result<(Option<Stamp>, Option<Stamp>)> {
            let mut reader = Reader::open(dir)?;
            reader.seek(Position::Since(since))?;
            let mut first = None;
            while let Some(line) = reader.next_line()? {
                if let Some(s) = line.stamp {
                    first = Some(s).filter(|&s| inside(s));
                    break;
                }
            }
            if first.is_none() {
                return Ok((None, None));
            }
            let mut reader = Reader::open(dir)?;
            reader.seek_last(1, Some(since), until, |_| true)?;
            let mut last = None;
            while let Some(line) = reader.next_line()? {
                match line.stamp {
                    Some(s) if inside(s) => last = Some(s),
                    Some(_) => break,
                    None => {}
                }
            }
            Ok((first, last))
        })();
        match found {
            Ok((first, last)) => {
                first.into_iter().chain(last).for_each(&mut add);
            }
            Err(e) => warn(e.to_string()),
        }
    }
    span
}

/// `--list-boots`, as journalctl says it: each boot's offset (0 the
/// last), id (without dashes), and first and last lines' times (its start
/// when it has none).
pub fn write_list(
    boots: &[Boot],
    dirs: &[PathBuf],
    time: &mut TimeWriter,
    warn: &mut dyn FnMut(String),
    out: &mut Vec<u8>,
) {
    let n = boots.len() as i64;
    let mut rows = Vec::new();
    for (i, boot) in boots.iter().enumerate() {
        let (since, until) = window(boots, i);
        let (first, last) = first_and_last(dirs, since, until, warn).unwrap_or((since, since));
        let mut shown = |s: Stamp| {
            let mut t = Vec::new();
            time.write(s, &mut t);
            String::from_utf8_lossy(&t).into_owned()
        };
        let id: String = boot.id.chars().filter(|&c| c != '-').collect();
        rows.push((
            i as i64 + 1 - n,
            id.to_ascii_lowercase(),
            shown(first),
            shown(last),
        ));
    }
    let width = |f: fn(&(i64, String, String, String)) -> usize, min: usize| {
        rows.iter().map(f).max().unwrap_or(0).max(min)
    };
    let w0 = width(|r| r.0.to_string().len(), 3);
    let w2 = width(|r| r.2.len(), 11);
    let _ = writeln!(
        out,
        "{:>w0$} {:32} {:w2$} LAST ENTRY",
        "IDX", "BOOT ID", "FIRST ENTRY"
    );
    for (idx, id, first, last) in rows {
        let _ = writeln!(out, "{idx:>w0$} {id:32} {first:w2$} {last}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "30e5b4fc-b4ef-4c67-a7a7-9d81ef035ad0";

    fn boot(id: &str, secs: i64) -> Boot {
        Boot {
            id: id.to_string(),
            start: Stamp::from_unix(secs, 0),
        }
    }

    #[test]
    fn a_marker_is_klog_reads_own_line_with_a_boot_id_and_a_time() {
        let line = format!(
            "kern.notice klog-read: boot {ID} started\tboot_id={ID} time=2026-12-01T03:00:00.5Z"
        );
        let b = marker(line.as_bytes(), Convention::Tai).unwrap();
        assert_eq!(b.id, ID);
        assert_eq!(b.start, Stamp::from_unix(1_796_094_000, 500_000_000));
        for forged in [
            format!("user.notice sshd: x\tboot_id={ID} time=2026-12-01T03:00:00Z"),
            format!("kern.notice klog-read: x\tboot_id={ID}"),
            "kern.notice klog-read: x\tboot_id=nope time=2026-12-01T03:00:00Z".to_string(),
        ] {
            assert_eq!(marker(forged.as_bytes(), Convention::Tai), None, "{forged}");
        }
    }

    #[test]
    fn boots_are_numbered_as_journalctl_numbers_them() {
        let other = "0123456789abcdef0123456789abcdef";
        let boots = [boot(ID, 100), boot(other, 200)];
        let at = |w: &str| Which::parse(w).and_then(|w| w.index(&boots));
        assert_eq!(at("0"), Some(1));
        assert_eq!(at("-1"), Some(0));
        assert_eq!(at("-2"), None);
        assert_eq!(at("1"), Some(0));
        assert_eq!(at("+2"), Some(1));
        assert_eq!(at("3"), None);
        assert_eq!(at("30E5B4FCB4EF4C67A7A79D81EF035AD0"), Some(0));
        assert_eq!(at(&other.replace('a', "b")), None);
        assert_eq!(Which::parse("x"), None);
        let (start, end) = window(&boots, 0);
        assert_eq!(start, Stamp::from_unix(100, 0));
        assert_eq!(end, Some(Stamp::from_unix(199, 999_999_999)));
        assert_eq!(window(&boots, 1).1, None);
    }
}
