//! Rate limiting per sender (`--rate-limit N/DURATION[,BURST]`), with an
//! exact count of what was dropped.
//!
//! # The option
//!
//! ```text
//! RATE     = N "/" DURATION ["," BURST]
//! N        = 1*DIGIT, at least 1: messages per DURATION, on average
//! DURATION = a humantime duration (1s, 500ms, 1m, 1h 30m); a bare unit
//!            (s, m, h) is one of it; more than zero
//! BURST    = 1*DIGIT, at least 1: messages a quiet sender may send at
//!            once (default N)
//! ```
//!
//! # The contract
//!
//! Each sender has a token bucket holding at most BURST tokens, refilled
//! continuously at N per DURATION (exactly: integer arithmetic in
//! nanoseconds, no rounding drift); a message takes a token, and without
//! one it is dropped and counted. Senders are independent: one sender's
//! flood never takes another's tokens.
//!
//! Every dropped message is reported once, in a `Report` of its sender
//! (`sender X: N messages suppressed`), when the first of these happens:
//!
//! - the sender calms down: its next message is accepted (the report comes
//!   out before that message, if the caller takes reports after each
//!   `admit`, as it should);
//! - `report_every` has passed since the first message the report counts
//!   was dropped (a sender that never calms down is reported at that
//!   interval);
//! - the sender is evicted from the table.
//!
//! The table holds at most `max_senders` senders; a new one evicts the
//! least recently seen. An evicted sender that comes back starts with a
//! full bucket, so `max_senders` should be well above the number of
//! senders expected at once.
//!
//! Time is passed in (`now`), never read here; a `now` earlier than one
//! seen before counts as no time passing. Each call costs O(log senders).
//!
//! # Who is a sender
//!
//! A network peer is its address, without the port (`Sender::address`). On
//! the unix socket, a process by its pid or every process of a user by its
//! uid (`--rate-limit-by pid|uid`, `By`), as the kernel vouches for them; a
//! sender whose pid cannot be seen (0: another pid namespace, such as a
//! container's) is told apart by its uid, and one without credentials at
//! all is `uid 4294967295`, as the kernel names an unknown uid.

use std::collections::hash_map::Entry as Slot;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::net::datagram::Origin;

/// A rate: `per` messages every `interval`, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per: u64,
    pub interval: Duration,
    pub burst: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateError(String);

impl fmt::Display for RateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RateError {}

fn positive_count(text: &str, what: &str) -> Result<u64, RateError> {
    match text.parse::<u64>() {
        Ok(n) if n >= 1 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(RateError(format!(
            "{what} {text:?} is not a whole number of at least 1"
        ))),
    }
}

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(text: &str) -> Result<Rate, RateError> {
        let (per, rest) = text
            .split_once('/')
            .ok_or_else(|| RateError(format!("{text:?} is not N/DURATION[,BURST]")))?;
        let (duration, burst) = match rest.split_once(',') {
            Some((d, b)) => (d, Some(b)),
            None => (rest, None),
        };
        let per = positive_count(per, "the message count")?;
        let spelled = if duration.starts_with(|c: char| c.is_ascii_alphabetic()) {
            format!("1{duration}")
        } else {
            duration.to_string()
        };
        let interval = humantime::parse_duration(&spelled)
            .map_err(|e| RateError(format!("duration {duration:?}: {e}")))?;
        if interval.is_zero() {
            return Err(RateError(format!("duration {duration:?} is zero")));
        }
        let burst = match burst {
            Some(b) => positive_count(b, "the burst")?,
            None => per,
        };
        Ok(Rate {
            per,
            interval,
            burst,
        })
    }
}

/// Who sent a message, as rate limiting tells senders apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sender {
    /// A network peer's address (without its port).
    Address(IpAddr),
    /// A process on the unix socket, by its credentials.
    Pid(u32),
    Uid(u32),
}

/// How senders on the unix socket are told apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Pid,
    Uid,
}

impl FromStr for By {
    type Err = RateError;

    fn from_str(text: &str) -> Result<By, RateError> {
        match text {
            "pid" => Ok(By::Pid),
            "uid" => Ok(By::Uid),
            _ => Err(RateError(format!("{text:?} is neither pid nor uid"))),
        }
    }
}

impl Sender {
    /// A network sender: an IPv4-mapped IPv6 address is the IPv4 sender
    /// it carries (a dual-stack socket's view of an IPv4 peer).
    pub fn address(address: IpAddr) -> Sender {
        Sender::Address(crate::net::cidr::canonical(address))
    }

