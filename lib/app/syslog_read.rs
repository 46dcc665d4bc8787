//! Syslog datagrams to reader lines: one small loop over poll(2) that takes
//! datagrams in batches from its sockets, writes one line for each into a
//! bounded buffer, and hands the buffer to standard output in large chunks.
//!
//! When the output does not keep up, the buffer fills and the sockets are
//! no longer read: the kernel's queue fills in turn and local senders block
//! (UDP senders are dropped by the kernel, which counts them; the count is
//! reported). With `shed_after`, once the output has taken nothing for that
//! long, datagrams are read and dropped instead, and one line says how
//! many when the output moves again.
//!
//! At a stop signal, what each socket held when the signal came is taken
//! and written, and nothing that came after it is waited for: every socket
//! stamps datagrams with their arrival time (a unix socket from the signal
//! on: those it held before have none), and a socket's drain ends at
//! the first one that arrived after the signal was seen (left queued, for
//! a successor that inherits the socket). A flood that goes on through the
//! stop does not make it longer.
//!
//! Each line carries where its datagram came from, as fields: the unix
//! socket's sender (`pid` `uid` `gid`) or a UDP sender's address (`from`).
//!
//! The reader's own notices are lines too, from `syslog-read[PID]` with
//! facility syslog and no `fmt` field (every received message has one), so
//! that no sender can pass for them.
//!
//! With a rate limit, each message is checked before it is parsed (a hash
//! lookup on its sender, so that a flooder costs little more than the
//! receiving): over the limit it is dropped, and notices say how many per
//! sender (`net::rate_limit` has the contract), the last of them at a
//! clean stop. Every input, datagram or stream, asks `Collector::admit`.

pub mod stream;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use crate::cli;
use crate::format::decimal::decimal;
use crate::format::reader_line::{Facility, FieldsText, LineWriter, Priority, Severity};
use crate::format::syslog::{build, parse, relay};
use crate::net::cidr::AllowList;
use crate::net::datagram::{self, Batch, Credentials, Datagram, Head, Origin, Socket, Stamp};
use crate::net::rate_limit::{self, By, Rate, RateLimiter, Report, Verdict};
use crate::sys::poll;
use crate::sys::signals::Signals;
use crate::sys::stdout::{CHUNK, Flush, Output};

/// Past this much waiting output, sockets are no longer read.
const MAX_PENDING: usize = 1 << 20;

/// Lines wait at most this long for more to be written with them.
const FLUSH_DELAY: Duration = Duration::from_millis(10);

/// A socket that filled its batch is read again at once this many times
/// in a row before a glance at the others and at the signals: a glance is
/// a syscall a batch, and the time it takes lets a local sender fill the
/// socket's short queue (net.unix.max_dgram_qlen, 10) and sleep, to be
/// woken, at our cost, by the next read.
const READS_WITHOUT_GLANCE: u32 = 7;

/// Senders the rate limit keeps apart at once: past this many, the one
/// seen least recently is forgotten (its count reported first).
pub const MAX_SENDERS: usize = 10_000;

pub struct Settings {
    /// Drop datagrams once the output has taken nothing for this long.
    pub shed_after: Option<Duration>,
    /// The longest datagram kept whole.
    pub max_size: usize,
    /// Drop each sender's messages past this rate; unix socket senders
    /// told apart by pid or uid.
    pub rate_limit: Option<(Rate, By)>,
    /// The senders UDP datagrams are taken from (stream inputs check
    /// theirs as they accept).
    pub allow: AllowList,
}

/// How often datagrams refused by `--allow` are counted in a notice.
const REFUSED_EVERY: Duration = Duration::from_secs(10);

/// The rate limit and how unix socket senders are told apart.
struct Limit {
    table: RateLimiter<rate_limit::Sender>,
    by: By,
}

