//! The reader line: one log message as one line of text, written by the
//! readers (syslog-read, klog-read) and parsed back, losslessly, by the
//! programs that forward and show logs. See syslog-read(8) and
//! klog-read(8) for every field; `time=` is the event time (`TIME`).
//!
//! ```text
//! local3.warning myapp[1234]: the message text<TAB>host=web1 pid=1234 uid=0
//! ```
//!
//! - the priority, `facility.severity` by name;
//! - the tag: an app name (`-` when there is none) and, in brackets, a
//!   process id, then `:` and a space;
//! - the message, escaped;
//! - optionally a TAB and the other fields, `key=value`, separated by
//!   single spaces, in the order written. Lowercase keys are rill's;
//!   uppercase keys carry a kernel record's dictionary.
//!
//! Escaping makes any bytes one line of valid, printable UTF-8 and is undone
//! exactly: `\\` for a backslash, `\n` `\r` `\t` `\0` for LF, CR, TAB, NUL,
//! `\xHH` for every other control byte (C0, DEL, and the C1 controls as
//! their UTF-8 bytes) and for every byte that is not valid UTF-8. In the tag
//! and in field values, space is `\x20` too, and in the tag `:`, `[`, `]`
//! are `\x3a`, `\x5b`, `\x5d`, so that neither can be misread.

use std::fmt;

/// The key of a message's own time, its event time: a full RFC 3339
/// timestamp. syslog-read keeps an RFC 5424 sender's (or an ISO one in a
/// legacy header) exactly as sent; klog-read writes each kernel record's,
/// `2026-12-01T03:00:00.123456Z` (UTC, microseconds). How it is read:
/// `event_time`.
pub const TIME: &str = "time";
/// The key of an RFC 3164 timestamp, `MM-DDThh:mm:ss[.fraction]`: no year,
/// no zone (`event_time` infers them).
pub const TIME_3164: &str = "time3164";
/// The key of the zone a network device named after its legacy timestamp.
pub const ZONE: &str = "zone";
/// The key of a boot's id (`/proc/sys/kernel/random/boot_id`), in the boot
/// marker klog-read writes when it starts reading a boot: the line's
/// `time=` is when that boot started.
pub const BOOT_ID: &str = "boot_id";

/// A syslog facility, 0 to 23.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Facility(u8);

/// A syslog severity, 0 (emerg) to 7 (debug).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Severity(u8);

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "security", "console", "cron2", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

impl Facility {
    // RFC 5424's codes, named as `FACILITIES` names them.
    pub const KERN: Facility = Facility(0);
    pub const USER: Facility = Facility(1);
    pub const MAIL: Facility = Facility(2);
    pub const DAEMON: Facility = Facility(3);
    pub const AUTH: Facility = Facility(4);
    pub const SYSLOG: Facility = Facility(5);
    pub const LPR: Facility = Facility(6);
    pub const NEWS: Facility = Facility(7);
    pub const UUCP: Facility = Facility(8);
    pub const CRON: Facility = Facility(9);
    pub const AUTHPRIV: Facility = Facility(10);
    pub const FTP: Facility = Facility(11);
    pub const NTP: Facility = Facility(12);
    pub const SECURITY: Facility = Facility(13);
    pub const CONSOLE: Facility = Facility(14);
    pub const CRON2: Facility = Facility(15);
    pub const LOCAL0: Facility = Facility(16);
    pub const LOCAL1: Facility = Facility(17);
    pub const LOCAL2: Facility = Facility(18);
    pub const LOCAL3: Facility = Facility(19);
    pub const LOCAL4: Facility = Facility(20);
    pub const LOCAL5: Facility = Facility(21);
    pub const LOCAL6: Facility = Facility(22);
    pub const LOCAL7: Facility = Facility(23);

    pub fn new(code: u8) -> Option<Facility> {
        (usize::from(code) < FACILITIES.len()).then_some(Facility(code))
    }

    pub fn code(self) -> u8 {
        self.0
    }

    pub fn name(self) -> &'static str {
        FACILITIES[usize::from(self.0)]
    }

    /// A name, or its other common spellings (`security`'s `audit` ...).
    pub fn from_name(name: &str) -> Option<Facility> {
        let name = match name {
            "auth-priv" | "authpriv" => "authpriv",
            "audit" | "security" => "security",
            "alert" | "console" => "console",
            "clock" | "cron2" => "cron2",
            "kernel" => "kern",
            n => n,
        };
        FACILITIES
            .iter()
            .position(|&f| f == name)
            .map(|i| Facility(i as u8))
    }
}

impl Severity {
    // RFC 5424's codes, named as `SEVERITIES` names them.
    pub const EMERG: Severity = Severity(0);
    pub const ALERT: Severity = Severity(1);
    pub const CRIT: Severity = Severity(2);
    pub const ERR: Severity = Severity(3);
    pub const WARNING: Severity = Severity(4);
    pub const NOTICE: Severity = Severity(5);
    pub const INFO: Severity = Severity(6);
    pub const DEBUG: Severity = Severity(7);

    /// The severity in a PRI value: its low three bits, whatever the
    /// facility above them.
    pub fn of_pri(pri: u32) -> Severity {
        Severity((pri & 7) as u8)
    }

    pub fn new(code: u8) -> Option<Severity> {
        (code < 8).then_some(Severity(code))
    }

    pub fn code(self) -> u8 {
        self.0
    }