    /// The sender of a datagram, unix socket senders told apart `by` pid or
    /// uid.
    pub fn of(origin: &Origin, by: By) -> Sender {
        match *origin {
            Origin::Udp(address) => Sender::address(address.ip()),
            Origin::Local(Some(c)) if by == By::Pid && c.pid != 0 => Sender::Pid(c.pid),
            Origin::Local(Some(c)) => Sender::Uid(c.uid),
            Origin::Local(None) => Sender::Uid(u32::MAX),
        }
    }
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sender::Address(a) => write!(f, "{a}"),
            Sender::Pid(p) => write!(f, "pid {p}"),
            Sender::Uid(u) => write!(f, "uid {u}"),
        }
    }
}

/// Messages of one sender dropped, not yet reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report<K> {
    pub sender: K,
    pub suppressed: u64,
}

impl<K: fmt::Display> fmt::Display for Report<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One wording for every count, so that the line is easy to find.
        write!(
            f,
            "sender {}: {} messages suppressed",
            self.sender, self.suppressed
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
}

#[derive(Debug)]
struct Bucket {
    /// Tokens scaled by the interval in nanoseconds: a message costs
    /// `interval` nanos' worth, and each nanosecond adds `per`.
    tokens: u128,
    refilled: Instant,
    suppressed: u64,
    /// When the suppressed messages are reported at the latest.
    due: Option<Instant>,
    /// The position in the least-recently-seen order.
    seen: u64,
    /// Tells apart this sender's deadlines from another's at the same time.
    id: u64,
}

/// The token buckets of every sender seen lately.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: Rate,
    cost: u128,
    capacity: u128,
    max_senders: usize,
    report_every: Duration,
    buckets: HashMap<K, Bucket>,
    by_seen: BTreeMap<u64, K>,
    deadlines: BTreeMap<(Instant, u64), K>,
    ready: VecDeque<Report<K>>,
    clock: u64,
}

impl<K: Clone + Eq + Hash> RateLimiter<K> {
    /// `max_senders` is raised to at least 1.
    pub fn new(rate: Rate, max_senders: usize, report_every: Duration) -> RateLimiter<K> {
        let cost = rate.interval.as_nanos().max(1);
        RateLimiter {
            rate,
            cost,
            capacity: cost.saturating_mul(u128::from(rate.burst)),
            max_senders: max_senders.max(1),
            report_every,
            buckets: HashMap::new(),
            by_seen: BTreeMap::new(),
            deadlines: BTreeMap::new(),
            ready: VecDeque::new(),
            clock: 0,
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Senders in the table.
    pub fn senders(&self) -> usize {
        self.buckets.len()
    }

    /// Whether `sender`'s message at `now` may pass. Take `due_reports`
    /// after each call: a sender that calms down has its report ready.
    pub fn admit(&mut self, sender: &K, now: Instant) -> Verdict {
        // The sender seen last keeps its place: a flood of one sender costs
        // one lookup a message.
        let newest = self.clock;
        let seen = newest + 1;
        if !self.buckets.contains_key(sender) && self.buckets.len() >= self.max_senders {
            self.evict_least_recently_seen();
        }
        let (cost, capacity, per) = (self.cost, self.capacity, u128::from(self.rate.per));
        let bucket = match self.buckets.entry(sender.clone()) {
            Slot::Occupied(o) => o.into_mut(),
            Slot::Vacant(v) => v.insert(Bucket {
                tokens: capacity,
                refilled: now,
                suppressed: 0,
                due: None,
                seen,
                id: seen,
            }),
        };
        let elapsed = now.saturating_duration_since(bucket.refilled).as_nanos();
        bucket.tokens = bucket
            .tokens
            .saturating_add(elapsed.saturating_mul(per))
            .min(capacity);
        bucket.refilled = bucket.refilled.max(now);
        if bucket.seen != newest {
            self.by_seen.remove(&bucket.seen);
            bucket.seen = seen;
            self.by_seen.insert(seen, sender.clone());
            self.clock = seen;
        }
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            if bucket.suppressed > 0 {
                let suppressed = std::mem::take(&mut bucket.suppressed);
                if let Some(due) = bucket.due.take() {
                    self.deadlines.remove(&(due, bucket.id));
                }
                self.ready.push_back(Report {
                    sender: sender.clone(),
                    suppressed,
                });
            }
            Verdict::Accept
        } else {
            bucket.suppressed += 1;
            if bucket.due.is_none() {
                let due = now + self.report_every;
                bucket.due = Some(due);
                self.deadlines.insert((due, bucket.id), sender.clone());
            }
            Verdict::Drop
        }
    }

    fn evict_least_recently_seen(&mut self) {
        let Some((_, sender)) = self.by_seen.pop_first() else {
            return;
        };
        let Some(bucket) = self.buckets.remove(&sender) else {
            return;
        };
        if let Some(due) = bucket.due {
            self.deadlines.remove(&(due, bucket.id));
        }
        if bucket.suppressed > 0 {
            self.ready.push_back(Report {
                sender,
                suppressed: bucket.suppressed,
            });
        }
    }

    /// The reports to write now, oldest first: senders that calmed down or
    /// were evicted, and those whose interval ran out by `now`.
    pub fn due_reports(&mut self, now: Instant) -> Vec<Report<K>> {
        while let Some(entry) = self.deadlines.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let sender = entry.remove();
            if let Some(bucket) = self.buckets.get_mut(&sender) {
                bucket.due = None;
                let suppressed = std::mem::take(&mut bucket.suppressed);
                self.ready.push_back(Report { sender, suppressed });
            }
        }
        self.ready.drain(..).collect()
    }