impl Limit {
    fn new(rate: Rate, by: By) -> Limit {
        // Reports of a flooder come every interval of the rate, but not so
        // often that they make a flood of their own, nor so rarely that a
        // drop goes unsaid for long.
        let every = rate
            .interval
            .clamp(Duration::from_secs(1), Duration::from_secs(60));
        Limit {
            table: RateLimiter::new(rate, MAX_SENDERS, every),
            by,
        }
    }
}

/// What to do with a socket next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Wait for datagrams with poll(2).
    Poll,
    /// It may have datagrams waiting: read it.
    Read,
    /// Read it again at this time.
    Rest(Instant),
}

/// One wait: the sockets to poll, whether to poll the output, and when to
/// stop waiting regardless.
struct Plan {
    sockets: Vec<usize>,
    output: bool,
    deadline: Option<Instant>,
}

pub struct Collector {
    sockets: Vec<Socket>,
    /// Which sockets to read, to poll, or to leave alone a while.
    state: Vec<State>,
    batch: Batch,
    output: Output,
    shed_after: Option<Duration>,
    /// While shedding: how many datagrams were dropped.
    shed: Option<u64>,
    /// After a stop signal: when it was seen. Datagrams that arrived
    /// later are not taken.
    stopping: Option<Stamp>,
    /// The signalfd was readable at the last poll, seen at this time.
    signalled: Option<Stamp>,
    /// When the oldest line not yet handed to the output must go.
    flush_due: Option<Instant>,
    /// The last flush left lines the output would not take: wait for it
    /// to be writable.
    blocked: bool,
    /// Since when the output has taken nothing, while lines wait.
    stuck_since: Option<Instant>,
    /// Stderr is the output's pipe: while that is full or holds part of a
    /// line, our messages wait.
    shares_stderr: bool,
    limit: Option<Limit>,
    streams: stream::Streams,
    allow: AllowList,
    /// Datagrams from senders not in `allow` not yet reported, and when
    /// the last report was.
    refused: u64,
    refused_said: Option<Instant>,
    pid: Vec<u8>,
    texts: Texts,
    /// Reads since the last poll(2).
    unpolled: u32,
}

impl Collector {
    pub fn new(
        sockets: Vec<Socket>,
        streams: stream::Streams,
        output: Output,
        settings: Settings,
    ) -> Collector {
        let mut buf = [0u8; 20];
        let shares_stderr = output.shares_stderr();
        Collector {
            state: vec![State::Poll; sockets.len()],
            sockets,
            batch: Batch::new(settings.max_size),
            output,
            shed_after: settings.shed_after,
            shed: None,
            stopping: None,
            signalled: None,
            flush_due: None,
            blocked: false,
            stuck_since: None,
            shares_stderr,
            limit: settings.rate_limit.map(|(rate, by)| Limit::new(rate, by)),
            streams,
            allow: settings.allow,
            refused: 0,
            refused_said: None,
            pid: decimal(u64::from(std::process::id()), &mut buf).to_vec(),
            texts: Texts::default(),
            unpolled: 0,
        }
    }

