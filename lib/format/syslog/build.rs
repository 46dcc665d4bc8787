//! RFC 5424 syslog messages, built from a log line: a reader line (see
//! `format::reader_line`) keeps what the original message said; any other line is a
//! service's own output and gets the defaults of its log directory.
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [SP MSG]
//! ```
//!
//! - PRI: the record's priority, else the default (daemon.notice);
//! - TIMESTAMP: the record's `time` field (the original, full RFC 3339
//!   timestamp) when it is one syslog-read keeps (`grammar::timestamp`),
//!   as RFC 5424 has it (`T` and `Z` uppercase, fractions past 6 digits
//!   cut off), else the line's stamp in UTC with microseconds (a leap
//!   second is `:60`), else `-`;
//! - HOSTNAME: the record's `host` (a relayed message's own), else its
//!   `from` (the sender's address, without the port), else this host;
//! - APP-NAME: the record's app name, else the default (the cursor's name);
//!   PROCID: the record's; MSGID: its `msgid` field;
//! - STRUCTURED-DATA: the record's `sd` field (the sender's own) when
//!   well-formed by RFC 5424's strict rules (`grammar::Mode::Strict`),
//!   then one element of our own, `[rill@32473 ...]`, holding every other
//!   field in order (the sender's credentials `pid` `uid` `gid` first
//!   among them as syslog-read writes them; a kernel record's dictionary;
//!   a malformed `sd` as `sd="..."`);
//! - MSG: the original message bytes, with a BOM only if it had one.
//!
//! Our element is the only one of our SD-ID, and holds only the record's
//! fields: what rill itself vouches for. An element of that ID in the
//! sender's `sd` (a forgery, or the element of another rill relaying the
//! message) is the sender's claim: it is passed on as sent, but under the
//! first claim ID the SD does not use yet, `rill-claimed@32473`,
//! `rill-claimed2@32473` ... (`NAME-claimedN@NUMBER` for an SD-ID
//! `NAME@NUMBER`), never merged with ours.
//!
//! Header fields keep to PRINTUSASCII and their lengths (HOSTNAME 255,
//! APP-NAME 48, PROCID 128, MSGID 32): any other byte becomes `_`, the rest
//! is cut off, and an empty one is NILVALUE `-`.

use crate::format::decimal::{write_decimal, zero_padded};
use crate::format::reader_line::{self, Priority, Record};
use crate::format::stamp::Stamp;
use crate::format::syslog::grammar::{
    self, IdSpan, SD_NAME_MAX, is_printusascii, is_sd_name_byte, strict_sd_ids,
};

/// The SD-ID of the element holding a record's other fields: a private
/// name under the enterprise number RFC 5612 sets aside for documentation,
/// as rill has none of its own. `--sd-id` changes it.
pub const SD_ID: &str = "rill@32473";

const HOSTNAME_MAX: usize = 255;
const APP_NAME_MAX: usize = 48;
const PROCID_MAX: usize = 128;
const MSGID_MAX: usize = 32;
const BOM: &[u8] = b"\xef\xbb\xbf";

/// Fields that go into the header rather than our SD element.
const HEADER_FIELDS: [&str; 5] = ["host", "time", "msgid", "sd", "bom"];

/// What a message takes when its line does not say: fixed per cursor.
#[derive(Clone, Debug)]
pub struct Defaults {
    /// For lines that are not reader lines.
    pub priority: Priority,
    /// This host, already a valid HOSTNAME.
    pub hostname: Vec<u8>,
    /// The cursor's name, already a valid APP-NAME.
    pub app: Vec<u8>,
    /// The SD-ID of our element.
    pub sd_id: String,
    /// Whether lines may be reader lines; false for a directory of a
    /// service's own output, whose lines must not be able to claim another
    /// priority, host or sender.
    pub records: bool,
}

