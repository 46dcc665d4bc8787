//! Kernel log records as the kernel hands them out, parsed into reader
//! records (`reader_line::Record`). Bytes in, records out: no I/O here.
//!
//! `/dev/kmsg` gives one record per read(2):
//!
//! ```text
//! 6,1234,5140900,-,caller=T42;usb 1-1: new high-speed USB device
//!  SUBSYSTEM=usb
//!  DEVICE=+usb:1-1
//! ```
//!
//! a header (priority, sequence number, microseconds since boot, flags,
//! and on some kernels more `key=value` elements), `;`, the text, then the
//! record's dictionary as continuation lines that start with a space. The
//! kernel writes every byte of text, keys and values below 0x20, from 0x7f
//! up, and `\` itself as `\xHH`; that escaping is undone here, so a message
//! is the bytes that were logged, escaped again (readably) by `reader_line`.
//!
//! `/proc/kmsg` (and `dmesg -r`) give lines `<6>[    5.140900] text`, the
//! time and, with CONFIG_PRINTK_CALLER, a caller (`[    T42]`) present as
//! the kernel is configured; no sequence number, no dictionary, no escaping.
//! A record starting with `<` is read that way.

use crate::format::event_time::{self, UnixTime};
use crate::format::line_buffer::{LineBuffer, line_len};
use crate::format::reader_line::{self, Facility, Priority, Record, Severity};

/// The longest record taken as one: larger than any the kernel writes
/// (8 KiB), and the size of a read from the device.
pub const MAX_RECORD: usize = 64 << 10;

/// The app name of the lines klog-read writes about itself.
pub const OWN_APP: &[u8] = b"klog-read";

/// One kernel log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The PRI: facility * 8 + severity (the kernel's facility can exceed 23).
    pub pri: u32,
    /// The sequence number; none in the `/proc/kmsg` format.
    pub seq: Option<u64>,
    /// Microseconds since boot, when given.
    pub usec: Option<u64>,
    /// The kmsg flags (`-`, or `c` for a continued line), as given.
    pub flags: Vec<u8>,
    /// Who logged it, `T<tid>` or `C<cpu>`, when the kernel says.
    pub caller: Option<Vec<u8>>,
    /// Header elements not understood here, comma-separated, as given.
    pub extra: Vec<u8>,
    /// The text, the kernel's escaping undone.
    pub text: Vec<u8>,
    /// The dictionary (`SUBSYSTEM`, `DEVICE` ...), unescaped, in order. A
    /// continuation line without `=` has an empty key.
    pub dict: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Why a record could not be parsed; a token for the `malformed=` field.
pub type Malformed = &'static str;

/// Parses one record, of either format.
pub fn parse(raw: &[u8]) -> Result<Entry, Malformed> {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    let (first, rest) = match memchr::memchr(b'\n', raw) {
        Some(i) => (&raw[..i], &raw[i + 1..]),
        None => (raw, &b""[..]),
    };
    let mut entry = if first.first() == Some(&b'<') {
        parse_proc(first)?
    } else {
        parse_kmsg_header(first)?
    };
    for line in rest.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = line.strip_prefix(b" ").unwrap_or(line);
        let (key, value) = match memchr::memchr(b'=', line) {
            Some(eq) => (&line[..eq], &line[eq + 1..]),
            None => (&b""[..], line),
        };
        entry
            .dict
            .push((unescape_kernel(key), unescape_kernel(value)));
    }
    Ok(entry)
}

fn parse_kmsg_header(line: &[u8]) -> Result<Entry, Malformed> {
    let semi = memchr::memchr(b';', line).ok_or("no-semicolon")?;
    let mut parts = line[..semi].split(|&b| b == b',');
    let pri = parts
        .next()
        .and_then(number)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or("bad-priority")?;
    let seq = parts.next().and_then(number).ok_or("bad-sequence")?;
    let usec = parts.next().and_then(number).ok_or("bad-timestamp")?;
    let flags = parts.next().ok_or("no-flags")?.to_vec();
    let mut caller = None;
    let mut extra: Vec<u8> = Vec::new();
    for part in parts {
        match part.strip_prefix(b"caller=") {
            Some(who) if caller.is_none() => caller = Some(who.to_vec()),
            _ => {
                if !extra.is_empty() {
                    extra.push(b',');
                }
                extra.extend_from_slice(part);
            }
        }
    }
    Ok(Entry {
        pri,
        seq: Some(seq),
        usec: Some(usec),
        flags,
        caller,
        extra,
        text: unescape_kernel(&line[semi + 1..]),
        dict: Vec::new(),
    })
}

