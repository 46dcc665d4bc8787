//! A message's event time: when it says it was logged, as opposed to its
//! stamp (when it was written to the log directory). The one definition,
//! from a reader line's fields:
//!
//! - `time=`: a full RFC 3339 timestamp (`2026-12-01T03:00:00.123456Z`,
//!   any offset, a fraction of 1 to 9 digits). syslog-read keeps an RFC
//!   5424 sender's exactly as sent; klog-read writes each kernel record's,
//!   in UTC with microseconds (see klog-read(8) for how and how exact).
//! - else `time3164=MM-DDThh:mm:ss[.fraction]`, an RFC 3164 timestamp,
//!   which has no year and no zone: the year is the one that puts it
//!   closest to the time the message was written (so a `Dec 31 23:59:59`
//!   written on January 1 is of the year before, and a `Jan 1 00:00:01`
//!   written on December 31, from a clock a little ahead, of the year
//!   after); the zone is UTC when the line says `zone=UTC` (or `GMT`,
//!   `Z`), else the local time zone of the machine that shows it (`TZ`).
//!   A day that the year has not (February 29) rules that year out.
//!
//! A line with neither has no event time; its stamp is its time.

use crate::format::reader_line::{TIME, TIME_3164, ZONE};
use crate::format::syslog::grammar;
use crate::format::wallclock::{self, Zone};

/// A UTC instant, Unix seconds and nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnixTime {
    pub unix: i64,
    pub nanos: u32,
}

/// The event time of a line whose escaped fields are `fields` (what
/// follows its TAB), written at `written`; `local` converts legacy times.
pub fn of_fields(fields: &[u8], written: i64, local: &mut Memo) -> Option<UnixTime> {
    let (mut legacy, mut zone) = (None, None);
    let mut start = 0;
    while start <= fields.len() {
        let end = memchr::memchr(b' ', &fields[start..]).map_or(fields.len(), |i| start + i);
        let field = &fields[start..end];
        start = end + 1;
        // Most fields are none of these: their first byte says so.
        if !matches!(field.first(), Some(b't' | b'z')) {
            continue;
        }
        let Some(eq) = memchr::memchr(b'=', field) else {
            continue;
        };
        let (key, value) = (&field[..eq], &field[eq + 1..]);
        if key == TIME.as_bytes() {
            if let Some(t) = rfc3339(value, local) {
                return Some(t);
            }
        } else if key == TIME_3164.as_bytes() {
            legacy = legacy.or(Some(value));
        } else if key == ZONE.as_bytes() {
            zone = zone.or(Some(value));
        }
    }
    let utc = zone.is_some_and(|z| {
        z.eq_ignore_ascii_case(b"UTC") || z.eq_ignore_ascii_case(b"GMT") || z == b"Z"
    });
    infer_3164(
        legacy?,
        written,
        if utc { Zone::Utc } else { Zone::Local },
        local,
    )
}

/// A full RFC 3339 timestamp as an instant (a leap second `:60` as the
/// second after `:59`).
pub fn parse_rfc3339(t: &[u8]) -> Option<UnixTime> {
    rfc3339(t, &mut Memo::default())
}

fn rfc3339(t: &[u8], memo: &mut Memo) -> Option<UnixTime> {
    let parts = grammar::timestamp(t)?;
    let d = parts.date_time;
    let n = |at: usize, len: usize| grammar::digits(d, at, len).map(i64::from);
    let days = memo.day_of(d)?;
    let secs = days * 86400 + n(11, 2)? * 3600 + n(14, 2)? * 60 + n(17, 2)?;
    let offset = match parts.zone {
        [sign @ (b'+' | b'-'), ..] => {
            let minutes = i64::from(grammar::digits(parts.zone, 1, 2)?) * 60
                + i64::from(grammar::digits(parts.zone, 4, 2)?);
            if *sign == b'-' {
                -minutes * 60
            } else {
                minutes * 60
            }
        }
        _ => 0,
    };
    Some(UnixTime {
        unix: secs - offset,
        nanos: fraction_nanos(parts.fraction)?,
    })
}

