//! syslog-read's stream inputs: listening TCP sockets and their
//! connections (plain, TLS, RELP, RELP over TLS), and the one connection
//! on standard input (`--stream`, for UCSPI servers such as tcpserver).
//! Messages are taken apart by `net::stream_framing` (both framings of
//! RFC 6587, per message), or by a RELP session (`net::relp_server`),
//! whose answers wait until the collector says the line is written
//! (`answer`, with the output's count of bytes written).
//!
//! A peer is `authenticated` when it showed a TLS client certificate that
//! `--client-ca` vouches for and `--allow-name` (if given) allows: the
//! collector then trusts the fields rill's element carries (relay trust).
//!
//! Each connection is read in chunks of at most `CHUNK` bytes, one chunk a
//! turn of the loop, so that a flooding connection does not starve the
//! others; the collector reads none while its output is full, so that TCP
//! flow control slows the senders down and nothing is dropped.
//!
//! Who may connect: a peer outside `--allow` is closed at once, and said
//! on stderr (the first refusal at once, then at most one warning every
//! `SAY_EVERY` with the count since). At `max_connections`, new
//! connections wait in the kernel's backlog. A connection that sends
//! nothing for `idle_timeout` is closed; one whose octet count is absurd
//! is closed with a warning, having allocated nothing.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::PollFlags;

mod connection;

use connection::{Connection, Io, Relp, Session, keep_after_drain, push, read_tls, send};

use super::Sender;
use crate::cli;
use crate::net::cidr::AllowList;
use crate::net::relp::DEFAULT_MAX_DATA;
use crate::net::relp_server;
use crate::net::stream_framing::{Deframer, Limits, Message};

/// The most bytes read from one connection in one turn.
const CHUNK: usize = 256 << 10;

/// How long a plain TCP connection is left to fill before it is read
/// again when a read took less than `REST_BELOW` from it: a sender a
/// little slower than we are would otherwise be read a few messages at a
/// time, a turn of the loop each. TCP holds the sender back if the socket
/// fills meanwhile; nothing is lost, and a line is at most this much
/// later. A fast sender, whose reads are larger, is never made to wait.
const STREAM_REST: Duration = Duration::from_millis(1);
const REST_BELOW: usize = CHUNK / 8;

/// Refusals and limits are said on stderr at most this often.
const SAY_EVERY: Duration = Duration::from_secs(10);

/// What every connection is held to.
#[derive(Clone, Debug)]
pub struct Settings {
    pub max_message: usize,
    pub max_connections: usize,
    pub idle_timeout: Duration,
    pub allow: AllowList,
}

fn show(addr: &SocketAddr) -> String {
    Sender(addr).to_string()
}

/// TLS on a listener: the server's configuration, and which client
/// certificates are let in.
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    /// Clients must show a certificate from the `--client-ca`.
    pub verifies_clients: bool,
    /// And it must name one of these (when there are any).
    pub allow_names: Vec<String>,
}

/// A listening socket.
pub struct Listener {
    socket: TcpListener,
    pub name: String,
    tls: Option<Arc<Tls>>,
    /// RELP sessions, not plain syslog, over its connections.
    relp: bool,
}

impl Listener {
    /// Listens on `addr` (`[::]` listens on IPv6 and IPv4), for TCP
    /// connections, with TLS over them when `tls` is given; `kind` names
    /// the input on stderr (`tcp`, `tls`, `relp`, `relp-tls`).
    pub fn bind(
        addr: SocketAddr,
        kind: &str,
        tls: Option<Tls>,
        relp: bool,
    ) -> crate::error::Result<Listener> {
        let name = format!("{kind} {}", show(&addr));
        let fail = |e: io::Error| crate::error::Error::new(format!("listen on {name}"), e);
        let socket = TcpListener::bind(addr).map_err(fail)?;
        socket.set_nonblocking(true).map_err(fail)?;
        // The port the kernel chose for port 0, for the one who started us.
        let name = match socket.local_addr() {
            Ok(bound) => format!("{kind} {}", show(&bound)),
            Err(_) => name,
        };
        Ok(Listener {
            socket,
            name,
            tls: tls.map(Arc::new),
            relp,
        })
    }
}

/// A warning said at most every `SAY_EVERY`, with how many times it was
/// due since.
#[derive(Default)]
struct Throttled {
    last: Option<Instant>,
    unsaid: u64,
}

