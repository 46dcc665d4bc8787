//! Log lines as people read them:
//!
//! ```text
//! 2026-11-21T01:53:10.123456+01:00 sshd   Accepted publickey for ann
//! 2026-11-21T01:53:11.000020+01:00 syslog web1 daemon.err ntpd[12]: no server
//! ```
//!
//! the time of the stamp, the directory's short name when several are
//! shown (padded so that the texts line up), and the text. A reader line
//! (syslog-read, klog-read) shows its host (its `host` field) if it has
//! one, its priority, tag and message with the escapes the line format
//! needs undone, and its other fields only when verbose, one per line
//! below it. Nothing reaches the terminal raw that could change it:
//! control characters and bytes that are not UTF-8 are shown escaped,
//! `\r`, `\0`, `\xHH`.
//!
//! Or, for programs, each line as the journal's fields (`fields`): JSON,
//! JSON text sequences (RFC 7464), the journal export format; or the
//! distinct values of one field.

use std::collections::HashSet;
use std::path::{Component, Path};

use super::fields::{self, Entry};
use crate::format::event_time::{self, Memo, UnixTime};
use crate::format::reader_line::{self, RecordView, Severity, hex};
use crate::format::stamp::Stamp;
use crate::format::wallclock::{Convention, TimeWriter};

/// How a line's stamp is shown.
pub enum Stamps {
    /// As a time.
    Time(TimeWriter),
    /// Lines exactly as stored: the TAI64N label, a space and the text as
    /// it is (escaped only on a terminal).
    Raw,
}

/// What is shown of each line (`-o`, `-F`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// RFC 3339 times with microseconds, the host, the priority, tag and
    /// message.
    Short,
    /// As `Short`, times to the second.
    ShortIso,
    /// As `Short`, times as syslog writes them, with microseconds:
    /// `Nov 21 01:53:10.123456`.
    ShortPrecise,
    /// As `Short`, times as Unix seconds with microseconds.
    ShortUnix,
    /// The message alone.
    Cat,
    /// As `Short`, and every field below, one per line.
    Verbose,
    /// A JSON object a line.
    Json,
    /// RFC 7464: each object after an RS (0x1e).
    JsonSeq,
    /// The journal export format.
    Export,
    /// The distinct values of a field (its journal name), each once.
    Values(String),
}

impl Format {
    /// `-o`'s names, as journalctl spells them.
    pub const NAMES: &str = "short short-iso short-iso-precise short-precise short-unix cat verbose json json-seq export";

    pub fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "short" | "short-iso-precise" => Format::Short,
            "short-iso" => Format::ShortIso,
            "short-precise" => Format::ShortPrecise,
            "short-unix" => Format::ShortUnix,
            "cat" => Format::Cat,
            "verbose" => Format::Verbose,
            "json" => Format::Json,
            "json-seq" => Format::JsonSeq,
            "export" => Format::Export,
            _ => return None,
        })
    }

    /// Whether it is for people (and so says `-- No entries --`).
    pub fn for_people(&self) -> bool {
        !matches!(
            self,
            Format::Json | Format::JsonSeq | Format::Export | Format::Values(_)
        )
    }
}

pub struct Layout {
    pub stamps: Stamps,
    pub format: Format,
    /// How the stamps were written (for Unix times).
    pub convention: Convention,
    /// Each directory's name, padded, with its separating space; none when
    /// one directory is shown.
    pub names: Vec<Vec<u8>>,
    /// Each directory's path, for the fields of a line.
    pub paths: Vec<String>,
    /// Colour reader lines by severity (ANSI, as journalctl does).
    pub colour: bool,
    /// Escape raw lines too (they go to a terminal).
    pub escape_raw: bool,
    /// Show when each line was written (its stamp), not the time its
    /// message says it was logged (`event_time`).
    pub written_time: bool,
    /// For legacy event times, which are local.
    local: Memo,
    scratch: Vec<u8>,
    time: Vec<u8>,
    entry: Entry,
    /// The stamp of the last stamped line: the time of those without.
    last_stamp: Option<Stamp>,
    /// The values shown, for `Format::Values`.
    seen: HashSet<Vec<u8>>,
}