/// Appends `2026-12-01T03:00:00.123456Z`: the instant in UTC, to the
/// microsecond, as klog-read writes its `time=`.
pub fn write_rfc3339_utc(t: UnixTime, out: &mut Vec<u8>) {
    use std::io::Write;
    let days = t.unix.div_euclid(86400);
    let secs = t.unix.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        t.nanos / 1000
    );
}

/// What reading event times remembers from line to line, as lines come
/// in order: the local zone's offset for the hour last asked about (the C
/// library is slow), the year of the day last written, the date last read.
#[derive(Default)]
pub struct Memo {
    /// (an hour, in Unix seconds / 3600, taken as if UTC; its offset).
    last: Option<(i64, i64)>,
    /// (a day since 1970, its year).
    year: Option<(i64, i64)>,
    /// (`YYYY-MM-DD`, its day since 1970).
    date: Option<([u8; 10], i64)>,
}

impl Memo {
    fn year_of(&mut self, day: i64) -> i64 {
        match self.year {
            Some((d, year)) if d == day => year,
            _ => {
                let (year, _, _) = civil_from_days(day);
                self.year = Some((day, year));
                year
            }
        }
    }

    /// The day of a date `YYYY-MM-DD` (checked as a timestamp's).
    fn day_of(&mut self, date: &[u8]) -> Option<i64> {
        let date: [u8; 10] = date.get(..10)?.try_into().ok()?;
        if let Some((d, day)) = self.date
            && d == date
        {
            return Some(day);
        }
        let n = |at: usize, len: usize| grammar::digits(&date, at, len).map(i64::from);
        let day = days_from_civil(n(0, 4)?, n(5, 2)?, n(8, 2)?);
        self.date = Some((date, day));
        Some(day)
    }

    /// The Unix time of a local calendar time given as if it were UTC
    /// (`naive`): the offset of the hour around it, checked against the
    /// offset at the result (a time in a change of offset takes the later
    /// one).
    fn unix_of(&mut self, naive: i64) -> Option<i64> {
        let hour = naive.div_euclid(3600);
        if let Some((h, offset)) = self.last
            && h == hour
        {
            return Some(naive - offset);
        }
        let first = wallclock::utc_offset(naive, Zone::Local)?;
        let offset = wallclock::utc_offset(naive - first, Zone::Local)?;
        self.last = Some((hour, offset));
        Some(naive - offset)
    }
}

/// `MM-DDThh:mm:ss[.fraction]` in the year closest to `written`.
fn infer_3164(t: &[u8], written: i64, zone: Zone, local: &mut Memo) -> Option<UnixTime> {
    let n = |at: usize, len: usize| grammar::digits(t, at, len).map(i64::from);
    if t.len() < 14 || t[2] != b'-' || t[5] != b'T' || t[8] != b':' || t[11] != b':' {
        return None;
    }
    let (month, day) = (n(0, 2)?, n(3, 2)?);
    let clock = n(6, 2)? * 3600 + n(9, 2)? * 60 + n(12, 2)?;
    let nanos = match t.get(14) {
        None => 0,
        Some(b'.') => fraction_nanos(&t[15..])?,
        Some(_) => return None,
    };
    if !(1..=12).contains(&month) || day < 1 {
        return None;
    }
    // The year is chosen before the zone is applied: a zone's offset
    // (hours) only matters half a year away, where no year is closer.
    let year = local.year_of(written.div_euclid(86400));
    let naive = (year - 1..=year + 1)
        .filter(|&y| day <= days_in_month(y, month))
        .map(|y| days_from_civil(y, month, day) * 86400 + clock)
        .min_by_key(|&naive| (naive - written).abs())?;
    let unix = match zone {
        Zone::Utc => naive,
        Zone::Local => local.unix_of(naive)?,
    };
    Some(UnixTime { unix, nanos })
}