impl Defaults {
    pub fn new(priority: Priority, hostname: &[u8], app: &[u8], sd_id: &str) -> Defaults {
        let mut host = Vec::new();
        header_field(hostname, HOSTNAME_MAX, &mut host);
        let mut name = Vec::new();
        header_field(app, APP_NAME_MAX, &mut name);
        Defaults {
            priority,
            hostname: host,
            app: name,
            sd_id: sd_id.to_string(),
            records: true,
        }
    }
}

/// What an SD-ID gains in its claim IDs: `-claimed` and a number of at
/// most 4 digits (see `claim_id`).
const CLAIM_ROOM: usize = "-claimed".len() + 4;

/// Whether `id` can be our SD-ID: an SD-NAME with room left for its claim
/// IDs.
pub fn valid_sd_name(id: &str) -> bool {
    !id.is_empty() && id.len() + CLAIM_ROOM <= SD_NAME_MAX && id.bytes().all(is_sd_name_byte)
}

/// `NAME@NUMBER` as its two parts; an SD-ID without `@` (one IANA
/// registers) as a name alone.
fn name_and_number(sd_id: &str) -> (&str, Option<&str>) {
    match sd_id.split_once('@') {
        Some((name, number)) => (name, Some(number)),
        None => (sd_id, None),
    }
}

/// The `n`th claim ID of `sd_id` (from 1): `NAME-claimed@NUMBER`, then
/// `NAME-claimed2@NUMBER` ...; `ID-claimed`, `ID-claimed2` ... for an ID
/// without `@`.
fn claim_id(sd_id: &str, n: usize) -> String {
    let (name, number) = name_and_number(sd_id);
    let mut id = format!("{name}-claimed");
    if n > 1 {
        id.push_str(&n.to_string());
    }
    if let Some(number) = number {
        id.push('@');
        id.push_str(number);
    }
    id
}

/// Builds messages, remembering the last second's date and time text.
#[derive(Default)]
pub struct Builder {
    clock: Clock,
}

impl Builder {
    /// Appends the message for one log line (its stamp and its text) to `out`.
    pub fn build(&mut self, stamp: Option<Stamp>, text: &[u8], d: &Defaults, out: &mut Vec<u8>) {
        let record = d.records && looks_like_record(text);
        match record.then(|| Record::parse(text).ok()).flatten() {
            Some(record) => self.record(stamp, &record, d, out),
            None => {
                self.header(d.priority, stamp, None, out);
                out.push(b' ');
                out.extend_from_slice(&d.hostname);
                out.push(b' ');
                out.extend_from_slice(&d.app);
                out.extend_from_slice(b" - - -");
                if !text.is_empty() {
                    out.push(b' ');
                    out.extend_from_slice(text);
                }
            }
        }
    }

    fn record(&mut self, stamp: Option<Stamp>, r: &Record, d: &Defaults, out: &mut Vec<u8>) {
        self.header(r.priority, stamp, r.field(reader_line::TIME), out);
        out.push(b' ');
        let host = r
            .field("host")
            .filter(|h| !h.is_empty())
            .or_else(|| r.field("from").map(strip_port).filter(|h| !h.is_empty()));
        match host {
            Some(host) => header_field(host, HOSTNAME_MAX, out),
            None => out.extend_from_slice(&d.hostname),
        }
        out.push(b' ');
        let at = out.len();
        header_field(&r.app, APP_NAME_MAX, out);
        if out.len() == at + 1 && out[at] == b'-' {
            out.truncate(at);
            out.extend_from_slice(&d.app);
        }
        out.push(b' ');
        header_field(&r.procid, PROCID_MAX, out);
        out.push(b' ');
        header_field(r.field("msgid").unwrap_or_default(), MSGID_MAX, out);
        out.push(b' ');
        structured_data(r, &d.sd_id, out);
        let bom = r.field("bom").is_some();
        if bom || !r.message.is_empty() {
            out.push(b' ');
            if bom {
                out.extend_from_slice(BOM);
            }
            out.extend_from_slice(&r.message);
        }
    }