    /// Runs until a stop signal and all that was received is written;
    /// returns the exit code.
    pub fn run(&mut self, signals: &Signals) -> i32 {
        loop {
            let now = Instant::now();
            if let Some(seen) = self.signalled.take()
                && !signals.take().is_empty()
            {
                if self.stopping.is_some() {
                    return self.give_up("a second stop signal came");
                }
                // Take what was queued when the signal came, then stop.
                self.begin_stop(seen);
            }
            if self.streams.stdin_ended() && self.stopping.is_none() {
                self.begin_stop(datagram::stamp_now());
            }
            self.update_shedding(now);
            self.report_suppressed(now);
            self.report_refused(now, false);
            if self.taking() {
                self.read_ready();
                self.read_streams(now);
            }
            self.close_idle(now);
            if self.stopping.is_some() && !self.more_to_take() {
                // All is taken: every count, however recent, goes out
                // with the rest.
                self.report_all_suppressed();
                self.report_refused(now, true);
            }
            let pending = self.output.pending();
            if pending > 0 && self.flush_due.is_none() {
                self.flush_due = Some(now + FLUSH_DELAY);
            }
            // A blocked output is polled: when it wakes us, it has room.
            let due = self.stopping.is_some()
                || pending >= CHUNK
                || self.blocked
                || self.stuck_since.is_some()
                || self.flush_due.is_some_and(|due| due <= now)
                || self.streams.awaiting_answers();
            if pending > 0 && due {
                match self.output.flush() {
                    Ok(Flush::Done) => {
                        self.flush_due = None;
                        self.blocked = false;
                        self.stuck_since = None;
                    }
                    Ok(Flush::Blocked) if self.output.pending() < pending => {
                        self.blocked = true;
                        self.stuck_since = None
                    }
                    Ok(Flush::Blocked) => {
                        self.blocked = true;
                        self.stuck_since.get_or_insert(now);
                    }
                    Err(e) => {
                        cli::warn(&format!("standard output: {e}"));
                        return cli::EXIT_TEMPORARY;
                    }
                }
                if self.shares_stderr {
                    // A full pipe would hold us in a blocking write to
                    // stderr; one that holds part of a line would get the
                    // message inside it.
                    cli::hold_messages(self.blocked || self.output.line_open());
                }
            }
            self.streams.answer(self.output.written_total());
            if self.stopping.is_some() {
                if !self.more_to_take() && self.output.pending() == 0 {
                    self.streams.finish(self.output.written_total());
                    return 0;
                }
                if self.stuck_too_long(now) {
                    return self.give_up("standard output is stuck");
                }
            }
            self.wait(signals, now);
        }
    }

    fn begin_stop(&mut self, seen: Stamp) {
        self.stopping = Some(seen);
        self.state.fill(State::Read);
        self.report_arrivals();
        self.streams.stop();
    }

    /// At a stop: whether anything received before it is still to be
    /// taken now.
    fn more_to_take(&self) -> bool {
        self.taking() && (self.state.contains(&State::Read) || self.streams.has_ready())
    }

    /// Reads a chunk from each stream connection that has one.
    fn read_streams(&mut self, now: Instant) {
        let mut streams = std::mem::replace(&mut self.streams, stream::Streams::none());
        streams.read_ready(now, |arrival| self.take_arrival(&arrival, now));
        self.streams = streams;
    }

    fn close_idle(&mut self, now: Instant) {
        if self.streams.next_idle().is_some_and(|at| at <= now) {
            let mut streams = std::mem::replace(&mut self.streams, stream::Streams::none());
            streams.close_idle(now, |arrival| self.take_arrival(&arrival, now));
            self.streams = streams;
        }
    }

    /// One message from a stream: a line, unless shed or over the rate;
    /// where the output will have taken it (a RELP answer waits for that).
    fn take_arrival(&mut self, arrival: &stream::Arrival<'_>, now: Instant) -> u64 {
        if let Some(dropped) = &mut self.shed {
            *dropped += 1;
            return self.output.appended();
        }
        let sender = match arrival.peer {
            Some(peer) => rate_limit::Sender::address(peer.ip()),
            None => rate_limit::Sender::Uid(u32::MAX),
        };
        if self.admit(sender, now) {
            write_stream_line(self.output.buf(), arrival, &mut self.texts.senders);
        }
        self.output.appended()
    }

    /// Says how many datagrams `--allow` refused, every `REFUSED_EVERY`
    /// or (`now_or_never`) at once.
    fn report_refused(&mut self, now: Instant, at_once: bool) {
        if self.refused == 0 {
            return;
        }
        if !at_once && self.refused_said.is_some_and(|at| now < at + REFUSED_EVERY) {
            return;
        }
        let count = std::mem::take(&mut self.refused);
        self.refused_said = Some(now);
        let text = format!("dropped {count} datagrams from senders not in --allow");
        self.notice(Severity::WARNING, &text, Some(("allow", count)));
    }