impl Layout {
    pub fn new(stamps: Stamps, names: Vec<Vec<u8>>) -> Layout {
        Layout {
            stamps,
            format: Format::Short,
            convention: Convention::Tai,
            names,
            paths: Vec::new(),
            colour: false,
            escape_raw: false,
            written_time: false,
            local: Memo::default(),
            scratch: Vec::new(),
            time: Vec::new(),
            entry: Entry::default(),
            last_stamp: None,
            seen: HashSet::new(),
        }
    }

    /// Appends a line as shown, with its LF (and, verbose, its fields).
    pub fn write(&mut self, source: usize, stamp: Option<Stamp>, text: &[u8], out: &mut Vec<u8>) {
        let time = match &mut self.stamps {
            Stamps::Raw => {
                if let Some(stamp) = stamp {
                    out.extend_from_slice(&stamp.label());
                    out.push(b' ');
                }
                if self.escape_raw {
                    escape_display(text, out);
                } else {
                    out.extend_from_slice(text);
                }
                out.push(b'\n');
                return;
            }
            Stamps::Time(time) => time,
        };
        if matches!(
            self.format,
            Format::Json | Format::JsonSeq | Format::Export | Format::Values(_)
        ) {
            return self.write_fields(source, stamp, text, out);
        }
        let parsed = RecordView::parse(text);
        let event = match (&parsed, self.written_time || self.format == Format::Cat) {
            (
                Ok(RecordView {
                    fields: Some(fields),
                    ..
                }),
                false,
            ) => {
                self.last_stamp = stamp.or(self.last_stamp);
                event_of(self.last_stamp, self.convention, fields, &mut self.local)
            }
            _ => None,
        };
        let shown = event
            .map(|t| self.convention.from_unix(t.unix, t.nanos))
            .or(stamp);
        if let Some(shown) = shown
            && self.format != Format::Cat
        {
            // Written as RFC 3339 first, always: one call, kept inline on
            // the hot path; the other formats are made from it.
            let at = out.len();
            time.write(shown, out);
            if !matches!(self.format, Format::Short | Format::Verbose) {
                self.time.clear();
                self.time.extend_from_slice(&out[at..]);
                out.truncate(at);
                show_time(&self.format, &self.time, shown, self.convention, out);
            }
            out.push(b' ');
        }
        if let Some(name) = self.names.get(source) {
            out.extend_from_slice(name);
        }
        let Ok(view) = parsed else {
            escape_display(text, out);
            out.push(b'\n');
            return;
        };
        let colour = self
            .colour
            .then(|| colour(view.priority.severity))
            .flatten();
        if let Some(on) = colour {
            out.extend_from_slice(on);
        }
        if self.format == Format::Cat {
            self.show_escaped(view.message, out);
        } else {
            if let Some(host) = view.fields.and_then(|f| fields::value_of(f, "host")) {
                self.show_escaped(host, out);
                out.push(b' ');
            }
            self.show_escaped(view.head, out);
        }
        if colour.is_some() {
            out.extend_from_slice(b"\x1b[0m");
        }
        out.push(b'\n');
        if let (Format::Verbose, Some(fields)) = (&self.format, view.fields) {
            for field in fields.split(|&b| b == b' ') {
                out.extend_from_slice(b"    ");
                self.show_escaped(field, out);
                out.push(b'\n');
            }
            // The time shown above is the event time: the other one too.
            if let (Some(stamp), Some(_), Stamps::Time(time)) = (stamp, event, &mut self.stamps) {
                out.extend_from_slice(b"    written=");
                time.write(stamp, out);
                out.push(b'\n');
            }
        }
    }

    /// A line as the journal's fields, for programs (kept out of the
    /// short formats' way).
    #[inline(never)]
    fn write_fields(
        &mut self,
        source: usize,
        stamp: Option<Stamp>,
        text: &[u8],
        out: &mut Vec<u8>,
    ) {
        self.last_stamp = stamp.or(self.last_stamp);
        let path = self.paths.get(source).map(String::as_str);
        let event = match RecordView::parse(text) {
            Ok(RecordView {
                fields: Some(fields),
                ..
            }) => event_of(self.last_stamp, self.convention, fields, &mut self.local),
            _ => None,
        };
        self.entry
            .fill(self.last_stamp, event, self.convention, text, path);
        match &self.format {
            Format::Json => fields::write_json(&self.entry, out),
            Format::JsonSeq => {
                out.push(0x1e);
                fields::write_json(&self.entry, out);
            }
            Format::Export => return fields::write_export(&self.entry, out),
            Format::Values(name) => {
                let Some(value) = self.entry.get(name) else {
                    return;
                };
                if self.seen.contains(value) {
                    return;
                }
                self.seen.insert(value.to_vec());
                escape_display(value, out);
            }
            _ => {}
        }
        out.push(b'\n');
    }