    /// `<PRI>1 TIMESTAMP`
    fn header(
        &mut self,
        priority: Priority,
        stamp: Option<Stamp>,
        time: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) {
        out.push(b'<');
        write_decimal(u64::from(priority.pri()), out);
        out.extend_from_slice(b">1 ");
        if let Some(time) = time.and_then(rfc5424_time) {
            out.extend_from_slice(&time);
        } else if let Some(stamp) = stamp {
            self.clock.write(stamp, out);
        } else {
            out.push(b'-');
        }
    }
}

/// A cheap test before the full parse: a reader line starts with a known
/// facility name and a dot.
fn looks_like_record(text: &[u8]) -> bool {
    let Some(dot) = text.iter().take(9).position(|&b| b == b'.') else {
        return false;
    };
    dot > 0
        && text[..dot]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A header field: PRINTUSASCII, at most `max` bytes, or NILVALUE.
fn header_field(value: &[u8], max: usize, out: &mut Vec<u8>) {
    if value.is_empty() {
        out.push(b'-');
        return;
    }
    out.extend(
        value
            .iter()
            .take(max)
            .map(|&b| if is_printusascii(b) { b } else { b'_' }),
    );
}

/// `192.0.2.1:514` to `192.0.2.1`, `[2001:db8::1]:514` to `2001:db8::1`;
/// anything else as it is.
fn strip_port(from: &[u8]) -> &[u8] {
    if let Some(rest) = from.strip_prefix(b"[")
        && let Some(end) = rest.iter().position(|&b| b == b']')
    {
        return &rest[..end];
    }
    match from.iter().rposition(|&b| b == b':') {
        Some(colon)
            if from[..colon].iter().all(|&b| b != b':')
                && from[colon + 1..].iter().all(u8::is_ascii_digit) =>
        {
            &from[..colon]
        }
        _ => from,
    }
}

/// The original's SD when well-formed, an element of our SD-ID in it
/// renamed to a claim ID; then our element with the other fields.
fn structured_data(r: &Record, sd_id: &str, out: &mut Vec<u8>) {
    let original = r.field("sd").filter(|sd| *sd != b"-");
    let ids = original.and_then(strict_sd_ids);
    let mut ours = Vec::new();
    for (key, value) in &r.fields {
        if HEADER_FIELDS.contains(&key.as_str()) {
            continue;
        }
        param(key, value, &mut ours);
    }
    let start = out.len();
    match (original, &ids) {
        (Some(sd), Some(ids)) => {
            if !senders_sd(sd, ids, sd_id, out) {
                param("sd", sd, &mut ours);
            }
        }
        (Some(sd), None) => param("sd", sd, &mut ours),
        (None, _) => {}
    }
    if !ours.is_empty() {
        out.push(b'[');
        out.extend_from_slice(sd_id.as_bytes());
        out.extend_from_slice(&ours);
        out.push(b']');
    }
    if out.len() == start {
        out.push(b'-');
    }
}

/// Appends the sender's well-formed SD, an element of our SD-ID in it
/// (there is at most one) renamed to the first claim ID it does not use.
/// False, with nothing appended, when no claim ID is free within an
/// SD-NAME's length: the caller keeps the SD as text instead.
fn senders_sd(sd: &[u8], ids: &[IdSpan], sd_id: &str, out: &mut Vec<u8>) -> bool {
    let Some(forged) = ids.iter().find(|id| &sd[(*id).clone()] == sd_id.as_bytes()) else {
        out.extend_from_slice(sd);
        return true;
    };
    // Of the numbers 1 to ids.len() + 1, one is free. One pass, as a
    // sender may write many elements.
    let mut used = vec![false; ids.len() + 2];
    for id in ids {
        if let Some(n) = claim_number(&sd[id.clone()], sd_id).filter(|&n| n < used.len()) {
            used[n] = true;
        }
    }
    let free = (1..used.len()).find(|&n| !used[n]).unwrap_or(used.len());
    let claim = claim_id(sd_id, free);
    if claim.len() > SD_NAME_MAX {
        return false;
    }
    out.extend_from_slice(&sd[..forged.start]);
    out.extend_from_slice(claim.as_bytes());
    out.extend_from_slice(&sd[forged.end..]);
    true
}

/// `n` when `id` is `claim_id(sd_id, n)`.
fn claim_number(id: &[u8], sd_id: &str) -> Option<usize> {
    let (name, number) = name_and_number(sd_id);
    let rest = id
        .strip_prefix(name.as_bytes())?
        .strip_prefix(b"-claimed")?;
    let digits = match number {
        Some(number) => rest.strip_suffix(number.as_bytes())?.strip_suffix(b"@")?,
        None => rest,
    };
    match digits {
        [] => Some(1),
        [b'1'..=b'9', ..] if digits.len() <= 9 && digits.iter().all(u8::is_ascii_digit) => {
            let n = digits
                .iter()
                .fold(0, |n, &d| n * 10 + usize::from(d - b'0'));
            (n > 1).then_some(n)
        }
        _ => None,
    }
}

/// ` name="value"`, the name cut to an SD-NAME, the value as UTF-8 with
/// `"` `\` `]` escaped.
fn param(key: &str, value: &[u8], out: &mut Vec<u8>) {
    let name: Vec<u8> = key
        .bytes()
        .take(SD_NAME_MAX)
        .map(|b| if is_sd_name_byte(b) { b } else { b'_' })
        .collect();
    if name.is_empty() {
        return;
    }
    out.push(b' ');
    out.extend_from_slice(&name);
    out.extend_from_slice(b"=\"");
    for c in String::from_utf8_lossy(value).chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push(b'\\');
        }
        let mut utf8 = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    }
    out.push(b'"');
}

