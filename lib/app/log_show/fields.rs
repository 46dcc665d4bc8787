//! A line as the journal's fields, for `-o json`, `-o export` and `-F`,
//! and the names journalctl users know for the reader line's parts:
//!
//! | reader line            | journal field                |
//! |------------------------|------------------------------|
//! | the stamp              | `__REALTIME_TIMESTAMP` (µs)  |
//! | the event time (`event_time`) | `_SOURCE_REALTIME_TIMESTAMP` (µs) |
//! | severity, facility     | `PRIORITY`, `SYSLOG_FACILITY` (numbers) |
//! | tag: app, `[procid]`   | `SYSLOG_IDENTIFIER`, `SYSLOG_PID` |
//! | the message            | `MESSAGE`                    |
//! | `host=` `pid=` `uid=` `gid=` | `_HOSTNAME` `_PID` `_UID` `_GID` |
//! | `msgid=` `time=`       | `SYSLOG_MSGID` `SYSLOG_TIMESTAMP` |
//! | any other `key=`       | `KEY`, uppercase, other than `[A-Z0-9_]` as `_` |
//!
//! A line that is not a reader line is a `MESSAGE` of `PRIORITY` 6 (info).
//! Every value is unescaped: the bytes the reader received.

use std::borrow::Cow;

use crate::format::event_time::UnixTime;
use crate::format::reader_line::{self, RecordView};
use crate::format::stamp::Stamp;
use crate::format::wallclock::Convention;

/// The reader line's keys that journald has its own names for.
const NAMED: [(&str, &str); 6] = [
    ("host", "_HOSTNAME"),
    ("pid", "_PID"),
    ("uid", "_UID"),
    ("gid", "_GID"),
    ("msgid", "SYSLOG_MSGID"),
    ("time", "SYSLOG_TIMESTAMP"),
];

/// The key in the line of a field named either way (`_HOSTNAME`: `host`),
/// if it may be one.
pub fn rill_key(name: &str) -> Option<&str> {
    match NAMED.iter().find(|(_, journal)| *journal == name) {
        Some((key, _)) => Some(key),
        None => reader_line::is_key(name).then_some(name),
    }
}

/// The journal's name of a line's key: valid as a journal field name
/// (`[A-Z0-9_]`, not starting with a digit or `_`, at most 64 bytes).
pub fn journal_name(key: &str) -> Cow<'_, str> {
    if let Some((_, journal)) = NAMED.iter().find(|(k, _)| *k == key) {
        return Cow::Borrowed(journal);
    }
    let valid = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_';
    if key.len() <= 64 && key.bytes().all(valid) && key.as_bytes()[0].is_ascii_uppercase() {
        return Cow::Borrowed(key);
    }
    let mut name: String = key
        .bytes()
        .map(|b| match b.to_ascii_uppercase() {
            b if valid(b) => char::from(b),
            _ => '_',
        })
        .collect();
    if !name.as_bytes()[0].is_ascii_uppercase() {
        name.insert_str(0, "RILL_");
    }
    name.truncate(64);
    Cow::Owned(name)
}

/// The escaped value of the first field named `key` in a reader line's
/// fields (what follows its TAB).
pub fn value_of<'a>(fields: &'a [u8], key: &str) -> Option<&'a [u8]> {
    fields.split(|&b| b == b' ').find_map(|field| {
        let rest = field.strip_prefix(key.as_bytes())?;
        rest.strip_prefix(b"=")
    })
}

/// A line's fields as the journal's, in order; values unescaped. Kept in
/// two buffers reused from line to line: no allocation per field.
#[derive(Default)]
pub struct Entry {
    /// Each field: where its name ends in `names`, its value in `values`.
    ends: Vec<(usize, usize)>,
    names: String,
    values: Vec<u8>,
}