    /// When `due_reports` next has something without a message coming
    /// (for a poll timeout); reports made ready by `admit` are not counted.
    pub fn next_due(&self) -> Option<Instant> {
        self.deadlines.keys().next().map(|(due, _)| *due)
    }

    /// Every unreported count, as at a clean stop.
    pub fn flush(&mut self) -> Vec<Report<K>> {
        self.deadlines.clear();
        for (sender, bucket) in &mut self.buckets {
            bucket.due = None;
            if bucket.suppressed > 0 {
                let suppressed = std::mem::take(&mut bucket.suppressed);
                self.ready.push_back(Report {
                    sender: sender.clone(),
                    suppressed,
                });
            }
        }
        self.ready.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::rand::Rng;

    fn rate(text: &str) -> Rate {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    const A: Sender = Sender::Pid(1);
    const B: Sender = Sender::Pid(2);

    fn limiter(text: &str) -> RateLimiter<Sender> {
        RateLimiter::new(rate(text), 1000, Duration::from_secs(60))
    }

    fn count(l: &mut RateLimiter<Sender>, s: Sender, n: usize, at: Instant) -> usize {
        (0..n)
            .filter(|_| l.admit(&s, at) == Verdict::Accept)
            .count()
    }

    #[test]
    fn the_option_reads_count_duration_and_burst() {
        assert_eq!(
            rate("100/1s,200"),
            Rate {
                per: 100,
                interval: Duration::from_secs(1),
                burst: 200
            }
        );
        assert_eq!(rate("10/1m").burst, 10);
        assert_eq!(rate("5/s").interval, Duration::from_secs(1));
        assert_eq!(rate("5/500ms").interval, ms(500));
        assert_eq!(rate("5/1h 30m").interval, Duration::from_secs(5400));
    }

    #[test]
    fn bad_rates_are_refused_with_what_is_wrong() {
        for (text, want) in [
            ("", "is not N/DURATION"),
            ("100", "is not N/DURATION"),
            ("0/1s", "message count \"0\""),
            ("-1/1s", "message count"),
            ("+1/1s", "message count"),
            ("x/1s", "message count"),
            ("99999999999999999999999/1s", "message count"),
            ("1/0s", "is zero"),
            ("1/", "duration"),
            ("1/fortnight", "duration"),
            ("1/1s,0", "the burst \"0\""),
            ("1/1s,", "the burst"),
            ("1/1s,2,3", "the burst"),
        ] {
            let e = text.parse::<Rate>().expect_err(text).to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn an_ipv4_sender_is_one_sender_whichever_socket_saw_it() {
        let v4: IpAddr = "192.0.2.7".parse().expect("address");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("address");
        assert_eq!(Sender::address(v4), Sender::address(mapped));
        assert_eq!(Sender::address(mapped).to_string(), "192.0.2.7");
        let t = Instant::now();
        let mut l = limiter("1/1h");
        assert_eq!(l.admit(&Sender::address(v4), t), Verdict::Accept);
        assert_eq!(l.admit(&Sender::address(mapped), t), Verdict::Drop);
    }

    #[test]
    fn a_datagram_sender_is_its_address_or_its_pid_or_uid() {
        use crate::net::datagram::Credentials;
        let local = |pid, uid| Origin::Local(Some(Credentials { pid, uid, gid: 7 }));
        let udp = Origin::Udp("[::ffff:192.0.2.7]:514".parse().expect("address"));
        let ip: IpAddr = "192.0.2.7".parse().expect("address");
        for by in [By::Pid, By::Uid] {
            assert_eq!(
                Sender::of(&udp, by),
                Sender::Address(ip),
                "the port is no part"
            );
            assert_eq!(Sender::of(&local(0, 1000), by), Sender::Uid(1000));
            assert_eq!(Sender::of(&Origin::Local(None), by), Sender::Uid(u32::MAX));
        }
        assert_eq!(Sender::of(&local(42, 1000), By::Pid), Sender::Pid(42));
        assert_eq!(Sender::of(&local(42, 1000), By::Uid), Sender::Uid(1000));
        assert_eq!("pid".parse(), Ok(By::Pid));
        assert_eq!("uid".parse(), Ok(By::Uid));
        assert!("gid".parse::<By>().is_err());
    }

    #[test]
    fn a_quiet_sender_may_send_its_burst_at_once_then_at_the_rate() {
        let t = Instant::now();
        let mut l = limiter("10/1s,5");
        assert_eq!(count(&mut l, A, 100, t), 5);
        // 10 per second: one every 100 ms.
        assert_eq!(count(&mut l, A, 100, t + ms(99)), 0);
        assert_eq!(count(&mut l, A, 100, t + ms(100)), 1);
        assert_eq!(count(&mut l, A, 100, t + ms(350)), 2);
        // The bucket refills to the burst, no further.
        assert_eq!(count(&mut l, A, 100, t + ms(100_000)), 5);
    }

    #[test]
    fn over_a_long_run_the_rate_is_exact() {
        let t = Instant::now();
        let mut l = limiter("3/1s,2");
        // A message every 7 ms for 100 s: the burst of 2, then 3 per
        // second, no drift (the bucket never fills, so nothing is lost).
        let passed = (0..100_000u64 / 7)
            .filter(|i| l.admit(&A, t + ms(i * 7)) == Verdict::Accept)
            .count();
        assert!((301..=302).contains(&passed), "{passed}");
    }

    #[test]
    fn a_flooding_sender_takes_nothing_from_another() {
        let t = Instant::now();
        let mut l = limiter("10/1s,10");
        for i in 0..1000u64 {
            l.admit(&A, t + ms(i));
            if i % 100 == 0 {
                assert_eq!(l.admit(&B, t + ms(i)), Verdict::Accept, "at {i} ms");
            }
        }
    }

    #[test]
    fn a_sender_that_calms_down_is_reported_with_the_exact_count_before_its_message() {
        let t = Instant::now();
        let mut l = limiter("1/1s,1");
        assert_eq!(l.admit(&A, t), Verdict::Accept);
        for _ in 0..41 {
            assert_eq!(l.admit(&A, t), Verdict::Drop);
        }
        assert_eq!(l.due_reports(t), vec![]);
        assert_eq!(l.admit(&A, t + ms(1000)), Verdict::Accept);
        let reports = l.due_reports(t + ms(1000));
        assert_eq!(
            reports,
            vec![Report {
                sender: A,
                suppressed: 41
            }]
        );
        assert_eq!(
            reports[0].to_string(),
            "sender pid 1: 41 messages suppressed"
        );
        assert_eq!(l.due_reports(t + ms(100_000)), vec![]);
        assert_eq!(l.next_due(), None);
    }

    #[test]
    fn a_sender_that_never_calms_down_is_reported_at_the_interval() {
        let t = Instant::now();
        let mut l = RateLimiter::new(rate("1/1h"), 10, Duration::from_secs(10));
        let mut total = 0;
        let mut reported = 0;
        for s in 0..35u64 {
            for _ in 0..3 {
                if l.admit(&A, t + Duration::from_secs(s)) == Verdict::Drop {
                    total += 1;
                }
            }
            for r in l.due_reports(t + Duration::from_secs(s)) {
                reported += r.suppressed;
            }
        }
        // Runs of drops: 0 s to 10 s (2 + 10 * 3, reported at 10 s),
        // 11 s to 21 s (33, at 21 s), 22 s to 32 s (33, at 32 s); the last
        // 6 are not due yet.
        assert_eq!(total, 104);
        assert_eq!(reported, 32 + 33 + 33);
        let rest: u64 = l.flush().iter().map(|r| r.suppressed).sum();
        assert_eq!(reported + rest, total);
    }

    #[test]
    fn next_due_says_when_a_report_falls_due() {
        let t = Instant::now();
        let mut l = RateLimiter::new(rate("1/1h"), 10, Duration::from_secs(10));
        assert_eq!(l.next_due(), None);
        l.admit(&A, t);
        l.admit(&A, t + ms(5));
        assert_eq!(l.next_due(), Some(t + ms(10_005)));
        assert_eq!(l.due_reports(t + ms(10_004)), vec![]);
        assert_eq!(l.due_reports(t + ms(10_005)).len(), 1);
        assert_eq!(l.next_due(), None);
    }

    #[test]
    fn the_table_is_bounded_and_an_evicted_sender_still_has_its_count_reported() {
        let t = Instant::now();
        let mut l = RateLimiter::new(rate("1/1h"), 3, Duration::from_secs(60));
        l.admit(&A, t);
        l.admit(&A, t);
        l.admit(&A, t);
        for pid in 10..20 {
            l.admit(&Sender::Pid(pid), t);
            assert!(l.senders() <= 3);
        }
        let reports = l.due_reports(t);
        assert_eq!(
            reports,
            vec![Report {
                sender: A,
                suppressed: 2
            }]
        );
        assert_eq!(
            l.next_due(),
            None,
            "the evicted sender's deadline went with it"
        );
    }

    #[test]
    fn eviction_takes_the_least_recently_seen() {
        let t = Instant::now();
        let mut l = RateLimiter::new(rate("1/1h"), 2, Duration::from_secs(60));
        l.admit(&A, t);
        l.admit(&B, t);
        assert_eq!(l.admit(&A, t), Verdict::Drop); // A seen last
        l.admit(&Sender::Pid(3), t); // evicts B
        assert_eq!(l.admit(&A, t), Verdict::Drop, "A kept its empty bucket");
        assert_eq!(l.admit(&B, t), Verdict::Accept, "B came back as new");
    }

    #[test]
    fn time_going_backwards_adds_no_tokens() {
        let t = Instant::now() + Duration::from_secs(100);
        let mut l = limiter("1/1s,1");
        assert_eq!(l.admit(&A, t), Verdict::Accept);
        assert_eq!(l.admit(&A, t - Duration::from_secs(50)), Verdict::Drop);
        assert_eq!(l.admit(&A, t + ms(999)), Verdict::Drop);
        assert_eq!(l.admit(&A, t + ms(1000)), Verdict::Accept);
    }

    #[test]
    fn huge_rates_and_bursts_do_not_overflow() {
        let t = Instant::now();
        let mut l = RateLimiter::new(
            rate(&format!("{}/1s,{}", u64::MAX, u64::MAX)),
            4,
            Duration::from_secs(1),
        );
        assert_eq!(count(&mut l, A, 1000, t), 1000);
        assert_eq!(
            count(&mut l, A, 1000, t + Duration::from_secs(1 << 40)),
            1000
        );
        let mut l = limiter(&format!("1/{}s", u32::MAX));
        assert_eq!(count(&mut l, A, 10, t), 1);
    }

    #[test]
    fn random_traffic_every_drop_is_reported_exactly_once() {
        let t = Instant::now();
        let mut rng = Rng::new(0xfeed);
        let mut l = RateLimiter::new(rate("5/1s,3"), 8, Duration::from_secs(2));
        let mut dropped: HashMap<Sender, u64> = HashMap::new();
        let mut reported: HashMap<Sender, u64> = HashMap::new();
        let mut now = t;
        for _ in 0..200_000 {
            now += Duration::from_micros(rng.next() % 2000);
            let s = Sender::Uid((rng.next() % 20) as u32);
            if l.admit(&s, now) == Verdict::Drop {
                *dropped.entry(s).or_default() += 1;
            }
            assert!(l.senders() <= 8);
            for r in l.due_reports(now) {
                assert!(r.suppressed > 0);
                *reported.entry(r.sender).or_default() += r.suppressed;
            }
        }
        for r in l.flush() {
            *reported.entry(r.sender).or_default() += r.suppressed;
        }
        assert!(dropped.values().sum::<u64>() > 0);
        assert_eq!(reported, dropped);
    }
}