    pub fn name(self) -> &'static str {
        SEVERITIES[usize::from(self.0)]
    }

    /// A name, its common abbreviations (`warn`, `error`, `emergency` ...),
    /// or a digit.
    pub fn from_name(name: &str) -> Option<Severity> {
        let name = match name {
            "panic" | "emergency" => "emerg",
            "critical" => "crit",
            "error" => "err",
            "warn" => "warning",
            "informational" => "info",
            n => n,
        };
        if let Some(i) = SEVERITIES.iter().position(|&s| s == name) {
            return Some(Severity(i as u8));
        }
        name.parse::<u8>().ok().and_then(Severity::new)
    }
}

/// Facility and severity together, as a syslog PRI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Priority {
    pub facility: Facility,
    pub severity: Severity,
}

impl Priority {
    /// What RFC 3164 assigns a message without a valid PRI: user.notice.
    pub const DEFAULT: Priority = Priority {
        facility: Facility::USER,
        severity: Severity::NOTICE,
    };

    /// From a PRI value, facility * 8 + severity (0 to 191).
    pub fn from_pri(pri: u16) -> Option<Priority> {
        let facility = Facility::new(u8::try_from(pri / 8).ok()?)?;
        Some(Priority {
            facility,
            severity: Severity::of_pri(u32::from(pri)),
        })
    }

    pub fn pri(self) -> u16 {
        u16::from(self.facility.0) * 8 + u16::from(self.severity.0)
    }

    /// `facility.severity`.
    pub fn parse(text: &str) -> Option<Priority> {
        // By byte: a char search costs more than the rest, on every line.
        let dot = text.bytes().position(|b| b == b'.')?;
        let (facility, severity) = (&text[..dot], &text[dot + 1..]);
        Some(Priority {
            facility: Facility::from_name(facility)?,
            severity: Severity::from_name(severity)?,
        })
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.facility.name(), self.severity.name())
    }
}

/// One message: what a reader writes as a line and a forwarder reads back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub priority: Priority,
    /// The app name (RFC 5424 APP-NAME, RFC 3164 TAG); empty when none.
    pub app: Vec<u8>,
    /// The process id (RFC 5424 PROCID, the `[pid]` of an RFC 3164 tag).
    pub procid: Vec<u8>,
    /// The message, exactly.
    pub message: Vec<u8>,
    /// The other fields, in order: (key, value).
    pub fields: Vec<(String, Vec<u8>)>,
}

/// Why a line is not a reader line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Record {
    pub fn new(priority: Priority, message: &[u8]) -> Record {
        Record {
            priority,
            app: Vec::new(),
            procid: Vec::new(),
            message: message.to_vec(),
            fields: Vec::new(),
        }
    }

    /// The value of the first field named `key`.
    pub fn field(&self, key: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// Adds a field; a `key` that is not `is_key` is made one
    /// (`key_from`).
    pub fn push_field(&mut self, key: &str, value: impl AsRef<[u8]>) {
        self.fields
            .push((key_from(key).into_owned(), value.as_ref().to_vec()));
    }

    /// Appends the line, without its LF, to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut line = LineWriter::new(out, self.priority, &self.app, &self.procid, &self.message);
        for (key, value) in &self.fields {
            line.field(key, value);
        }
    }

    pub fn to_line(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.message.len() + 64);
        self.write(&mut out);
        out
    }

    /// Parses a line (without its LF) written by `write`.
    pub fn parse(line: &[u8]) -> Result<Record, ParseError> {
        let RecordView {
            priority,
            tag,
            message,
            fields: trailer,
            ..
        } = RecordView::parse(line)?;
        let (app, procid) = match tag.iter().position(|&b| b == b'[') {
            Some(open) if tag.last() == Some(&b']') => {
                (&tag[..open], &tag[open + 1..tag.len() - 1])
            }
            Some(_) => return Err(ParseError("bad tag")),
            None => (tag, &b""[..]),
        };
        let app = if app == b"-" {
            Vec::new()
        } else {
            unescape(app)?
        };
        let mut record = Record {
            priority,
            app,
            procid: unescape(procid)?,
            message: unescape(message)?,
            fields: Vec::new(),
        };
        if let Some(trailer) = trailer {
            for field in trailer.split(|&b| b == b' ') {
                let eq = memchr::memchr(b'=', field).ok_or(ParseError("field without ="))?;
                let key = std::str::from_utf8(&field[..eq]).map_err(|_| ParseError("bad key"))?;
                if key.is_empty() {
                    return Err(ParseError("empty key"));
                }
                // What the writer would not write is no line of ours.
                if !is_key(key) {
                    return Err(ParseError("bad key"));
                }
                record
                    .fields
                    .push((key.to_string(), unescape(&field[eq + 1..])?));
            }
        }
        Ok(record)
    }
}

/// A reader line cut into its parts, nothing unescaped or copied: enough
/// to filter and show many lines fast. Lines that are not reader lines
/// (plain service output) fail here as in `Record::parse`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub priority: Priority,
    /// The line before its fields: `facility.severity tag: message`.
    pub head: &'a [u8],
    /// `app[procid]`, escaped.
    pub tag: &'a [u8],
    /// The message, escaped.
    pub message: &'a [u8],
    /// What follows the TAB, escaped fields separated by spaces.
    pub fields: Option<&'a [u8]>,
}

