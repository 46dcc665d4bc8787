//! The pieces of RFC 5424 that the receiver's parser (`parse`) and
//! export-to-remote's builder (`build`) both read, each scanned once here:
//!
//! - the timestamp, RFC 3339's `YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm|-hh:mm)`
//!   (`T` and `Z` in either case, as RFC 3339 allows), and the
//!   `hh:mm:ss[.fraction]` clock in it that legacy headers use too;
//! - STRUCTURED-DATA, `[SD-ID PARAM-NAME="PARAM-VALUE" ...]...`, values
//!   with `\"`, `\\` and `\]` escapes.
//!
//! The timestamp has one reading: a fraction of 1 to 9 digits (a stamp's
//! nanoseconds, what a reader line's `time` keeps), a zone offset of
//! `00:00` to `23:59`. STRUCTURED-DATA has two, on purpose: see [`Mode`].

use std::ops::Range;

/// How closely STRUCTURED-DATA must keep to RFC 5424.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The receiver's reading: how senders really write it. The SD is
    /// kept verbatim in the `sd` field, so what matters is only where it
    /// ends and the message begins; a sender's SD-NAME past 32 bytes, an
    /// unescaped `]` in a value, a repeated SD-ID or bytes that are not
    /// UTF-8 cost nothing there, and refusing them would push the whole
    /// header into the message text. The brackets, names, `="` and quotes
    /// must still be there: without them there is no telling where the SD
    /// ends.
    Lenient,
    /// The builder's check of what export-to-remote forwards as
    /// STRUCTURED-DATA: RFC 5424's rules exactly, so that a strict
    /// receiver takes the message. SD-NAMEs of 1 to 32 bytes, every `]` in
    /// a value escaped, UTF-8 ([`strict_sd_ids`] adds: each SD-ID once,
    /// and nothing after the last element). What fails is forwarded as a
    /// value in the builder's own element, never as SD.
    Strict,
}

/// The longest SD-NAME (an SD-ID or a PARAM-NAME) RFC 5424 allows.
pub const SD_NAME_MAX: usize = 32;

/// Where an SD-ELEMENT's SD-ID is, in the bytes scanned.
pub type IdSpan = Range<usize>;

/// PRINTUSASCII: what RFC 5424's header fields may hold.
pub fn is_printusascii(b: u8) -> bool {
    (33..=126).contains(&b)
}

/// A byte of an SD-NAME: PRINTUSASCII but `=`, `]` and `"`.
pub fn is_sd_name_byte(b: u8) -> bool {
    is_printusascii(b) && !matches!(b, b'=' | b']' | b'"')
}

/// The SD-ELEMENTs at the start of `bytes` (at least one): the length they
/// take, or `None` when they are not well-formed in `mode`. `each_id` sees
/// every SD-ID's span in order, and rejects the SD by returning false.
pub fn structured_data(
    bytes: &[u8],
    mode: Mode,
    mut each_id: impl FnMut(IdSpan) -> bool,
) -> Option<usize> {
    let max_name = match mode {
        Mode::Lenient => usize::MAX,
        Mode::Strict => SD_NAME_MAX,
    };
    // The length of the SD-NAME at `at`, at least one byte.
    let name = |at: usize| {
        let n = bytes[at..]
            .iter()
            .take(max_name)
            .take_while(|&&b| is_sd_name_byte(b))
            .count();
        (n > 0).then_some(n)
    };
    if bytes.first() != Some(&b'[') {
        return None;
    }
    let mut i = 0;
    while bytes.get(i) == Some(&b'[') {
        i += 1;
        let id = name(i)?;
        if !each_id(i..i + id) {
            return None;
        }
        i += id;
        loop {
            match bytes.get(i)? {
                b']' => {
                    i += 1;
                    break;
                }
                b' ' => {
                    i += 1;
                    let n = name(i)?;
                    if bytes.get(i + n..i + n + 2)? != b"=\"" {
                        return None;
                    }
                    i += n + 2;
                    loop {
                        match bytes.get(i)? {
                            b'\\' => i += 2,
                            b'"' => break,
                            b']' if mode == Mode::Strict => return None,
                            _ => i += 1,
                        }
                    }
                    i += 1;
                }
                _ => return None,
            }
        }
    }
    if mode == Mode::Strict {
        std::str::from_utf8(&bytes[..i]).ok()?;
    }
    Some(i)
}