/// `<pri>`, then optionally `[seconds.micros]` and `[caller]` and a space.
fn parse_proc(line: &[u8]) -> Result<Entry, Malformed> {
    let close = memchr::memchr(b'>', line).ok_or("bad-priority")?;
    let pri = number(&line[1..close])
        .and_then(|n| u32::try_from(n).ok())
        .ok_or("bad-priority")?;
    let mut rest = &line[close + 1..];
    let mut usec = None;
    let mut caller = None;
    if let Some((time, after)) = bracketed(rest).and_then(|(t, a)| Some((proc_time(t)?, a))) {
        usec = Some(time);
        rest = after;
    }
    if let Some((who, after)) = bracketed(rest).filter(|(w, _)| is_caller(w)) {
        caller = Some(who.to_vec());
        rest = after;
    }
    if usec.is_some() || caller.is_some() {
        rest = rest.strip_prefix(b" ").unwrap_or(rest);
    }
    Ok(Entry {
        pri,
        seq: None,
        usec,
        flags: Vec::new(),
        caller,
        extra: Vec::new(),
        text: rest.to_vec(),
        dict: Vec::new(),
    })
}

/// `[  inside]rest` -> (`inside` without its leading spaces, `rest`).
fn bracketed(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let inner = text.strip_prefix(b"[")?;
    let close = memchr::memchr(b']', inner)?;
    let inside = &inner[..close];
    let start = inside.iter().position(|&b| b != b' ')?;
    Some((&inside[start..], &inner[close + 1..]))
}

/// `5.140900` -> microseconds, as the kernel prints its time (`%lu.%06lu`).
fn proc_time(text: &[u8]) -> Option<u64> {
    let dot = memchr::memchr(b'.', text)?;
    let micros = &text[dot + 1..];
    if micros.len() != 6 {
        return None;
    }
    number(&text[..dot])?
        .checked_mul(1_000_000)?
        .checked_add(number(micros)?)
}

fn is_caller(text: &[u8]) -> bool {
    matches!(text.first(), Some(b'T' | b'C'))
        && text.len() > 1
        && text[1..].iter().all(u8::is_ascii_digit)
}