impl<'a> RecordView<'a> {
    pub fn parse(line: &'a [u8]) -> Result<RecordView<'a>, ParseError> {
        let (priority, after) = RecordView::priority(line)?;
        let space = line.len() - after.len() - 1;
        let (head, rest, fields) = match memchr::memchr(b'\t', after) {
            Some(i) => (&line[..space + 1 + i], &after[..i], Some(&after[i + 1..])),
            None => (line, after, None),
        };
        let colon = find_colon_space(rest).ok_or(ParseError("no tag"))?;
        Ok(RecordView {
            priority,
            head,
            tag: &rest[..colon],
            message: &rest[colon + 2..],
            fields,
        })
    }

    /// The priority of a line, and what follows it and its space, without
    /// looking further: what `parse` starts with. A line can have one and
    /// still not be a reader line.
    pub fn priority(line: &'a [u8]) -> Result<(Priority, &'a [u8]), ParseError> {
        // The priority ends at the first space, which must come before the
        // first tab (the fields).
        let space = match memchr::memchr2(b' ', b'\t', line) {
            Some(i) if line[i] == b' ' => i,
            _ => return Err(ParseError("no priority")),
        };
        let priority = std::str::from_utf8(&line[..space])
            .ok()
            .and_then(Priority::parse)
            .ok_or(ParseError("bad priority"))?;
        Ok((priority, &line[space + 1..]))
    }

    /// The value of the first field named `key`, still escaped (`unescape`
    /// gives its octets).
    pub fn field(&self, key: &str) -> Option<&'a [u8]> {
        let key = key.as_bytes();
        self.fields?.split(|&b| b == b' ').find_map(|field| {
            let value = field.strip_prefix(key)?;
            value.strip_prefix(b"=")
        })
    }
}

/// Where `: ` first is (a memmem finder costs more to build than this
/// takes on a line's head).
fn find_colon_space(text: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b':', text).find(|&i| text.get(i + 1) == Some(&b' '))
}

/// The app of an escaped tag `app[procid]`.
pub fn app_of(tag: &[u8]) -> &[u8] {
    match memchr::memchr(b'[', tag) {
        Some(open) if tag.last() == Some(&b']') => &tag[..open],
        _ => tag,
    }
}

/// The procid of an escaped tag `app[procid]`, if it has one.
pub fn procid_of(tag: &[u8]) -> Option<&[u8]> {
    match memchr::memchr(b'[', tag) {
        Some(open) if tag.last() == Some(&b']') => Some(&tag[open + 1..tag.len() - 1]),
        _ => None,
    }
}

/// Undoes, for people to read, the escapes that only the line format
/// needs: `\\`, `\t`, and `\xHH` of printable ASCII (a space or `:` in a
/// tag or value). The escapes of what must never reach a terminal raw
/// (`\n`, `\r`, `\0`, other `\xHH`: control bytes, invalid UTF-8) stay as
/// written. Other bytes are copied as they are: a line from elsewhere may
/// hold anything, so the caller still makes the result safe to show.
pub fn unescape_for_display(text: &[u8], out: &mut Vec<u8>) {
    let printable = |d: &[u8]| {
        std::str::from_utf8(d)
            .ok()
            .and_then(|d| u8::from_str_radix(d, 16).ok())
            .filter(|b| (0x20..0x7f).contains(b))
    };
    let mut i = 0;
    while let Some(at) = memchr::memchr(b'\\', &text[i..]) {
        out.extend_from_slice(&text[i..i + at]);
        i += at;
        let (shown, used) = match text.get(i + 1) {
            Some(b'\\') => (Some(b'\\'), 2),
            Some(b't') => (Some(b'\t'), 2),
            Some(b'x') => match text.get(i + 2..i + 4).and_then(printable) {
                Some(b) => (Some(b), 4),
                None => (None, 1),
            },
            _ => (None, 1),
        };
        match shown {
            Some(b) => out.push(b),
            None => out.push(b'\\'),
        }
        i += used;
    }
    out.extend_from_slice(&text[i..]);
}

/// Writes a line from borrowed parts, exactly as `Record::write` does: for
/// a reader that has the parts of a message at hand and must not allocate
/// a `Record` for each one.
pub struct LineWriter<'o> {
    out: &'o mut Vec<u8>,
    fields: usize,
}

impl<'o> LineWriter<'o> {
    /// Appends the priority, the tag and the message to `out`.
    pub fn new(
        out: &'o mut Vec<u8>,
        priority: Priority,
        app: &[u8],
        procid: &[u8],
        message: &[u8],
    ) -> LineWriter<'o> {
        write_priority(priority, out);
        match app {
            b"" => out.push(b'-'),
            b"-" => hex(b'-', out), // a real app named `-`
            app => escape(app, Context::Tag, out),
        }
        if !procid.is_empty() {
            out.push(b'[');
            escape(procid, Context::Tag, out);
            out.push(b']');
        }
        out.extend_from_slice(b": ");
        escape(message, Context::Message, out);
        LineWriter { out, fields: 0 }
    }

    /// `new` for a tag and message that lie in one slice as a line has
    /// them, as a parse finds them in most messages: `tagged` begins with
    /// the very bytes `tag` was found at the start of (or a copy of them),
    /// and the message follows. The tag goes out as it is; the message is
    /// checked, and written at once when none of it is escaped.
    pub fn with_plain_tag(
        out: &'o mut Vec<u8>,
        priority: Priority,
        tag: PlainTag,
        tagged: &[u8],
    ) -> LineWriter<'o> {
        write_priority(priority, out);
        let message = tagged.get(tag.len..).unwrap_or_default();
        match plain_blocks_in(message, Context::Message) {
            (true, _) => out.extend_from_slice(tagged),
            (false, plain) => {
                out.extend_from_slice(&tagged[..tag.len]);
                escape_parts(message, plain, Context::Message, out);
            }
        }
        LineWriter { out, fields: 0 }
    }

    /// Appends a field; a `key` that is not `is_key` is made one
    /// (`key_from`), so that every line written parses back.
    pub fn field(&mut self, key: &str, value: &[u8]) {
        self.out.push(if self.fields == 0 { b'\t' } else { b' ' });
        self.fields += 1;
        write_field(key, value, self.out);
    }

    /// `field` for a key checked when compiled.
    #[inline(always)]
    pub fn known_field(&mut self, key: Key, value: &[u8]) {
        self.out.push(if self.fields == 0 { b'\t' } else { b' ' });
        self.fields += 1;
        self.out.extend_from_slice(key.0.as_bytes());
        self.out.push(b'=');
        escape(value, Context::Value, self.out);
    }

    /// Appends a whole field known when compiled.
    #[inline(always)]
    pub fn fixed_field(&mut self, field: FixedField) {
        self.out.push(if self.fields == 0 { b'\t' } else { b' ' });
        self.fields += 1;
        self.out.extend_from_slice(field.0.as_bytes());
    }

    /// Appends fields written before.
    pub fn fields(&mut self, fields: &FieldsText) {
        let Some(text) = fields.text.get(1..) else {
            return;
        };
        self.out.push(if self.fields == 0 { b'\t' } else { b' ' });
        self.fields += fields.count;
        self.out.extend_from_slice(text);
    }
}