    /// Whether sockets are read: while the output has room, or to shed.
    fn taking(&self) -> bool {
        self.shed.is_some() || self.output.pending() < MAX_PENDING
    }

    fn stuck_too_long(&self, now: Instant) -> bool {
        match (self.shed_after, self.stuck_since) {
            (Some(limit), Some(since)) => now.duration_since(since) >= limit,
            _ => false,
        }
    }

    fn update_shedding(&mut self, now: Instant) {
        let stuck = self.stuck_too_long(now);
        match self.shed {
            None if stuck && self.stopping.is_none() => self.shed = Some(0),
            Some(dropped) if !stuck => {
                self.shed = None;
                let limit = self.shed_after.unwrap_or_default();
                let text = format!(
                    "dropped {dropped} messages: standard output took nothing for {} or more",
                    humantime::format_duration(limit)
                );
                self.notice(Severity::WARNING, &text, Some(("shed", dropped)));
            }
            _ => {}
        }
    }

    /// Takes a batch from each socket that may have datagrams.
    fn read_ready(&mut self) {
        for i in 0..self.sockets.len() {
            if self.state[i] != State::Read {
                continue;
            }
            if self.shed.is_none() && self.output.pending() >= MAX_PENDING {
                break;
            }
            let received = match self.stopping {
                Some(signal) => self.receive_before(i, signal),
                None => self.batch.receive(&mut self.sockets[i]),
            };
            let count = match received {
                Ok(count) => count,
                Err(e) => {
                    self.state[i] = State::Poll;
                    let text = format!("{}: receiving: {e}", self.sockets[i].name);
                    self.notice(Severity::ERR, &text, None);
                    continue;
                }
            };
            self.state[i] = match count {
                _ if count == self.batch.capacity() => State::Read,
                0 => State::Poll,
                _ if !self.sockets[i].rest.is_zero() && self.stopping.is_none() => {
                    State::Rest(Instant::now() + self.sockets[i].rest)
                }
                _ => State::Poll,
            };
            if let Some(signal) = self.stopping
                && self.state[i] == State::Read
                && (0..count).any(|k| self.batch.arrival(k).is_none_or(|at| at > signal))
            {
                // The queue reaches past the signal: this socket is done.
                self.state[i] = State::Poll;
            }
            match &mut self.shed {
                Some(dropped) => *dropped += count as u64,
                // Taken is written: also what arrived after the signal in
                // the batch that reached past it.
                None if self.limit.is_none() && self.allow.is_empty() => {
                    for k in 0..count {
                        write_line(self.output.buf(), &self.batch.get(k), &mut self.texts);
                    }
                }
                None => {
                    let now = Instant::now();
                    let by = self.limit.as_ref().map_or(By::Pid, |l| l.by);
                    for k in 0..count {
                        let origin = self.batch.get(k).origin;
                        if let Origin::Udp(addr) = origin
                            && !self.allow.allows(addr.ip())
                        {
                            self.refused += 1;
                            continue;
                        }
                        let sender = rate_limit::Sender::of(&origin, by);
                        if self.admit(sender, now) {
                            write_line(self.output.buf(), &self.batch.get(k), &mut self.texts);
                        }
                    }
                }
            }
            let lost = self.sockets[i].take_lost();
            if lost > 0 {
                let text = format!(
                    "{}: the kernel dropped {lost} datagrams: receive buffer full",
                    self.sockets[i].name
                );
                self.notice(Severity::WARNING, &text, Some(("kernel", lost)));
            }
        }
    }

    /// Whether a message from `sender`, received at `now`, is to be
    /// written: always without a rate limit; within the sender's rate with
    /// one. Call it before parsing the message, for every message of every
    /// input, and write the message right after: a sender that calms down
    /// has its count written here first.
    pub fn admit(&mut self, sender: rate_limit::Sender, now: Instant) -> bool {
        let Some(limit) = &mut self.limit else {
            return true;
        };
        match limit.table.admit(&sender, now) {
            Verdict::Drop => false,
            Verdict::Accept => {
                let reports = limit.table.due_reports(now);
                self.write_reports(reports);
                true
            }
        }
    }