/// Decimal digits only, no sign, no overflow.
fn number(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Undoes the kernel's `\xHH`; any other backslash is kept as it is.
pub fn unescape_kernel(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(at) = memchr::memchr(b'\\', &text[i..]) {
        out.extend_from_slice(&text[i..i + at]);
        i += at;
        let byte = match text.get(i + 1..i + 4) {
            Some([b'x', hi, lo]) => hex_digit(*hi)
                .zip(hex_digit(*lo))
                .map(|(hi, lo)| hi << 4 | lo),
            _ => None,
        };
        match byte {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
    out.extend_from_slice(&text[i..]);
    out
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

impl Entry {
    /// The reader line's record: see klog-read(8) for every field. With
    /// `booted`, the wall-clock time the boot started, a record with a
    /// boot-relative time gets its event time (`time=`): `booted` plus
    /// that time.
    pub fn to_record(&self, booted: Option<UnixTime>) -> Record {
        let (priority, unmapped) =
            match Priority::from_pri(u16::try_from(self.pri).unwrap_or(u16::MAX)) {
                Some(p) => (p, false),
                None => {
                    let severity = Severity::of_pri(self.pri);
                    let facility = Facility::USER;
                    (Priority { facility, severity }, true)
                }
            };
        let mut record = Record::new(priority, &self.text);
        // Only the kernel logs with facility kern: /dev/kmsg gives records
        // written from user space facility user when they name none.
        if priority.facility == Facility::KERN {
            record.app = b"kernel".to_vec();
        }
        if let Some(seq) = self.seq {
            record.push_field("seq", seq.to_string());
        }
        if let Some(usec) = self.usec {
            record.push_field(
                "boot",
                format!("{}.{:06}", usec / 1_000_000, usec % 1_000_000),
            );
            if let Some(at) = booted.and_then(|b| at_offset(b, usec)) {
                let mut time = Vec::with_capacity(32);
                event_time::write_rfc3339_utc(at, &mut time);
                record.push_field(reader_line::TIME, time);
            }
        }
        if !self.flags.is_empty() && self.flags != b"-" {
            record.push_field("flags", &self.flags);
        }
        if let Some(caller) = &self.caller {
            record.push_field("caller", caller);
        }
        if !self.extra.is_empty() {
            record.push_field("extra", &self.extra);
        }
        if unmapped {
            record.push_field("pri", self.pri.to_string());
        }
        for (key, value) in &self.dict {
            let key = String::from_utf8_lossy(key).to_ascii_uppercase();
            record.push_field(&key, value);
        }
        record
    }
}

/// `booted` plus `usec` microseconds.
fn at_offset(booted: UnixTime, usec: u64) -> Option<UnixTime> {
    let nanos = u64::from(booted.nanos) + usec % 1_000_000 * 1000;
    let secs = i64::try_from(usec / 1_000_000 + nanos / 1_000_000_000).ok()?;
    Some(UnixTime {
        unix: booted.unix.checked_add(secs)?,
        nanos: (nanos % 1_000_000_000) as u32,
    })
}

/// klog-read's boot marker, written before the first record of a boot it
/// starts reading: `kern.notice klog-read: boot ID started` with the boot
/// id (`boot_id=`) and the time the boot started (`time=`, so that it
/// shows at that time).
pub fn boot_record(boot_id: &str, booted: UnixTime) -> Record {
    let mut record = own_record(format!("boot {boot_id} started").as_bytes());
    record.priority.severity = Severity::NOTICE;
    record.push_field(reader_line::BOOT_ID, boot_id);
    let mut time = Vec::with_capacity(32);
    event_time::write_rfc3339_utc(booted, &mut time);
    record.push_field(reader_line::TIME, time);
    record
}

/// klog-read's own line for `first..=last` records lost.
pub fn loss_record(first: u64, last: u64) -> Record {
    let count = last.saturating_sub(first).saturating_add(1);
    let text = match count {
        1 => format!("1 record lost (seq {first})"),
        n => format!("{n} records lost (seq {first}-{last})"),
    };
    let mut record = own_record(text.as_bytes());
    record.push_field("lost", count.to_string());
    record.push_field("first", first.to_string());
    record.push_field("last", last.to_string());
    record
}

/// klog-read's own line for a record it could not parse: the record's
/// bytes, as they came, and why.
pub fn malformed_record(raw: &[u8], why: Malformed) -> Record {
    let mut record = own_record(raw.strip_suffix(b"\n").unwrap_or(raw));
    record.push_field("malformed", why);
    record
}

fn own_record(message: &[u8]) -> Record {
    let mut record = Record::new(
        Priority {
            facility: Facility::KERN,
            severity: Severity::WARNING,
        },
        message,
    );
    record.app = OWN_APP.to_vec();
    record
}

/// How much more input may follow what a framer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// More may come at once: a record's continuation lines may still be
    /// on their way.
    More,
    /// Nothing more for now (one device read, or a stream drained): the
    /// last whole line ends a record.
    Burst,
    /// The input ended: a last line without LF is whole too.
    Eof,
}

/// Cuts a byte stream into records: a line, and the lines after it that
/// start with a space. A read of `/dev/kmsg` is one whole record; a FIFO
/// or file holds records back to back. Lines are cut as `LineBuffer`
/// cuts them (a line longer than a record comes in pieces), and a record
/// takes no more continuation lines once it is a record long.
pub struct Framer {
    lines: LineBuffer,
}

impl Default for Framer {
    fn default() -> Framer {
        Framer {
            lines: LineBuffer::new(MAX_RECORD),
        }
    }
}

impl Framer {
    pub fn push(&mut self, bytes: &[u8]) {
        self.lines.push(bytes);
    }

    /// The next whole record, without its last LF.
    pub fn next(&mut self, end: End) -> Option<&[u8]> {
        if end == End::Eof {
            self.lines.finish();
        }
        let len = record_len(self.lines.held(), end)?;
        let range = self.lines.take(len);
        let record = self.lines.get(range);
        Some(record.strip_suffix(b"\n").unwrap_or(record))
    }

    /// Bytes held that are not yet a whole record.
    pub fn held(&self) -> usize {
        self.lines.held().len()
    }
}

/// The length of the record `data` starts with, its last LF included.
fn record_len(data: &[u8], end: End) -> Option<usize> {
    if data.is_empty() {
        return None;
    }
    let mut pos = line_len(data, MAX_RECORD)?;
    while pos < data.len() && data[pos] == b' ' && pos < MAX_RECORD {
        pos += line_len(&data[pos..], MAX_RECORD)?;
    }
    if pos == data.len() && end == End::More {
        return None; // its continuation lines may be coming
    }
    Some(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(raw: &[u8]) -> String {
        let record = match parse(raw) {
            Ok(entry) => entry.to_record(None),
            Err(why) => malformed_record(raw, why),
        };
        let line = record.to_line();
        assert_eq!(Record::parse(&line), Ok(record), "round trip");
        String::from_utf8(line).expect("UTF-8")
    }

    #[test]
    fn the_event_time_is_the_boot_time_plus_the_records() {
        let booted = UnixTime {
            unix: 1_798_761_600,
            nanos: 999_900_000,
        };
        let entry = parse(b"6,7,5140900,-;hello\n SUBSYSTEM=usb\n").unwrap();
        assert_eq!(
            String::from_utf8(entry.to_record(Some(booted)).to_line()).unwrap(),
            "kern.info kernel: hello\tseq=7 boot=5.140900 \
             time=2027-01-01T00:00:06.140800Z SUBSYSTEM=usb"
        );
        assert_eq!(
            String::from_utf8(boot_record("30e5-b4fc", booted).to_line()).unwrap(),
            "kern.notice klog-read: boot 30e5-b4fc started\t\
             boot_id=30e5-b4fc time=2027-01-01T00:00:00.999900Z"
        );
    }

    #[test]
    fn a_kernel_record_with_its_dictionary() {
        assert_eq!(
            line(b"6,1234,5140900,-;usb 1-1: new high-speed USB device number 2\n SUBSYSTEM=usb\n DEVICE=+usb:1-1\n"),
            "kern.info kernel: usb 1-1: new high-speed USB device number 2\t\
             seq=1234 boot=5.140900 SUBSYSTEM=usb DEVICE=+usb:1-1"
        );
        assert_eq!(
            line(b"3,0,0,-;first"),
            "kern.err kernel: first\tseq=0 boot=0.000000"
        );
    }

    #[test]
    fn records_from_user_space_keep_their_facility_and_their_text() {
        assert_eq!(
            line(b"12,77,4591525880,-;rilltest: hello: world\n"),
            "user.warning -: rilltest: hello: world\tseq=77 boot=4591.525880"
        );
        assert_eq!(
            line(b"30,78,1,-;systemd[1]: started\n"),
            "daemon.info -: systemd[1]: started\tseq=78 boot=0.000001"
        );
        // The kernel keeps any facility number; past local7 it is kept in pri=.
        assert_eq!(
            line(b"2044,5,1,-;odd\n"),
            "user.warning -: odd\tseq=5 boot=0.000001 pri=2044"
        );
    }

    #[test]
    fn the_kernels_escaping_is_undone_and_ours_applied() {
        let raw = b"4,9,10,-;caf\\xc3\\xa9 tab\\x09nl\\x0aback\\x5cslash \\xff \\q \\x4\n DEVICE=a\\x20b\n";
        let entry = parse(raw).unwrap();
        assert_eq!(
            entry.text,
            b"caf\xc3\xa9 tab\tnl\nback\\slash \xff \\q \\x4"
        );
        assert_eq!(entry.dict, vec![(b"DEVICE".to_vec(), b"a b".to_vec())]);
        assert_eq!(
            line(raw),
            "kern.warning kernel: café tab\\tnl\\nback\\\\slash \\xff \\\\q \\\\x4\t\
             seq=9 boot=0.000010 DEVICE=a\\x20b"
        );
        assert_eq!(unescape_kernel(b"\\x41\\X41\\x4g\\"), b"A\\X41\\x4g\\");
    }

    #[test]
    fn odd_flags_and_header_elements_are_kept() {
        assert_eq!(
            line(b"4,10,20,c;cont\n"),
            "kern.warning kernel: cont\tseq=10 boot=0.000020 flags=c"
        );
        assert_eq!(
            line(b"4,11,20,+,caller=T42;x\n"),
            "kern.warning kernel: x\tseq=11 boot=0.000020 flags=+ caller=T42"
        );
        assert_eq!(
            line(b"4,12,20,,caller=C1,new=1,more;x\n"),
            "kern.warning kernel: x\tseq=12 boot=0.000020 caller=C1 extra=new=1,more"
        );
    }

    #[test]
    fn odd_dictionaries_are_kept() {
        assert_eq!(
            line(b"6,1,2,-;t\n lower=v\n no equals\n\n SP ACE=x=y\n"),
            "kern.info kernel: t\tseq=1 boot=0.000002 LOWER=v _=no\\x20equals SP_ACE=x=y"
        );
    }

    #[test]
    fn malformed_records_are_kept_whole_and_say_why() {
        for (raw, why) in [
            (&b""[..], "no-semicolon"),
            (b"garbage\n", "no-semicolon"),
            (b"x,1,2,-;t", "bad-priority"),
            (b"-1,1,2,-;t", "bad-priority"),
            (b"99999999999,1,2,-;t", "bad-priority"),
            (b"6,,2,-;t", "bad-sequence"),
            (b"6,99999999999999999999999,2,-;t", "bad-sequence"),
            (b"6,1,2.5,-;t", "bad-timestamp"),
            (b"6,1,2;t", "no-flags"),
            (b"<6 no close", "bad-priority"),
            (b"<>x", "bad-priority"),
        ] {
            assert_eq!(parse(raw), Err(why), "{}", String::from_utf8_lossy(raw));
        }
        assert_eq!(
            line(b"6,x;bad\xff\n K=v\n"),
            "kern.warning klog-read: 6,x;bad\\xff\\n K=v\tmalformed=bad-sequence"
        );
    }

    #[test]
    fn proc_kmsg_lines() {
        assert_eq!(
            line(b"<6>[    5.140900] usb 1-1: hello\n"),
            "kern.info kernel: usb 1-1: hello\tboot=5.140900"
        );
        assert_eq!(
            line(b"<4>[12345.000001][    T42] x"),
            "kern.warning kernel: x\tboot=12345.000001 caller=T42"
        );
        assert_eq!(line(b"<14>plain"), "user.info -: plain");
        // Not a time: kept in the text.
        assert_eq!(line(b"<6>[1.5] [abc] x"), "kern.info kernel: [1.5] [abc] x");
        assert_eq!(line(b"<6>[  C3] y"), "kern.info kernel: y\tcaller=C3");
    }

    #[test]
    fn loss_lines() {
        assert_eq!(
            String::from_utf8(loss_record(100, 111).to_line()).unwrap(),
            "kern.warning klog-read: 12 records lost (seq 100-111)\tlost=12 first=100 last=111"
        );
        assert_eq!(
            String::from_utf8(loss_record(7, 7).to_line()).unwrap(),
            "kern.warning klog-read: 1 record lost (seq 7)\tlost=1 first=7 last=7"
        );
    }

    fn frames(framer: &mut Framer, end: End) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(r) = framer.next(end) {
            out.push(String::from_utf8_lossy(r).into_owned());
        }
        out
    }

    #[test]
    fn a_stream_is_cut_into_records_with_their_continuations() {
        let mut f = Framer::default();
        f.push(b"6,1,0,-;one\n SUBSYSTEM=usb\n6,2,0,-;tw");
        assert_eq!(
            frames(&mut f, End::More),
            vec!["6,1,0,-;one\n SUBSYSTEM=usb"]
        );
        f.push(b"o\n");
        // The record may still get continuation lines.
        assert!(frames(&mut f, End::More).is_empty());
        f.push(b" DEVICE=+usb:1-1\n<6>three\n");
        assert_eq!(
            frames(&mut f, End::More),
            vec!["6,2,0,-;two\n DEVICE=+usb:1-1"]
        );
        assert_eq!(frames(&mut f, End::Burst), vec!["<6>three"]);
        f.push(b"<6>no newline");
        assert!(frames(&mut f, End::Burst).is_empty());
        assert_eq!(f.held(), 13);
        assert_eq!(frames(&mut f, End::Eof), vec!["<6>no newline"]);
        assert_eq!(f.held(), 0);
    }

    #[test]
    fn an_endless_line_is_cut_not_held() {
        let mut f = Framer::default();
        f.push(&vec![b'a'; MAX_RECORD + 10]);
        let got = frames(&mut f, End::More);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), MAX_RECORD);
        assert_eq!(frames(&mut f, End::Eof), vec!["a".repeat(10)]);
        // Continuation lines cannot make a record grow without end either.
        let mut f = Framer::default();
        let mut stream = b"6,1,0,-;t\n".to_vec();
        for _ in 0..MAX_RECORD / 8 {
            stream.extend_from_slice(b" K=vvvv\n");
        }
        f.push(&stream);
        let got = frames(&mut f, End::Eof);
        assert!(
            got.len() >= 2 && got[0].len() <= MAX_RECORD + 8,
            "{}",
            got.len()
        );
        assert_eq!(got.iter().map(|r| r.len() + 1).sum::<usize>(), stream.len());
    }

    #[test]
    fn no_bytes_make_it_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut raw = Vec::new();
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                const BYTES: &[u8] = b"6,1;-\\x0a<>[] .=T\n\xff";
                raw.push(BYTES[(seed % BYTES.len() as u64) as usize]);
            }
            let _ = line(&raw);
            let mut f = Framer::default();
            f.push(&raw);
            let _ = frames(&mut f, End::Eof);
        }
    }
}