impl Entry {
    /// Fills the entry from a line: its time (of `stamp`, else of the last
    /// stamped line before it), then its parts, then the directory.
    pub fn fill(
        &mut self,
        stamp: Option<Stamp>,
        event: Option<UnixTime>,
        convention: Convention,
        text: &[u8],
        directory: Option<&str>,
    ) {
        self.ends.clear();
        self.names.clear();
        self.values.clear();
        if let Some(stamp) = stamp {
            let utc = convention.to_utc(stamp);
            let micros = utc.unix.max(0) as u64 * 1_000_000 + u64::from(utc.nanos / 1000);
            self.number("__REALTIME_TIMESTAMP", micros);
        }
        // As journald's: when the message was logged, by its own account.
        if let Some(t) = event.filter(|t| t.unix >= 0) {
            let micros = t.unix as u64 * 1_000_000 + u64::from(t.nanos / 1000);
            self.number("_SOURCE_REALTIME_TIMESTAMP", micros);
        }
        match RecordView::parse(text) {
            Ok(view) => {
                self.number("PRIORITY", u64::from(view.priority.severity.code()));
                self.number("SYSLOG_FACILITY", u64::from(view.priority.facility.code()));
                let (app, procid) = match memchr::memchr(b'[', view.tag) {
                    Some(open) if view.tag.last() == Some(&b']') => (
                        &view.tag[..open],
                        Some(&view.tag[open + 1..view.tag.len() - 1]),
                    ),
                    _ => (view.tag, None),
                };
                if app != b"-" {
                    self.escaped("SYSLOG_IDENTIFIER", app);
                }
                if let Some(procid) = procid {
                    self.escaped("SYSLOG_PID", procid);
                }
                self.escaped("MESSAGE", view.message);
                for field in view
                    .fields
                    .into_iter()
                    .flat_map(|f| f.split(|&b| b == b' '))
                {
                    let (key, value) = match memchr::memchr(b'=', field) {
                        Some(eq) => (&field[..eq], &field[eq + 1..]),
                        None => (field, &b""[..]),
                    };
                    let key = String::from_utf8_lossy(key);
                    let key = reader_line::key_from(&key);
                    self.escaped(&journal_name(&key), value);
                }
            }
            Err(_) => {
                self.number("PRIORITY", 6);
                self.raw("MESSAGE", text);
            }
        }
        if let Some(directory) = directory {
            self.raw("RILL_DIRECTORY", directory.as_bytes());
        }
    }

    fn end(&mut self) {
        self.ends.push((self.names.len(), self.values.len()));
    }

    fn number(&mut self, name: &str, n: u64) {
        use std::io::Write;
        self.names.push_str(name);
        let _ = write!(self.values, "{n}");
        self.end();
    }

    fn raw(&mut self, name: &str, value: &[u8]) {
        self.names.push_str(name);
        self.values.extend_from_slice(value);
        self.end();
    }

    /// An escaped part as the bytes it stands for; a part that does not
    /// unescape (a line from elsewhere) as it is.
    fn escaped(&mut self, name: &str, value: &[u8]) {
        self.names.push_str(name);
        match memchr::memchr(b'\\', value) {
            None => self.values.extend_from_slice(value),
            Some(_) => match reader_line::unescape(value) {
                Ok(bytes) => self.values.extend_from_slice(&bytes),
                Err(_) => self.values.extend_from_slice(value),
            },
        }
        self.end();
    }

    /// Each field, name and value, in order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let mut start = (0, 0);
        self.ends.iter().map(move |&(name, value)| {
            let field = (&self.names[start.0..name], &self.values[start.1..value]);
            start = (name, value);
            field
        })
    }

    /// The value of the first field named `name` (the journal's name).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// Appends a JSON object of the entry's fields, as journalctl's
/// `-o json`: each value a string, or, when it is not valid UTF-8, an
/// array of its bytes as numbers.
pub fn write_json(entry: &Entry, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (name, value)) in entry.fields().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_string(name.as_bytes(), out);
        out.push(b':');
        if std::str::from_utf8(value).is_ok() {
            json_string(value, out);
            continue;
        }
        out.push(b'[');
        for (j, &b) in value.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            let digits = [b'0' + b / 100, b'0' + b / 10 % 10, b'0' + b % 10];
            let skip = if b >= 100 {
                0
            } else if b >= 10 {
                1
            } else {
                2
            };
            out.extend_from_slice(&digits[skip..]);
        }
        out.push(b']');
    }
    out.push(b'}');
}