    /// Writes the counts of senders whose interval ran out by `now`.
    fn report_suppressed(&mut self, now: Instant) {
        if let Some(limit) = &mut self.limit
            && limit.table.next_due().is_some_and(|due| due <= now)
        {
            let reports = limit.table.due_reports(now);
            self.write_reports(reports);
        }
    }

    /// Writes every count not yet written, as at a stop.
    fn report_all_suppressed(&mut self) {
        if let Some(limit) = &mut self.limit {
            let reports = limit.table.flush();
            self.write_reports(reports);
        }
    }

    fn write_reports(&mut self, reports: Vec<Report<rate_limit::Sender>>) {
        for report in reports {
            let text = report.to_string();
            let dropped = Some(("rate-limit", report.suppressed));
            self.notice(Severity::WARNING, &text, dropped);
        }
    }

    /// From now on, has every socket pass the arrival time of each
    /// datagram. One that cannot is drained by a single batch.
    fn report_arrivals(&mut self) {
        for i in 0..self.sockets.len() {
            if let Err(e) = self.sockets[i].report_arrivals() {
                self.notice(Severity::WARNING, &format!("stopping: {e}"), None);
            }
        }
    }

    /// At a stop: a batch from socket `i` if the first datagram waiting
    /// arrived before the `signal`, else none (it stays queued).
    fn receive_before(&mut self, i: usize, signal: Stamp) -> std::io::Result<usize> {
        match self.batch.peek(&self.sockets[i])? {
            Head::Empty => Ok(0),
            Head::Arrived(at) if at > signal => Ok(0),
            Head::Arrived(_) | Head::Unstamped => self.batch.receive(&mut self.sockets[i]),
        }
    }

    /// Writes a line of our own: `syslog.SEVERITY syslog-read[PID]: text`.
    fn notice(&mut self, severity: Severity, text: &str, dropped: Option<(&str, u64)>) {
        let priority = Priority {
            facility: Facility::SYSLOG,
            severity,
        };
        let out = self.output.buf();
        let mut line = LineWriter::new(
            out,
            priority,
            cli::program().as_bytes(),
            &self.pid,
            text.as_bytes(),
        );
        if let Some((cause, count)) = dropped {
            let mut buf = [0u8; 20];
            line.field("dropped", decimal(count, &mut buf));
            line.field("cause", cause.as_bytes());
        }
        out.push(b'\n');
    }

    /// What the next poll(2) waits for, from the state as it is now: every
    /// way forward is in it. While sockets are taken, each one is either
    /// polled, due at a time, or (with more to read) due now; while they
    /// are not, lines wait, and the output is polled or due now.
    fn plan(&self, now: Instant) -> Plan {
        let mut plan = Plan {
            sockets: Vec::new(),
            output: self.blocked && self.output.pending() > 0,
            deadline: None,
        };
        let mut due = |at: Instant| {
            plan.deadline = Some(plan.deadline.map_or(at, |d: Instant| d.min(at)));
        };
        if self.taking() {
            for (i, state) in self.state.iter().enumerate() {
                match *state {
                    // With more to read, only a glance: signals and the
                    // other sockets must not wait behind a flood on one.
                    State::Read => due(now),
                    // At a stop, only what was queued already is taken.
                    State::Poll if self.stopping.is_some() => {}
                    State::Poll => plan.sockets.push(i),
                    State::Rest(until) => due(until),
                }
            }
            if self.streams.has_ready() {
                due(now);
            }
            if let Some(rest) = self.streams.next_rest() {
                due(rest);
            }
        } else if !plan.output {
            // Not blocked, yet lines wait: write them now.
            due(now);
        }
        if let (Some(limit), Some(since), None) = (self.shed_after, self.stuck_since, self.shed) {
            due(since + limit);
        }
        if let Some(flush) = self.flush_due.filter(|_| !plan.output) {
            due(flush);
        }
        if let Some(report) = self.limit.as_ref().and_then(|l| l.table.next_due()) {
            due(report);
        }
        if let Some(idle) = self.streams.next_idle() {
            due(idle);
        }
        if self.streams.stdin_ended() && self.stopping.is_none() {
            // The input ended: the stop begins at the next turn.
            due(now);
        }
        if let Some(said) = self.refused_said.filter(|_| self.refused > 0) {
            due(said + REFUSED_EVERY);
        }
        debug_assert!(
            !plan.sockets.is_empty()
                || plan.output
                || plan.deadline.is_some()
                || !self.streams.is_empty(),
            "a wait for signals alone"
        );
        plan
    }