    fn show_escaped(&mut self, escaped: &[u8], out: &mut Vec<u8>) {
        self.scratch.clear();
        reader_line::unescape_for_display(escaped, &mut self.scratch);
        escape_display(&self.scratch, out);
    }
}

/// The event time of a reader line with `fields`, written at `written`.
fn event_of(
    written: Option<Stamp>,
    convention: Convention,
    fields: &[u8],
    local: &mut Memo,
) -> Option<UnixTime> {
    let written = convention.to_utc(written?).unix;
    event_time::of_fields(fields, written, local)
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

#[cold]
/// Shows a time as `format` has it, from the RFC 3339 `rfc3339`
/// (`2026-11-21T01:53:10.123456+01:00`, or a stamp's label when the C
/// library cannot show its time).
fn show_time(
    format: &Format,
    rfc3339: &[u8],
    stamp: Stamp,
    convention: Convention,
    out: &mut Vec<u8>,
) {
    let calendar = rfc3339.len() > 26 && rfc3339[0] != b'@';
    match format {
        Format::ShortUnix => {
            let utc = convention.to_utc(stamp);
            let micros = utc.nanos / 1000;
            out.extend_from_slice(format!("{}.{micros:06}", utc.unix).as_bytes());
        }
        Format::ShortIso if calendar => {
            out.extend_from_slice(&rfc3339[..19]);
            out.extend_from_slice(&rfc3339[26..]);
        }
        Format::ShortPrecise if calendar => {
            let month = std::str::from_utf8(&rfc3339[5..7])
                .ok()
                .and_then(|m| m.parse::<usize>().ok())
                .and_then(|m| MONTHS.get(m.wrapping_sub(1)));
            match month {
                Some(month) => {
                    out.extend_from_slice(*month);
                    out.push(b' ');
                    out.extend_from_slice(&rfc3339[8..10]);
                    out.push(b' ');
                    out.extend_from_slice(&rfc3339[11..26]);
                }
                None => out.extend_from_slice(rfc3339),
            }
        }
        _ => out.extend_from_slice(rfc3339),
    }
}

/// journalctl's colours: bold red for crit and worse, red for err, bold
/// yellow for warning, bold for notice, grey for debug.
fn colour(severity: Severity) -> Option<&'static [u8]> {
    match severity {
        Severity::EMERG | Severity::ALERT | Severity::CRIT => Some(b"\x1b[1;31m"),
        Severity::ERR => Some(b"\x1b[31m"),
        Severity::WARNING => Some(b"\x1b[1;33m"),
        Severity::NOTICE => Some(b"\x1b[1m"),
        Severity::INFO => None,
        _ => Some(b"\x1b[90m"),
    }
}

/// Appends `bytes` safe to show on a terminal: printable UTF-8 and TAB as
/// they are; CR, NUL as `\r`, `\0`; every other control character (C0, DEL,
/// C1) and every byte that is not valid UTF-8 as `\xHH`.
pub fn escape_display(bytes: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < bytes.len() {
        let plain = bytes[i..]
            .iter()
            .position(|&b| !(b == b'\t' || (0x20..0x7f).contains(&b)))
            .unwrap_or(bytes.len() - i);
        out.extend_from_slice(&bytes[i..i + plain]);
        i += plain;
        let Some(&b) = bytes.get(i) else { break };
        if b < 0x80 {
            match b {
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\n' => out.extend_from_slice(b"\\n"),
                0 => out.extend_from_slice(b"\\0"),
                _ => hex(b, out),
            }
            i += 1;
            continue;
        }
        let width = match b {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 1,
        };
        let char = bytes
            .get(i..i + width)
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.chars().next());
        match char {
            Some(c) if !c.is_control() => out.extend_from_slice(&bytes[i..i + width]),
            Some(_) => bytes[i..i + width].iter().for_each(|&b| hex(b, out)),
            None => {
                hex(b, out);
                i += 1;
                continue;
            }
        }
        i += width;
    }
}

