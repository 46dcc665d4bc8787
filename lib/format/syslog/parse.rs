//! Syslog messages as senders really write them: RFC 5424, RFC 3164 and the
//! quirks around them (glibc, musl, util-linux logger, Python, network
//! devices), parsed from a datagram's bytes with no I/O. What cannot be
//! recognised stays in the message text: nothing a sender wrote is lost,
//! and the text is always exactly the sender's bytes.
//!
//! The parse is a choice between three readings, named by the `fmt` field
//! of the line (see syslog-read(8)):
//!
//! - `rfc5424`: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]`,
//!   every part as the RFC has it but the SD, read leniently (see
//!   `grammar::Mode::Lenient`);
//! - `rfc3164`: a legacy header, each part optional:
//!   `<PRI>[SEQ: ][TIMESTAMP [HOSTNAME ]][TAG[[PID]]: ]MSG`, where a
//!   network device's TIMESTAMP may be `[*|.]Mmm dd hh:mm:ss[.f] [ZONE]:`
//!   or an uptime (`00:10:03:`, `1d02h:`), and after a timestamp the TAG
//!   may end without its colon-space: `TAG[PID] MSG` (rsyslog's default
//!   forwarding template) or `TAG:MSG`;
//! - `none`: no header; the message is everything after the PRI, or the
//!   whole datagram when it has no valid PRI.

use crate::format::reader_line::{
    FieldsText, FixedField, Key, LineWriter, PlainTag, Priority, TIME, TIME_3164, ZONE,
};
use crate::format::syslog::grammar::{self, Mode, clock, digits};

/// Which reading of the datagram was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Rfc5424,
    Rfc3164,
    None,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Rfc5424 => "rfc5424",
            Format::Rfc3164 => "rfc3164",
            Format::None => "none",
        }
    }

    /// The `fmt` field that names it.
    fn field(self) -> FixedField {
        const RFC5424: FixedField = FixedField::new("fmt=rfc5424");
        const RFC3164: FixedField = FixedField::new("fmt=rfc3164");
        const NONE: FixedField = FixedField::new("fmt=none");
        match self {
            Format::Rfc5424 => RFC5424,
            Format::Rfc3164 => RFC3164,
            Format::None => NONE,
        }
    }
}

/// A legacy timestamp, `Mmm dd hh:mm:ss[.fraction]`: no year, no zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LegacyTime<'a> {
    /// 1 to 12.
    pub month: u8,
    /// 1 to 31.
    pub day: u8,
    /// `hh:mm:ss` and any fraction, as sent.
    pub clock: &'a [u8],
    /// The zone a network device names after it (`UTC`), as sent.
    pub zone: Option<&'a [u8]>,
}

impl LegacyTime<'_> {
    /// `MM-DDThh:mm:ss[.fraction]`, into `buf`.
    pub fn normalized<'b>(&self, buf: &'b mut [u8; 32]) -> &'b [u8] {
        // Two digits by table: a division each costs more than the rest.
        let two = |n: u8| {
            let n = usize::from(n % 100) * 2;
            [TWO_DIGITS[n], TWO_DIGITS[n + 1]]
        };
        let [month, day] = [two(self.month), two(self.day)];
        buf[..6].copy_from_slice(&[month[0], month[1], b'-', day[0], day[1], b'T']);
        let end = 6 + self.clock.len(); // `hh:mm:ss.` and at most 9 digits
        buf[6..end].copy_from_slice(self.clock);
        &buf[..end]
    }
}

/// `00` to `99`.
static TWO_DIGITS: [u8; 200] = {
    let mut digits = [0u8; 200];
    let mut n = 0;
    while n < 100 {
        digits[2 * n] = b'0' + (n / 10) as u8;
        digits[2 * n + 1] = b'0' + (n % 10) as u8;
        n += 1;
    }
    digits
};

/// The timestamp a message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Time<'a> {
    None,
    /// A full RFC 3339 timestamp, as sent.
    Full(&'a [u8]),
    Legacy(LegacyTime<'a>),
}

/// One parsed message. Every slice borrows from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub priority: Priority,
    /// The datagram began with a valid `<PRI>`; without one the priority
    /// is RFC 3164's default, user.notice.
    pub has_pri: bool,
    pub format: Format,
    pub time: Time<'a>,
    pub host: Option<&'a [u8]>,
    /// APP-NAME or the TAG; empty when none.
    pub app: &'a [u8],
    /// PROCID or the TAG's `[pid]`; empty when none.
    pub procid: &'a [u8],
    pub msgid: Option<&'a [u8]>,
    /// RFC 5424 structured data, verbatim (brackets, quotes, escapes).
    pub sd: Option<&'a [u8]>,
    /// A network device's sequence number (`<PRI>123: ...`).
    pub seq: Option<&'a [u8]>,
    /// A network device's uptime in place of a timestamp (`00:10:03`,
    /// `1d02h`), as sent.
    pub uptime: Option<&'a [u8]>,
    /// A network device's mark before its timestamp: `*` (clock never
    /// synchronised) or `.` (synchronisation lost).
    pub clock_mark: Option<u8>,
    /// The message began with a UTF-8 byte order mark, removed here.
    pub bom: bool,
    /// The message, exactly as sent, less trailing NUL and LF bytes.
    pub text: &'a [u8],
}

const BOM: &[u8] = b"\xef\xbb\xbf";