    /// Sleeps until a socket has datagrams, the output has room, a signal
    /// comes, or the plan's deadline.
    /// `now` is when this turn of the loop began: a plan made from it
    /// wakes no later than one made from the time after the turn's work.
    fn wait(&mut self, signals: &Signals, now: Instant) {
        let flooded = self.stopping.is_none()
            && self.state.contains(&State::Read)
            && self.taking()
            && !self.blocked
            && self.streams.is_empty();
        if flooded && self.unpolled < READS_WITHOUT_GLANCE {
            self.unpolled += 1;
            return;
        }
        self.unpolled = 0;
        let plan = self.plan(now);
        let mut fds = Vec::with_capacity(self.sockets.len() + 2);
        fds.push(PollFd::new(signals, PollFlags::IN));
        if plan.output {
            fds.push(PollFd::new(&self.output, PollFlags::OUT));
        }
        let first_socket = fds.len();
        for &i in &plan.sockets {
            fds.push(PollFd::new(&self.sockets[i], PollFlags::IN));
        }
        let first_stream = fds.len();
        let taking = self.taking();
        let stream_fds = if taking {
            self.streams.poll_fds()
        } else {
            Vec::new()
        };
        for &(fd, flags) in &stream_fds {
            fds.push(PollFd::from_borrowed_fd(fd, flags));
        }
        // Measured at the poll, after the plan: its time is not slept again.
        if let Err(e) = poll::until(&mut fds, plan.deadline) {
            cli::warn(&e.to_string());
        }
        // Read at once: what arrived before this is what the stop takes.
        self.signalled = (!fds[0].revents().is_empty()).then(datagram::stamp_now);
        for (&i, fd) in plan.sockets.iter().zip(&fds[first_socket..]) {
            if !fd.revents().is_empty() {
                self.state[i] = State::Read;
            }
        }
        let ready: Vec<bool> = fds[first_stream..]
            .iter()
            .map(|fd| !fd.revents().is_empty())
            .collect();
        drop(stream_fds);
        if taking {
            self.streams.mark_ready(&ready);
        }
        if self.state.iter().any(|s| matches!(s, State::Rest(_))) {
            let now = Instant::now();
            for state in &mut self.state {
                if matches!(state, State::Rest(until) if *until <= now) {
                    *state = State::Read;
                }
            }
        }
    }

    fn give_up(&self, why: &str) -> i32 {
        if !self.output.shares_stderr() {
            cli::warn(&format!(
                "stopping with {} bytes of lines unwritten: {why}",
                self.output.pending()
            ));
        }
        cli::EXIT_TEMPORARY
    }
}

/// One datagram as one line: the message, its fields, where it came from,
/// and whether it was cut.
fn write_line(out: &mut Vec<u8>, datagram: &Datagram, texts: &mut Texts) {
    let mut line = parse::write_line(datagram.bytes, out, &mut texts.recent);
    write_origin(&datagram.origin, &mut line, &mut texts.senders);
    if datagram.len > datagram.bytes.len() {
        let mut buf = [0u8; 20];
        line.field("truncated", decimal(datagram.len as u64, &mut buf));
    }
    out.push(b'\n');
}