/// Names that tell directories apart, shortest first: each path's last
/// component, or as many of its last components as it takes to differ
/// from every other path's. Padded to the longest, each with a space.
pub fn short_names(paths: &[&Path]) -> Vec<Vec<u8>> {
    let parts: Vec<Vec<String>> = paths
        .iter()
        .map(|p| {
            let normal: Vec<String> = p
                .components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect();
            if normal.is_empty() {
                vec![p.to_string_lossy().into_owned()]
            } else {
                normal
            }
        })
        .collect();
    let suffix = |p: &[String], k: usize| p[p.len().saturating_sub(k)..].join("/");
    let names: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, mine)| {
            let unique = |k: usize| {
                parts.iter().enumerate().all(|(j, other)| {
                    j == i || other == mine || suffix(other, k) != suffix(mine, k)
                })
            };
            let k = (1..=mine.len()).find(|&k| unique(k)).unwrap_or(mine.len());
            suffix(mine, k)
        })
        .collect();
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    names
        .iter()
        .map(|n| {
            let mut out = Vec::new();
            escape_display(n.as_bytes(), &mut out);
            out.resize(out.len() + width - n.chars().count() + 1, b' ');
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::wallclock::{Convention, Zone};

    fn shown(layout: &mut Layout, source: usize, text: &[u8]) -> String {
        let mut out = Vec::new();
        let stamp = Stamp::from_unix(1_795_222_390, 123_456_789);
        layout.write(source, Some(stamp), text, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn utc() -> Stamps {
        Stamps::Time(TimeWriter::new(Zone::Utc, Convention::Tai))
    }

    #[test]
    fn plain_and_reader_lines() {
        let mut l = Layout::new(utc(), Vec::new());
        assert_eq!(
            shown(&mut l, 0, b"hello\tworld"),
            "2026-11-21T00:53:10.123456Z hello\tworld\n"
        );
        let line =
            b"daemon.err my\\x20app[12]: C:\\\\x \\x1b[31m \\n\\xff\\tend\thost=web\\x201 uid=0";
        assert_eq!(
            shown(&mut l, 0, line),
            "2026-11-21T00:53:10.123456Z web 1 daemon.err my app[12]: C:\\x \\x1b[31m \\n\\xff\tend\n"
        );
        l.format = Format::Verbose;
        l.colour = true;
        assert_eq!(
            shown(&mut l, 0, b"kern.crit kernel: hot\tA=1 b=x\\x20y"),
            "2026-11-21T00:53:10.123456Z \x1b[1;31mkern.crit kernel: hot\x1b[0m\n    A=1\n    b=x y\n"
        );
        assert_eq!(
            shown(&mut l, 0, b"user.info app: fine"),
            "2026-11-21T00:53:10.123456Z user.info app: fine\n"
        );
    }

    #[test]
    fn short_formats_as_journalctl_names_them() {
        let line = b"daemon.err ntpd[12]: no server\thost=web1 uid=0";
        let mut l = Layout::new(utc(), Vec::new());
        let mut show = |format: Format| {
            l.format = format;
            shown(&mut l, 0, line)
        };
        let tail = " web1 daemon.err ntpd[12]: no server\n";
        assert_eq!(
            show(Format::ShortIso),
            format!("2026-11-21T00:53:10Z{tail}")
        );
        assert_eq!(
            show(Format::ShortPrecise),
            format!("Nov 21 00:53:10.123456{tail}")
        );
        assert_eq!(show(Format::ShortUnix), format!("1795222390.123456{tail}"));
        assert_eq!(show(Format::Cat), "no server\n");
        assert_eq!(
            show(Format::Values("_HOSTNAME".into())),
            "web1\n",
            "a value is shown once"
        );
        assert_eq!(show(Format::Values("_HOSTNAME".into())), "");
        assert_eq!(show(Format::Values("MSGID".into())), "");
        let plain = |l: &mut Layout, f| {
            l.format = f;
            shown(l, 0, b"plain")
        };
        assert_eq!(plain(&mut l, Format::Cat), "plain\n");
        assert_eq!(
            plain(&mut l, Format::JsonSeq),
            "\x1e{\"__REALTIME_TIMESTAMP\":\"1795222390123456\",\"PRIORITY\":\"6\",\"MESSAGE\":\"plain\"}\n"
        );
    }

    #[test]
    fn a_line_shows_its_event_time_unless_told_the_written_one() {
        let kernel = b"kern.info kernel: up\tseq=1 boot=5.140900 time=2026-11-21T00:40:00.5Z";
        let mut l = Layout::new(utc(), Vec::new());
        assert_eq!(
            shown(&mut l, 0, kernel),
            "2026-11-21T00:40:00.500000Z kern.info kernel: up\n"
        );
        let legacy = b"user.info app: x\tfmt=rfc3164 time3164=11-21T00:50:00 zone=UTC";
        assert_eq!(
            shown(&mut l, 0, legacy),
            "2026-11-21T00:50:00.000000Z user.info app: x\n"
        );
        l.format = Format::Verbose;
        assert_eq!(
            shown(&mut l, 0, kernel),
            "2026-11-21T00:40:00.500000Z kern.info kernel: up\n    seq=1\n    boot=5.140900\n    \
             time=2026-11-21T00:40:00.5Z\n    written=2026-11-21T00:53:10.123456Z\n"
        );
        l.format = Format::Short;
        l.written_time = true;
        assert_eq!(
            shown(&mut l, 0, kernel),
            "2026-11-21T00:53:10.123456Z kern.info kernel: up\n"
        );
        l.written_time = false;
        l.format = Format::Json;
        let json = shown(&mut l, 0, kernel);
        assert!(
            json.starts_with(
                "{\"__REALTIME_TIMESTAMP\":\"1795222390123456\",\
                 \"_SOURCE_REALTIME_TIMESTAMP\":\"1795221600500000\","
            ),
            "{json}"
        );
    }

    #[test]
    fn nothing_raw_reaches_a_terminal() {
        let mut l = Layout::new(utc(), Vec::new());
        let nasty =
            b"a\x1b]0;title\x07 \r\0 \x7f \xc2\x9b \xff\xfe caf\xc3\xa9 \xe2\x82 \xf0\x9f\x98\x80";
        let out = shown(&mut l, 0, nasty);
        assert!(
            out.ends_with(
                " a\\x1b]0;title\\x07 \\r\\0 \\x7f \\xc2\\x9b \\xff\\xfe café \\xe2\\x82 😀\n"
            ),
            "{out}"
        );
        // A reader line from elsewhere may hold raw bytes too.
        let out = shown(&mut l, 0, b"user.err app: \x1b[2J\\x1b");
        assert!(out.ends_with("user.err app: \\x1b[2J\\x1b\n"), "{out}");
        let mut raw = Layout::new(Stamps::Raw, Vec::new());
        let mut out = Vec::new();
        raw.write(0, Some(Stamp::ZERO), b"\x1b[2J", &mut out);
        assert_eq!(out, b"@000000000000000000000000 \x1b[2J\n");
        raw.escape_raw = true;
        out.clear();
        raw.write(0, None, b"\x1b[2J", &mut out);
        assert_eq!(out, b"\\x1b[2J\n");
    }

    #[test]
    fn names_tell_directories_apart() {
        let paths = [
            Path::new("/var/log/rill/sshd"),
            Path::new("/var/log/rill/cron/"),
            Path::new("/etc/sv/a/log/main"),
            Path::new("/etc/sv/b/log/main"),
            Path::new("."),
        ];
        let names: Vec<String> = short_names(&paths)
            .into_iter()
            .map(|n| String::from_utf8(n).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "sshd       ",
                "cron       ",
                "a/log/main ",
                "b/log/main ",
                ".          "
            ]
        );
        let mut l = Layout::new(utc(), short_names(&paths[..2]));
        assert_eq!(
            shown(&mut l, 1, b"tick"),
            "2026-11-21T00:53:10.123456Z cron tick\n"
        );
    }
}
