//! export-to-remote's loop: lines from the cursors, as RFC 5424 messages,
//! to the remote server, each cursor saved only as far as the server's
//! program is known to have read its lines.
//!
//! One poll(2) loop: read a bounded batch round robin from the cursors,
//! build the messages, hand them to the link, note in the ledger where
//! each cursor's lines end. A TCP acknowledgement is not delivery: the
//! peer's kernel acknowledges what its program may never read. A mark is
//! confirmed, and only then saved and never gone back before, when
//!
//! - the stream went on `RESEND_WINDOW` bytes acknowledged past it (more
//!   than the peer's socket can hold unread), or
//! - we ended the stream (TLS close_notify, TCP FIN) and the peer ended
//!   its own cleanly in answer: its program read to our end, so it read
//!   everything. This is done on a stop, and as a checkpoint once the
//!   stream has been quiet for `QUIET`, or has held unconfirmed lines for
//!   `CHECKPOINT_AGE`; the link is then made again.
//!
//! Over a datagram socket or a pipe, sent is all that can be known, and
//! confirms at once. When the link breaks, what was in flight is forgotten
//! and every cursor goes back to its confirmed mark: everything not
//! confirmed is sent again on the next link, and after a restart, as the
//! saved marks are confirmed ones. Links are retried with capped
//! exponential backoff, forever.
//!
//! Over RELP (`relp://`, `relp+tls://`) the server answers each message:
//! a line is delivered, its mark saved, once its message is answered
//! `200`, and nothing else confirms anything. Answers come in order, so the
//! lines answered are a prefix of those sent; after a break every cursor
//! goes back to its last line answered, and the unanswered ones go again,
//! in order. A refusal or a protocol error breaks the link the same way,
//! said with the server's text. A stop sends `close` and waits
//! `STOP_WAIT` at most for the answers before saving the cursors.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use crate::cli::{self, EXIT_TEMPORARY};
use crate::error::Context;
use crate::format::reader_line::Priority;
use crate::format::stamp::Stamp;
use crate::format::syslog::build::{Builder, Defaults};
use crate::logdir::read::cursor::{CursorFile, Mark};
use crate::logdir::read::follow::{self, Consumer};
use crate::logdir::read::ledger::{self, Ledger};
use crate::net::relp::{self, Event};
use crate::net::relp_link::Session;
use crate::net::remote::{self, Broken, Connecting, Link, Scheme, Url};
use crate::sys::poll;
use crate::sys::signals::Signals;

/// The cursors followed, each with its settings.
type Follower = follow::Follower<CursorSettings>;
type Info = follow::Info<CursorSettings>;

/// Where messages go.
pub enum Target {
    Url(Url),
    /// An inherited descriptor (fd 7): never reconnected.
    Inherited(OwnedFd),
}