/// Fields a relayed element may not set: those the parse writes, and
/// ours.
const NOT_RELAYED: [&str; 14] = [
    "fmt",
    "time",
    "time3164",
    "zone",
    "uptime",
    "host",
    "msgid",
    "sd",
    "seq",
    "unsynced",
    "bom",
    "nopri",
    "relay",
    "truncated",
];

/// One message of a stream as one line: as a datagram's, `from` the
/// peer; a cut message's `truncated` is its frame's octet count, or
/// `unknown` for an LF-ended frame (whose rest is skipped unread).
///
/// From an authenticated peer (another rill relaying, its TLS client
/// certificate verified and allowed), the element of rill's SD-ID in the
/// message is trusted: taken out of `sd`, its parameters become the
/// line's fields (but for those the parse writes), and the peer is
/// `relay=`, not `from=` (which, if there, is the original sender's).
fn write_stream_line(out: &mut Vec<u8>, arrival: &stream::Arrival<'_>, senders: &mut SenderText) {
    let mut message = parse::parse(arrival.message.bytes);
    let relayed = match message.sd {
        Some(sd) if arrival.authenticated => relay::take_element(sd, build::SD_ID),
        _ => None,
    };
    if let Some((_, rest)) = &relayed {
        message.sd = (!rest.is_empty()).then_some(rest.as_slice());
    }
    let mut line = message.write_line(out);
    match (&arrival.peer, &relayed) {
        (Some(peer), None) => line.field("from", senders.address(peer)),
        (peer, Some((params, _))) => {
            let mut seen: Vec<&str> = Vec::new();
            for (key, value) in params {
                if NOT_RELAYED.contains(&key.as_str()) || seen.contains(&key.as_str()) {
                    continue;
                }
                seen.push(key);
                line.field(key, value);
            }
            if let Some(peer) = peer {
                line.field("relay", senders.address(peer));
            }
        }
        (None, None) => {}
    }
    if arrival.message.truncated {
        let mut buf = [0u8; 20];
        let len = match arrival.message.frame_len {
            Some(len) => decimal(len, &mut buf),
            None => b"unknown",
        };
        line.field("truncated", len);
    }
    out.push(b'\n');
}

/// Where a datagram came from, as fields: `pid=` `uid=` `gid=` (the
/// unix socket's sender, `pid` only when we can see it), or `from=`.
fn write_origin(origin: &Origin, line: &mut LineWriter, senders: &mut SenderText) {
    match origin {
        Origin::Local(None) => {}
        Origin::Local(Some(c)) => line.fields(senders.credentials(c)),
        Origin::Udp(addr) => line.field("from", senders.address(addr)),
    }
}

/// Text kept from one line for the next, which mostly has the same.
#[derive(Default)]
struct Texts {
    senders: SenderText,
    recent: parse::Recent,
}

/// A sender as text: a network sender's address as a field's text,
/// `ADDRESS:PORT`, and a local sender's credentials as fields, each kept
/// for the next message: most come from the sender of the one before.
struct SenderText {
    addr: Option<SocketAddr>,
    text: [u8; 64],
    len: usize,
    credentials: Option<Credentials>,
    fields: FieldsText,
}

impl Default for SenderText {
    fn default() -> SenderText {
        SenderText {
            addr: None,
            text: [0; 64],
            len: 0,
            credentials: None,
            fields: FieldsText::default(),
        }
    }
}

impl SenderText {
    fn address(&mut self, addr: &SocketAddr) -> &[u8] {
        if self.addr != Some(*addr) {
            self.len = address_text(addr, &mut self.text);
            self.addr = Some(*addr);
        }
        &self.text[..self.len]
    }