/// Where the SD-IDs of `sd` are, in order, if `sd` is all well-formed
/// STRUCTURED-DATA in [`Mode::Strict`] (not NILVALUE) with each SD-ID once.
pub fn strict_sd_ids(sd: &[u8]) -> Option<Vec<IdSpan>> {
    let mut ids: Vec<IdSpan> = Vec::new();
    let len = structured_data(sd, Mode::Strict, |id| {
        let repeated = ids.iter().any(|seen| sd[seen.clone()] == sd[id.clone()]);
        ids.push(id);
        !repeated
    })?;
    (len == sd.len()).then_some(ids)
}

/// A full RFC 3339 timestamp, in its parts, each as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp<'a> {
    /// `YYYY-MM-DDThh:mm:ss`, the `T` in either case.
    pub date_time: &'a [u8],
    /// The fraction's 1 to 9 digits, or none.
    pub fraction: &'a [u8],
    /// `Z` or `z`, or `+hh:mm` or `-hh:mm`.
    pub zone: &'a [u8],
}

/// `t`, all of it, as a full RFC 3339 timestamp.
pub fn timestamp(t: &[u8]) -> Option<Timestamp<'_>> {
    let date = digits(t, 0, 4).is_some()
        && t.get(4) == Some(&b'-')
        && digits(t, 5, 2).is_some_and(|m| (1..=12).contains(&m))
        && t.get(7) == Some(&b'-')
        && digits(t, 8, 2).is_some_and(|d| (1..=31).contains(&d))
        && matches!(t.get(10), Some(b'T' | b't'));
    if !date {
        return None;
    }
    let clock = clock(&t[11..])?;
    let seconds_end = 11 + 8;
    let zone = &t[11 + clock..];
    let zone_ok = match zone {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', ..] => {
            zone.len() == 6
                && digits(zone, 1, 2).is_some_and(|h| h <= 23)
                && zone[3] == b':'
                && digits(zone, 4, 2).is_some_and(|m| m <= 59)
        }
        _ => false,
    };
    zone_ok.then(|| Timestamp {
        date_time: &t[..seconds_end],
        fraction: t[seconds_end..11 + clock]
            .strip_prefix(b".")
            .unwrap_or_default(),
        zone,
    })
}

/// `hh:mm:ss[.fraction]` at the start of `t` (a leap second's `:60` too,
/// a fraction of 1 to 9 digits): its length.
pub fn clock(t: &[u8]) -> Option<usize> {
    let ok = digits(t, 0, 2)? <= 23
        && t.get(2) == Some(&b':')
        && digits(t, 3, 2)? <= 59
        && t.get(5) == Some(&b':')
        && digits(t, 6, 2)? <= 60;
    if !ok {
        return None;
    }
    if t.get(8) == Some(&b'.') {
        let n = t[9..]
            .iter()
            .take(10)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if !(1..=9).contains(&n) {
            return None;
        }
        return Some(9 + n);
    }
    Some(8)
}

