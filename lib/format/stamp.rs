//! TAI64N stamps: the label every log line and archive name carries.
//!
//! A stamp is the external TAI64N form: 2^62 + seconds of true TAI since
//! 1970-01-01 00:00:00 TAI, and nanoseconds, written as `@` + 24 lowercase hex
//! digits. We write true TAI, as s6-log and nosh do (UTC + 37 s today);
//! daemontools' `tai64nlocal` assumes a fixed UTC + 10 s and so shows our
//! stamps 27 s late. Conversions use the leap-second table below, so old
//! stamps convert right too, and a stamp that falls inside an inserted leap
//! second converts to 23:59:60.

use std::fmt;

const TAI64_BASE: u64 = 1 << 62;
const NANOS_PER_SEC: u32 = 1_000_000_000;

/// The length of `@` + 24 hex digits.
pub const LABEL_LEN: usize = 25;

/// (first UTC second as Unix time, TAI - UTC from then on), newest last.
/// Before 1972 the offset is taken as 10 s, as libtai does.
const LEAP_TABLE: [(i64, i64); 28] = [
    (63072000, 10),   // 1972-01-01
    (78796800, 11),   // 1972-07-01
    (94694400, 12),   // 1973-01-01
    (126230400, 13),  // 1974-01-01
    (157766400, 14),  // 1975-01-01
    (189302400, 15),  // 1976-01-01
    (220924800, 16),  // 1977-01-01
    (252460800, 17),  // 1978-01-01
    (283996800, 18),  // 1979-01-01
    (315532800, 19),  // 1980-01-01
    (362793600, 20),  // 1981-07-01
    (394329600, 21),  // 1982-07-01
    (425865600, 22),  // 1983-07-01
    (489024000, 23),  // 1985-07-01
    (567993600, 24),  // 1988-01-01
    (631152000, 25),  // 1990-01-01
    (662688000, 26),  // 1991-01-01
    (709948800, 27),  // 1992-07-01
    (741484800, 28),  // 1993-07-01
    (773020800, 29),  // 1994-07-01
    (820454400, 30),  // 1996-01-01
    (867715200, 31),  // 1997-07-01
    (915148800, 32),  // 1999-01-01
    (1136073600, 33), // 2006-01-01
    (1230768000, 34), // 2009-01-01
    (1341100800, 35), // 2012-07-01
    (1435708800, 36), // 2015-07-01
    (1483228800, 37), // 2017-01-01
];

/// TAI - UTC at the given UTC instant (Unix seconds).
fn tai_minus_utc(unix: i64) -> i64 {
    LEAP_TABLE
        .iter()
        .rev()
        .find(|&&(from, _)| unix >= from)
        .map_or(10, |&(_, offset)| offset)
}

/// A TAI64N label. Ordered as time is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    secs: u64,
    nanos: u32,
}

/// A UTC instant as Unix time, with the leap second 23:59:60 kept apart:
/// during one, `unix` is the second of 23:59:59 and `leap` is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    pub unix: i64,
    pub nanos: u32,
    pub leap: bool,
}

impl Stamp {
    /// The earliest label; below every real stamp.
    pub const ZERO: Stamp = Stamp { secs: 0, nanos: 0 };

    /// From the TAI64 seconds label and nanoseconds. `None` if `nanos` is out of range.
    pub fn from_parts(secs: u64, nanos: u32) -> Option<Stamp> {
        (nanos < NANOS_PER_SEC).then_some(Stamp { secs, nanos })
    }

    pub fn secs(self) -> u64 {
        self.secs
    }

    pub fn nanos(self) -> u32 {
        self.nanos
    }

    /// True TAI for a UTC instant given as Unix time.
    pub fn from_unix(unix: i64, nanos: u32) -> Stamp {
        let tai = unix.saturating_add(tai_minus_utc(unix));
        Stamp {
            secs: TAI64_BASE.wrapping_add_signed(tai),
            nanos: nanos.min(NANOS_PER_SEC - 1),
        }
    }

    /// A stamp written with daemontools' convention (TAI = UTC + 10 s, no
    /// leap seconds), as `multilog` and `tai64n` write them.
    pub fn from_unix_daemontools(unix: i64, nanos: u32) -> Stamp {
        Stamp {
            secs: TAI64_BASE.wrapping_add_signed(unix.saturating_add(10)),
            nanos: nanos.min(NANOS_PER_SEC - 1),
        }
    }

    /// The system's real-time clock, now.
    pub fn now() -> Stamp {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
        Stamp::from_unix(t.tv_sec, t.tv_nsec as u32)
    }