    /// `pid=` (when we can see it) `uid=` `gid=`.
    fn credentials(&mut self, c: &Credentials) -> &FieldsText {
        if self.credentials != Some(*c) {
            let mut buf = [0u8; 20];
            self.fields.clear();
            if c.pid != 0 {
                self.fields
                    .field("pid", decimal(u64::from(c.pid), &mut buf));
            }
            self.fields
                .field("uid", decimal(u64::from(c.uid), &mut buf));
            self.fields
                .field("gid", decimal(u64::from(c.gid), &mut buf));
            self.credentials = Some(*c);
        }
        &self.fields
    }
}

/// Writes `addr` as `Sender` shows it into `text`; returns its length.
fn address_text(addr: &SocketAddr, text: &mut [u8; 64]) -> usize {
    match addr {
        SocketAddr::V4(v4) => {
            // The common case, without the formatting machinery.
            let mut len = 0;
            let mut digits = [0u8; 20];
            let parts = v4.ip().octets().map(u64::from);
            for (i, n) in parts.into_iter().chain([u64::from(v4.port())]).enumerate() {
                if i > 0 {
                    text[len] = if i == 4 { b':' } else { b'.' };
                    len += 1;
                }
                let d = decimal(n, &mut digits);
                text[len..len + d.len()].copy_from_slice(d);
                len += d.len();
            }
            len
        }
        addr => {
            let mut cursor = io::Cursor::new(&mut text[..]);
            // An address and port always fit in 64 bytes.
            let _ = io::Write::write_fmt(&mut cursor, format_args!("{}", Sender(addr)));
            cursor.position() as usize
        }
    }
}

/// A sender's address: an IPv4-mapped IPv6 address as IPv4, IPv6 in
/// brackets.
struct Sender<'a>(&'a SocketAddr);

impl fmt::Display for Sender<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
                Some(v4) => write!(f, "{v4}:{}", v6.port()),
                None => write!(f, "{v6}"),
            },
            SocketAddr::V4(v4) => write!(f, "{v4}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::datagram::Credentials;

    #[test]
    fn a_udp_sender_is_ipv4_when_mapped_and_ipv6_in_brackets() {
        let show = |s: &str| Sender(&s.parse().unwrap()).to_string();
        assert_eq!(show("1.2.3.4:5"), "1.2.3.4:5");
        assert_eq!(show("[::1]:514"), "[::1]:514");
        assert_eq!(show("[::ffff:10.0.0.1]:99"), "10.0.0.1:99");
    }

    #[test]
    fn origins_become_credentials_or_an_address() {
        let fields = |origin: Origin| {
            let mut out = Vec::new();
            write_origin(
                &origin,
                &mut LineWriter::new(&mut out, Priority::DEFAULT, b"", b"", b""),
                &mut SenderText::default(),
            );
            let tab = out
                .iter()
                .position(|&b| b == b'\t')
                .map_or(out.len(), |t| t + 1);
            String::from_utf8(out[tab..].to_vec()).unwrap()
        };
        let local = |pid| {
            Origin::Local(Some(Credentials {
                pid,
                uid: 0,
                gid: 4294967295,
            }))
        };
        assert_eq!(fields(local(17)), "pid=17 uid=0 gid=4294967295");
        assert_eq!(
            fields(local(0)),
            "uid=0 gid=4294967295",
            "a pid we cannot see"
        );
        assert_eq!(fields(Origin::Local(None)), "");
        let udp = |a: &str| Origin::Udp(a.parse().unwrap());
        assert_eq!(
            fields(udp("255.255.255.255:65535")),
            "from=255.255.255.255:65535"
        );
        assert_eq!(fields(udp("0.0.0.0:0")), "from=0.0.0.0:0");
        assert_eq!(fields(udp("[::ffff:10.0.0.1]:99")), "from=10.0.0.1:99");
        assert_eq!(fields(udp("[2001:db8::1]:514")), "from=[2001:db8::1]:514");
    }
}