/// A month's number, 1 to 12, from its name, `Jan` to `Dec`.
fn month(name: &[u8]) -> Option<u8> {
    Some(match name {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

/// Parses one datagram. Never fails: the worst case is a message with the
/// default priority and the whole datagram as its text.
pub fn parse(datagram: &[u8]) -> Message<'_> {
    match read(datagram) {
        Reading::Local(local) => local.message(),
        Reading::Other(message) => message,
    }
}

/// What `write_line` keeps from one line to the next: the fields of the
/// last legacy time it wrote, for the next message with the same time (a
/// sender's messages in one second all have it), and the last local
/// header, for the next message that begins with the same bytes (a
/// sender's messages at one priority in one second all do).
#[derive(Default)]
pub struct Recent {
    /// The time `fields` are for: month, day, and the clock in
    /// `clock[..len]`; none while `len` is 0.
    month: u8,
    day: u8,
    clock: [u8; CLOCK_MAX],
    len: usize,
    /// `fmt` and `time3164`.
    fields: FieldsText,
    /// A local header whose time `fields` are for.
    head: Head,
}

/// The longest clock in a legacy time: `hh:mm:ss.` and nine digits.
const CLOCK_MAX: usize = 18;

impl Recent {
    /// The `fmt` and `time3164` fields of a legacy time.
    fn legacy_fields(&mut self, time: &LegacyTime) -> &FieldsText {
        let same = self.len > 0
            && (self.month, self.day) == (time.month, time.day)
            && self.clock[..self.len] == *time.clock;
        if !same {
            self.head.kept = None;
            self.fields.clear();
            self.fields.field("fmt", Format::Rfc3164.name().as_bytes());
            self.fields.field(TIME_3164, time.normalized(&mut [0; 32]));
            (self.month, self.day) = (time.month, time.day);
            self.len = match self.clock.get_mut(..time.clock.len()) {
                Some(clock) => {
                    clock.copy_from_slice(time.clock);
                    time.clock.len()
                }
                None => 0,
            };
        }
        &self.fields
    }
}

/// A local header, `<PRI>Mmm dd hh:mm:ss TAG[PID]: `, as a datagram began
/// with it: any datagram that begins with the same bytes is read as that
/// one was, up to its text. Nothing in the header's reading looks past
/// its `: ` but a device's zone (`TAG` a word of capitals, read as a zone
/// when the text begins with `%`), and a text that begins with a byte
/// order mark: a header that could be a zone is not kept, and such a text
/// is read in full.
struct Head {
    bytes: [u8; HEAD_MAX],
    len: usize,
    /// What was read from `bytes[..len]`; while none, no header is kept.
    kept: Option<Kept>,
}

/// What a kept header says.
#[derive(Clone, Copy)]
struct Kept {
    priority: Priority,
    /// Where the tag begins, and the tag, which goes out as it is.
    tag_at: usize,
    tag: PlainTag,
}

/// The longest header kept: a PRI, a time, a TAG of 64 bytes, a PID of 32.
const HEAD_MAX: usize = 128;

impl Default for Head {
    fn default() -> Head {
        Head {
            bytes: [0; HEAD_MAX],
            len: 0,
            kept: None,
        }
    }
}

impl Head {
    /// Keeps the header of `bytes`, which `local` was read from, when its
    /// tag was found plain.
    fn keep(&mut self, bytes: &[u8], local: &Local, tag: Option<PlainTag>) {
        self.kept = None;
        let (Some(tagged), Some(tag)) = (local.tagged, tag) else {
            return;
        };
        let len = bytes.len() - local.text.len();
        if len > HEAD_MAX || !bytes[..len].ends_with(b": ") || local.zone_like {
            return;
        }
        self.bytes[..len].copy_from_slice(&bytes[..len]);
        self.len = len;
        self.kept = Some(Kept {
            priority: local.priority,
            tag_at: bytes.len() - tagged.len(),
            tag,
        });
    }

    /// What the kept header says of `bytes`, if they begin with it and
    /// their text may be read as the kept one's was.
    #[inline]
    fn found(&self, bytes: &[u8]) -> Option<Kept> {
        let kept = self.kept?;
        let found = bytes.get(..self.len) == Some(&self.bytes[..self.len])
            && !bytes[self.len..].starts_with(BOM);
        found.then_some(kept)
    }
}

/// Parses one datagram and appends its line (no LF) with the fields that
/// describe it, as `parse(datagram).write_line(out)` does, and returns the
/// writer for more fields. Sooner for the header most local senders
/// write: its tag and message go out as sent when they need no escaping,
/// and the fields of its time as `recent` has them when it is the time
/// of the message before.
pub fn write_line<'o>(
    datagram: &[u8],
    out: &'o mut Vec<u8>,
    recent: &mut Recent,
) -> LineWriter<'o> {
    let bytes = without_trailing(datagram);
    if let Some(kept) = recent.head.found(bytes) {
        let tagged = &bytes[kept.tag_at..];
        let mut line = LineWriter::with_plain_tag(out, kept.priority, kept.tag, tagged);
        line.fields(&recent.fields);
        return line;
    }
    let message = match read_stripped(bytes) {
        Reading::Local(local) => return local.write_line(bytes, out, recent),
        Reading::Other(message) => message,
    };
    let mut line = message.write_head(out);
    match message.time {
        Time::Legacy(time) if message.format == Format::Rfc3164 && time.zone.is_none() => {
            line.fields(recent.legacy_fields(&time));
        }
        _ => message.write_format_and_time(&mut line),
    }
    message.write_other_fields(&mut line);
    line
}

/// What `read` found.
enum Reading<'a> {
    Local(Local<'a>),
    Other(Message<'a>),
}

/// The datagram read as a local sender's header, or as any other.
#[inline]
fn read(datagram: &[u8]) -> Reading<'_> {
    read_stripped(without_trailing(datagram))
}

/// `read` of a datagram `without_trailing` bytes.
#[inline]
fn read_stripped(bytes: &[u8]) -> Reading<'_> {
    let Some((priority, rest)) = pri(bytes) else {
        return Reading::Other(Message::plain(Priority::DEFAULT, false, bytes));
    };
    if let Some(local) = Local::read(priority, rest) {
        return Reading::Local(local);
    }
    Reading::Other(rfc5424(priority, rest).unwrap_or_else(|| legacy(priority, rest)))
}

/// `datagram` less its trailing NUL and LF bytes.
fn without_trailing(datagram: &[u8]) -> &[u8] {
    let end = datagram
        .iter()
        .rposition(|&b| b != 0 && b != b'\n')
        .map_or(0, |i| i + 1);
    &datagram[..end]
}

/// The header local senders write, `Mmm dd hh:mm:ss TAG[PID]: MSG`
/// (glibc's and musl's syslog(3), logger): a message in the `rfc3164`
/// reading with a legacy time, no zone, a TAG, perhaps a byte order mark,
/// and nothing else.
struct Local<'a> {
    priority: Priority,
    time: LegacyTime<'a>,
    app: &'a [u8],
    procid: &'a [u8],
    text: &'a [u8],
    bom: bool,
    /// The tag and text as one slice, when they lie in the datagram as a
    /// line has them (`app[procid]: text`).
    tagged: Option<&'a [u8]>,
    /// The tag could be a device's zone (`device_zone`): a text that
    /// begins with `%` would make it one.
    zone_like: bool,
}

impl<'a> Local<'a> {
    /// Read as `legacy` reads it but without trying what a header that
    /// begins with a month cannot be: an RFC 5424 one, a sequence number,
    /// a clock mark, an RFC 3339 time, a HOSTNAME before a TAG with its
    /// colon. None for every other header, and for a device's zone after
    /// the time; `legacy` reads those.
    #[inline]
    fn read(priority: Priority, rest: &'a [u8]) -> Option<Local<'a>> {
        let (time, after) = legacy_time(rest)?;
        let zone_like = device_zone(after, true).is_some();
        if zone_like && device_zone(after, false).is_some() {
            return None;
        }
        let tagged = after_time(after)?;
        let (app, procid, text) = tag(tagged, TagEnd::Colon)?;
        let (bom, text) = match text.strip_prefix(BOM) {
            Some(text) => (true, text),
            None => (false, text),
        };
        let brackets = if procid.is_empty() { 0 } else { 2 };
        let whole = !bom && tagged.len() == app.len() + procid.len() + brackets + 2 + text.len();
        Some(Local {
            priority,
            time,
            app,
            procid,
            text,
            bom,
            tagged: whole.then_some(tagged),
            zone_like,
        })
    }

    fn message(&self) -> Message<'a> {
        Message {
            format: Format::Rfc3164,
            time: Time::Legacy(self.time),
            app: self.app,
            procid: self.procid,
            bom: self.bom,
            ..Message::plain(self.priority, true, self.text)
        }
    }