pub struct Options {
    /// For `relp://` and `relp+tls://`: the window and the largest frame.
    pub relp: relp::ClientConfig,
    /// For `tls://` and `relp+tls://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub server_name: Option<String>,
    pub hostname: Vec<u8>,
    /// For lines that are not reader lines, unless a cursor says otherwise.
    pub priority: Priority,
    pub sd_id: String,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

/// Bytes of messages held here before reading stops.
const HIGH: usize = 256 * 1024;
/// Each cursor's share of a round.
const SHARE: usize = 64 * 1024;
/// How often acknowledgements are looked at while lines are in flight: at
/// first, and at most while they stand still.
const ACK_TICK: Duration = Duration::from_millis(10);
const ACK_TICK_MAX: Duration = Duration::from_millis(500);
/// A connection or TLS handshake taking longer fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// All acknowledged and nothing sent for this long: the stream is ended
/// for the peer to confirm it read everything (a checkpoint).
const QUIET: Duration = Duration::from_secs(2);
/// Lines acknowledged but not confirmed for this long: a checkpoint, to
/// bound what a restart sends again when lines come slowly.
const CHECKPOINT_AGE: Duration = Duration::from_secs(60);
/// How long the peer may take to end its stream after ours on a
/// checkpoint; then the link counts as broken.
const CONFIRM_WAIT: Duration = Duration::from_secs(10);
/// On a stop, how long the peer may take to confirm it read everything.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// A TLS server refuses a session (a client certificate it does not
/// accept) right after the handshake, when TLS 1.3 has already let us
/// send: our end is not sent before the session has lived this long, so
/// that a refusal shows as a break, never as a clean end.
const TLS_ACCEPTED: Duration = Duration::from_secs(2);
/// After checkpoints in a row that the server did not confirm, the quiet
/// and the age that call for one double each time (up to 64 times): a
/// server that never ends its stream cleanly is not sent the same lines
/// again and again.
const CHECKPOINT_BACKOFF_MAX: u32 = 6;
/// A RELP server that leaves a command unanswered this long (its TCP may
/// still acknowledge) is taken as gone: the link is made again.
const RELP_ANSWER_TIMEOUT: Duration = Duration::from_secs(90);
/// While a RELP window drains, the answers are read this often rather
/// than as each few arrive: a wake per batch, not per few lines.
const RELP_NAP: Duration = Duration::from_millis(2);

enum State {
    Down {
        retry_at: Instant,
    },
    Connecting {
        conn: Connecting,
        rest: Vec<SocketAddr>,
        deadline: Instant,
    },
    Up {
        link: Link,
        since: Instant,
        /// Something was delivered on this link.
        delivered: bool,
        /// We are ending the stream, for the peer to confirm.
        closing: Option<Closing>,
        /// The RELP session on the link (`relp://`, `relp+tls://`).
        relp: Option<Box<Session>>,
    },
}

/// Ending our side of the stream, and awaiting the peer's end.
struct Closing {
    why: Ending,
    /// The peer's end must come by then.
    by: Instant,
    /// Our end is sent (everything before it handed to the kernel).
    shut: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Checkpoint,
    Stop,
}

pub struct Exporter<'a> {
    follower: &'a mut Follower,
    options: Options,
    url: Option<Url>,
    state: State,
    ledger: Ledger,
    builder: Builder,
    defaults: HashMap<u64, Defaults>,
    scratch: Vec<u8>,
    delay: Duration,
    delivered: Vec<(u64, Mark)>,
    settled: Vec<(u64, Mark)>,
    /// Since when everything sent has been acknowledged.
    quiet_since: Option<Instant>,
    /// Since when lines acknowledged are waiting to be confirmed.
    unconfirmed_since: Option<Instant>,
    /// A stop's ending was confirmed by the peer.
    stop_confirmed: bool,
    /// Lines were sent that are not confirmed yet.
    unconfirmed: bool,
    /// Say so when connected (not after a checkpoint).
    announce: bool,
    /// Checkpoints in a row the server did not confirm.
    failed_checkpoints: u32,
    /// The acknowledgement tick now, and (acknowledged, appended) at the last.
    tick: Duration,
    last_progress: (u64, u64),
    /// When the RELP server last answered (or the session began).
    answered_at: Instant,
}

