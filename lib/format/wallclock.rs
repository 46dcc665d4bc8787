//! Stamps as the times people read and write: shown as RFC 3339 with
//! microseconds, in local time or UTC, and read back from what people type
//! after `--since` and `--until`.
//!
//! Local time is the C library's (`localtime_r`, `mktime`), so `TZ` is
//! honoured. A leap second is shown as `23:59:60` (in UTC; local times show
//! it at their own offset, as RFC 3339 allows).

use std::time::UNIX_EPOCH;

use crate::error::Usage;
use crate::format::decimal::zero_padded;
use crate::format::stamp::{Stamp, Utc};
use crate::sys::single_threaded::SingleThreaded;

/// How the stamps of a directory were written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convention {
    /// True TAI: rill, s6-log, nosh.
    Tai,
    /// daemontools' TAI = UTC + 10 s (multilog, tai64n).
    Daemontools,
}

impl Convention {
    pub fn to_utc(self, stamp: Stamp) -> Utc {
        match self {
            Convention::Tai => stamp.to_utc(),
            Convention::Daemontools => stamp.to_utc_daemontools(),
        }
    }

    pub fn from_unix(self, unix: i64, nanos: u32) -> Stamp {
        match self {
            Convention::Tai => Stamp::from_unix(unix, nanos),
            Convention::Daemontools => Stamp::from_unix_daemontools(unix, nanos),
        }
    }
}

/// The time zone times are shown and read in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    Local,
    Utc,
}

unsafe extern "C" {
    /// POSIX; absent from the libc crate for Linux.
    fn tzset();
}

/// Has the C library read `TZ` and the zone files, for local times. It
/// reads the environment, which another thread could be changing: so only
/// `main`, while it has no other thread.
pub fn read_local_zone(_: &SingleThreaded) {
    // SAFETY: no other thread exists (the SingleThreaded token).
    unsafe { tzset() };
}

/// The calendar time of a Unix time in a zone: (tm, offset from UTC in
/// seconds). `None` when the C library cannot represent it.
fn calendar(unix: i64, zone: Zone) -> Option<(libc::tm, i64)> {
    let t = libc::time_t::try_from(unix).ok()?;
    // SAFETY: tm is plain data; the _r functions write only into it.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        let done = match zone {
            Zone::Local => libc::localtime_r(&t, &mut tm),
            Zone::Utc => libc::gmtime_r(&t, &mut tm),
        };
        (!done.is_null()).then(|| {
            let offset = tm.tm_gmtoff as i64; // c_long: 32 bits on some systems
            (tm, offset)
        })
    }
}

/// The offset from UTC, in seconds, of a zone at a Unix time.
pub fn utc_offset(unix: i64, zone: Zone) -> Option<i64> {
    calendar(unix, zone).map(|(_, offset)| offset)
}

/// The Unix time of a calendar time in a zone (fields out of range are
/// carried, as mktime does; an ambiguous local time takes the C library's
/// choice).
fn from_calendar(mut tm: libc::tm, zone: Zone) -> Option<i64> {
    tm.tm_isdst = -1;
    // SAFETY: tm is a valid, initialised struct owned here.
    let t = unsafe {
        match zone {
            Zone::Local => libc::mktime(&mut tm),
            Zone::Utc => libc::timegm(&mut tm),
        }
    };
    // -1 is also 23:59:59 on 1969-12-31: before any stamp we show.
    (t != -1).then_some(t as i64) // time_t: 32 bits on some systems
}

/// Writes stamps as times, fast: lines of the same second share the
/// formatting of all but their fraction. Two seconds are kept formatted,
/// the last and the one before: times of two sources interleave (a line's
/// event time, another's stamp).
pub struct TimeWriter {
    zone: Zone,
    convention: Convention,
    last: Formatted,
    before: Formatted,
}

/// One second, formatted.
#[derive(Default)]
struct Formatted {
    /// The second formatted in `date` and `offset`.
    second: Option<i64>,
    /// `YYYY-MM-DDTHH:MM:` of `second`.
    date: Vec<u8>,
    /// Its seconds, two digits.
    seconds: [u8; 2],
    /// `Z` or `+HH:MM`.
    offset: Vec<u8>,
}