    /// As `self.message().write_line(out)` writes it; keeps its header in
    /// `recent` for the next datagram. `bytes` is what it was read from.
    fn write_line<'o>(
        &self,
        bytes: &[u8],
        out: &'o mut Vec<u8>,
        recent: &mut Recent,
    ) -> LineWriter<'o> {
        let tag = self
            .tagged
            .and_then(|tagged| PlainTag::of(tagged, self.app.len(), self.procid.len()));
        let mut line = match (self.tagged, tag) {
            (Some(tagged), Some(tag)) => {
                LineWriter::with_plain_tag(out, self.priority, tag, tagged)
            }
            _ => LineWriter::new(out, self.priority, self.app, self.procid, self.text),
        };
        line.fields(recent.legacy_fields(&self.time));
        if self.bom {
            line.field("bom", b"1");
        }
        recent.head.keep(bytes, self, tag);
        line
    }
}

impl<'a> Message<'a> {
    fn plain(priority: Priority, has_pri: bool, text: &'a [u8]) -> Message<'a> {
        Message {
            priority,
            has_pri,
            format: Format::None,
            time: Time::None,
            host: None,
            app: b"",
            procid: b"",
            msgid: None,
            sd: None,
            seq: None,
            uptime: None,
            clock_mark: None,
            bom: false,
            text,
        }
    }

    /// Appends the message as a reader line (no LF) to `out`, with the
    /// fields that describe it, and returns the writer for more fields.
    pub fn write_line<'o>(&self, out: &'o mut Vec<u8>) -> LineWriter<'o> {
        let mut line = self.write_head(out);
        self.write_fields(&mut line);
        line
    }

    /// The priority, tag and message.
    fn write_head<'o>(&self, out: &'o mut Vec<u8>) -> LineWriter<'o> {
        LineWriter::new(out, self.priority, self.app, self.procid, self.text)
    }

    fn write_fields(&self, line: &mut LineWriter) {
        self.write_format_and_time(line);
        self.write_other_fields(line);
    }

    /// `fmt`, and `time` or `time3164` and `zone`: the first fields.
    fn write_format_and_time(&self, line: &mut LineWriter) {
        const TIME_KEY: Key = Key::new(TIME);
        const TIME_3164_KEY: Key = Key::new(TIME_3164);
        line.fixed_field(self.format.field());
        match self.time {
            Time::None => {}
            Time::Full(time) => line.known_field(TIME_KEY, time),
            Time::Legacy(time) => {
                line.known_field(TIME_3164_KEY, time.normalized(&mut [0; 32]));
                if let Some(zone) = time.zone {
                    line.field(ZONE, zone);
                }
            }
        }
    }

    fn write_other_fields(&self, line: &mut LineWriter) {
        // Each in turn, not from an array: most messages have none, and
        // building one costs more than the five tests.
        if let Some(uptime) = self.uptime {
            line.field("uptime", uptime);
        }
        if let Some(host) = self.host {
            line.field("host", host);
        }
        if let Some(msgid) = self.msgid {
            line.field("msgid", msgid);
        }
        if let Some(sd) = self.sd {
            line.field("sd", sd);
        }
        if let Some(seq) = self.seq {
            line.field("seq", seq);
        }
        if let Some(mark) = self.clock_mark {
            line.field("unsynced", &[mark]);
        }
        if self.bom {
            line.field("bom", b"1");
        }
        if !self.has_pri {
            line.field("nopri", b"1");
        }
    }
}

/// `<PRI>`: one to three digits, at most 191.
fn pri(bytes: &[u8]) -> Option<(Priority, &[u8])> {
    let rest = bytes.strip_prefix(b"<")?;
    let digits = rest
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(1..=3).contains(&digits) || rest.get(digits) != Some(&b'>') {
        return None;
    }
    let value = rest[..digits]
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    Some((Priority::from_pri(value)?, &rest[digits + 1..]))
}

/// Splits at the first space: (token, after the space). None when there is
/// no space or the token is empty.
fn token(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = memchr::memchr(b' ', bytes)?;
    (space > 0).then(|| (&bytes[..space], &bytes[space + 1..]))
}

fn nil(token: &[u8]) -> Option<&[u8]> {
    (token != b"-").then_some(token)
}

fn rfc5424(priority: Priority, rest: &[u8]) -> Option<Message<'_>> {
    let rest = rest.strip_prefix(b"1 ")?;
    let (time, rest) = token(rest)?;
    let time = match time {
        b"-" => Time::None,
        t if grammar::timestamp(t).is_some() => Time::Full(t),
        _ => return None,
    };
    let (host, rest) = token(rest)?;
    let (app, rest) = token(rest)?;
    let (procid, rest) = token(rest)?;
    let (msgid, rest) = token(rest)?;
    let (sd, rest) = match rest.first() {
        Some(b'-') => (None, &rest[1..]),
        Some(b'[') => {
            let len = grammar::structured_data(rest, Mode::Lenient, |_| true)?;
            (Some(&rest[..len]), &rest[len..])
        }
        _ => return None,
    };
    let text = match rest {
        [] => rest,
        [b' ', text @ ..] => text,
        _ => return None,
    };
    let (bom, text) = match text.strip_prefix(BOM) {
        Some(text) => (true, text),
        None => (false, text),
    };
    Some(Message {
        format: Format::Rfc5424,
        time,
        host: nil(host),
        app: nil(app).unwrap_or_default(),
        procid: nil(procid).unwrap_or_default(),
        msgid: nil(msgid),
        sd,
        bom,
        ..Message::plain(priority, true, text)
    })
}