/// The original timestamp as RFC 5424 has it (uppercase `T` and `Z`, at
/// most 6 digits of fraction), if it is a full RFC 3339 one as
/// syslog-read keeps it.
fn rfc5424_time(time: &[u8]) -> Option<Vec<u8>> {
    let t = grammar::timestamp(time)?;
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(t.date_time);
    out[10] = b'T';
    if !t.fraction.is_empty() {
        out.push(b'.');
        out.extend_from_slice(&t.fraction[..t.fraction.len().min(6)]);
    }
    match t.zone {
        b"z" => out.push(b'Z'),
        zone => out.extend_from_slice(zone),
    }
    Some(out)
}

/// Writes stamps as `YYYY-MM-DDThh:mm:ss.uuuuuuZ`, the date and time
/// worked out once per second.
#[derive(Default)]
struct Clock {
    second: Option<(i64, bool)>,
    text: [u8; 19],
}

impl Clock {
    fn write(&mut self, stamp: Stamp, out: &mut Vec<u8>) {
        let utc = stamp.to_utc();
        if self.second != Some((utc.unix, utc.leap)) {
            self.second = Some((utc.unix, utc.leap));
            self.text = civil(utc.unix, utc.leap);
        }
        out.extend_from_slice(&self.text);
        let mut micros = *b".000000Z";
        zero_padded(u64::from(utc.nanos / 1000), &mut micros[1..7]);
        out.extend_from_slice(&micros);
    }
}