/// The tag at the start of a slice that `LineWriter::with_plain_tag`
/// takes, `app[procid]: ` or `app: `, found to go out as it is: none of it
/// escaped, an app that is neither empty nor `-`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlainTag {
    /// Where the message begins, after the tag's `: `.
    len: usize,
}

impl PlainTag {
    /// The tag of `tagged`, whose app is its first `app_len` bytes, then
    /// a PROCID of `procid_len` in brackets if that is not 0; none if it
    /// is not there or would be escaped.
    pub fn of(tagged: &[u8], app_len: usize, procid_len: usize) -> Option<PlainTag> {
        let colon = match procid_len {
            0 => app_len,
            n => app_len.checked_add(n)?.checked_add(2)?,
        };
        let len = colon.checked_add(2)?;
        let tag = tagged.get(..len)?;
        let app = &tag[..app_len];
        let procid = match procid_len {
            0 => &b""[..],
            n => &tag[app_len + 1..app_len + 1 + n],
        };
        let plain = &tag[colon..] == b": "
            && (procid_len == 0 || (tag[app_len] == b'[' && tag[colon - 1] == b']'))
            && !matches!(app, b"" | b"-")
            && tag_plain(app)
            && tag_plain(procid);
        plain.then_some(PlainTag { len })
    }
}

/// `facility.severity ` as a line begins.
fn write_priority(priority: Priority, out: &mut Vec<u8>) {
    // Copied whole, a fixed size, and cut: no call to copy a few bytes.
    let (head, len) = &PRIORITY_HEADS[usize::from(priority.pri())];
    let start = out.len();
    out.extend_from_slice(head);
    out.truncate(start + usize::from(*len));
}

/// The longest `facility.severity `, and more: the size each is padded to.
const HEAD_MAX: usize = 24;

/// Every priority's `facility.severity `, by PRI, padded, and its length.
static PRIORITY_HEADS: [([u8; HEAD_MAX], u8); 192] = {
    let mut heads = [([0u8; HEAD_MAX], 0u8); 192];
    let mut pri = 0;
    while pri < 192 {
        let (facility, severity) = (
            FACILITIES[pri / 8].as_bytes(),
            SEVERITIES[pri % 8].as_bytes(),
        );
        let head = &mut heads[pri];
        let mut i = 0;
        while i < facility.len() {
            head.0[i] = facility[i];
            i += 1;
        }
        head.0[i] = b'.';
        let mut j = 0;
        while j < severity.len() {
            head.0[i + 1 + j] = severity[j];
            j += 1;
        }
        head.0[i + 1 + j] = b' ';
        head.1 = (i + j + 2) as u8;
        pri += 1;
    }
    heads
};

/// Fields written once for many lines (a sender's, the same for each of
/// its messages), each as `LineWriter::field` writes it.
#[derive(Default)]
pub struct FieldsText {
    /// Each field after a space.
    text: Vec<u8>,
    count: usize,
}

impl FieldsText {
    pub fn clear(&mut self) {
        self.text.clear();
        self.count = 0;
    }

    pub fn field(&mut self, key: &str, value: &[u8]) {
        self.text.push(b' ');
        self.count += 1;
        write_field(key, value, &mut self.text);
    }
}

/// `key=value`, the key made one if it is not (`key_from`), the value
/// escaped.
fn write_field(key: &str, value: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(key_from(key).as_bytes());
    out.push(b'=');
    escape(value, Context::Value, out);
}

/// Whether `key` is a field key: one or more ASCII letters, digits, `_`,
/// `-` and `.`. The one definition, for writing and parsing alike.
pub fn is_key(key: &str) -> bool {
    is_key_const(key.as_bytes())
}

const fn is_key_byte(b: u8) -> bool {
    KEY_BYTES[b as usize]
}

/// A field key known when compiled, checked then: written as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key(&'static str);

impl Key {
    /// Fails to compile, as a constant, unless `key` `is_key`.
    pub const fn new(key: &'static str) -> Key {
        assert!(is_key_const(key.as_bytes()), "not a field key");
        Key(key)
    }
}

/// `is_key` of bytes, also where a constant is checked.
const fn is_key_const(key: &[u8]) -> bool {
    let mut i = 0;
    while i < key.len() {
        if !is_key_byte(key[i]) {
            return false;
        }
        i += 1;
    }
    !key.is_empty()
}

/// A whole field known when compiled, `key=value`, checked then: its key
/// `is_key` and its value needs no escaping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedField(&'static str);