/// `Mmm dd hh:mm:ss[.fraction]`, the day as `dd`, ` d` or `d`: the time and
/// the rest after it.
fn legacy_time(t: &[u8]) -> Option<(LegacyTime<'_>, &[u8])> {
    if let Some(padded) = padded_legacy_time(t) {
        return Some(padded);
    }
    let month = month(t.get(..3)?)?;
    let mut i = 3;
    if t.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    if t.get(i) == Some(&b' ') {
        i += 1;
    }
    let n = t[i..]
        .iter()
        .take(3)
        .take_while(|b| b.is_ascii_digit())
        .count();
    let day = match n {
        1 => digits(t, i, 1)?,
        2 => digits(t, i, 2)?,
        _ => return None,
    };
    i += n;
    if !(1..=31).contains(&day) || t.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    let len = clock(&t[i..])?;
    let time = LegacyTime {
        month,
        day: day as u8,
        clock: &t[i..i + len],
        zone: None,
    };
    Some((time, &t[i + len..]))
}

/// `legacy_time`'s reading of the one layout most senders write,
/// `Mmm dd hh:mm:ss ` with the day padded (`Nov  1`, `Nov 01`, `Nov 21`),
/// checked in place; None for every other, which `legacy_time` reads
/// byte by byte.
fn padded_legacy_time(t: &[u8]) -> Option<(LegacyTime<'_>, &[u8])> {
    let h = t.first_chunk::<16>()?;
    if [h[3], h[6], h[9], h[12], h[15]] != *b"  :: " {
        return None;
    }
    let digit = |b: u8| b.wrapping_sub(b'0');
    let [d, hh0, hh1, mm0, mm1, ss0, ss1] =
        [h[5], h[7], h[8], h[10], h[11], h[13], h[14]].map(digit);
    let d0 = if h[4] == b' ' { 0 } else { digit(h[4]) };
    if [d0, d, hh0, hh1, mm0, mm1, ss0, ss1].iter().any(|&n| n > 9) {
        return None;
    }
    let day = d0 * 10 + d;
    let ok = (1..=31).contains(&day)
        && hh0 * 10 + hh1 <= 23
        && mm0 * 10 + mm1 <= 59
        && ss0 * 10 + ss1 <= 60;
    let time = LegacyTime {
        month: month(&h[..3])?,
        day,
        clock: &t[7..15],
        zone: None,
    };
    ok.then_some((time, &t[15..]))
}

/// The header's timestamp and what follows it: a full RFC 3339 one (as
/// rsyslog's high-precision format sends), or a legacy one.
fn any_time(t: &[u8]) -> Option<(Time<'_>, &[u8])> {
    let end = memchr::memchr(b' ', t).unwrap_or(t.len());
    if grammar::timestamp(&t[..end]).is_some() {
        return Some((Time::Full(&t[..end]), &t[end..]));
    }
    legacy_time(t).map(|(time, rest)| (Time::Legacy(time), rest))
}

/// After a timestamp: the end, spaces, or (network devices) `: `.
fn after_time(rest: &[u8]) -> Option<&[u8]> {
    let rest = match rest {
        [] => return Some(rest),
        [b':', rest @ ..] if rest.is_empty() || rest[0] == b' ' => rest,
        [b' ', ..] => rest,
        _ => return None,
    };
    Some(skip_spaces(rest))
}

fn skip_spaces(bytes: &[u8]) -> &[u8] {
    let n = bytes.iter().take_while(|&&b| b == b' ').count();
    &bytes[n..]
}

/// A sequence number, `123: `, as network devices number their messages.
fn sequence(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = bytes
        .iter()
        .take(11)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if n == 0 || n > 10 || bytes.get(n..n + 2) != Some(b": ") {
        return None;
    }
    Some((&bytes[..n], skip_spaces(&bytes[n + 2..])))
}

/// How a TAG may end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TagEnd {
    /// Only with its colon: `name: `, `name[pid]: `, or `name:` at the end.
    Colon,
    /// Also as rsyslog and syslog-ng read it after a timestamp:
    /// `name[pid] MSG` (no colon: rsyslog's forwarding template) and
    /// `name:MSG` (no space).
    Loose,
}

/// A TAG: `name: `, `name[pid]: ` (the name may be empty, as musl sends
/// without an ident), then the message; with `TagEnd::Loose`, also
/// `name[pid] ` and `name:` with the message right after the colon.
fn tag(bytes: &[u8], end: TagEnd) -> Option<(&[u8], &[u8], &[u8])> {
    const MAX_NAME: usize = 64;
    const MAX_PID: usize = 32;
    // How many of the first `max` + 1 bytes are in a tag.
    let span = |bytes: &[u8], max: usize| {
        let head = &bytes[..bytes.len().min(max + 1)];
        head.iter()
            .position(|&b| !IN_TAG[usize::from(b)])
            .unwrap_or(head.len())
    };
    let name_len = span(bytes, MAX_NAME);
    if name_len > MAX_NAME {
        return None;
    }
    let name = &bytes[..name_len];
    let mut rest = &bytes[name_len..];
    let mut procid: &[u8] = b"";
    if let [b'[', after @ ..] = rest {
        let n = span(after, MAX_PID);
        if n == 0 || n > MAX_PID || after.get(n) != Some(&b']') {
            return None;
        }
        procid = &after[..n];
        rest = &after[n + 1..];
    }
    match (rest, end) {
        ([b':'], _) => Some((name, procid, &rest[1..])),
        ([b':', b' ', text @ ..], _) => Some((name, procid, text)),
        // Not `a::b`, which is an IPv6 address.
        ([b':', next, ..], TagEnd::Loose) if !name.is_empty() && *next != b':' => {
            Some((name, procid, &rest[1..]))
        }
        ([] | [b' ', ..], TagEnd::Loose) if !name.is_empty() && !procid.is_empty() => {
            Some((name, procid, rest.get(1..).unwrap_or_default()))
        }
        _ => None,
    }
}

/// The bytes of a TAG: printable, not a space, not `[` `]` `:`. A table:
/// every message's tag is scanned, a lookup a byte.
static IN_TAG: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0x21;
    while b < 0x7f {
        table[b] = !matches!(b as u8, b'[' | b']' | b':');
        b += 1;
    }
    table
};

/// A HOSTNAME in a legacy header: a name or an address; a colon only in
/// an IPv6 address (`fe80::1%eth0`), so that `app:text` is no host name.
fn is_hostname(token: &[u8]) -> bool {
    let plain = !token.is_empty()
        && token.len() <= 255
        && token
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._:%".contains(&b));
    if !plain || !token.contains(&b':') {
        return plain;
    }
    let address = token.split(|&b| b == b'%').next().unwrap_or_default();
    std::str::from_utf8(address).is_ok_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
}