/// The `n` decimal digits at `bytes[at..]` as a number, if all are digits.
pub fn digits(bytes: &[u8], at: usize, n: usize) -> Option<u32> {
    let field = bytes.get(at..at + n)?;
    field.iter().try_fold(0u32, |v, &d| {
        d.is_ascii_digit().then(|| v * 10 + u32::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_timestamp(t: &str) -> bool {
        timestamp(t.as_bytes()).is_some()
    }

    #[test]
    fn timestamps_are_rfc_3339_with_at_most_nanoseconds() {
        for good in [
            "2003-10-11T22:14:15Z",
            "2003-10-11t22:14:15.1z",
            "2003-10-11T22:14:15.123456789+14:00",
            "1985-04-12T23:20:50.52-04:00",
            "2016-12-31T23:59:60Z",
            "2003-10-11T22:14:15+23:59",
            "2003-10-11T22:14:15-00:00",
        ] {
            assert!(is_timestamp(good), "{good}");
        }
        for bad in [
            "",
            "2003-10-11",
            "2003-10-11T22:14:15",
            "2003-10-11T22:14:15.Z",
            "2003-10-11T24:14:15Z",
            "2003-10-11T22:14:15+0100",
            "2003-10-11T22:14:15Z ",
            "2003-10-11 22:14:15Z",
            "2003-10-11T22:14:15.1234567890Z",
            "2003-13-11T22:14:15Z",
            "2003-10-32T22:14:15Z",
        ] {
            assert!(!is_timestamp(bad), "{bad}");
        }
    }

    #[test]
    fn a_zone_offset_is_hours_00_to_23_and_minutes_00_to_59() {
        for bad in ["+99:99", "+24:00", "-24:00", "+23:60", "+2a:00", "+01:0"] {
            let t = format!("2003-10-11T22:14:15{bad}");
            assert!(!is_timestamp(&t), "{t}");
        }
    }

    #[test]
    fn a_timestamp_comes_apart_as_sent() {
        let t = timestamp(b"2024-01-02t03:04:05.123456789+01:00").unwrap();
        assert_eq!(t.date_time, b"2024-01-02t03:04:05");
        assert_eq!(t.fraction, b"123456789");
        assert_eq!(t.zone, b"+01:00");
        let t = timestamp(b"2024-01-02T03:04:05z").unwrap();
        assert_eq!((t.fraction, t.zone), (&b""[..], &b"z"[..]));
    }

    #[test]
    fn clocks_may_have_a_leap_second_and_a_fraction() {
        assert_eq!(clock(b"23:59:60"), Some(8));
        assert_eq!(clock(b"00:00:00.5 rest"), Some(10));
        assert_eq!(clock(b"12:00:00.123456789"), Some(18));
        for bad in ["24:00:00", "12:60:00", "12:00:61", "12:00:00.", "1:00:00"] {
            assert_eq!(clock(bad.as_bytes()), None, "{bad}");
        }
    }

    fn lenient(sd: &[u8]) -> Option<usize> {
        structured_data(sd, Mode::Lenient, |_| true)
    }

    #[test]
    fn both_modes_find_where_well_formed_sd_ends() {
        for (sd, len) in [
            (&b"[a@1 x=\"1\"] msg"[..], 11),
            (b"[a@1 x=\"\\\"\"][b]", 15),
            (b"[timeQuality tzKnown=\"1\" isSynced=\"0\"]", 38),
        ] {
            assert_eq!(lenient(sd), Some(len), "{}", String::from_utf8_lossy(sd));
            let strict = structured_data(sd, Mode::Strict, |_| true);
            assert_eq!(strict, Some(len), "{}", String::from_utf8_lossy(sd));
        }
        for bad in [
            &b""[..],
            b"-",
            b"[]",
            b"[a b=\"c\"",
            b"[a b=c]",
            b"[a =\"c\"]",
            b"[a  b=\"c\"]",
            b"[a b=\"c\\",
        ] {
            assert_eq!(lenient(bad), None, "{}", String::from_utf8_lossy(bad));
            assert!(strict_sd_ids(bad).is_none());
        }
    }

    #[test]
    fn only_lenient_sd_takes_long_names_bare_brackets_repeats_and_non_utf8() {
        let long = format!("[{} x=\"1\"]", "a".repeat(SD_NAME_MAX + 1));
        let long_param = format!("[a {}=\"1\"]", "b".repeat(SD_NAME_MAX + 1));
        let just_fits = format!("[{} {}=\"1\"]", "a".repeat(32), "b".repeat(32));
        for sd in [
            long.as_bytes(),
            long_param.as_bytes(),
            b"[a@1 x=\"]\"]",
            b"[a@1][a@1]",
            b"[a@1 x=\"\xff\"]",
        ] {
            let text = String::from_utf8_lossy(sd);
            assert_eq!(lenient(sd), Some(sd.len()), "{text}");
            assert!(strict_sd_ids(sd).is_none(), "{text}");
        }
        let ids = strict_sd_ids(just_fits.as_bytes()).unwrap();
        assert_eq!((ids.len(), &ids[0]), (1, &(1..33)));
    }

    #[test]
    fn strict_sd_is_all_of_the_field_and_its_ids_are_found_in_order() {
        assert_eq!(
            strict_sd_ids(b"[a@1 x=\"\\\"\"][bb]"),
            Some(vec![1..4, 13..15])
        );
        assert!(strict_sd_ids(b"[a@1 x=\"1\"] ").is_none());
        assert!(strict_sd_ids(b"[a@1 x=\"1\"]x").is_none());
    }
}