impl FixedField {
    /// Fails to compile, as a constant, unless `field` is such a field.
    pub const fn new(field: &'static str) -> FixedField {
        let bytes = field.as_bytes();
        let mut i = 0;
        while i < bytes.len() && bytes[i] != b'=' {
            i += 1;
        }
        assert!(i < bytes.len(), "a field is key=value");
        assert!(is_key_const(bytes.split_at(i).0), "not a field key");
        i += 1;
        while i < bytes.len() {
            assert!(
                is_plain(bytes[i], Context::Value),
                "a fixed value needs no escaping"
            );
            i += 1;
        }
        FixedField(field)
    }
}

/// `is_key_byte` as a table: every field written asks it of its key.
static KEY_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.');
        b += 1;
    }
    table
};

/// `key` as a field key: itself when `is_key`; else each character that
/// may not be in a key replaced by `_` (and `_` for an empty key).
pub fn key_from(key: &str) -> std::borrow::Cow<'_, str> {
    if is_key(key) {
        return key.into();
    }
    if key.is_empty() {
        return "_".into();
    }
    key.chars()
        .map(|c| match u8::try_from(c) {
            Ok(b) if is_key_byte(b) => c,
            _ => '_',
        })
        .collect::<String>()
        .into()
}

/// Where escaped text goes, which decides what else must be escaped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Message,
    Tag,
    Value,
}

/// Escapes `bytes` for the message part of a line.
pub fn escape_message(bytes: &[u8], out: &mut Vec<u8>) {
    escape(bytes, Context::Message, out);
}

/// Text that is plain throughout, as most is, goes out whole here, inlined
/// where the context is known; the rest through `escape_parts`.
#[inline(always)]
fn escape(bytes: &[u8], context: Context, out: &mut Vec<u8>) {
    match plain_blocks_in(bytes, context) {
        (true, _) => out.extend_from_slice(bytes),
        (false, plain) => escape_parts(bytes, plain, context, out),
    }
}

/// `bytes`, of which the first `plain` are known plain, escaped.
#[inline(never)]
fn escape_parts(bytes: &[u8], plain: usize, context: Context, out: &mut Vec<u8>) {
    out.extend_from_slice(&bytes[..plain]);
    let mut rest = &bytes[plain..];
    loop {
        // Runs of printable ASCII that stand for themselves go out whole.
        let plain = plain_prefix(rest, context);
        out.extend_from_slice(&rest[..plain]);
        rest = &rest[plain..];
        let Some(&first) = rest.first() else {
            return;
        };
        if first.is_ascii() {
            escape_char(char::from(first), context, out);
            rest = &rest[1..];
            continue;
        }
        // One UTF-8 sequence, or else one byte of an invalid one (the
        // others of it are never the start of a valid sequence).
        let len = match first {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 0,
        };
        let c = rest
            .get(..len)
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.chars().next());
        match c {
            Some(c) => {
                escape_char(c, context, out);
                rest = &rest[len..];
            }
            None => {
                hex(first, out);
                rest = &rest[1..];
            }
        }
    }
}

/// A byte that stands for itself in `context`: printable ASCII but `\\`,
/// and in a tag or value not a space, in a tag not `:` `[` `]` either.
#[inline(always)]
const fn is_plain(b: u8, context: Context) -> bool {
    // `&`, not `&&`: no branch, so that `plain_blocks` vectorizes.
    match context {
        Context::Message => (b.wrapping_sub(0x20) < 0x5f) & (b != b'\\'),
        Context::Value => (b.wrapping_sub(0x21) < 0x5e) & (b != b'\\'),
        Context::Tag => {
            (b.wrapping_sub(0x21) < 0x5e) & (b != b'\\') & (b != b':') & (b != b'[') & (b != b']')
        }
    }
}

/// Whether every byte of a short tag or PROCID is plain in a tag.
fn tag_plain(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(true, |plain, &b| plain & TAG_PLAIN[usize::from(b)])
}

/// `is_plain` in a tag, as a table: a lookup a byte costs less than its
/// five comparisons in a short text, where they do not vectorize.
static TAG_PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_plain(b as u8, Context::Tag);
        b += 1;
    }
    table
};

/// How many leading bytes of `bytes` are plain in `context`. Sixteen at a
/// time, in a form the compiler makes vector instructions of, as the text
/// of messages and fields mostly is plain throughout.
fn plain_prefix(bytes: &[u8], context: Context) -> usize {
    let (all, blocks) = plain_blocks_in(bytes, context);
    if all {
        return bytes.len();
    }
    blocks
        + bytes[blocks..]
            .iter()
            .take_while(|&&b| is_plain(b, context))
            .count()
}

/// `plain_blocks` for `context`, made for each context so that its check
/// of a byte is known where the blocks are folded.
#[inline(always)]
fn plain_blocks_in(bytes: &[u8], context: Context) -> (bool, usize) {
    match context {
        Context::Message => plain_blocks(bytes, |b| is_plain(b, Context::Message)),
        Context::Value => plain_blocks(bytes, |b| is_plain(b, Context::Value)),
        Context::Tag => plain_blocks(bytes, |b| is_plain(b, Context::Tag)),
    }
}