/// A network device's zone after its timestamp, ` UTC:`: up to six
/// capital letters and a colon; returns it and what follows it. Only
/// where the header is a device's (a sequence number, a clock mark, or a
/// `%FACILITY-SEVERITY-MNEMONIC` tag next), so that a local sender's
/// `CRON: text` keeps its tag.
fn device_zone(rest: &[u8], device: bool) -> Option<(&[u8], &[u8])> {
    let after_space = rest.strip_prefix(b" ")?;
    let n = after_space
        .iter()
        .take(7)
        .take_while(|b| b.is_ascii_uppercase())
        .count();
    if !(1..=6).contains(&n) {
        return None;
    }
    let after = &after_space[n..];
    let text = match after {
        [b':'] => &after[1..],
        [b':', b' ', ..] => skip_spaces(&after[1..]),
        _ => return None,
    };
    (device || text.starts_with(b"%")).then_some((&after_space[..n], after))
}

/// A network device's uptime in place of a timestamp, then its colon:
/// `hh:mm:ss[.fraction]` (the first day), or two counts of units, the
/// larger first: `1d02h`, `3w4d`, `1y2w`. Returns it and the rest from
/// the colon on.
fn uptime(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = memchr::memchr(b' ', bytes).unwrap_or(bytes.len());
    let word = bytes[..end].strip_suffix(b":")?;
    let is_clock = clock(word) == Some(word.len());
    (is_clock || is_unit_pair(word)).then(|| (word, &bytes[word.len()..]))
}

/// `1d02h`: a count and a unit, twice, the units from large to small.
fn is_unit_pair(word: &[u8]) -> bool {
    let mut units = [0u8; 2];
    let mut rest = word;
    for unit in &mut units {
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        match rest.get(n) {
            Some(&u @ (b'y' | b'w' | b'd' | b'h')) if (1..=3).contains(&n) => *unit = u,
            _ => return false,
        }
        rest = &rest[n + 1..];
    }
    rest.is_empty() && rank(units[0]) > rank(units[1])
}

/// The size of an uptime unit, for their order.
fn rank(unit: u8) -> u8 {
    match unit {
        b'y' => 4,
        b'w' => 3,
        b'd' => 2,
        _ => 1,
    }
}