impl TimeWriter {
    /// In `Zone::Local`, after [`read_local_zone`].
    pub fn new(zone: Zone, convention: Convention) -> TimeWriter {
        TimeWriter {
            zone,
            convention,
            last: Formatted::default(),
            before: Formatted::default(),
        }
    }

    /// Appends the time of `stamp`: `2026-11-21T01:53:10.123456+01:00`,
    /// or the stamp's label if it is no time the C library can show.
    pub fn write(&mut self, stamp: Stamp, out: &mut Vec<u8>) {
        let utc = self.convention.to_utc(stamp);
        if self.last.second != Some(utc.unix) {
            std::mem::swap(&mut self.last, &mut self.before);
            if self.last.second != Some(utc.unix) && !self.last.format(utc.unix, self.zone) {
                out.extend_from_slice(&stamp.label());
                return;
            }
        }
        let last = &self.last;
        out.extend_from_slice(&last.date);
        out.extend_from_slice(if utc.leap { b"60" } else { &last.seconds });
        let micros = utc.nanos / 1000;
        let mut fraction = *b".000000";
        zero_padded(u64::from(micros), &mut fraction[1..]);
        out.extend_from_slice(&fraction);
        out.extend_from_slice(&last.offset);
    }
}

impl Formatted {
    fn format(&mut self, unix: i64, zone: Zone) -> bool {
        use std::io::Write;
        let Some((tm, offset)) = calendar(unix, zone) else {
            self.second = None;
            return false;
        };
        self.date.clear();
        let _ = write!(
            self.date,
            "{:04}-{:02}-{:02}T{:02}:{:02}:",
            i64::from(tm.tm_year) + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min
        );
        let sec = tm.tm_sec.clamp(0, 59) as u8;
        zero_padded(u64::from(sec), &mut self.seconds);
        self.offset.clear();
        if zone == Zone::Utc {
            self.offset.push(b'Z');
        } else {
            let sign = if offset < 0 { '-' } else { '+' };
            let minutes = offset.abs() / 60;
            let _ = write!(self.offset, "{sign}{:02}:{:02}", minutes / 60, minutes % 60);
        }
        self.second = Some(unix);
        true
    }
}

/// Reads a time as people write it, for `--since` and `--until`:
///
/// - `2026-11-21T01:53:10.5+01:00`, `2026-11-21 01:53:10Z`, `2026-11-21
///   01:53`, `2026-11-21`, `01:53:10`: RFC 3339 and its shorter forms; with
///   no offset, in `zone`; with no date, today; with no time, midnight;
/// - `now`, `today`, `yesterday`, `tomorrow` (midnight in `zone`);
/// - `1h`, `2days`, `1h 30min ago`, `-15min`: that long ago; `+1h`: ahead;
/// - `@1795222390`: Unix seconds; `@400000006b00eb9b00000000`: a stamp.
///
/// `now` is the time it is, as a Unix time.
pub fn parse_time(
    text: &str,
    now: (i64, u32),
    zone: Zone,
    convention: Convention,
) -> Result<Stamp, Usage> {
    let text = text.trim();
    let bad = |why: &str| Usage(format!("{text:?} is not a time ({why})"));
    let stamp = |unix: i64, nanos: u32| convention.from_unix(unix, nanos);
    let midnight = |days: i32| -> Result<Stamp, Usage> {
        let (mut tm, _) = calendar(now.0, zone).ok_or_else(|| bad("no calendar for now"))?;
        tm.tm_mday += days;
        (tm.tm_hour, tm.tm_min, tm.tm_sec) = (0, 0, 0);
        let unix = from_calendar(tm, zone).ok_or_else(|| bad("out of range"))?;
        Ok(stamp(unix, 0))
    };
    match text {
        "now" => return Ok(stamp(now.0, now.1)),
        "today" => return midnight(0),
        "yesterday" => return midnight(-1),
        "tomorrow" => return midnight(1),
        _ => {}
    }
    if let Some(at) = text.strip_prefix('@') {
        if at.len() == 24 {
            return Stamp::parse_hex(at.as_bytes()).ok_or_else(|| bad("a bad stamp"));
        }
        let (secs, fraction) = at.split_once('.').unwrap_or((at, ""));
        let unix = secs.parse::<i64>().map_err(|_| bad("bad Unix seconds"))?;
        return Ok(stamp(
            unix,
            parse_fraction(fraction).ok_or_else(|| bad("bad fraction"))?,
        ));
    }
    if text.contains(':') || is_date(text.as_bytes()) {
        return parse_absolute(text, now.0, zone, convention).map_err(&bad);
    }
    let (ahead, span) = match text.strip_suffix("ago") {
        Some(span) => (false, span),
        None => match text.strip_prefix('+') {
            Some(span) => (true, span),
            None => (false, text.strip_prefix('-').unwrap_or(text)),
        },
    };
    let span = crate::cli::parse_duration(span)
        .map_err(|_| bad("try 2026-11-21 10:00, 10:00, yesterday, 1h, 2days ago"))?;
    let secs = i64::try_from(span.as_secs()).map_err(|_| bad("too far"))?;
    let nanos = i64::from(span.subsec_nanos());
    let total = i128::from(now.0) * 1_000_000_000 + i128::from(now.1);
    let delta = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    let at = if ahead { total + delta } else { total - delta };
    let unix = i64::try_from(at.div_euclid(1_000_000_000)).map_err(|_| bad("too far"))?;
    Ok(stamp(unix, at.rem_euclid(1_000_000_000) as u32))
}