impl Throttled {
    fn say(&mut self, now: Instant, text: impl FnOnce(u64) -> String) {
        self.unsaid += 1;
        if self
            .last
            .is_none_or(|at| now.duration_since(at) >= SAY_EVERY)
        {
            cli::warn(&text(self.unsaid));
            self.last = Some(now);
            self.unsaid = 0;
        }
    }
}

/// What a turn of reading found.
pub struct Arrival<'a> {
    pub peer: Option<SocketAddr>,
    /// The peer is authenticated by its TLS client certificate.
    pub authenticated: bool,
    pub message: Message<'a>,
}

pub struct Streams {
    listeners: Vec<Listener>,
    listener_readable: Vec<bool>,
    connections: Vec<Connection>,
    settings: Settings,
    buf: Box<[u8]>,
    refused: Throttled,
    full: Throttled,
    /// The input is the connection on stdin, and it ended.
    stdin_ended: bool,
    stopping: bool,
}

impl Streams {
    pub fn new(listeners: Vec<Listener>, settings: Settings) -> Streams {
        Streams {
            listener_readable: vec![false; listeners.len()],
            listeners,
            connections: Vec::new(),
            settings,
            // Made at the first read: `none`, which the collector makes at
            // every turn of its loop, must cost nothing.
            buf: Box::default(),
            refused: Throttled::default(),
            full: Throttled::default(),
            stdin_ended: false,
            stopping: false,
        }
    }

    /// No stream input at all.
    pub fn none() -> Streams {
        Streams::new(
            Vec::new(),
            Settings {
                max_message: 1,
                max_connections: 0,
                idle_timeout: Duration::MAX,
                allow: AllowList::default(),
            },
        )
    }