/// Whether every byte of `bytes` is `plain`, and the length of its leading
/// whole 16-byte blocks that are.
#[inline(always)]
fn plain_blocks(bytes: &[u8], plain: impl Fn(u8) -> bool + Copy) -> (bool, usize) {
    // No early exit inside a block: a branchless fold vectorizes.
    let all_plain =
        |block: &[u8; 16]| block.iter().fold(0u8, |bad, &b| bad | u8::from(!plain(b))) == 0;
    let (blocks, _) = bytes.as_chunks::<16>();
    let mut done = 0;
    for block in blocks {
        if !all_plain(block) {
            return (false, done);
        }
        done += 16;
    }
    // The rest: in a last block that overlaps the one before.
    let all = match bytes.last_chunk::<16>() {
        Some(last) => all_plain(last),
        // Shorter than a block: its first and last eight bytes, which
        // overlap, or each of fewer; no copy into a block.
        None => match (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
            (Some(first), Some(last)) => {
                let all_plain = |half: &[u8; 8]| {
                    half.iter().fold(0u8, |bad, &b| bad | u8::from(!plain(b))) == 0
                };
                all_plain(first) & all_plain(last)
            }
            _ => bytes.iter().fold(true, |all, &b| all & plain(b)),
        },
    };
    (all, done)
}