impl<'a> Exporter<'a> {
    pub fn new(
        follower: &'a mut Follower,
        target: Target,
        options: Options,
    ) -> crate::error::Result<Exporter<'a>> {
        let (url, state) = match target {
            Target::Url(url) => (
                Some(url),
                State::Down {
                    retry_at: Instant::now(),
                },
            ),
            Target::Inherited(fd) => {
                let link = Link::inherited(fd).context(|| "descriptor 7".to_string())?;
                (
                    None,
                    State::Up {
                        link,
                        since: Instant::now(),
                        delivered: false,
                        closing: None,
                        relp: None,
                    },
                )
            }
        };
        Ok(Exporter {
            follower,
            delay: options.min_backoff,
            options,
            url,
            state,
            ledger: Ledger::new(ledger::CAP, 0),
            builder: Builder::default(),
            defaults: HashMap::new(),
            scratch: Vec::new(),
            delivered: Vec::new(),
            settled: Vec::new(),
            quiet_since: None,
            unconfirmed_since: None,
            stop_confirmed: false,
            unconfirmed: false,
            announce: true,
            failed_checkpoints: 0,
            tick: ACK_TICK,
            last_progress: (0, 0),
            answered_at: Instant::now(),
        })
    }

    /// Runs until a stop signal; the exit code.
    pub fn run(&mut self, signals: &Signals) -> i32 {
        let mut stop_by: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if let State::Down { retry_at } = self.state
                && retry_at <= now
                && stop_by.is_none()
            {
                self.connect();
            }
            let mut more = false;
            if let Err(e) = self
                .check_timeouts()
                .and_then(|()| self.pump(stop_by.is_none(), &mut more))
            {
                return self.fail(&e);
            }
            if let Some(by) = stop_by {
                let done = match &mut self.state {
                    State::Up {
                        closing: Some(_), ..
                    } => false,
                    State::Up { link, .. } => link.all_acked() && self.ledger.is_empty(),
                    _ => true,
                };
                if done || Instant::now() >= by {
                    return self.finish();
                }
            }
            let wake = self.wait(signals, more, stop_by);
            if wake.stop && stop_by.is_none() {
                let by = Instant::now() + STOP_WAIT;
                stop_by = Some(by);
                self.stopping(by);
            }
            let events = match wake.link {
                true => self.link_event(),
                false => Ok(()),
            };
            if let Err(e) = events.and_then(|()| self.follower_events(wake.root, wake.dirs)) {
                return self.fail(&e);
            }
        }
    }

    /// Reads lines into the link while it takes them, sends, and takes
    /// the acknowledgements.
    fn pump(&mut self, reading: bool, more: &mut bool) -> crate::error::Result<()> {
        let State::Up {
            link,
            closing,
            relp,
            ..
        } = &mut self.state
        else {
            return Ok(());
        };
        if reading && closing.is_none() && link.ready() {
            let mut filler = Filler {
                link,
                relp: relp.as_deref_mut(),
                ledger: &mut self.ledger,
                builder: &mut self.builder,
                defaults: &mut self.defaults,
                options: &self.options,
                scratch: &mut self.scratch,
            };
            while !filler.full() {
                if !self.follower.read_round(SHARE, &mut filler)? {
                    break;
                }
                *more = true;
                self.unconfirmed = true;
            }
        }
        if relp.is_some() {
            return self.pump_relp();
        }
        let State::Up {
            link,
            since,
            delivered,
            closing,
            ..
        } = &mut self.state
        else {
            return Ok(());
        };
        let flushed = link.flush();
        let acked = link.acked();
        // A peer that stands still is asked less and less often.
        let progress = (acked, link.appended());
        self.tick = if progress == self.last_progress {
            (self.tick * 2).min(ACK_TICK_MAX)
        } else {
            ACK_TICK
        };
        self.last_progress = progress;
        self.ledger
            .acked(acked, &mut self.delivered, &mut self.settled);
        *delivered |= !self.delivered.is_empty();
        confirm(self.follower, &self.settled);
        let now = Instant::now();
        let quiet = match link.queued() == 0 && acked == link.appended() {
            true => *self.quiet_since.get_or_insert(now),
            false => {
                self.quiet_since = None;
                now
            }
        };
        if link.ready() && self.quiet_since.is_some() && self.ledger.is_empty() {
            self.unconfirmed &= self.ledger.has_history();
        }
        self.unconfirmed_since = match self.ledger.has_history() {
            true => Some(self.unconfirmed_since.unwrap_or(now)),
            false => None,
        };
        let checkpoint = closing.is_none()
            && self.url.is_some()
            && link.resend_window() > 0
            && self.unconfirmed_since.is_some_and(|since| {
                let backoff = 1 << self.failed_checkpoints.min(CHECKPOINT_BACKOFF_MAX);
                now.duration_since(quiet) >= QUIET * backoff
                    || now.duration_since(since) >= CHECKPOINT_AGE * backoff
            });
        if checkpoint {
            *closing = Some(Closing {
                why: Ending::Checkpoint,
                by: now + CONFIRM_WAIT,
                shut: false,
            });
        }
        let accepted = !link.is_tls() || now.duration_since(*since) >= TLS_ACCEPTED;
        let result = flushed.and_then(|()| match closing {
            Some(c) if !c.shut && accepted => link.half_close().map(|shut| c.shut = shut),
            _ => Ok(()),
        });
        if let Err(why) = result {
            self.broken(&why)?;
        }
        Ok(())
    }

    /// The rest of `pump` over RELP: the lines read wait in the session
    /// until the window has room; the answers are taken in `relp_answers`.
    fn pump_relp(&mut self) -> crate::error::Result<()> {
        let State::Up {
            link,
            relp: Some(session),
            ..
        } = &mut self.state
        else {
            return Ok(());
        };
        session.feed(link);
        self.unconfirmed = session.unanswered() > 0;
        if let Err(why) = link.flush() {
            self.broken(&why)?;
        }
        Ok(())
    }

    /// The RELP server's answers: lines answered 200 are delivered; a
    /// refusal, a protocol error or `serverclose` breaks the link, and the
    /// answer to our `close` ends a stop.
    fn relp_answers(&mut self) -> crate::error::Result<()> {
        let State::Up {
            link,
            delivered,
            relp: Some(session),
            ..
        } = &mut self.state
        else {
            return Ok(());
        };
        let read = link.readable();
        let mut answered = None;
        let mut closed = false;
        let mut why = None;
        for event in session.events(link) {
            match event {
                Event::Opened { .. } => self.answered_at = Instant::now(),
                Event::Acked { tag, .. } => answered = Some(tag),
                Event::Closed => closed = true,
                Event::ServerClose => {
                    why = Some("the server closed the RELP session (serverclose)".to_string())
                }
                Event::OpenRefused { response } => {
                    why = Some(format!(
                        "the server refused the RELP session: {}",
                        response.describe()
                    ))
                }
                Event::Refused { txnr, response } => {
                    why = Some(format!(
                        "the server refused RELP transaction {txnr}: {}; its line is not skipped",
                        response.describe()
                    ))
                }
                Event::ProtocolError(text) => why = Some(format!("RELP: {text}")),
            }
        }
        if let Some(n) = answered {
            self.answered_at = Instant::now();
            self.ledger
                .acked(n * ledger::GRANULE, &mut self.delivered, &mut self.settled);
            *delivered |= !self.delivered.is_empty();
            confirm(self.follower, &self.settled);
        }
        self.unconfirmed = session.unanswered() > 0;
        if closed {
            self.stop_confirmed = true;
            self.state = State::Down {
                retry_at: Instant::now(),
            };
            return Ok(());
        }
        match (why, read) {
            (Some(why), _) => self.broken(&Broken::Io(std::io::Error::other(why))),
            (None, Err(why)) => self.broken(&why),
            (None, Ok(())) => Ok(()),
        }
    }

    /// A stop: the stream is ended for the peer to confirm what it read,
    /// where it can; anything but a link up is dropped. Over RELP, `close`
    /// is sent, for the answers to everything sent before it.
    fn stopping(&mut self, by: Instant) {
        match &mut self.state {
            State::Up {
                link,
                closing,
                relp: Some(session),
                ..
            } if link.ready() && session.state() == relp::State::Open => {
                session.close(link);
                *closing = Some(Closing {
                    why: Ending::Stop,
                    by,
                    shut: true,
                });
            }
            State::Up { relp: Some(_), .. } => {
                self.state = State::Down {
                    retry_at: Instant::now(),
                }
            }
            State::Up {
                link,
                closing: Some(c),
                ..
            } if link.ready() => {
                c.why = Ending::Stop;
                c.by = by;
            }
            State::Up { link, closing, .. } if link.ready() && link.resend_window() > 0 => {
                *closing = Some(Closing {
                    why: Ending::Stop,
                    by,
                    shut: false,
                });
            }
            State::Up { link, .. } if link.ready() => {}
            _ => {
                self.state = State::Down {
                    retry_at: Instant::now(),
                }
            }
        }
    }

    /// The peer ended its stream after ours: it read everything it
    /// acknowledged, and all of that is confirmed.
    fn confirmed(&mut self) -> crate::error::Result<()> {
        let State::Up {
            link,
            closing: Some(c),
            ..
        } = &mut self.state
        else {
            return Ok(());
        };
        let why = c.why;
        let acked = link.acked();
        self.ledger
            .acked(acked, &mut self.delivered, &mut self.settled);
        confirm(self.follower, &self.settled);
        self.ledger.settle(&mut self.settled);
        confirm(self.follower, &self.settled);
        self.ledger.clear();
        self.follower.rewind()?;
        self.unconfirmed_since = None;
        self.quiet_since = None;
        self.unconfirmed = false;
        match why {
            Ending::Stop => self.stop_confirmed = true,
            Ending::Checkpoint => {
                self.announce = false;
                self.failed_checkpoints = 0;
                self.delay = self.options.min_backoff;
            }
        }
        self.state = State::Down {
            retry_at: Instant::now(),
        };
        Ok(())
    }

    fn connect(&mut self) {
        let Some(url) = &self.url else { return };
        let addrs = match url.addresses() {
            Ok(addrs) if !addrs.is_empty() => addrs,
            Ok(_) => return self.retry_later(&format!("{url}: no address")),
            Err(e) => return self.retry_later(&format!("{url}: {e}")),
        };
        self.try_addresses(addrs);
    }

    fn try_addresses(&mut self, mut addrs: Vec<SocketAddr>) {
        let Some(url) = self.url.clone() else { return };
        let mut last = String::new();
        while !addrs.is_empty() {
            let addr = addrs.remove(0);
            match Connecting::start(addr, url.scheme == Scheme::Udp) {
                Ok(conn) => {
                    self.state = State::Connecting {
                        conn,
                        rest: addrs,
                        deadline: Instant::now() + CONNECT_TIMEOUT,
                    };
                    return;
                }
                Err(e) => last = format!("{url} ({addr}): {e}"),
            }
        }
        self.retry_later(&last);
    }

    /// The connecting socket polled writable: connected, or the next address.
    fn connected(&mut self) -> crate::error::Result<()> {
        let State::Connecting { conn, rest, .. } = std::mem::replace(
            &mut self.state,
            State::Down {
                retry_at: Instant::now(),
            },
        ) else {
            return Ok(());
        };
        let Some(url) = self.url.clone() else {
            return Ok(());
        };
        let addr = conn.addr;
        let tls = match (url.scheme.is_tls(), &self.options.tls) {
            (true, Some(config)) => {
                match remote::tls_session(config, &url, self.options.server_name.as_deref()) {
                    Ok(session) => Some(session),
                    Err(e) => {
                        self.retry_later(&e.to_string());
                        return Ok(());
                    }
                }
            }
            _ => None,
        };
        match conn.finish(tls) {
            Ok(mut link) => {
                if self.announce {
                    cli::info(&format!("{url}: connected to {addr}"));
                }
                self.announce = true;
                let relp = url.scheme.is_relp().then(|| {
                    link.set_raw();
                    Box::new(Session::new(self.options.relp))
                });
                self.answered_at = Instant::now();
                self.ledger.set_keep(link.resend_window());
                self.quiet_since = None;
                let flushed = link.flush();
                self.state = State::Up {
                    link,
                    since: Instant::now(),
                    delivered: false,
                    closing: None,
                    relp,
                };
                if let Err(why) = flushed {
                    self.broken(&why)?;
                }
            }
            Err(e) if rest.is_empty() => self.retry_later(&format!("{url} ({addr}): {e}")),
            Err(_) => self.try_addresses(rest),
        }
        Ok(())
    }

    fn retry_later(&mut self, why: &str) {
        cli::warn(&format!(
            "{why}; trying again in {}",
            humantime::format_duration(round_ms(self.delay))
        ));
        self.state = State::Down {
            retry_at: Instant::now() + self.delay,
        };
        self.delay = (self.delay * 2).min(self.options.max_backoff);
    }

    /// The link broke: what was in flight is sent again on the next one.
    fn broken(&mut self, why: &Broken) -> crate::error::Result<()> {
        let (since, delivered) = match &self.state {
            State::Up {
                since,
                delivered,
                closing,
                ..
            } => {
                if closing
                    .as_ref()
                    .is_some_and(|c| c.why == Ending::Checkpoint)
                {
                    self.failed_checkpoints += 1;
                }
                (*since, *delivered)
            }
            _ => return Ok(()),
        };
        let what = match &self.url {
            Some(url) => url.to_string(),
            None => "descriptor 7".to_string(),
        };
        if self.url.is_none() {
            // An inherited link cannot be made again: the supervisor will.
            self.state = State::Down {
                retry_at: Instant::now() + Duration::from_secs(3600),
            };
            self.ledger.clear();
            cli::warn(&format!("{what}: {why}"));
            return Err(crate::error::Error::new(
                what,
                std::io::Error::other("the link is gone"),
            ));
        }
        self.ledger.clear();
        self.follower.rewind()?;
        self.unconfirmed_since = None;
        self.quiet_since = None;
        if delivered || since.elapsed() > Duration::from_secs(60) {
            self.delay = self.options.min_backoff;
        }
        self.retry_later(&format!(
            "{what}: link lost: {why}; what it was not known to have read will be sent again"
        ));
        Ok(())
    }

    /// The link's descriptor polled ready.
    fn link_event(&mut self) -> crate::error::Result<()> {
        match &mut self.state {
            State::Connecting { .. } => self.connected(),
            State::Up { relp: Some(_), .. } => self.relp_answers(),
            State::Up { link, closing, .. } => match link.readable() {
                Err(Broken::Ended) if closing.as_ref().is_some_and(|c| c.shut) => self.confirmed(),
                Err(why) => self.broken(&why),
                Ok(()) => Ok(()),
            },
            State::Down { .. } => Ok(()),
        }
    }

    /// A connection, or a TLS handshake, taking too long fails.
    fn check_timeouts(&mut self) -> crate::error::Result<()> {
        let now = Instant::now();
        match &self.state {
            State::Connecting { deadline, .. } if now >= *deadline => {
                let what = self.url.as_ref().map(Url::to_string).unwrap_or_default();
                self.retry_later(&format!("{what}: connecting timed out"));
            }
            State::Up { link, since, .. }
                if !link.ready() && now.duration_since(*since) > CONNECT_TIMEOUT =>
            {
                let why = Broken::Io(std::io::Error::other("TLS handshake timed out"));
                self.broken(&why)?;
            }
            State::Up {
                relp: Some(session),
                ..
            } if session.awaiting()
                && now.duration_since(self.answered_at) > RELP_ANSWER_TIMEOUT =>
            {
                let why = Broken::Io(std::io::Error::other(format!(
                    "no RELP answer from the server within {}",
                    humantime::format_duration(RELP_ANSWER_TIMEOUT)
                )));
                self.broken(&why)?;
            }
            State::Up {
                closing: Some(c), ..
            } if c.why == Ending::Checkpoint && now >= c.by => {
                let why = Broken::Io(std::io::Error::other(format!(
                    "no end of stream from the server within {} after ours",
                    humantime::format_duration(CONFIRM_WAIT)
                )));
                self.broken(&why)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn follower_events(&mut self, root: bool, dirs: bool) -> crate::error::Result<()> {
        if dirs {
            self.follower.drain()?;
        }
        if root
            || self
                .follower
                .rescan_due()
                .is_some_and(|at| at <= Instant::now())
        {
            self.follower.rescan()?;
        }
        Ok(())
    }

    fn wait(&mut self, signals: &Signals, more: bool, stop_by: Option<Instant>) -> Wake {
        let now = Instant::now();
        let mut deadline: Option<Instant> = stop_by;
        let mut at = |t: Instant| deadline = Some(deadline.map_or(t, |d| d.min(t)));
        let mut link_fd = None;
        let mut want_lines = false;
        let mut napping = false;
        match &mut self.state {
            State::Down { retry_at } => {
                if stop_by.is_none() {
                    at(*retry_at)
                }
            }
            State::Connecting { conn, deadline, .. } => {
                at(*deadline);
                link_fd = Some((conn.fd(), PollFlags::OUT));
            }
            State::Up {
                link,
                since,
                closing,
                relp: Some(session),
                ..
            } => {
                if !link.ready() {
                    at(*since + CONNECT_TIMEOUT);
                }
                if session.awaiting() {
                    at(self.answered_at + RELP_ANSWER_TIMEOUT);
                }
                if let Some(c) = closing {
                    at(c.by);
                }
                want_lines = stop_by.is_none()
                    && closing.is_none()
                    && link.ready()
                    && !self.ledger.is_full()
                    && !session.full();
                if more && want_lines {
                    at(now);
                }
                let mut interest = link.interest();
                napping =
                    closing.is_none() && session.state() == relp::State::Open && session.draining();
                if napping {
                    at(now + RELP_NAP);
                    // Errors and hangups still wake at once.
                    interest.remove(PollFlags::IN);
                }
                link_fd = Some((link.fd(), interest));
            }
            State::Up {
                link,
                since,
                closing,
                ..
            } => {
                if !link.ready() {
                    at(*since + CONNECT_TIMEOUT);
                }
                let unacked = link.acked() < link.appended();
                if unacked || !self.ledger.is_empty() {
                    at(now + self.tick);
                } else if let (true, Some(since)) = (self.ledger.has_history(), self.quiet_since) {
                    at(since + QUIET);
                }
                if let Some(since) = self.unconfirmed_since {
                    at(since + CHECKPOINT_AGE);
                }
                if let Some(c) = closing {
                    at(c.by);
                }
                want_lines = stop_by.is_none()
                    && closing.is_none()
                    && link.ready()
                    && !self.ledger.is_full()
                    && link.queued() < HIGH;
                if more && want_lines {
                    at(now);
                }
                link_fd = Some((link.fd(), link.interest()));
            }
        }
        if let Some(due) = self.follower.rescan_due() {
            at(due);
        }
        let mut fds = vec![
            PollFd::new(signals, PollFlags::IN),
            PollFd::from_borrowed_fd(self.follower.root_fd(), PollFlags::IN),
        ];
        if want_lines {
            fds.push(PollFd::from_borrowed_fd(
                self.follower.dirs_fd(),
                PollFlags::IN,
            ));
        }
        let link_at = fds.len();
        if let Some((fd, flags)) = link_fd {
            fds.push(PollFd::from_borrowed_fd(fd, flags));
        }
        if let Err(e) = poll::until(&mut fds, deadline) {
            cli::warn(&e.to_string());
        }
        let ready = |i: usize| fds.get(i).is_some_and(|f| !f.revents().is_empty());
        Wake {
            stop: ready(0) && !signals.take().is_empty(),
            root: ready(1),
            dirs: want_lines && ready(2),
            link: link_fd.is_some() && (napping || ready(link_at)),
        }
    }

    /// Stopping: saves what was confirmed.
    fn finish(&mut self) -> i32 {
        if let State::Up { link, .. } = &mut self.state {
            link.close();
        }
        if self.unconfirmed && !self.stop_confirmed {
            cli::warn(
                "stopping before the server confirmed it read the last lines; they will be sent again",
            );
        }
        if !self.follower.flush(Duration::from_secs(10)) {
            cli::warn("stopping with a cursor not saved; its last lines will be sent again");
            return EXIT_TEMPORARY;
        }
        0
    }

    fn fail(&mut self, e: &dyn std::fmt::Display) -> i32 {
        cli::message("fatal", &e.to_string());
        self.follower.flush(Duration::from_secs(10));
        EXIT_TEMPORARY
    }
}

/// Marks confirmed: saved, and never gone back before.
fn confirm(follower: &mut Follower, marks: &[(u64, Mark)]) {
    for &(id, mark) in marks {
        follower.settled(id, mark);
        follower.delivered(id, mark);
    }
}

struct Wake {
    stop: bool,
    root: bool,
    dirs: bool,
    link: bool,
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// Builds each line's message straight into the link, or the RELP session.
struct Filler<'b> {
    link: &'b mut Link,
    relp: Option<&'b mut Session>,
    ledger: &'b mut Ledger,
    builder: &'b mut Builder,
    defaults: &'b mut HashMap<u64, Defaults>,
    options: &'b Options,
    scratch: &'b mut Vec<u8>,
}

impl Consumer<CursorSettings> for Filler<'_> {
    fn line(&mut self, c: &Info, stamp: Option<Stamp>, text: &[u8]) {
        let options = self.options;
        let d = self.defaults.entry(c.id).or_insert_with(|| {
            let mut d = Defaults::new(
                c.settings.priority.unwrap_or(options.priority),
                &options.hostname,
                c.name.as_bytes(),
                &options.sd_id,
            );
            d.records = !c.settings.plain;
            d
        });
        self.scratch.clear();
        self.builder.build(stamp, text, d, self.scratch);
        match &mut self.relp {
            Some(session) => {
                if self.scratch.len() > session.max_message() {
                    cli::warn(&format!(
                        "{}: a message of {} octets is cut to the {} a RELP frame carries",
                        c.name,
                        self.scratch.len(),
                        session.max_message()
                    ));
                }
                session.push(self.scratch);
            }
            None => self.link.push(self.scratch),
        }
    }

    /// The ledger's offsets, over RELP: a `GRANULE` per message, so that
    /// each line is delivered by its own message's answer.
    fn reached(&mut self, c: &Info, mark: Mark) {
        let end = match &self.relp {
            Some(session) => session.taken() * ledger::GRANULE,
            None => self.link.appended(),
        };
        self.ledger.push(end, c.id, mark);
    }

    fn full(&self) -> bool {
        match &self.relp {
            Some(session) => session.full() || self.ledger.is_full(),
            None => self.link.queued() >= HIGH || self.ledger.is_full(),
        }
    }
}

/// A cursor's own settings: files beside `main` and `last`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CursorSettings {
    /// `priority`: for lines that are not reader lines.
    pub priority: Option<Priority>,
    /// `plain` exists: the lines are a service's own output, never read
    /// as reader lines.
    pub plain: bool,
}

pub const PRIORITY_FILE: &str = "priority";
pub const PLAIN_FILE: &str = "plain";

impl follow::Settings for CursorSettings {
    fn read(file: &CursorFile) -> crate::error::Result<CursorSettings> {
        let priority = match file.read_setting(PRIORITY_FILE)? {
            None => None,
            Some(text) => match Priority::parse(&text) {
                Some(p) => Some(p),
                None => {
                    cli::warn(&format!(
                        "{}/{PRIORITY_FILE}: {text:?} is not facility.severity; using the default",
                        file.path
                    ));
                    None
                }
            },
        };
        Ok(CursorSettings {
            priority,
            plain: file.has(PLAIN_FILE),
        })
    }
}