fn is_date(b: &[u8]) -> bool {
    b.len() >= 10 && b[4] == b'-' && b[7] == b'-'
}

/// Nanoseconds from the digits after a decimal point.
fn parse_fraction(digits: &str) -> Option<u32> {
    if digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{digits:0<9}");
    padded.parse().ok()
}

/// `[date[T| ]]time[zone]` or `date`, as RFC 3339 is, with humantime
/// reading the calendar.
fn parse_absolute(
    text: &str,
    now: i64,
    zone: Zone,
    convention: Convention,
) -> Result<Stamp, &'static str> {
    let (body, offset) = split_offset(text)?;
    let b = body.as_bytes();
    let (date, time) = if is_date(b) {
        match (body.get(..10), body.get(10..)) {
            (Some(date), Some("")) => (date.to_string(), "00:00:00"),
            (Some(date), Some(rest)) if rest.starts_with(['T', 't', ' ']) => {
                (date.to_string(), &rest[1..])
            }
            _ => return Err("a bad date"),
        }
    } else {
        let (tm, _) = calendar(now, zone).ok_or("no calendar for today")?;
        let today = format!(
            "{:04}-{:02}-{:02}",
            i64::from(tm.tm_year) + 1900,
            tm.tm_mon + 1,
            tm.tm_mday
        );
        (today, body)
    };
    let time = match time.len() {
        5 => format!("{time}:00"),
        _ => time.to_string(),
    };
    // humantime reads 23:59:60 as 23:59:59; the leap second is one more.
    let leap = time.get(6..8) == Some("60");
    let naive = humantime::parse_rfc3339_weak(&format!("{date}T{time}"))
        .map_err(|_| "try 2026-11-21T10:00:00+01:00 or 2026-11-21 10:00")?
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "before 1970")?;
    let naive_secs = i64::try_from(naive.as_secs()).map_err(|_| "too far")?;
    let unix = match (offset, zone) {
        (Some(offset), _) => naive_secs - offset,
        (None, Zone::Utc) => naive_secs,
        (None, Zone::Local) => {
            let (tm, _) = calendar(naive_secs, Zone::Utc).ok_or("out of range")?;
            from_calendar(tm, Zone::Local).ok_or("no such local time")?
        }
    };
    let stamp = convention.from_unix(unix, naive.subsec_nanos());
    Ok(if leap {
        Stamp::from_parts(stamp.secs() + 1, stamp.nanos()).unwrap_or(stamp)
    } else {
        stamp
    })
}