/// 1 to 9 digits (none: 0) as nanoseconds.
fn fraction_nanos(digits: &[u8]) -> Option<u32> {
    if digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut nanos = 0u32;
    for i in 0..9 {
        nanos = nanos * 10 + digits.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    Some(nanos)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The date of a day since 1970-01-01: (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAN_1_2027: i64 = 1_798_761_600;

    fn utc_3164(t: &str, written: i64) -> Option<UnixTime> {
        let fields = format!("fmt=rfc3164 time3164={t} zone=UTC");
        of_fields(fields.as_bytes(), written, &mut Memo::default())
    }

    fn rfc3339(t: &str) -> Option<UnixTime> {
        parse_rfc3339(t.as_bytes())
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2027, 1, 1) * 86400, JAN_1_2027);
        for day in -800_000..800_000 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn a_full_timestamp_is_its_instant_with_its_offset() {
        let at = UnixTime {
            unix: JAN_1_2027,
            nanos: 120_000_000,
        };
        assert_eq!(rfc3339("2027-01-01T00:00:00.12Z"), Some(at));
        assert_eq!(rfc3339("2027-01-01t01:30:00.120000000+01:30"), Some(at));
        assert_eq!(rfc3339("2026-12-31T23:00:00.12-01:00"), Some(at));
        assert_eq!(rfc3339("2027-01-01 00:00:00Z"), None);
        let mut out = Vec::new();
        write_rfc3339_utc(at, &mut out);
        assert_eq!(out, b"2027-01-01T00:00:00.120000Z");
        assert_eq!(rfc3339(std::str::from_utf8(&out).unwrap()), Some(at));
    }

    /// rsyslog #4765: a December message received in January is not of
    /// the year after.
    #[test]
    fn a_legacy_time_takes_the_year_closest_to_when_it_was_written() {
        let dec_31 = utc_3164("12-31T23:59:59", JAN_1_2027 + 5).unwrap();
        assert_eq!(dec_31.unix, JAN_1_2027 - 1, "Dec 31 received Jan 1: 2026");
        let jan_1 = utc_3164("01-01T00:00:01.5", JAN_1_2027 - 3).unwrap();
        assert_eq!(
            jan_1,
            UnixTime {
                unix: JAN_1_2027 + 1,
                nanos: 500_000_000
            },
            "Jan 1 received Dec 31: 2027"
        );
        let mid = utc_3164("06-15T12:00:00", JAN_1_2027 - 200 * 86400).unwrap();
        assert_eq!(civil_from_days(mid.unix.div_euclid(86400)), (2026, 6, 15));
        // 2028 is a leap year, 2027 not: Feb 29 received in early 2027
        // can only be of 2028 or 2024; 2028 is closer.
        let feb_29 = utc_3164("02-29T00:00:00", JAN_1_2027 + 86400).unwrap();
        assert_eq!(
            civil_from_days(feb_29.unix.div_euclid(86400)),
            (2028, 2, 29)
        );
    }

    #[test]
    fn full_time_wins_and_nonsense_is_no_time() {
        let both = b"time3164=01-01T00:00:00 time=2027-01-01T00:00:00Z";
        assert_eq!(
            of_fields(both, 0, &mut Memo::default()).map(|t| t.unix),
            Some(JAN_1_2027)
        );
        for bad in [
            "13-01T00:00:00",
            "00-01T00:00:00",
            "01-00T00:00:00",
            "01-01T00:00",
            "01-01T00:00:00x",
            "01-01T00:00:00.1234567890",
            "\u{e9}1-01T00:00:00",
        ] {
            assert_eq!(utc_3164(bad, JAN_1_2027), None, "{bad}");
        }
        assert_eq!(
            of_fields(b"seq=1 boot=1.000000", 0, &mut Memo::default()),
            None
        );
    }
}