fn escape_char(c: char, context: Context, out: &mut Vec<u8>) {
    match c {
        '\\' => out.extend_from_slice(b"\\\\"),
        '\n' => out.extend_from_slice(b"\\n"),
        '\r' => out.extend_from_slice(b"\\r"),
        '\t' => out.extend_from_slice(b"\\t"),
        '\0' => out.extend_from_slice(b"\\0"),
        ' ' if context != Context::Message => hex(b' ', out),
        ':' | '[' | ']' if context == Context::Tag => hex(c as u8, out),
        c if c.is_control() => {
            let mut utf8 = [0u8; 4];
            for &b in c.encode_utf8(&mut utf8).as_bytes() {
                hex(b, out);
            }
        }
        c => {
            let mut utf8 = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
}

/// Appends `\xHH`.
pub(crate) fn hex(b: u8, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(&[
        b'\\',
        b'x',
        HEX[usize::from(b >> 4)],
        HEX[usize::from(b & 15)],
    ]);
}

/// Undoes the escaping.
pub fn unescape(text: &[u8]) -> Result<Vec<u8>, ParseError> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(at) = memchr::memchr(b'\\', &text[i..]) {
        out.extend_from_slice(&text[i..i + at]);
        i += at + 1;
        let (byte, used) = match text.get(i) {
            Some(b'\\') => (b'\\', 1),
            Some(b'n') => (b'\n', 1),
            Some(b'r') => (b'\r', 1),
            Some(b't') => (b'\t', 1),
            Some(b'0') => (0, 1),
            Some(b'x') => {
                let digits = text
                    .get(i + 1..i + 3)
                    .ok_or(ParseError("short \\x escape"))?;
                let value = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| u8::from_str_radix(d, 16).ok())
                    .ok_or(ParseError("bad \\x escape"))?;
                (value, 3)
            }
            _ => return Err(ParseError("bad escape")),
        };
        out.push(byte);
        i += used;
    }
    out.extend_from_slice(&text[i..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(r: &Record) -> Vec<u8> {
        let line = r.to_line();
        assert!(!line.contains(&b'\n') && !line.contains(&b'\r') && !line.contains(&0));
        assert!(std::str::from_utf8(&line).is_ok(), "{line:?}");
        assert_eq!(
            Record::parse(&line).as_ref(),
            Ok(r),
            "{}",
            String::from_utf8_lossy(&line)
        );
        line
    }

    #[test]
    fn a_view_finds_a_field_by_its_whole_key_still_escaped() {
        let line = b"user.info app: host=fake\\tmsg\thostname=no host=a\\x20b host=second";
        let view = RecordView::parse(line).unwrap();
        assert_eq!(view.field("host"), Some(&b"a\\x20b"[..]));
        assert_eq!(view.field("hostname"), Some(&b"no"[..]));
        assert_eq!(view.field("hos"), None);
        assert_eq!(
            RecordView::parse(b"user.info app: no fields")
                .unwrap()
                .field("host"),
            None
        );
    }

    #[test]
    fn a_plain_message_reads_like_syslog() {
        let mut r = Record::new(Priority::parse("local3.warning").unwrap(), b"disk 91% full");
        r.app = b"myapp".to_vec();
        r.procid = b"1234".to_vec();
        assert_eq!(round_trip(&r), b"local3.warning myapp[1234]: disk 91% full");
        r.push_field("host", "web1");
        r.push_field("uid", "0");
        assert_eq!(
            round_trip(&r),
            b"local3.warning myapp[1234]: disk 91% full\thost=web1 uid=0"
        );
        assert_eq!(r.field("uid"), Some(&b"0"[..]));
    }

    #[test]
    fn a_tag_and_message_in_one_slice_are_written_as_their_parts_would_be() {
        let apps: &[&[u8]] = &[
            b"app",
            b"",
            b"-",
            b"a b",
            b"a:b",
            b"a\\b",
            b"\xc3\xa9",
            b"x]",
        ];
        let procids: &[&[u8]] = &[b"", b"42", b"4 2", b"4]", b"\t"];
        let messages: &[&[u8]] = &[b"text", b"", b"a\tb", b"back\\slash", b"\xff", b"%d: x"];
        let escaped = |b: &[u8]| b.iter().any(|&b| !is_plain(b, Context::Tag));
        for &app in apps {
            for &procid in procids {
                for &message in messages {
                    let mut tagged = app.to_vec();
                    if !procid.is_empty() {
                        tagged.extend_from_slice(&[&b"["[..], procid, b"]"].concat());
                    }
                    tagged.extend_from_slice(b": ");
                    tagged.extend_from_slice(message);
                    let priority = Priority::from_pri(165).expect("a PRI");
                    // Found plain exactly when no part of the tag is escaped.
                    let plain_tag = PlainTag::of(&tagged, app.len(), procid.len());
                    let expected = !matches!(app, b"" | b"-") && !escaped(app) && !escaped(procid);
                    assert_eq!(plain_tag.is_some(), expected, "{tagged:?}");
                    let Some(tag) = plain_tag else {
                        continue;
                    };
                    let (mut one, mut parts) = (Vec::new(), Vec::new());
                    LineWriter::with_plain_tag(&mut one, priority, tag, &tagged)
                        .known_field(Key::new("k"), b"v");
                    LineWriter::new(&mut parts, priority, app, procid, message).field("k", b"v");
                    assert_eq!(one, parts, "{tagged:?}");
                }
            }
        }
        // Lengths that do not fit the slice find no tag.
        assert_eq!(PlainTag::of(b"app[1: x", 3, 9), None);
        assert_eq!(PlainTag::of(b"app: x", usize::MAX, 1), None);
    }

    #[test]
    fn every_priority_begins_its_line_with_its_names() {
        for pri in 0..192 {
            let priority = Priority::from_pri(pri).expect("a PRI");
            let mut out = Vec::new();
            write_priority(priority, &mut out);
            assert_eq!(out, format!("{priority} ").as_bytes());
        }
    }

    #[test]
    fn fields_written_before_are_as_if_written_on_the_line() {
        let fields: [(&str, &[u8]); 3] = [("pid", b"1"), ("bad key", b"a b\n"), ("gid", b"")];
        let mut before = FieldsText::default();
        for (key, value) in fields {
            before.field(key, value);
        }
        for first in [None, Some(("fmt", &b"none"[..]))] {
            let (mut one, mut other) = (Vec::new(), Vec::new());
            let mut by_one = LineWriter::new(&mut one, Priority::DEFAULT, b"a", b"", b"m");
            let mut whole = LineWriter::new(&mut other, Priority::DEFAULT, b"a", b"", b"m");
            for (key, value) in first.into_iter().chain(fields) {
                by_one.field(key, value);
            }
            if let Some((key, value)) = first {
                whole.field(key, value);
            }
            whole.fields(&before);
            whole.field("last", b"1");
            by_one.field("last", b"1");
            assert_eq!(
                String::from_utf8_lossy(&other),
                String::from_utf8_lossy(&one)
            );
        }
        let mut line = Vec::new();
        LineWriter::new(&mut line, Priority::DEFAULT, b"a", b"", b"m")
            .fields(&FieldsText::default());
        assert_eq!(line, b"user.notice a: m");
    }

    #[test]
    fn no_message_can_forge_a_line_or_a_field() {
        let mut r = Record::new(
            Priority::DEFAULT,
            b"a\nfake.emerg x: y\r\0\t\x1b[31m\\x41 \x7f\xc2\x9b end",
        );
        r.app = b"we: ird [app]".to_vec();
        r.procid = b"1 2".to_vec();
        r.push_field("sd", b"[a b=\"c\"]\t");
        r.push_field("bad key!", b"");
        let line = round_trip(&r);
        let text = String::from_utf8(line).unwrap();
        assert!(
            text.starts_with("user.notice we\\x3a\\x20ird\\x20\\x5bapp\\x5d[1\\x202]: a\\nfake"),
            "{text}"
        );
        assert!(
            text.contains("\\x1b[31m\\\\x41 \\x7f\\xc2\\x9b end\t"),
            "{text}"
        );
        assert!(
            text.ends_with("\tsd=[a\\x20b=\"c\"]\\t bad_key_="),
            "{text}"
        );
    }

    #[test]
    fn a_key_is_letters_digits_underscore_dash_and_dot() {
        for good in [
            "a",
            "uid",
            "time3164",
            "SUBSYSTEM",
            "x-y.z_0",
            "_",
            ".",
            "-",
        ] {
            assert!(is_key(good), "{good}");
            assert_eq!(key_from(good), good);
        }
        for (bad, made) in [
            ("", "_"),
            ("boo[t", "boo_t"),
            ("a b", "a_b"),
            ("a=b", "a_b"),
            ("a\tb", "a_b"),
            ("caf\u{e9}", "caf_"),
            ("x\\y", "x_y"),
            ("]", "_"),
        ] {
            assert!(!is_key(bad), "{bad:?}");
            assert_eq!(key_from(bad), made, "{bad:?}");
            assert!(is_key(&key_from(bad)));
        }
    }

    #[test]
    fn a_line_with_a_key_the_writer_refuses_does_not_parse() {
        for bad in [
            &b"user.notice -: x\tboo[t=1"[..],
            b"user.notice -: x\ta=1 b:c=2",
            b"user.notice -: x\tcaf\xc3\xa9=1",
            b"user.notice -: x\ta\\b=1",
        ] {
            assert_eq!(
                Record::parse(bad),
                Err(ParseError("bad key")),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// Parse, write, parse: the same record, for any key a line may hold,
    /// and any key a writer is handed.
    #[test]
    fn hostile_keys_round_trip() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet: Vec<char> = "aZ09_-.[]= \t\\:\"\u{e9}\u{0}\u{7f}\u{202e}x"
            .chars()
            .collect();
        for _ in 0..50_000 {
            let key: String = (0..next() % 6)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            // As a writer is handed it.
            let mut r = Record::new(Priority::DEFAULT, b"m");
            r.push_field(&key, b"v");
            let line = round_trip(&r);
            let mut out = Vec::new();
            LineWriter::new(&mut out, Priority::DEFAULT, b"", b"", b"m").field(&key, b"v");
            assert_eq!(out, line, "{key:?}");
            // As a line may hold it: parsed, it is written and read back
            // the same, its key unchanged.
            let mut text = b"user.notice -: m\t".to_vec();
            text.extend_from_slice(key.as_bytes());
            text.extend_from_slice(b"=v");
            if let Ok(parsed) = Record::parse(&text) {
                let again = Record::parse(&parsed.to_line());
                assert_eq!(again.as_ref(), Ok(&parsed), "{key:?}");
                assert!(parsed.fields.iter().all(|(k, _)| is_key(k)), "{key:?}");
            }
        }
    }

    #[test]
    fn invalid_utf8_is_kept_byte_for_byte() {
        let r = Record::new(
            Priority::DEFAULT,
            b"\xff\xfe caf\xc3\xa9 \xe2\x82 \xf0\x9f\x98\x80",
        );
        let line = round_trip(&r);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "user.notice -: \\xff\\xfe café \\xe2\\x82 😀"
        );
    }

    #[test]
    fn the_named_codes_are_rfc_5424s_in_order() {
        let facilities = [
            Facility::KERN,
            Facility::USER,
            Facility::MAIL,
            Facility::DAEMON,
            Facility::AUTH,
            Facility::SYSLOG,
            Facility::LPR,
            Facility::NEWS,
            Facility::UUCP,
            Facility::CRON,
            Facility::AUTHPRIV,
            Facility::FTP,
            Facility::NTP,
            Facility::SECURITY,
            Facility::CONSOLE,
            Facility::CRON2,
            Facility::LOCAL0,
            Facility::LOCAL1,
            Facility::LOCAL2,
            Facility::LOCAL3,
            Facility::LOCAL4,
            Facility::LOCAL5,
            Facility::LOCAL6,
            Facility::LOCAL7,
        ];
        for (code, facility) in facilities.into_iter().enumerate() {
            assert_eq!(Facility::new(code as u8), Some(facility));
        }
        assert_eq!(facilities.map(Facility::name), FACILITIES);
        let severities = [
            Severity::EMERG,
            Severity::ALERT,
            Severity::CRIT,
            Severity::ERR,
            Severity::WARNING,
            Severity::NOTICE,
            Severity::INFO,
            Severity::DEBUG,
        ];
        for (code, severity) in severities.into_iter().enumerate() {
            assert_eq!(Severity::new(code as u8), Some(severity));
        }
        assert_eq!(severities.map(Severity::name), SEVERITIES);
        assert_eq!(Severity::of_pri(8 * 99 + 4), Severity::WARNING);
    }

    #[test]
    fn priorities() {
        assert_eq!(Priority::from_pri(13), Some(Priority::DEFAULT));
        assert_eq!(Priority::from_pri(191).unwrap().to_string(), "local7.debug");
        assert_eq!(Priority::from_pri(192), None);
        assert_eq!(
            Priority::parse("auth.warn").unwrap().to_string(),
            "auth.warning"
        );
        assert_eq!(Priority::parse("kern.0").unwrap().to_string(), "kern.emerg");
        assert_eq!(Priority::parse("nope.info"), None);
        for pri in 0..192 {
            let p = Priority::from_pri(pri).unwrap();
            assert_eq!(Priority::parse(&p.to_string()), Some(p));
            assert_eq!(p.pri(), pri);
        }
    }

    #[test]
    fn malformed_lines_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"user.notice",
            b"bogus -: x",
            b"user.notice -:x",
            b"user.notice a[1: x",
            b"user.notice -: \\q",
            b"user.notice -: \\x4",
            b"user.notice -: x\tnoequals",
            b"user.notice -: x\t=v",
        ] {
            assert!(
                Record::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn plain_bytes_are_printable_ascii_but_what_each_context_escapes() {
        for b in 0..=255u8 {
            let printable = (0x20..0x7f).contains(&b) && b != b'\\';
            assert_eq!(is_plain(b, Context::Message), printable, "{b:#x}");
            assert_eq!(
                is_plain(b, Context::Value),
                printable && b != b' ',
                "{b:#x}"
            );
            let tag = printable && !b" :[]".contains(&b);
            assert_eq!(is_plain(b, Context::Tag), tag, "{b:#x}");
        }
    }

    #[test]
    fn plain_prefix_stops_at_the_first_byte_to_escape_wherever_it_is() {
        let edges = [
            0x00, 0x01, 0x1f, 0x20, 0x21, 0x3a, 0x5b, 0x5c, 0x5d, 0x7e, 0x7f, 0x80, 0xfe, 0xff,
        ];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for round in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly plain bytes, with an edge byte or two anywhere, in
            // lengths around the 16-byte blocks.
            let mut text = vec![b'a'; 1 + round % 53];
            for (i, b) in text.iter_mut().enumerate() {
                let pick = (x.rotate_left(i as u32 * 7) >> 8) as u8;
                match pick % 16 {
                    0 => *b = edges[usize::from(pick / 16) % edges.len()],
                    1..=4 => *b = 0x20 + pick % 0x5f,
                    _ => {}
                }
            }
            for context in [Context::Message, Context::Tag, Context::Value] {
                let expected = text.iter().take_while(|&&b| is_plain(b, context)).count();
                assert_eq!(plain_prefix(&text, context), expected, "{text:02x?}");
            }
        }
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        let mut r = Record::new(Priority::DEFAULT, &all);
        r.app = all.clone();
        r.procid = all.clone();
        r.push_field("v", &all);
        round_trip(&r);
        let mut dash = Record::new(Priority::DEFAULT, b"");
        dash.app = b"-".to_vec();
        round_trip(&dash);
    }
}