fn legacy(priority: Priority, rest: &[u8]) -> Message<'_> {
    let mut m = Message::plain(priority, true, rest);
    let start = skip_spaces(rest);
    let (seq, after_seq) = match sequence(start) {
        Some((seq, after)) => (Some(seq), after),
        None => (None, start),
    };
    let (clock_mark, stamped) = match after_seq {
        [mark @ (b'*' | b'.'), after @ ..] => (Some(*mark), after),
        _ => (None, after_seq),
    };
    let device = seq.is_some() || clock_mark.is_some();
    let timed = match any_time(stamped) {
        Some((Time::Legacy(mut time), after)) => {
            let after = match device_zone(after, device) {
                Some((zone, after)) => {
                    time.zone = Some(zone);
                    after
                }
                None => after,
            };
            Some((Time::Legacy(time), None, after))
        }
        Some((time, after)) => Some((time, None, after)),
        // An uptime, only in a device's header too: `12:00:00: text` from
        // anyone else stays text.
        None if clock_mark.is_none() => uptime(stamped)
            .filter(|(_, after)| {
                seq.is_some() || skip_spaces(after.get(1..).unwrap_or_default()).starts_with(b"%")
            })
            .map(|(up, after)| (Time::None, Some(up), after)),
        None => None,
    };
    let timed =
        timed.and_then(|(time, up, after)| after_time(after).map(|after| (time, up, after)));
    // A TAG with its colon found while looking for a HOSTNAME is the TAG.
    let mut found = None;
    let body = match timed {
        Some((time, up, after)) => {
            m.time = time;
            m.uptime = up;
            m.seq = seq;
            m.clock_mark = clock_mark;
            m.format = Format::Rfc3164;
            // RFC 3164: a HOSTNAME follows, unless the sender left it out
            // (local senders do) and the TAG follows at once.
            let colon = tag(after, TagEnd::Colon);
            match token(after).or_else(|| (!after.is_empty()).then_some((after, &b""[..]))) {
                Some((host, rest)) if colon.is_none() && is_hostname(host) => {
                    m.host = Some(host);
                    rest
                }
                _ => {
                    // What ends with a colon ends so loosely too.
                    found = colon;
                    after
                }
            }
        }
        None => start,
    };
    // After a timestamp, a TAG as the peers read it; with no header, only
    // one that says it is one (`http://example.com` is text).
    let end = match m.format {
        Format::Rfc3164 => TagEnd::Loose,
        _ => TagEnd::Colon,
    };
    match found.or_else(|| tag(body, end)) {
        Some((app, procid, text)) => {
            m.app = app;
            m.procid = procid;
            m.format = Format::Rfc3164;
            m.text = text;
        }
        None if m.format == Format::Rfc3164 => m.text = body,
        None => {} // no header: the text is all after the PRI
    }
    if let Some(text) = m.text.strip_prefix(BOM) {
        m.bom = true;
        m.text = text;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::reader_line::Record;

    fn line(datagram: &[u8]) -> String {
        let mut out = Vec::new();
        parse(datagram).write_line(&mut out);
        String::from_utf8(out).expect("lines are UTF-8")
    }

    /// RFC 5424 section 6.5, RFC 3164 section 5.4, and what real senders
    /// send, as captured from them.
    #[test]
    fn known_messages() {
        let table: &[(&[u8], &str)] = &[
            // RFC 5424 examples.
            (
                b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8",
                "auth.crit su: 'su root' failed for lonvick on /dev/pts/8\tfmt=rfc5424 time=2003-10-11T22:14:15.003Z host=mymachine.example.com msgid=ID47 bom=1",
            ),
            (
                b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
                "local4.notice myproc[8710]: %% It's time to make the do-nuts.\tfmt=rfc5424 time=2003-08-24T05:14:15.000003-07:00 host=192.0.2.1",
            ),
            (
                b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \xef\xbb\xbfAn application event log entry...",
                "local4.notice evntslog: An application event log entry...\tfmt=rfc5424 time=2003-10-11T22:14:15.003Z host=mymachine.example.com msgid=ID47 sd=[exampleSDID@32473\\x20iut=\"3\"\\x20eventSource=\"Application\"\\x20eventID=\"1011\"] bom=1",
            ),
            (
                b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
                "local4.notice evntslog: \tfmt=rfc5424 time=2003-10-11T22:14:15.003Z host=mymachine.example.com msgid=ID47 sd=[exampleSDID@32473\\x20iut=\"3\"\\x20eventSource=\"Application\"\\x20eventID=\"1011\"][examplePriority@32473\\x20class=\"high\"]",
            ),
            // RFC 3164 examples.
            (
                b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
                "auth.crit su: 'su root' failed for lonvick on /dev/pts/8\tfmt=rfc3164 time3164=10-11T22:14:15 host=mymachine",
            ),
            (
                b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
                "user.notice -: Use the BFG!\tfmt=rfc3164 time3164=02-05T17:32:18 host=10.0.0.99",
            ),
            (
                b"<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!",
                "kern.emerg -: 1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!\tfmt=none",
            ),
            // glibc syslog(3): local time, no hostname, the day padded.
            (
                b"<156>Nov  1 02:03:04 myident[23240]: hello world",
                "local3.warning myident[23240]: hello world\tfmt=rfc3164 time3164=11-01T02:03:04",
            ),
            (
                b"<14>Nov 21 02:03:04 myident: no pid",
                "user.info myident: no pid\tfmt=rfc3164 time3164=11-21T02:03:04",
            ),
            // musl: UTC, a trailing LF, an empty ident.
            (
                b"<156>Nov 21 02:03:04 myident[23241]: hello world\n",
                "local3.warning myident[23241]: hello world\tfmt=rfc3164 time3164=11-21T02:03:04",
            ),
            (
                b"<14>Nov 21 02:03:04 : no ident\n",
                "user.info -: no ident\tfmt=rfc3164 time3164=11-21T02:03:04",
            ),
            (
                b"<156>Nov 21 02:03:04 [23242]: no ident, a pid\n",
                "local3.warning -[23242]: no ident, a pid\tfmt=rfc3164 time3164=11-21T02:03:04",
            ),
            // util-linux logger: local, --rfc3164, --rfc5424 (also stripped).
            (
                b"<13>Nov 21 02:03:04 root: default local",
                "user.notice root: default local\tfmt=rfc3164 time3164=11-21T02:03:04",
            ),
            (
                b"<13>Nov 21 02:03:04 vm tag3164: rfc3164 mode",
                "user.notice tag3164: rfc3164 mode\tfmt=rfc3164 time3164=11-21T02:03:04 host=vm",
            ),
            (
                b"<13>1 2026-11-21T02:03:04.747286+00:00 vm tag5424 - MID [timeQuality tzKnown=\"1\" isSynced=\"0\"] rfc5424 mode",
                "user.notice tag5424: rfc5424 mode\tfmt=rfc5424 time=2026-11-21T02:03:04.747286+00:00 host=vm msgid=MID sd=[timeQuality\\x20tzKnown=\"1\"\\x20isSynced=\"0\"]",
            ),
            (
                b"<13>1 - - root - - - rfc5424 stripped",
                "user.notice root: rfc5424 stripped\tfmt=rfc5424",
            ),
            (
                b"<13>1 - - root 42 - [x@1 a=\"q\\\"] \\\\\"] sd escapes",
                "user.notice root[42]: sd escapes\tfmt=rfc5424 sd=[x@1\\x20a=\"q\\\\\"]\\x20\\\\\\\\\"]",
            ),
            // Python's SysLogHandler: no timestamp, a trailing NUL.
            (b"<12>python says hi\x00", "user.warning -: python says hi\tfmt=none"),
            (b"<12>x: formatted\x00", "user.warning x: formatted\tfmt=rfc3164"),
            // Network devices: a sequence number, a clock mark, `: `.
            (
                b"<189>123: *Mar  1 18:46:11.123: %SYS-5-CONFIG_I: Configured from console",
                "local7.notice %SYS-5-CONFIG_I: Configured from console\tfmt=rfc3164 time3164=03-01T18:46:11.123 seq=123 unsynced=*",
            ),
            (
                b"<13> Nov  1 12:00:00 router1 %LINK-3-UPDOWN: Interface up",
                "user.notice %LINK-3-UPDOWN: Interface up\tfmt=rfc3164 time3164=11-01T12:00:00 host=router1",
            ),
            // Cisco IOS: a zone after the time; an uptime for a timestamp.
            (
                b"<189>644: *Jan  8 19:46:03.295 UTC: %SYS-5-CONFIG_I: Configured from console",
                "local7.notice %SYS-5-CONFIG_I: Configured from console\tfmt=rfc3164 time3164=01-08T19:46:03.295 zone=UTC seq=644 unsynced=*",
            ),
            (
                b"<189>Jan  8 19:46:03 CET: %LINK-3-UPDOWN: up",
                "local7.notice %LINK-3-UPDOWN: up\tfmt=rfc3164 time3164=01-08T19:46:03 zone=CET",
            ),
            (
                b"<189>12: 00:10:03: %SYS-5-CONFIG_I: Configured from console",
                "local7.notice %SYS-5-CONFIG_I: Configured from console\tfmt=rfc3164 uptime=00:10:03 seq=12",
            ),
            (
                b"<189>13: 1d02h: %SYS-5-CONFIG_I: Configured from console",
                "local7.notice %SYS-5-CONFIG_I: Configured from console\tfmt=rfc3164 uptime=1d02h seq=13",
            ),
            (
                b"<189>3w4d: %SYS-5-CONFIG_I: x",
                "local7.notice %SYS-5-CONFIG_I: x\tfmt=rfc3164 uptime=3w4d",
            ),
            (
                b"<13>12:00:00: the clock, then text",
                "user.notice -: 12:00:00: the clock, then text\tfmt=none",
            ),
            // A zone only in a device's header: a local sender's tag stays.
            (
                b"<13>Nov 21 02:03:04 CRON: job: done",
                "user.notice CRON: job: done\tfmt=rfc3164 time3164=11-21T02:03:04",
            ),
            // Tags as rsyslog and syslog-ng read them after a timestamp:
            // no colon after [pid] (rsyslog's forwarding), no space after
            // the colon.
            (
                b"<155>Nov 30 18:42:37 vm app6[66] relayed message",
                "local3.err app6[66]: relayed message\tfmt=rfc3164 time3164=11-30T18:42:37 host=vm",
            ),
            (
                b"<13>Nov 21 02:03:04 app6[66]",
                "user.notice app6[66]: \tfmt=rfc3164 time3164=11-21T02:03:04",
            ),
            (
                b"<14>Jan  1 00:00:00 app:nospace",
                "user.info app: nospace\tfmt=rfc3164 time3164=01-01T00:00:00",
            ),
            (
                b"<14>Jan  1 00:00:00 host app:two words",
                "user.info app: two words\tfmt=rfc3164 time3164=01-01T00:00:00 host=host",
            ),
            // A colon in a host name only as in an IPv6 address.
            (
                b"<13>Nov 21 02:03:04 fe80::1%eth0 app: x",
                "user.notice app: x\tfmt=rfc3164 time3164=11-21T02:03:04 host=fe80::1%eth0",
            ),
            (
                b"<13>Nov 21 02:03:04 ::1",
                "user.notice -: \tfmt=rfc3164 time3164=11-21T02:03:04 host=::1",
            ),
            // A full timestamp in a legacy header (rsyslog's high precision).
            (
                b"<30>2024-02-29T23:59:60.5+01:00 web1 nginx[7]: up",
                "daemon.info nginx[7]: up\tfmt=rfc3164 time=2024-02-29T23:59:60.5+01:00 host=web1",
            ),
            // No timestamp, no tag, no PRI, nothing at all.
            (b"<13>app[9]: no time", "user.notice app[9]: no time\tfmt=rfc3164"),
            (b"<13>", "user.notice -: \tfmt=none"),
            (b"", "user.notice -: \tfmt=none nopri=1"),
            (b"no pri: here", "user.notice -: no pri: here\tfmt=none nopri=1"),
            (b"<192>too big", "user.notice -: <192>too big\tfmt=none nopri=1"),
            (b"<1a>x", "user.notice -: <1a>x\tfmt=none nopri=1"),
            // A BOM in a legacy message; invalid UTF-8; controls.
            (
                b"<13>app: \xef\xbb\xbfcaf\xc3\xa9 \xff",
                "user.notice app: caf\u{e9} \\xff\tfmt=rfc3164 bom=1",
            ),
            (
                b"<13>app: one\ntwo\r\x00three\x1b[m\\\x00\n\x00",
                "user.notice app: one\\ntwo\\r\\0three\\x1b[m\\\\\tfmt=rfc3164",
            ),
            // Broken RFC 5424 headers fall back, keeping every byte.
            (
                b"<13>1 2003-13-11T22:14:15Z host app - - - x",
                "user.notice -: 1 2003-13-11T22:14:15Z host app - - - x\tfmt=none",
            ),
            (
                b"<13>1 - host app - - [unterminated x",
                "user.notice -: 1 - host app - - [unterminated x\tfmt=none",
            ),
            (
                b"<13>1 - host app - -",
                "user.notice -: 1 - host app - -\tfmt=none",
            ),
            // Things that look like a header but are not.
            (
                b"<13>Nov 31x 12:00:00 a: b",
                "user.notice -: Nov 31x 12:00:00 a: b\tfmt=none",
            ),
            (
                b"<13>http://example.com is down",
                "user.notice -: http://example.com is down\tfmt=none",
            ),
        ];
        for (datagram, want) in table {
            assert_eq!(
                line(datagram),
                *want,
                "{:?}",
                String::from_utf8_lossy(datagram)
            );
        }
    }

    /// A small, fast, deterministic generator: xorshift64*.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Pieces that steer random input into the parser's corners.
    const PIECES: &[&[u8]] = &[
        b"<13>",
        b"<191>",
        b"<0>",
        b"<",
        b">",
        b"1 ",
        b"-",
        b" ",
        b"  ",
        b":",
        b": ",
        b"[",
        b"]",
        b"\"",
        b"\\",
        b"=",
        b"Nov",
        b"Nov  1 ",
        b"Feb 29 ",
        b"12:00:00",
        b".123",
        b"2003-10-11T22:14:15Z",
        b"+01:00",
        b"app",
        b"[42]",
        b"host",
        b"[id a=\"b\"]",
        b"\xef\xbb\xbf",
        b"\n",
        b"\r",
        b"\0",
        b"\xff",
        b"\xc3\xa9",
        b"\xc2\x9b",
        b"123: ",
        b"*",
        b"%SYS-5-X: ",
        b"\t",
        b" UTC:",
        b"1d02h:",
        b"00:10:03:",
        b"::1",
    ];

    const TEMPLATES: &[&[u8]] = &[
        b"<34>1 2003-10-11T22:14:15.003Z host app 42 ID [a b=\"c\\\"\"][d] \xef\xbb\xbfmsg",
        b"<13>1 - - - - - - msg",
        b"<156>Nov  1 02:03:04 myident[23240]: hello",
        b"<189>123: *Mar  1 18:46:11.123: %SYS-5-X: text",
        b"<14>Nov 21 02:03:04 host app: text\n\0",
        b"<155>Nov 30 18:42:37 vm app6[66] relayed message",
        b"<14>Jan  1 00:00:00 app:nospace",
        b"<189>644: *Jan  8 19:46:03.295 UTC: %SYS-5-CONFIG_I: text",
        b"<189>13: 1d02h: %SYS-5-CONFIG_I: text",
    ];

    /// One of `templates` into `datagram`, with fewer than `edits` random
    /// edits: cut short, a byte changed, one of `pieces` put in.
    fn damaged(
        rng: &mut Rng,
        datagram: &mut Vec<u8>,
        templates: &[&[u8]],
        pieces: &[&[u8]],
        edits: usize,
    ) {
        datagram.extend_from_slice(templates[rng.below(templates.len())]);
        for _ in 0..rng.below(edits) {
            let at = rng.below(datagram.len() + 1);
            match rng.below(3) {
                0 => datagram.truncate(at),
                1 if at < datagram.len() => datagram[at] = rng.next() as u8,
                _ => {
                    let piece = pieces[rng.below(pieces.len())];
                    datagram.splice(at..at, piece.iter().copied());
                }
            }
        }
    }

    /// What `parse` would read without the shortcut for local senders.
    fn full_reading(datagram: &[u8]) -> Message<'_> {
        let bytes = without_trailing(datagram);
        match pri(bytes) {
            Some((priority, rest)) => {
                rfc5424(priority, rest).unwrap_or_else(|| legacy(priority, rest))
            }
            None => Message::plain(Priority::DEFAULT, false, bytes),
        }
    }

    const LOCAL_TEMPLATES: &[&[u8]] = &[
        b"<13>Nov  1 12:00:00 flood[10475]: message 0000000000xxxxxxxxxxxxxxxxxxxxxxxxx",
        b"<14>Nov 21 02:03:04 myident: no pid",
        b"<14>Nov 21 02:03:04 : no ident\n",
        b"<156>Nov 21 02:03:04 [23242]: no ident, a pid\n",
        b"<13>Nov 21 02:03:04 -: a dash",
        b"<13>Jan  8 19:46:03 UTC: %SYS-5-X: text",
        b"<13>Jan 08 19:46:03.295 CRON[1]: \xef\xbb\xbfbom",
        b"<13>Feb 29 23:59:60 a\\b[1]: back\\slash\ttab",
        b"<13>Dec 31 00:00:00 app:",
        b"<13>Dec 31 00:00:00 host app[2]: text",
    ];

    const LOCAL_PIECES: &[&[u8]] = &[
        b"Nov",
        b"nov",
        b"Foo",
        b" ",
        b"  ",
        b"1",
        b"31",
        b"32",
        b"0",
        b":",
        b": ",
        b"[",
        b"]",
        b"\\",
        b"-",
        b"UTC",
        b"CRON",
        b"%ASA-1",
        b"\xef\xbb\xbf",
        b"\t",
        b"\n",
        b"\0",
        b"\xc3\xa9",
        b"\xff",
        b"a b",
        b".5",
        b"12:00:00",
    ];

    /// The shortcut for the headers local senders write reads the same
    /// message as the full reading, and writes the same line.
    #[test]
    fn the_local_shortcut_reads_and_writes_what_the_full_reading_does() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut datagram = Vec::new();
        let (mut whole, mut parts, mut not_local) = (0, 0, 0);
        let mut recent = Recent::default();
        for case in 0..200_000 {
            datagram.clear();
            damaged(&mut rng, &mut datagram, LOCAL_TEMPLATES, LOCAL_PIECES, 3);
            let full = full_reading(&datagram);
            assert_eq!(parse(&datagram), full, "case {case}: {datagram:?}");
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            write_line(&datagram, &mut fast, &mut recent).field("uid", b"0");
            full.write_line(&mut slow).field("uid", b"0");
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&slow),
                "case {case}: {datagram:?}"
            );
            match read(&datagram) {
                Reading::Local(Local {
                    tagged: Some(_), ..
                }) => whole += 1,
                Reading::Local(_) => parts += 1,
                Reading::Other(_) => not_local += 1,
            }
        }
        // Each way was taken, many times.
        assert!(
            whole > 10_000 && parts > 10_000 && not_local > 10_000,
            "{whole} {parts} {not_local}"
        );
    }

    /// A datagram that begins with the header of the one before is read
    /// from that header as if in full, whatever its text: a `%` after a
    /// tag that could be a zone, a byte order mark, spaces, escapes, none.
    #[test]
    fn a_header_kept_from_the_message_before_reads_as_the_full_reading() {
        const FIRSTS: &[&[u8]] = &[
            b"<13>Nov  1 12:00:00 flood[10475]: message 0000000000xxxxxxxxxxxxxxxxxxxxxxxxx",
            b"<14>Nov 21 02:03:04 myident: no pid",
            b"<14>Nov 21 02:03:04 : no ident\n",
            b"<13>Jan  8 19:46:03 UTC: no percent",
            b"<13>Jan  8 19:46:03 UTCABCD: no percent",
            b"<13>Jan  8 19:46:03  UTC: two spaces",
            b"<13>Jan  8 19:46:03 UTC[1]: a pid",
            b"<13>Jan 08 19:46:03.295 CRON[1]: text",
            b"<13>Dec 31 00:00:00 app: ",
            b"<13>Dec 31 00:00:00 app:",
            b"<13>Dec 31 00:00:00 -: dash",
            b"<191>Feb 29 23:59:60 a.b-c_d[x y]: text",
        ];
        const TEXTS: &[&[u8]] = &[
            b"%SYS-5-X: text",
            b" ",
            b"  %x",
            b"\xef\xbb\xbf",
            b"bom",
            b"\\",
            b"\t",
            b"\n",
            b"\0",
            b":",
            b": ",
            b"[1]",
            b"x",
            b"ABC: ",
            b"\xc3\xa9",
            b"\xff",
        ];
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut recent = Recent::default();
        let (mut first, mut next) = (Vec::new(), Vec::new());
        let mut kept = 0;
        for case in 0..100_000 {
            first.clear();
            damaged(&mut rng, &mut first, FIRSTS, LOCAL_PIECES, 2);
            let mut out = Vec::new();
            write_line(&first, &mut out, &mut recent);
            for _ in 0..4 {
                // The header of the first, a byte more or less, or not.
                let text_at = without_trailing(&first).len() - parse(&first).text.len();
                let keep = match rng.below(4) {
                    0 => rng.below(first.len() + 1),
                    n => (text_at + n - 1).saturating_sub(1).min(first.len()),
                };
                next.clear();
                next.extend_from_slice(&first[..keep]);
                for _ in 0..rng.below(4) {
                    next.extend_from_slice(TEXTS[rng.below(TEXTS.len())]);
                }
                kept += usize::from(recent.head.found(without_trailing(&next)).is_some());
                let (mut fast, mut slow) = (Vec::new(), Vec::new());
                write_line(&next, &mut fast, &mut recent).field("uid", b"0");
                full_reading(&next).write_line(&mut slow).field("uid", b"0");
                assert_eq!(
                    String::from_utf8_lossy(&fast),
                    String::from_utf8_lossy(&slow),
                    "case {case}: {first:?} then {next:?}"
                );
            }
        }
        assert!(kept > 50_000, "{kept}");
    }

    /// Random bytes never panic the parser, and every line is one line of
    /// valid UTF-8 that reads back to exactly the parsed parts.
    #[test]
    fn random_datagrams() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut datagram = Vec::new();
        let mut out = Vec::new();
        let mut seen = [0usize; 3];
        for case in 0..200_000 {
            datagram.clear();
            if rng.below(3) == 0 {
                // A real message, a little damaged.
                damaged(&mut rng, &mut datagram, TEMPLATES, PIECES, 4);
            } else {
                for _ in 0..rng.below(12) {
                    if rng.below(3) == 0 {
                        let n = rng.below(8);
                        datagram.extend((0..n).map(|_| rng.next() as u8));
                    } else {
                        datagram.extend_from_slice(PIECES[rng.below(PIECES.len())]);
                    }
                }
            }
            let m = parse(&datagram);
            seen[m.format as usize] += 1;
            out.clear();
            m.write_line(&mut out).field("uid", b"0");
            assert!(
                !out.iter().any(|&b| b == b'\n' || b == b'\r' || b == 0),
                "case {case}: {datagram:?}"
            );
            let record =
                Record::parse(&out).unwrap_or_else(|e| panic!("case {case}: {datagram:?}: {e}"));
            assert_eq!(record.message, m.text, "case {case}: {datagram:?}");
            assert_eq!(record.app, m.app, "case {case}: {datagram:?}");
            assert_eq!(record.procid, m.procid, "case {case}: {datagram:?}");
            assert_eq!(record.priority, m.priority, "case {case}: {datagram:?}");
            assert_eq!(record.field("uid"), Some(&b"0"[..]));
            // The text is the sender's bytes, the end of the datagram less
            // its trailing NUL and LF bytes.
            let trimmed = datagram.len()
                - datagram
                    .iter()
                    .rev()
                    .take_while(|&&b| b == 0 || b == b'\n')
                    .count();
            assert!(
                datagram[..trimmed].ends_with(m.text),
                "case {case}: {datagram:?}"
            );
            if m.format == Format::None && !m.bom {
                let after_pri = match m.has_pri {
                    true => datagram
                        .iter()
                        .position(|&b| b == b'>')
                        .map_or(0, |i| i + 1),
                    false => 0,
                };
                assert_eq!(m.text, &datagram[after_pri..trimmed], "case {case}");
            }
        }
        // Every reading was exercised.
        assert!(seen.iter().all(|&n| n > 100), "{seen:?}");
    }
}