    /// The UTC instant of this (true TAI) stamp.
    pub fn to_utc(self) -> Utc {
        let tai = self.secs.wrapping_sub(TAI64_BASE) as i64;
        // The newest table entry whose first second, in TAI, is not after us.
        for (i, &(from, offset)) in LEAP_TABLE.iter().enumerate().rev() {
            if tai >= from + offset {
                return Utc {
                    unix: tai - offset,
                    nanos: self.nanos,
                    leap: false,
                };
            }
            let inserted = i > 0 && LEAP_TABLE[i - 1].1 < offset;
            if inserted && tai == from + offset - 1 {
                // The inserted second just before `from`: 23:59:60.
                return Utc {
                    unix: from - 1,
                    nanos: self.nanos,
                    leap: true,
                };
            }
        }
        Utc {
            unix: tai - 10,
            nanos: self.nanos,
            leap: false,
        }
    }

    /// The UTC instant of a stamp written with daemontools' convention.
    pub fn to_utc_daemontools(self) -> Utc {
        let tai = self.secs.wrapping_sub(TAI64_BASE) as i64;
        Utc {
            unix: tai - 10,
            nanos: self.nanos,
            leap: false,
        }
    }

    /// The next possible stamp, one nanosecond later.
    pub fn succ(self) -> Stamp {
        if self.nanos + 1 < NANOS_PER_SEC {
            Stamp {
                secs: self.secs,
                nanos: self.nanos + 1,
            }
        } else {
            Stamp {
                secs: self.secs.wrapping_add(1),
                nanos: 0,
            }
        }
    }

    /// `@` and 24 lowercase hex digits.
    pub fn label(self) -> [u8; LABEL_LEN] {
        let mut out = [0u8; LABEL_LEN];
        out[0] = b'@';
        write_hex(&mut out[1..17], self.secs);
        write_hex(&mut out[17..25], u64::from(self.nanos));
        out
    }

    /// Parses exactly 24 hex digits (the label without its `@`).
    pub fn parse_hex(hex: &[u8]) -> Option<Stamp> {
        if hex.len() != 24 {
            return None;
        }
        let secs = parse_hex_u64(&hex[..16])?;
        let nanos = parse_hex_u64(&hex[16..])? as u32;
        Stamp::from_parts(secs, nanos)
    }