/// `YYYY-MM-DDThh:mm:ss` of a Unix second; `leap`: the second is 23:59:60.
fn civil(unix: i64, leap: bool) -> [u8; 19] {
    let days = unix.div_euclid(86_400);
    let mut secs = unix.rem_euclid(86_400);
    if leap {
        secs += 1;
    }
    // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = (yoe + era * 400 + i64::from(month <= 2)).clamp(0, 9999);
    let (h, m, s) = if secs == 86_400 {
        (23, 59, 60)
    } else {
        (secs / 3600, secs / 60 % 60, secs % 60)
    };
    let mut text = *b"0000-00-00T00:00:00";
    for (at, width, value) in [
        (0, 4, year),
        (5, 2, month),
        (8, 2, day),
        (11, 2, h),
        (14, 2, m),
        (17, 2, s),
    ] {
        zero_padded(value as u64, &mut text[at..at + width]);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::reader_line::{Facility, Severity};

    fn defaults() -> Defaults {
        Defaults::new(
            Priority {
                facility: Facility::DAEMON,
                severity: Severity::NOTICE,
            },
            b"web1.example.org",
            b"sshd",
            SD_ID,
        )
    }

    fn build(stamp: Option<Stamp>, text: &[u8]) -> String {
        let mut out = Vec::new();
        Builder::default().build(stamp, text, &defaults(), &mut out);
        String::from_utf8(out).unwrap()
    }

    /// 2024-02-29T12:34:56.789012 UTC.
    fn stamp() -> Stamp {
        Stamp::from_unix(1_709_210_096, 789_012_345)
    }

    #[test]
    fn a_plain_line_takes_the_defaults_and_its_stamp() {
        assert_eq!(
            build(Some(stamp()), b"started \"ok\" ]"),
            "<29>1 2024-02-29T12:34:56.789012Z web1.example.org sshd - - - started \"ok\" ]"
        );
        assert_eq!(build(None, b""), "<29>1 - web1.example.org sshd - - -");
        // Looks like a record but is not one.
        assert_eq!(
            build(Some(stamp()), b"kern.info no tag"),
            "<29>1 2024-02-29T12:34:56.789012Z web1.example.org sshd - - - kern.info no tag"
        );
    }

    #[test]
    fn a_record_keeps_what_the_original_said() {
        let mut r = Record::new(Priority::parse("local3.warning").unwrap(), b"disk full");
        r.app = b"myapp".to_vec();
        r.procid = b"1234".to_vec();
        r.push_field("host", "relay7");
        r.push_field("time", "2024-01-02t03:04:05.123456789+01:00");
        r.push_field("msgid", "ID47");
        r.push_field("sd", "[exampleSDID@32473 iut=\"3\" eventSource=\"App\\]\"]");
        r.push_field("pid", "1234");
        r.push_field("uid", "0");
        r.push_field("gid", "0");
        assert_eq!(
            build(Some(stamp()), &r.to_line()),
            "<156>1 2024-01-02T03:04:05.123456+01:00 relay7 myapp 1234 ID47 \
             [exampleSDID@32473 iut=\"3\" eventSource=\"App\\]\"]\
             [rill@32473 pid=\"1234\" uid=\"0\" gid=\"0\"] disk full"
        );
    }

    #[test]
    fn missing_parts_are_nil_or_the_defaults() {
        let mut r = Record::new(Priority::parse("user.info").unwrap(), b"");
        r.push_field("from", "192.0.2.7:514");
        r.push_field("bom", "");
        assert_eq!(
            build(Some(stamp()), &r.to_line()),
            "<14>1 2024-02-29T12:34:56.789012Z 192.0.2.7 sshd - - [rill@32473 from=\"192.0.2.7:514\"] \u{feff}"
        );
        let r = Record::new(Priority::parse("user.info").unwrap(), b"x");
        assert_eq!(
            build(Some(stamp()), &r.to_line()),
            "<14>1 2024-02-29T12:34:56.789012Z web1.example.org sshd - - - x"
        );
        assert_eq!(strip_port(b"[2001:db8::1]:514"), b"2001:db8::1");
        assert_eq!(strip_port(b"2001:db8::1"), b"2001:db8::1");
        assert_eq!(strip_port(b"host"), b"host");
    }

    #[test]
    fn header_fields_are_printusascii_and_bounded() {
        let mut r = Record::new(Priority::parse("user.info").unwrap(), b"m\nm");
        r.app = "caf\u{e9} app".as_bytes().to_vec();
        r.procid = vec![b'9'; 200];
        r.push_field("msgid", "x".repeat(40));
        r.push_field("host", "h".repeat(300));
        let text = build(Some(stamp()), &r.to_line());
        let fields: Vec<&str> = text.splitn(8, ' ').collect();
        assert_eq!(fields[2].len(), 255);
        assert_eq!(fields[3], "caf___app");
        assert_eq!(fields[4].len(), 128);
        assert_eq!(fields[5].len(), 32);
        assert_eq!(fields[7], "m\nm", "the message is the original bytes");
    }

    #[test]
    fn a_bad_sd_is_kept_as_a_param() {
        let mut r = Record::new(Priority::parse("user.info").unwrap(), b"m");
        r.push_field("sd", "[broken");
        r.push_field("uid", "5");
        assert!(build(None, &r.to_line()).ends_with(" [rill@32473 uid=\"5\" sd=\"[broken\"] m"));
    }

    fn build_with_sd(sd: &str, sd_id: &str) -> String {
        let mut r = Record::new(Priority::parse("user.info").unwrap(), b"m");
        r.push_field("sd", sd);
        r.push_field("uid", "5");
        r.push_field("from", "10.0.0.1:514");
        let d = Defaults {
            sd_id: sd_id.to_string(),
            ..defaults()
        };
        let mut out = Vec::new();
        Builder::default().build(None, &r.to_line(), &d, &mut out);
        let text = String::from_utf8(out).unwrap();
        let sd_at = text.match_indices(' ').nth(5).unwrap().0 + 1;
        text[sd_at..text.len() - 2].to_string()
    }

    #[test]
    fn a_senders_element_of_our_id_becomes_a_claim_never_merged_with_ours() {
        let ours = "[rill@32473 uid=\"5\" from=\"10.0.0.1:514\"]";
        assert_eq!(
            build_with_sd(
                "[a@1 x=\"1\"][rill@32473 uid=\"0\" from=\"1.2.3.4\"]",
                SD_ID
            ),
            format!("[a@1 x=\"1\"][rill-claimed@32473 uid=\"0\" from=\"1.2.3.4\"]{ours}")
        );
        // Relayed through rill machines: each claim ID once, in place.
        assert_eq!(
            build_with_sd(
                "[rill-claimed@32473 uid=\"1\"][rill@32473 uid=\"2\"][rill-claimed2@32473 uid=\"3\"]",
                SD_ID
            ),
            format!(
                "[rill-claimed@32473 uid=\"1\"][rill-claimed3@32473 uid=\"2\"][rill-claimed2@32473 uid=\"3\"]{ours}"
            )
        );
        // Another SD-ID of ours; one without `@`; an element that only
        // looks like ours.
        assert_eq!(
            build_with_sd("[me@9 uid=\"0\"][rill@32473 uid=\"0\"]", "me@9"),
            "[me-claimed@9 uid=\"0\"][rill@32473 uid=\"0\"][me@9 uid=\"5\" from=\"10.0.0.1:514\"]"
        );
        assert_eq!(
            build_with_sd("[origin ip=\"1\"]", "origin"),
            "[origin-claimed ip=\"1\"][origin uid=\"5\" from=\"10.0.0.1:514\"]"
        );
        assert_eq!(
            build_with_sd("[Rill@32473 uid=\"0\"]", SD_ID),
            format!("[Rill@32473 uid=\"0\"]{ours}")
        );
    }

    #[test]
    fn sd_with_no_free_claim_id_is_kept_as_text() {
        let id = "a".repeat(20);
        let mut sd = format!("[{id} x=\"1\"]");
        for n in 1..=9999 {
            sd.push_str(&format!("[{}]", claim_id(&id, n)));
        }
        let got = build_with_sd(&sd, &id);
        let head = format!(r#"[{id} uid="5" from="10.0.0.1:514" sd="[{id} x=\"1\"\]["#);
        assert!(got.starts_with(&head), "{}", &got[..200]);
        assert_eq!(
            got.matches('[').count(),
            1 + 10_000,
            "one element, the rest text"
        );
    }

    #[test]
    fn our_sd_id_leaves_room_for_its_claim_ids() {
        assert!(valid_sd_name(SD_ID));
        assert!(valid_sd_name(&"a".repeat(20)));
        assert!(!valid_sd_name(&"a".repeat(21)));
        assert!(!valid_sd_name("a b") && !valid_sd_name("a]") && !valid_sd_name(""));
        assert_eq!(claim_id(&"a".repeat(20), 9999).len(), SD_NAME_MAX);
        for (id, n) in [
            ("rill-claimed@32473", Some(1)),
            ("rill-claimed2@32473", Some(2)),
            ("rill-claimed10000@32473", Some(10_000)),
            ("rill-claimed1@32473", None),
            ("rill-claimed02@32473", None),
            ("rill-claimed2x@32473", None),
            ("rill-claimed@32474", None),
            ("rill@32473", None),
        ] {
            assert_eq!(claim_number(id.as_bytes(), SD_ID), n, "{id}");
            if let Some(n) = n {
                assert_eq!(claim_id(SD_ID, n), id);
            }
        }
    }

    #[test]
    fn param_values_escape_quote_backslash_bracket() {
        let mut out = Vec::new();
        param("k", b"a\"b\\c]d\xff", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            " k=\"a\\\"b\\\\c\\]d\u{fffd}\""
        );
    }

    #[test]
    fn timestamps_are_utc_with_microseconds_and_leap_seconds() {
        let leap = Stamp::from_unix(1_483_228_799, 0).secs() + 1;
        let mut out = Vec::new();
        let mut clock = Clock::default();
        clock.write(Stamp::from_parts(leap, 999_999_999).unwrap(), &mut out);
        assert_eq!(out, b"2016-12-31T23:59:60.999999Z");
        out.clear();
        clock.write(Stamp::from_unix(0, 1000), &mut out);
        assert_eq!(out, b"1970-01-01T00:00:00.000001Z");
        assert_eq!(&civil(951_782_400, false), b"2000-02-29T00:00:00");
        assert_eq!(&civil(4_102_444_799, false), b"2099-12-31T23:59:59");
        for bad in [
            &b"2024-01-02 03:04:05Z"[..],
            b"2024-13-02T03:04:05Z",
            b"2024-01-02T03:04:05",
            b"2024-01-02T03:04:05.Z",
            b"2024-01-02T03:04:05+0100",
            b"Jan  2 03:04:05",
        ] {
            assert_eq!(rfc5424_time(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            rfc5424_time(b"2024-01-02T03:04:05.1Z").unwrap(),
            b"2024-01-02T03:04:05.1Z"
        );
    }

    #[test]
    fn a_time_with_an_impossible_zone_offset_gives_way_to_the_stamp() {
        let mut r = Record::new(Priority::parse("user.info").unwrap(), b"m");
        r.push_field("time", "2024-01-02T03:04:05+99:99");
        assert!(
            build(Some(stamp()), &r.to_line()).starts_with("<14>1 2024-02-29T12:34:56.789012Z ")
        );
        for bad in ["+24:00", "-23:60"] {
            let time = format!("2024-01-02T03:04:05{bad}");
            assert_eq!(rfc5424_time(time.as_bytes()), None, "{time}");
        }
        assert_eq!(
            rfc5424_time(b"2024-01-02T03:04:05-23:59").unwrap(),
            b"2024-01-02T03:04:05-23:59"
        );
    }

    #[test]
    fn a_time_is_taken_as_syslog_read_takes_it_fractions_to_nanoseconds() {
        assert_eq!(
            rfc5424_time(b"2024-01-02t03:04:05.123456789z").unwrap(),
            b"2024-01-02T03:04:05.123456Z"
        );
        assert_eq!(rfc5424_time(b"2024-01-02T03:04:05.1234567890Z"), None);
    }
}