/// A JSON string of valid UTF-8 `text`.
fn json_string(text: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let mut rest = text;
    loop {
        let plain = rest
            .iter()
            .position(|&b| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f)
            .unwrap_or(rest.len());
        out.extend_from_slice(&rest[..plain]);
        let Some(&b) = rest.get(plain) else { break };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
        }
        rest = &rest[plain + 1..];
    }
    out.push(b'"');
}

/// Appends the entry in the journal export format: `NAME=value` lines, a
/// value with a newline or other control byte, or not UTF-8, as `NAME`, a
/// newline, its length (64 bits, little-endian) and its bytes; then the
/// empty line that ends an entry.
pub fn write_export(entry: &Entry, out: &mut Vec<u8>) {
    for (name, value) in entry.fields() {
        out.extend_from_slice(name.as_bytes());
        let text = std::str::from_utf8(value).is_ok() && !value.iter().any(|&b| b < 0x20);
        if text {
            out.push(b'=');
            out.extend_from_slice(value);
        } else {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            out.extend_from_slice(value);
        }
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_take_journal_names_and_back() {
        assert_eq!(journal_name("host"), "_HOSTNAME");
        assert_eq!(journal_name("SUBSYSTEM"), "SUBSYSTEM");
        assert_eq!(journal_name("from"), "FROM");
        assert_eq!(journal_name("x-y.z"), "X_Y_Z");
        assert_eq!(journal_name("3x"), "RILL_3X");
        assert_eq!(journal_name("_"), "RILL__");
        assert_eq!(rill_key("_HOSTNAME"), Some("host"));
        assert_eq!(rill_key("host"), Some("host"));
        assert_eq!(rill_key("a b"), None);
    }

    #[test]
    fn an_entry_has_every_part_unescaped() {
        let mut e = Entry::default();
        let stamp = Stamp::from_unix(1_795_222_390, 123_456_789);
        e.fill(
            Some(stamp),
            None,
            Convention::Tai,
            b"daemon.err my\\x20app[12]: a\\tb \\xff\thost=web\\x201 x.y=2",
            Some("/var/log/rill/syslog"),
        );
        let got: Vec<(&str, &[u8])> = e.fields().collect();
        assert_eq!(
            got,
            [
                ("__REALTIME_TIMESTAMP", &b"1795222390123456"[..]),
                ("PRIORITY", b"3"),
                ("SYSLOG_FACILITY", b"3"),
                ("SYSLOG_IDENTIFIER", b"my app"),
                ("SYSLOG_PID", b"12"),
                ("MESSAGE", b"a\tb \xff"),
                ("_HOSTNAME", b"web 1"),
                ("X_Y", b"2"),
                ("RILL_DIRECTORY", b"/var/log/rill/syslog"),
            ]
        );
        let mut json = Vec::new();
        write_json(&e, &mut json);
        let json = String::from_utf8(json).unwrap();
        assert!(
            json.contains(r#""MESSAGE":[97,9,98,32,255],"_HOSTNAME":"web 1""#),
            "{json}"
        );
        let mut export = Vec::new();
        write_export(&e, &mut export);
        assert!(export.starts_with(b"__REALTIME_TIMESTAMP=1795222390123456\nPRIORITY=3\n"));
        let mut binary = b"MESSAGE\n".to_vec();
        binary.extend_from_slice(&5u64.to_le_bytes());
        binary.extend_from_slice(b"a\tb \xff\n_HOSTNAME=web 1\n");
        assert!(export.windows(binary.len()).any(|w| w == binary));
        assert!(export.ends_with(b"RILL_DIRECTORY=/var/log/rill/syslog\n\n"));
    }

    #[test]
    fn a_plain_line_is_an_info_message() {
        let mut e = Entry::default();
        e.fill(None, None, Convention::Tai, b"just \"text\"\x01", None);
        let mut json = Vec::new();
        write_json(&e, &mut json);
        assert_eq!(json, br#"{"PRIORITY":"6","MESSAGE":"just \"text\"\u0001"}"#);
    }
}