    /// Parses `@` and 24 hex digits.
    pub fn parse_label(label: &[u8]) -> Option<Stamp> {
        match label.split_first() {
            Some((b'@', hex)) => Stamp::parse_hex(hex),
            _ => None,
        }
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = self.label();
        // A label is ASCII by construction.
        f.write_str(std::str::from_utf8(&label).map_err(|_| fmt::Error)?)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_hex(out: &mut [u8], mut value: u64) {
    for digit in out.iter_mut().rev() {
        *digit = HEX[(value & 0xf) as usize];
        value >>= 4;
    }
}

fn parse_hex_u64(hex: &[u8]) -> Option<u64> {
    // Every line read is stamped: a table lookup a digit, with no branch
    // but the one on the whole, is a fifth of a `-p err` query's time less.
    let mut value = 0u64;
    let mut bad = 0u8;
    for &c in hex {
        let d = HEX_VALUE[usize::from(c)];
        bad |= d;
        value = (value << 4) | u64::from(d & 0xf);
    }
    (bad & 0x80 == 0).then_some(value)
}

/// The value of each hex digit (either case); 0x80 for any other byte.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Hands out strictly increasing stamps: the clock's time, or one nanosecond
/// past the last stamp given when the clock has stepped back or stands still.
#[derive(Clone, Debug)]
pub struct StampClock {
    last: Stamp,
}

impl StampClock {
    /// A clock whose stamps will all be after `last`.
    pub fn after(last: Stamp) -> StampClock {
        StampClock { last }
    }

    /// The last stamp handed out (or the floor given at creation).
    pub fn last(&self) -> Stamp {
        self.last
    }

    /// Raises the floor: later stamps will be after `floor` too.
    pub fn observe(&mut self, floor: Stamp) {
        self.last = self.last.max(floor);
    }

    /// The next stamp for an event seen at `now`.
    pub fn next_at(&mut self, now: Stamp) -> Stamp {
        let next = now.max(self.last.succ());
        self.last = next;
        next
    }

    /// The next stamp for an event seen now.
    pub fn tick(&mut self) -> Stamp {
        self.next_at(Stamp::now())
    }
}

/// Writes stamp labels quickly: consecutive stamps usually share their
/// seconds, so the 16 seconds digits are formatted once per second.
pub struct LabelWriter {
    secs: u64,
    label: [u8; LABEL_LEN],
}

impl Default for LabelWriter {
    fn default() -> Self {
        LabelWriter {
            secs: u64::MAX,
            label: Stamp::ZERO.label(),
        }
    }
}

impl LabelWriter {
    pub fn label(&mut self, stamp: Stamp) -> &[u8; LABEL_LEN] {
        if stamp.secs != self.secs {
            self.secs = stamp.secs;
            write_hex(&mut self.label[1..17], stamp.secs);
        }
        write_hex(&mut self.label[17..25], u64::from(stamp.nanos));
        &self.label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_true_tai_like_the_tai64_crate() {
        // tai64 4.x's from_system_time is UTC + 37 s, right for any date since 2017.
        let now = std::time::SystemTime::now();
        let theirs = tai64::Tai64N::from_system_time(&now);
        let since = now.duration_since(std::time::UNIX_EPOCH).unwrap();
        let ours = Stamp::from_unix(since.as_secs() as i64, since.subsec_nanos());
        assert_eq!(ours.label()[1..], *format_tai64n(&theirs).as_bytes());
    }

    fn format_tai64n(t: &tai64::Tai64N) -> String {
        t.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn label_round_trip() {
        let s = Stamp::from_parts(0x4000_0000_6543_2100, 123_456_789).unwrap();
        let label = s.label();
        assert_eq!(&label, b"@4000000065432100075bcd15");
        assert_eq!(Stamp::parse_label(&label), Some(s));
        assert_eq!(s.to_string(), "@4000000065432100075bcd15");
    }

    #[test]
    fn bad_labels_are_refused() {
        assert_eq!(Stamp::parse_label(b"400000006543210000000000"), None);
        assert_eq!(Stamp::parse_label(b"@4000000065432100000000"), None);
        assert_eq!(Stamp::parse_label(b"@40000000654321000000000g"), None);
        // nanoseconds past 999,999,999
        assert_eq!(Stamp::parse_label(b"@40000000654321003b9aca00"), None);
    }

    #[test]
    fn offsets_follow_the_leap_table() {
        // 2016-12-31 23:59:59 UTC: TAI - UTC = 36; 2017-01-01 00:00:00: 37.
        let before = Stamp::from_unix(1483228799, 0);
        let after = Stamp::from_unix(1483228800, 0);
        assert_eq!(before.secs() - TAI64_BASE, 1483228799 + 36);
        assert_eq!(after.secs() - TAI64_BASE, 1483228800 + 37);
        // Two seconds apart in TAI: the leap second 23:59:60 lies between.
        assert_eq!(after.secs() - before.secs(), 2);
        let leap = Stamp::from_parts(before.secs() + 1, 500).unwrap();
        assert_eq!(
            leap.to_utc(),
            Utc {
                unix: 1483228799,
                nanos: 500,
                leap: true
            }
        );
        assert_eq!(
            before.to_utc(),
            Utc {
                unix: 1483228799,
                nanos: 0,
                leap: false
            }
        );
        assert_eq!(
            after.to_utc(),
            Utc {
                unix: 1483228800,
                nanos: 0,
                leap: false
            }
        );
        // 1970: the fixed 10 s of libtai, and no leap second before 1972.
        assert_eq!(Stamp::from_unix(0, 0).secs(), TAI64_BASE + 10);
        assert_eq!(Stamp::from_unix(0, 0).to_utc().unix, 0);
        let eve_1972 = Stamp::from_unix(63071999, 0);
        assert_eq!(
            eve_1972.to_utc(),
            Utc {
                unix: 63071999,
                nanos: 0,
                leap: false
            }
        );
    }

    #[test]
    fn utc_round_trips_every_second_near_each_leap() {
        for &(from, _) in LEAP_TABLE.iter() {
            for unix in from - 3..from + 3 {
                let s = Stamp::from_unix(unix, 7);
                assert_eq!(
                    s.to_utc(),
                    Utc {
                        unix,
                        nanos: 7,
                        leap: false
                    },
                    "{unix}"
                );
            }
        }
    }

    #[test]
    fn daemontools_convention_is_27_seconds_behind_today() {
        let ours = Stamp::from_unix(1_700_000_000, 0);
        let theirs = Stamp::from_unix_daemontools(1_700_000_000, 0);
        assert_eq!(ours.secs() - theirs.secs(), 27);
        assert_eq!(theirs.to_utc_daemontools().unix, 1_700_000_000);
    }

    #[test]
    fn clock_never_repeats_or_goes_back() {
        let start = Stamp::from_unix(1_700_000_000, 999_999_999);
        let mut clock = StampClock::after(start);
        let a = clock.next_at(Stamp::from_unix(1_600_000_000, 0)); // clock stepped back
        let b = clock.next_at(Stamp::from_unix(1_600_000_000, 0));
        assert!(start < a && a < b);
        assert_eq!(a, start.succ());
        assert_eq!(a.nanos(), 0);
        let later = Stamp::from_unix(1_800_000_000, 0);
        assert_eq!(clock.next_at(later), later);
    }

    #[test]
    fn label_writer_matches_label() {
        let mut w = LabelWriter::default();
        let mut s = Stamp::from_unix(1_700_000_000, 999_999_990);
        for _ in 0..20 {
            assert_eq!(w.label(s), &s.label());
            s = s.succ();
        }
    }
}