    /// Adds the connection on standard input, from `peer` if known.
    pub fn add_stdin(&mut self, peer: Option<SocketAddr>) {
        if let Some(peer) = peer
            && !self.settings.allow.allows(peer.ip())
        {
            cli::warn(&format!(
                "the connection on standard input: refused: {} is not in --allow",
                show(&peer)
            ));
            self.stdin_ended = true;
            return;
        }
        let stdin = rustix::stdio::stdin();
        let socket = rustix::fs::fstat(stdin).is_ok_and(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket
        }) && rustix::io::ioctl_fionbio(stdin, true).is_ok();
        self.connections.push(Connection {
            io: Io::Stdin { socket },
            session: None,
            authenticated: false,
            wants_out: false,
            relp: None,
            peer,
            deframer: Deframer::new(self.limits()),
            last_active: Instant::now(),
            readable: true,
            rest_until: None,
        });
    }

    fn limits(&self) -> Limits {
        Limits {
            max_message: self.settings.max_message,
            ..Limits::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty() && self.connections.is_empty() && !self.stdin_ended
    }

    /// The connection on stdin was the input, and it is done.
    pub fn stdin_ended(&self) -> bool {
        self.stdin_ended
    }

    /// Listeners, to say where we receive.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// Stops accepting; from now on each connection is read until it has
    /// nothing more, then closed.
    pub fn stop(&mut self) {
        self.stopping = true;
        self.listeners.clear();
        self.listener_readable.clear();
        for c in &mut self.connections {
            c.readable = true;
            c.rest_until = None;
        }
    }

    /// Whether something is to be read without waiting.
    pub fn has_ready(&self) -> bool {
        self.listener_readable.contains(&true) || self.connections.iter().any(|c| c.readable)
    }

    /// Accepts waiting connections and reads a chunk from each readable
    /// one, handing every message to `deliver`.
    pub fn read_ready(&mut self, now: Instant, mut deliver: impl FnMut(Arrival<'_>) -> u64) {
        for c in &mut self.connections {
            if c.rest_until.is_some_and(|until| until <= now) {
                c.rest_until = None;
                c.readable = true;
            }
        }
        for i in 0..self.listeners.len() {
            if self.listener_readable[i] {
                self.accept(i, now);
            }
        }
        let mut i = 0;
        while i < self.connections.len() {
            if self.connections[i].readable && !self.read_one(i, now, &mut deliver) {
                self.close(i, &mut deliver, None);
                continue;
            }
            i += 1;
        }
    }

    fn accept(&mut self, i: usize, now: Instant) {
        loop {
            if self.connections.len() >= self.settings.max_connections {
                let max = self.settings.max_connections;
                let name = &self.listeners[i].name;
                self.full.say(now, |n| {
                    format!(
                        "{name}: {max} connections open (--max-connections): \
                         new ones wait ({n} times since last said)"
                    )
                });
                self.listener_readable[i] = false;
                return;
            }
            let (stream, peer) = match self.listeners[i].socket.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.listener_readable[i] = false;
                    return;
                }
                Err(e) => {
                    // Out of descriptors or memory, or a peer gone before
                    // its turn: try again at the next readiness.
                    let name = &self.listeners[i].name;
                    cli::warn(&format!("{name}: accepting a connection: {e}"));
                    self.listener_readable[i] = false;
                    return;
                }
            };
            if !self.settings.allow.allows(peer.ip()) {
                if self.listeners[i].relp && self.listeners[i].tls.is_none() {
                    // The session's end, said as RELP says it.
                    let _ = (&stream).write(b"0 serverclose 0\n");
                }
                drop(stream);
                let name = &self.listeners[i].name;
                let who = show(&peer);
                self.refused.say(now, |n| {
                    format!("{name}: refused {n} connections not in --allow, the last from {who}")
                });
                continue;
            }
            if let Err(e) = stream.set_nonblocking(true) {
                cli::warn(&format!("{}: {e}", self.listeners[i].name));
                continue;
            }
            let session = match &self.listeners[i].tls {
                None => None,
                Some(tls) => match rustls::ServerConnection::new(tls.config.clone()) {
                    Ok(conn) => Some(Session {
                        conn,
                        tls: tls.clone(),
                        checked: false,
                    }),
                    Err(e) => {
                        cli::warn(&format!("{}: TLS: {e}", self.listeners[i].name));
                        continue;
                    }
                },
            };
            let relp = self.listeners[i].relp.then(|| Relp {
                session: relp_server::Session::new(DEFAULT_MAX_DATA.max(self.settings.max_message)),
                acks: VecDeque::new(),
            });
            self.connections.push(Connection {
                io: Io::Tcp(stream),
                session,
                authenticated: false,
                wants_out: false,
                relp,
                peer: Some(peer),
                deframer: Deframer::new(self.limits()),
                last_active: now,
                readable: true,
                rest_until: None,
            });
        }
    }

    /// Reads one chunk from connection `i`; false when it is to be closed.
    fn read_one(
        &mut self,
        i: usize,
        now: Instant,
        deliver: &mut impl FnMut(Arrival<'_>) -> u64,
    ) -> bool {
        let stopping = self.stopping;
        if self.buf.is_empty() {
            self.buf = vec![0; CHUNK].into_boxed_slice();
        }
        let c = &mut self.connections[i];
        if c.session.is_some() {
            return read_tls(c, &mut self.buf, now, stopping, deliver);
        }
        let read = match &mut c.io {
            Io::Tcp(s) => s.read(&mut self.buf),
            Io::Stdin { socket: false } if stopping => return false,
            Io::Stdin { .. } => {
                rustix::io::read(rustix::stdio::stdin(), &mut self.buf[..]).map_err(io::Error::from)
            }
        };
        let n = match read {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                c.readable = false;
                return keep_after_drain(c, stopping) && send(c);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return true,
            Err(e) => {
                cli::warn(&format!("{}: receiving: {e}", c.name()));
                return false;
            }
        };
        c.last_active = now;
        // A socket is read until it has no more; anything else once per
        // readiness. A plain TCP connection a small read drained rests
        // first.
        c.readable = !matches!(c.io, Io::Stdin { socket: false });
        if n < REST_BELOW && !stopping && c.relp.is_none() && matches!(c.io, Io::Tcp(_)) {
            c.readable = false;
            c.rest_until = Some(now + STREAM_REST);
        }
        push(c, &self.buf[..n], deliver) && send(c)
    }

    /// Closes connection `i`, delivering a last unterminated message.
    fn close(&mut self, i: usize, deliver: &mut impl FnMut(Arrival<'_>) -> u64, why: Option<&str>) {
        let mut c = self.connections.swap_remove(i);
        let (peer, authenticated) = (c.peer, c.authenticated);
        let end = c.deframer.finish(|message| {
            deliver(Arrival {
                peer,
                authenticated,
                message,
            });
        });
        match (end, why) {
            (Err(e), _) => cli::warn(&format!("{}: {e}", c.name())),
            (Ok(()), Some(why)) => cli::info(&format!("{}: closing it: {why}", c.name())),
            (Ok(()), None) => {}
        }
        if matches!(c.io, Io::Stdin { .. }) {
            self.stdin_ended = true;
        }
    }

    /// Closes the connections idle since `idle_timeout`.
    pub fn close_idle(&mut self, now: Instant, mut deliver: impl FnMut(Arrival<'_>) -> u64) {
        let limit = self.settings.idle_timeout;
        let mut i = 0;
        while i < self.connections.len() {
            if now.duration_since(self.connections[i].last_active) >= limit {
                let why = format!("idle for {}", humantime::format_duration(limit));
                self.close(i, &mut deliver, Some(&why));
                continue;
            }
            i += 1;
        }
    }

    /// Whether a RELP sender waits for an answer: its lines are written
    /// at once rather than after the flush delay, as its window turns on
    /// our answers (waiting 10 ms a window would cap a sender at a
    /// window's messages per 10 ms).
    pub fn awaiting_answers(&self) -> bool {
        self.connections
            .iter()
            .any(|c| c.relp.as_ref().is_some_and(|r| !r.acks.is_empty()))
    }

    /// Answers each RELP message whose line is written (`written`: the
    /// output's `written_total`), and sends the answers.
    pub fn answer(&mut self, written: u64) {
        let mut i = 0;
        while i < self.connections.len() {
            let c = &mut self.connections[i];
            let Some(relp) = &mut c.relp else {
                i += 1;
                continue;
            };
            let mut answered = false;
            while let Some(&(txnr, position)) = relp.acks.front()
                && position <= written
            {
                relp.acks.pop_front();
                relp.session.answer(txnr, 200, b"OK");
                answered = true;
            }
            if (answered || c.wants_out) && !send(c) {
                self.connections.swap_remove(i);
                continue;
            }
            i += 1;
        }
    }

    /// At the end of a stop, everything written: answers every RELP
    /// message, says `serverclose`, and closes.
    pub fn finish(&mut self, written: u64) {
        self.answer(written);
        for c in &mut self.connections {
            if let Some(relp) = &mut c.relp {
                relp.session.server_close();
                if let Io::Tcp(socket) = &c.io {
                    // One short wait for room: the answers are small.
                    let _ = socket.set_write_timeout(Some(Duration::from_secs(1)));
                    let _ = socket.set_nonblocking(false);
                }
                send(c);
                if let (Some(tls), Io::Tcp(socket)) = (&mut c.session, &mut c.io) {
                    tls.conn.send_close_notify();
                    let _ = tls.conn.write_tls(socket);
                }
            }
        }
        self.connections.clear();
    }

    /// When the first resting connection is to be read again.
    pub fn next_rest(&self) -> Option<Instant> {
        self.connections.iter().filter_map(|c| c.rest_until).min()
    }

    /// When the next idle connection is to be closed.
    pub fn next_idle(&self) -> Option<Instant> {
        let limit = self.settings.idle_timeout;
        self.connections.iter().map(|c| c.last_active + limit).min()
    }

    /// The descriptors to poll: listeners with room for more connections,
    /// and connections not known readable (and writable, for TLS bytes
    /// waiting).
    pub fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        let room = self.connections.len() < self.settings.max_connections;
        let listeners = self
            .listeners
            .iter()
            .zip(&self.listener_readable)
            .filter(|&(_, &r)| room && !r)
            .map(|(l, _)| (l.socket.as_fd(), PollFlags::IN));
        let connections = self.connections.iter().filter(|c| c.polled()).map(|c| {
            let out = if c.wants_out {
                PollFlags::OUT
            } else {
                PollFlags::empty()
            };
            (c.fd(), PollFlags::IN | out)
        });
        listeners.chain(connections).collect()
    }

    /// Marks readable what poll(2) found ready, in `poll_fds` order.
    pub fn mark_ready(&mut self, ready: &[bool]) {
        let room = self.connections.len() < self.settings.max_connections;
        let mut ready = ready.iter();
        for r in &mut self.listener_readable {
            if room && !*r {
                *r = ready.next().copied().unwrap_or(false);
            }
        }
        for c in &mut self.connections {
            if c.polled() {
                c.readable = ready.next().copied().unwrap_or(false);
            }
        }
    }
}