/// Splits off a trailing `Z`, ` UTC`, `+HH:MM` or `+HHMM`: the offset in
/// seconds east of UTC.
fn split_offset(text: &str) -> Result<(&str, Option<i64>), &'static str> {
    for utc in ["Z", "z", " UTC"] {
        if let Some(body) = text.strip_suffix(utc) {
            return Ok((body, Some(0)));
        }
    }
    let b = text.as_bytes();
    let numeric = |at: usize, colon: bool| -> Option<i64> {
        let tail = b.get(at..)?;
        let sign = match tail.first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let digits: Vec<u8> = tail[1..].iter().copied().filter(|&c| c != b':').collect();
        if (colon && tail.get(3) != Some(&b':')) || digits.len() != 4 {
            return None;
        }
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let hours = i64::from(digits[0] - b'0') * 10 + i64::from(digits[1] - b'0');
        let minutes = i64::from(digits[2] - b'0') * 10 + i64::from(digits[3] - b'0');
        (hours < 24 && minutes < 60).then_some(sign * (hours * 3600 + minutes * 60))
    };
    // An offset follows a time: never take a date's `-MM-DD` for one.
    if !text.contains(':') {
        return Ok((text, None));
    }
    if let Some(offset) = b.len().checked_sub(6).and_then(|at| numeric(at, true)) {
        return Ok((&text[..b.len() - 6], Some(offset)));
    }
    if let Some(offset) = b.len().checked_sub(5).and_then(|at| numeric(at, false)) {
        return Ok((&text[..b.len() - 5], Some(offset)));
    }
    Ok((text, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-21T00:53:10Z
    const T: i64 = 1_795_222_390;

    fn shown(stamp: Stamp, zone: Zone) -> String {
        let mut w = TimeWriter::new(zone, Convention::Tai);
        let mut out = Vec::new();
        w.write(stamp, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn with_tz<R>(tz: &str, f: impl FnOnce() -> R) -> R {
        // The tests of this module are the only ones that touch TZ.
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _held = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: serialised by LOCK; no other test reads the environment's TZ.
        unsafe { std::env::set_var("TZ", tz) };
        unsafe { tzset() };
        f()
    }

    #[test]
    fn utc_matches_humantime() {
        let mut w = TimeWriter::new(Zone::Utc, Convention::Tai);
        let mut unix = 1_500_000_000i64;
        for i in 0..2000u32 {
            unix += i64::from(i % 7) * 3_599 + 1;
            let nanos = i.wrapping_mul(2_654_435_761) % 1_000_000_000;
            let mut out = Vec::new();
            w.write(Stamp::from_unix(unix, nanos), &mut out);
            let theirs = humantime::format_rfc3339_micros(
                UNIX_EPOCH + std::time::Duration::new(unix as u64, nanos),
            );
            assert_eq!(String::from_utf8(out).unwrap(), theirs.to_string());
        }
    }

    #[test]
    fn times_of_seconds_interleaved_are_each_their_own() {
        let mut w = TimeWriter::new(Zone::Utc, Convention::Tai);
        let times = [T, T - 3600, T, T + 1, T - 3600, T + 86400, T];
        for t in times {
            let mut out = Vec::new();
            w.write(Stamp::from_unix(t, 5000), &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                shown(Stamp::from_unix(t, 5000), Zone::Utc)
            );
        }
    }

    #[test]
    fn local_time_has_its_offset() {
        with_tz("Europe/Paris", || {
            let s = Stamp::from_unix(T, 123_456_789);
            assert_eq!(shown(s, Zone::Local), "2026-11-21T01:53:10.123456+01:00");
            assert_eq!(shown(s, Zone::Utc), "2026-11-21T00:53:10.123456Z");
            let summer = Stamp::from_unix(1_782_000_000, 0);
            assert_eq!(
                shown(summer, Zone::Local),
                "2026-06-21T02:00:00.000000+02:00"
            );
        });
        with_tz("America/St_Johns", || {
            let s = Stamp::from_unix(T, 0);
            assert_eq!(shown(s, Zone::Local), "2026-11-20T21:23:10.000000-03:30");
        });
    }

    #[test]
    fn a_leap_second_is_23_59_60() {
        // 2016-12-31T23:59:59Z, then the inserted second.
        let before = Stamp::from_unix(1_483_228_799, 500_000_000);
        let leap = Stamp::from_parts(before.secs() + 1, before.nanos()).unwrap();
        assert_eq!(shown(leap, Zone::Utc), "2016-12-31T23:59:60.500000Z");
        assert_eq!(shown(leap.succ(), Zone::Utc), "2016-12-31T23:59:60.500000Z");
        let after = Stamp::from_unix(1_483_228_800, 0);
        assert_eq!(shown(after, Zone::Utc), "2017-01-01T00:00:00.000000Z");
        let read = parse_time("2016-12-31T23:59:60.5Z", (T, 0), Zone::Utc, Convention::Tai);
        assert_eq!(read, Ok(leap));
    }

    #[test]
    fn daemontools_stamps_are_read_their_way() {
        let theirs = Stamp::from_unix_daemontools(T, 0);
        let mut w = TimeWriter::new(Zone::Utc, Convention::Daemontools);
        let mut out = Vec::new();
        w.write(theirs, &mut out);
        assert_eq!(out, b"2026-11-21T00:53:10.000000Z");
        assert_eq!(
            parse_time(
                "2026-11-21T00:53:10Z",
                (T, 0),
                Zone::Utc,
                Convention::Daemontools
            ),
            Ok(theirs)
        );
    }

    #[test]
    fn times_people_write() {
        with_tz("Europe/Paris", || {
            let at = |text: &str, zone| parse_time(text, (T, 250), zone, Convention::Tai);
            let unix = |u: i64| Ok(Stamp::from_unix(u, 0));
            assert_eq!(at("2026-11-21T00:53:10Z", Zone::Local), unix(T));
            assert_eq!(at("2026-11-21 01:53:10+01:00", Zone::Utc), unix(T));
            assert_eq!(at("2026-11-21T01:53:10+0100", Zone::Utc), unix(T));
            assert_eq!(at("2026-11-21 00:53:10 UTC", Zone::Local), unix(T));
            assert_eq!(at("2026-11-21 01:53:10", Zone::Local), unix(T));
            assert_eq!(at("2026-11-21 00:53:10", Zone::Utc), unix(T));
            assert_eq!(at("2026-11-21 01:53", Zone::Local), unix(T - 10));
            assert_eq!(at("01:53", Zone::Local), unix(T - 10));
            assert_eq!(
                at("2026-11-21T01:53:10.25+01:00", Zone::Local),
                Ok(Stamp::from_unix(T, 250_000_000))
            );
            let midnight = T - (53 * 60 + 10) - 3600;
            assert_eq!(at("2026-11-21", Zone::Local), unix(midnight));
            assert_eq!(at("today", Zone::Local), unix(midnight));
            assert_eq!(at("yesterday", Zone::Local), unix(midnight - 86400));
            assert_eq!(at("tomorrow", Zone::Local), unix(midnight + 86400));
            assert_eq!(at("now", Zone::Local), Ok(Stamp::from_unix(T, 250)));
            let ago = |s: i64| Ok(Stamp::from_unix(T - s, 250));
            assert_eq!(at("1h", Zone::Local), ago(3600));
            assert_eq!(at("-1h", Zone::Local), ago(3600));
            assert_eq!(at("2days ago", Zone::Local), ago(2 * 86400));
            assert_eq!(at("1h 30min ago", Zone::Local), ago(5400));
            assert_eq!(at("+1h", Zone::Local), ago(-3600));
            assert_eq!(at(&format!("@{T}"), Zone::Local), unix(T));
            let label = Stamp::from_unix(T, 7);
            assert_eq!(at(&label.to_string(), Zone::Local), Ok(label));
            for bad in [
                "",
                "soon",
                "2026-13-01",
                "2026-11-21X10:00",
                "25:00",
                "2026-11-21 10:00+25:00",
                "@x",
                "@4000000069208f9e0000000g",
                "1969-12-31",
                "ago",
            ] {
                assert!(at(bad, Zone::Local).is_err(), "{bad:?}");
            }
        });
    }
}
