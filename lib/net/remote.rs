//! The connection to a remote syslog server: where it is (`Url`), getting
//! connected without blocking, and sending messages on it.
//!
//! - `udp://HOST:PORT` (RFC 5426): a message per datagram; sent is taken
//!   as delivered, as nothing better can be known.
//! - `tcp://HOST:PORT` (RFC 6587 octet counting) and `tls://HOST:PORT`
//!   (RFC 5425, the same framing inside TLS): a stream whose bytes count
//!   as delivered only once the peer's TCP has acknowledged them. The
//!   kernel says how many bytes written are not yet acknowledged (SIOCOUTQ);
//!   through TLS, each chunk of messages is encrypted as it is handed on,
//!   and counts once the bytes of its records are acknowledged. What the
//!   peer's TCP acknowledged its program may not have read yet: it counts
//!   as read only `RESEND_WINDOW` bytes acknowledged later, or when the
//!   peer ends its stream in answer to our end (`half_close`, then
//!   `Broken::Ended`).
//! - `relp://HOST:PORT` and `relp+tls://HOST:PORT`: RELP (`net::relp`) on
//!   the same TCP or TLS stream, which then carries the caller's bytes as
//!   they are (`Link::set_raw`) and keeps what the server sends for it
//!   (`Link::take_received`). Delivery is known from RELP's answers, not
//!   from the kernel. RELP has no standard port: the URL must name one.
//! - an inherited descriptor (fd 7, as UCSPI clients leave it): a datagram
//!   socket as UDP, a stream socket as TCP, anything else as a stream whose
//!   written bytes count as delivered.
//!
//! Messages are sent in the order given. All sockets are non-blocking, for
//! one poll(2) loop.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use rustix::event::PollFlags;
use rustix::io::Errno;
use rustix::net::{self, AddressFamily, SocketFlags, SocketType, sockopt};

use crate::error::{Error, Usage};
use crate::format::decimal::write_decimal;

/// How messages travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Udp,
    Tcp,
    Tls,
    Relp,
    RelpTls,
}

impl Scheme {
    /// The stream is TLS (tls://, relp+tls://).
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Tls | Scheme::RelpTls)
    }

    /// Messages go as RELP commands (relp://, relp+tls://).
    pub fn is_relp(self) -> bool {
        matches!(self, Scheme::Relp | Scheme::RelpTls)
    }

    pub fn name(self) -> &'static str {
        match self {
            Scheme::Udp => "udp",
            Scheme::Tcp => "tcp",
            Scheme::Tls => "tls",
            Scheme::Relp => "relp",
            Scheme::RelpTls => "relp+tls",
        }
    }
}

/// `udp://`, `tcp://`, `tls://`, `relp://` or `relp+tls://` HOST`:`PORT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
}

impl Url {
    /// Parses a URL; the port defaults to 514 (udp, tcp) or 6514 (tls),
    /// and must be given for relp and relp+tls.
    pub fn parse(text: &str) -> Result<Url, Usage> {
        let bad = |why: &str| {
            Usage(format!(
                "{text:?}: {why} (try tcp://HOST:PORT, udp://..., tls://..., relp://..., relp+tls://...)"
            ))
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "udp" => Scheme::Udp,
            "tcp" => Scheme::Tcp,
            "tls" => Scheme::Tls,
            "relp" => Scheme::Relp,
            "relp+tls" => Scheme::RelpTls,
            _ => return Err(bad("unknown scheme")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("no closing ]"))?;
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
                ),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, Some(p)),
                Some(_) => return Err(bad("an IPv6 address goes in brackets")),
                None => (rest, None),
            }
        };
        if host.is_empty() || host.contains('/') || host.contains('@') {
            return Err(bad("no host"));
        }
        let port = match port {
            None if scheme.is_relp() => return Err(bad("RELP has no standard port: give one")),
            None => {
                if scheme == Scheme::Tls {
                    6514
                } else {
                    514
                }
            }
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad("bad port"))?,
        };
        Ok(Url {
            scheme,
            host: host.to_string(),
            port,
        })
    }

    /// The addresses of the host, looked up now.
    pub fn addresses(&self) -> io::Result<Vec<SocketAddr>> {
        let host = self.host.as_str();
        Ok((host, self.port).to_socket_addrs()?.collect())
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.scheme.name();
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// A connection under way: poll for writable, then `finish`.
pub struct Connecting {
    fd: OwnedFd,
    pub addr: SocketAddr,
    datagram: bool,
}

impl Connecting {
    /// Starts connecting to `addr`.
    pub fn start(addr: SocketAddr, datagram: bool) -> io::Result<Connecting> {
        let family = if addr.is_ipv4() {
            AddressFamily::INET
        } else {
            AddressFamily::INET6
        };
        let kind = if datagram {
            SocketType::DGRAM
        } else {
            SocketType::STREAM
        };
        let fd = net::socket_with(
            family,
            kind,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )?;
        match net::connect(&fd, &addr) {
            Ok(()) | Err(Errno::INPROGRESS) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Connecting { fd, addr, datagram })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The connection, once the socket polled writable (or an error).
    pub fn finish(self, tls: Option<rustls::ClientConnection>) -> io::Result<Link> {
        if let Err(e) = sockopt::socket_error(&self.fd)? {
            return Err(e.into());
        }
        if self.datagram {
            return Ok(Link::Datagram(Datagram::new(self.fd, self.addr.is_ipv6())));
        }
        tune_tcp(&self.fd);
        Ok(Link::Stream(Stream::new(self.fd, Acks::Outq, tls)))
    }
}

/// More than a Linux server's socket receive buffer holds by default
/// (tcp_rmem: 6 MiB): what its TCP can acknowledge before its program
/// reads it, and lose if the program stops first.
pub const RESEND_WINDOW: u64 = 8 << 20;

/// Nagle off (we batch ourselves); a dead peer found within minutes.
fn tune_tcp(fd: &OwnedFd) {
    let _ = sockopt::set_tcp_nodelay(fd, true);
    let _ = sockopt::set_socket_keepalive(fd, true);
    let _ = sockopt::set_tcp_keepidle(fd, Duration::from_secs(60));
    let _ = sockopt::set_tcp_keepintvl(fd, Duration::from_secs(10));
    let _ = sockopt::set_tcp_keepcnt(fd, 6);
    // Data unacknowledged this long (ms) breaks the connection.
    let _ = sockopt::set_tcp_user_timeout(fd, 120_000);
}

/// What the peer has, as far as can be known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Acks {
    /// The kernel's count of bytes not yet acknowledged (TCP, or not yet
    /// read by the peer on a local socket).
    Outq,
    /// Written is all that can be known.
    Written,
}

/// A connected transport.
pub enum Link {
    Stream(Stream),
    Datagram(Datagram),
}

/// Why a link ended.
#[derive(Debug)]
pub enum Broken {
    /// The peer ended the stream: its TCP's FIN, with no TLS alert
    /// before it. A peer that closes its socket with bytes unread resets
    /// the connection instead, so this proves its program read everything
    /// its kernel acknowledged (whether it took it as a TLS session is for
    /// the caller to judge).
    Ended,
    Io(io::Error),
    Tls(rustls::Error),
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Broken::Ended => f.write_str("ended by the peer"),
            Broken::Io(e) => write!(f, "{e}"),
            Broken::Tls(e) => write!(f, "TLS: {e}"),
        }
    }
}

impl From<io::Error> for Broken {
    fn from(e: io::Error) -> Broken {
        Broken::Io(e)
    }
}

impl From<Errno> for Broken {
    fn from(e: Errno) -> Broken {
        Broken::Io(e.into())
    }
}

impl Link {
    /// An inherited descriptor (fd 7): by what it is.
    pub fn inherited(fd: OwnedFd) -> io::Result<Link> {
        set_nonblocking(&fd)?;
        match sockopt::socket_type(&fd) {
            Ok(SocketType::DGRAM) | Ok(SocketType::SEQPACKET) => {
                let v6 = matches!(
                    net::getsockname(&fd)
                        .ok()
                        .and_then(|a| SocketAddr::try_from(a).ok()),
                    Some(SocketAddr::V6(_))
                );
                Ok(Link::Datagram(Datagram::new(fd, v6)))
            }
            Ok(_) => Ok(Link::Stream(Stream::new(fd, Acks::Outq, None))),
            Err(Errno::NOTSOCK) => Ok(Link::Stream(Stream::new(fd, Acks::Written, None))),
            Err(e) => Err(e.into()),
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Link::Stream(s) => s.fd.as_fd(),
            Link::Datagram(d) => d.fd.as_fd(),
        }
    }

    /// Ready for messages (a TLS handshake is over).
    pub fn ready(&self) -> bool {
        match self {
            Link::Stream(s) => s.tls.as_ref().is_none_or(|t| !t.conn.is_handshaking()),
            Link::Datagram(_) => true,
        }
    }

    /// Queues one message.
    pub fn push(&mut self, message: &[u8]) {
        match self {
            Link::Stream(s) => s.push(message),
            Link::Datagram(d) => d.push(message),
        }
    }

    /// Bytes of messages queued in all: the offset the next one starts at.
    pub fn appended(&self) -> u64 {
        match self {
            Link::Stream(s) => s.appended,
            Link::Datagram(d) => d.appended,
        }
    }

    /// Bytes held here, not yet handed to the kernel.
    pub fn queued(&self) -> usize {
        match self {
            Link::Stream(s) => s.queued(),
            Link::Datagram(d) => d.buf.len() - d.start,
        }
    }

    /// Hands what it can to the kernel, without blocking.
    pub fn flush(&mut self) -> Result<(), Broken> {
        match self {
            Link::Stream(s) => s.flush(),
            Link::Datagram(d) => d.flush(),
        }
    }

    /// Reads what the peer sent (TLS records; anything else is dropped).
    pub fn readable(&mut self) -> Result<(), Broken> {
        match self {
            Link::Stream(s) => s.readable(),
            Link::Datagram(d) => d.readable(),
        }
    }

    /// The offset, in the messages queued, up to which the peer has them.
    pub fn acked(&mut self) -> u64 {
        match self {
            Link::Stream(s) => s.acked(),
            Link::Datagram(d) => d.sent,
        }
    }

    /// What to poll the descriptor for.
    pub fn interest(&self) -> PollFlags {
        let out = match self {
            Link::Stream(s) => s.wants_write(),
            Link::Datagram(d) => d.start < d.buf.len(),
        };
        if out {
            PollFlags::IN | PollFlags::OUT
        } else {
            PollFlags::IN
        }
    }

    /// Says goodbye: TLS's close_notify, best effort.
    pub fn close(&mut self) {
        if let Link::Stream(s) = self
            && let Some(tls) = &mut s.tls
            && !tls.close_sent
        {
            tls.close_sent = true;
            tls.conn.send_close_notify();
            if tls.produce().is_ok() {
                let _ = write_some(s.fd.as_fd(), &tls.wire[tls.wire_start..]);
            }
        }
    }

    /// Ends our side of the stream, once everything queued is handed to
    /// the kernel: TLS's close_notify, then TCP's FIN. Whether it is done;
    /// called again after `flush` until it is. The peer's clean end then
    /// (`Broken::Ended`) proves its program read all of it.
    pub fn half_close(&mut self) -> Result<bool, Broken> {
        let Link::Stream(s) = self else {
            return Ok(true);
        };
        if s.shut {
            return Ok(true);
        }
        if s.plain_start < s.plain.len() {
            return Ok(false);
        }
        if let Some(tls) = &mut s.tls {
            if !tls.close_sent {
                tls.conn.send_close_notify();
                tls.close_sent = true;
                tls.produce()?;
            }
            let n = write_some(s.fd.as_fd(), &tls.wire[tls.wire_start..])?;
            tls.wire_start += n;
            s.sent += n as u64;
            compact(&mut tls.wire, &mut tls.wire_start);
            if tls.wire_start < tls.wire.len() {
                return Ok(false);
            }
        }
        match net::shutdown(&s.fd, net::Shutdown::Write) {
            Ok(()) | Err(Errno::NOTSOCK) => {}
            Err(e) => return Err(e.into()),
        }
        s.shut = true;
        Ok(true)
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Link::Stream(s) if s.tls.is_some())
    }

    /// From now on `push` sends bytes as they are (the caller frames
    /// them, as RELP does), and what the peer sends is kept for
    /// `take_received` instead of dropped. Streams only.
    pub fn set_raw(&mut self) {
        if let Link::Stream(s) = self {
            s.raw = true;
            s.inbound = Some(Vec::new());
        }
    }

    /// Moves what the peer sent (after `set_raw`) to the end of `out`.
    pub fn take_received(&mut self, out: &mut Vec<u8>) {
        if let Link::Stream(s) = self
            && let Some(inbound) = &mut s.inbound
        {
            out.append(inbound);
        }
    }

    /// How much of the stream acknowledged lately to send again after a
    /// break: what the peer's kernel may have acknowledged without its
    /// program having read it (TCP), or nothing (datagrams, pipes).
    pub fn resend_window(&self) -> u64 {
        match self {
            Link::Stream(s) if s.acks == Acks::Outq && !s.raw => RESEND_WINDOW,
            _ => 0,
        }
    }

    /// Everything queued is acknowledged (or, for datagrams, sent).
    pub fn all_acked(&mut self) -> bool {
        self.queued() == 0 && self.acked() == self.appended()
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

/// The descriptor as io::Read, for rustls.
struct FdIo<'a>(BorrowedFd<'a>);

impl Read for FdIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(rustix::io::read(self.0, buf)?)
    }
}

/// A stream: TCP, TLS over TCP, or an inherited stream.
pub struct Stream {
    fd: OwnedFd,
    acks: Acks,
    /// Framed messages not yet handed on (to the kernel, or to TLS).
    plain: Vec<u8>,
    plain_start: usize,
    appended: u64,
    /// Bytes written to the descriptor.
    sent: u64,
    /// Of those, how many the peer has.
    acked_wire: u64,
    tls: Option<Box<Tls>>,
    /// Our side of the stream is ended (`half_close`).
    shut: bool,
    /// `push` takes bytes as they are, not messages to frame.
    raw: bool,
    /// What the peer sent, when it is kept (else read and dropped).
    inbound: Option<Vec<u8>>,
}

struct Tls {
    conn: rustls::ClientConnection,
    /// Records not yet written.
    wire: Vec<u8>,
    wire_start: usize,
    /// Record bytes produced in all.
    produced: u64,
    /// Message bytes handed to TLS in all.
    fed: u64,
    /// (message offset, record offset): the messages up to the first are
    /// in the records up to the second. Oldest first.
    chunks: VecDeque<(u64, u64)>,
    /// Message bytes whose records the peer has.
    acked: u64,
    close_sent: bool,
    /// The peer's close_notify came: only its TCP's end is awaited.
    peer_closed: bool,
}

/// Message bytes handed to TLS at once: at most one record's worth.
const TLS_CHUNK: usize = 16 * 1024;
/// Records held here at most before more messages are encrypted.
const TLS_WIRE: usize = 64 * 1024;

impl Stream {
    fn new(fd: OwnedFd, acks: Acks, tls: Option<rustls::ClientConnection>) -> Stream {
        Stream {
            fd,
            acks,
            plain: Vec::new(),
            plain_start: 0,
            appended: 0,
            sent: 0,
            acked_wire: 0,
            shut: false,
            raw: false,
            inbound: None,
            tls: tls.map(|conn| {
                Box::new(Tls {
                    conn,
                    wire: Vec::new(),
                    wire_start: 0,
                    produced: 0,
                    fed: 0,
                    chunks: VecDeque::new(),
                    acked: 0,
                    close_sent: false,
                    peer_closed: false,
                })
            }),
        }
    }

    /// RFC 6587 octet counting: `LEN SP MSG`; raw, the bytes as they are.
    fn push(&mut self, message: &[u8]) {
        let before = self.plain.len();
        if self.raw {
            self.plain.extend_from_slice(message);
            self.appended += message.len() as u64;
            return;
        }
        write_decimal(message.len() as u64, &mut self.plain);
        self.plain.push(b' ');
        self.plain.extend_from_slice(message);
        self.appended += (self.plain.len() - before) as u64;
    }

    fn queued(&self) -> usize {
        let wire = self.tls.as_ref().map_or(0, |t| t.wire.len() - t.wire_start);
        self.plain.len() - self.plain_start + wire
    }

    fn wants_write(&self) -> bool {
        match &self.tls {
            Some(t) => {
                t.wire_start < t.wire.len()
                    || t.conn.wants_write()
                    || (!t.conn.is_handshaking() && self.plain_start < self.plain.len())
            }
            None => self.plain_start < self.plain.len(),
        }
    }

    fn flush(&mut self) -> Result<(), Broken> {
        loop {
            let Some(tls) = &mut self.tls else {
                let n = write_some(self.fd.as_fd(), &self.plain[self.plain_start..])?;
                self.plain_start += n;
                self.sent += n as u64;
                compact(&mut self.plain, &mut self.plain_start);
                return Ok(());
            };
            // Encrypt while there is room, noting where each chunk ends.
            while !tls.conn.is_handshaking()
                && self.plain_start < self.plain.len()
                && tls.wire.len() - tls.wire_start < TLS_WIRE
            {
                let end = (self.plain_start + TLS_CHUNK).min(self.plain.len());
                let n = tls
                    .conn
                    .writer()
                    .write(&self.plain[self.plain_start..end])?;
                if n == 0 {
                    break;
                }
                self.plain_start += n;
                tls.fed += n as u64;
                tls.produce()?;
                tls.chunks.push_back((tls.fed, tls.produced));
            }
            tls.produce()?;
            compact(&mut self.plain, &mut self.plain_start);
            let n = write_some(self.fd.as_fd(), &tls.wire[tls.wire_start..])?;
            tls.wire_start += n;
            self.sent += n as u64;
            compact(&mut tls.wire, &mut tls.wire_start);
            // Stop when the socket is full, or nothing more can be encrypted.
            let more = !tls.conn.is_handshaking() && self.plain_start < self.plain.len();
            if tls.wire_start < tls.wire.len() || !more {
                return Ok(());
            }
        }
    }

    fn readable(&mut self) -> Result<(), Broken> {
        let Some(tls) = &mut self.tls else {
            return read_to_end(self.fd.as_fd(), self.inbound.as_mut());
        };
        if tls.peer_closed {
            return drain_to_end(self.fd.as_fd());
        }
        loop {
            if self
                .inbound
                .as_ref()
                .is_some_and(|i| i.len() >= INBOUND_MAX)
            {
                break;
            }
            match tls.conn.read_tls(&mut FdIo(self.fd.as_fd())) {
                Ok(0) => return Err(Broken::Ended),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
            if let Err(e) = tls.conn.process_new_packets() {
                // Say why to the peer (an alert), then give up.
                let _ = tls.produce();
                let _ = write_some(self.fd.as_fd(), &tls.wire[tls.wire_start..]);
                return Err(Broken::Tls(e));
            }
            let mut sink = [0u8; 4096];
            loop {
                match tls.conn.reader().read(&mut sink) {
                    Ok(0) => {
                        // close_notify: a clean end once its TCP ends too,
                        // not reset for bytes its program left unread.
                        tls.peer_closed = true;
                        return drain_to_end(self.fd.as_fd());
                    }
                    Ok(n) => {
                        if let Some(inbound) = &mut self.inbound {
                            inbound.extend_from_slice(&sink[..n]);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        // Handshake replies, key updates: written now.
        self.flush()
    }

    fn acked(&mut self) -> u64 {
        match self.acks {
            Acks::Written => self.acked_wire = self.sent,
            Acks::Outq => {
                if let Ok(unacked) = outq(self.fd.as_fd()) {
                    let acked = self.sent.saturating_sub(unacked);
                    self.acked_wire = self.acked_wire.max(acked);
                }
            }
        }
        match &mut self.tls {
            None => self.acked_wire,
            Some(tls) => {
                while let Some(&(fed, produced)) = tls.chunks.front() {
                    if produced > self.acked_wire {
                        break;
                    }
                    tls.acked = fed;
                    tls.chunks.pop_front();
                }
                tls.acked
            }
        }
    }
}

impl Tls {
    /// Takes the records TLS has made into `wire`.
    fn produce(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            let n = self.conn.write_tls(&mut self.wire)?;
            self.produced += n as u64;
            if n == 0 {
                break;
            }
        }
        Ok(())
    }
}

/// Bytes the peer sent that are kept at most before reading waits for
/// the caller to take them (`take_received`).
const INBOUND_MAX: usize = 256 * 1024;

/// Reads and drops what the peer sends, to its end: `Broken::Ended` at a
/// clean end (FIN), an error if it reset the connection.
fn drain_to_end(fd: BorrowedFd<'_>) -> Result<(), Broken> {
    read_to_end(fd, None)
}

/// As `drain_to_end`, keeping what was read in `keep` if given (until it
/// holds `INBOUND_MAX`: the rest waits in the socket).
fn read_to_end(fd: BorrowedFd<'_>, mut keep: Option<&mut Vec<u8>>) -> Result<(), Broken> {
    let mut buf = [0u8; 4096];
    loop {
        if keep.as_ref().is_some_and(|k| k.len() >= INBOUND_MAX) {
            return Ok(());
        }
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return Err(Broken::Ended),
            Ok(n) => {
                if let Some(keep) = keep.as_mut() {
                    keep.extend_from_slice(&buf[..n]);
                }
            }
            Err(Errno::AGAIN) => return Ok(()),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Unacknowledged bytes of a socket (SIOCOUTQ).
fn outq(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one int through the pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Writes what the descriptor takes now.
fn write_some(fd: BorrowedFd<'_>, data: &[u8]) -> Result<usize, Broken> {
    let mut done = 0;
    while done < data.len() {
        match rustix::io::write(fd, &data[done..]) {
            Ok(n) => done += n,
            Err(Errno::AGAIN) => break,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

/// Drops the consumed front of a buffer once it is worth it.
fn compact(buf: &mut Vec<u8>, start: &mut usize) {
    if *start == buf.len() {
        buf.clear();
        *start = 0;
    } else if *start > 64 * 1024 && *start * 2 > buf.len() {
        buf.drain(..*start);
        *start = 0;
    }
}

/// Datagrams: one message each.
pub struct Datagram {
    fd: OwnedFd,
    buf: Vec<u8>,
    /// The length of each message queued, oldest first.
    lens: VecDeque<usize>,
    start: usize,
    appended: u64,
    sent: u64,
    max: usize,
    refused: bool,
}

/// The largest UDP payloads over IPv4 and IPv6.
const UDP_MAX_V4: usize = 65_507;
const UDP_MAX_V6: usize = 65_527;
/// Datagrams handed to the kernel at once.
const BATCH: usize = 64;

impl Datagram {
    fn new(fd: OwnedFd, v6: bool) -> Datagram {
        Datagram {
            fd,
            buf: Vec::new(),
            lens: VecDeque::new(),
            start: 0,
            appended: 0,
            sent: 0,
            max: if v6 { UDP_MAX_V6 } else { UDP_MAX_V4 },
            refused: false,
        }
    }

    /// Queues a message, cut to what a datagram can hold.
    fn push(&mut self, message: &[u8]) {
        let message = &message[..message.len().min(self.max)];
        self.buf.extend_from_slice(message);
        self.lens.push_back(message.len());
        self.appended += message.len() as u64;
    }

    fn flush(&mut self) -> Result<(), Broken> {
        while !self.lens.is_empty() {
            let mut iovs = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; BATCH];
            // SAFETY: mmsghdr is plain data; zeroed is its empty value.
            let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            let mut at = self.start;
            let count = self.lens.len().min(BATCH);
            for (i, &len) in self.lens.iter().take(count).enumerate() {
                iovs[i].iov_base = self.buf[at..].as_ptr() as *mut libc::c_void;
                iovs[i].iov_len = len;
                msgs[i].msg_hdr.msg_iov = &mut iovs[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
                at += len;
            }
            // SAFETY: the headers point into `iovs`, which point into
            // `self.buf`; all outlive the call.
            let n = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    count as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::ENOBUFS) => return Ok(()),
                    Some(libc::EINTR) => continue,
                    // A port unreachable from an earlier datagram: said once;
                    // the datagram is tried again.
                    Some(libc::ECONNREFUSED) => {
                        if !self.refused {
                            self.refused = true;
                            crate::cli::warn(
                                "the peer's port is unreachable (nothing listens?); sending on, best effort",
                            );
                        }
                        continue;
                    }
                    _ => return Err(e.into()),
                }
            }
            for _ in 0..n {
                if let Some(len) = self.lens.pop_front() {
                    self.start += len;
                    self.sent += len as u64;
                }
            }
            compact(&mut self.buf, &mut self.start);
        }
        Ok(())
    }

    fn readable(&mut self) -> Result<(), Broken> {
        let mut buf = [0u8; 2048];
        loop {
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(_) => continue,
                Err(Errno::AGAIN) => return Ok(()),
                Err(Errno::INTR) => continue,
                // Errors of earlier datagrams (port unreachable): best effort.
                Err(Errno::CONNREFUSED) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A TLS session for `url`, checking the server's name (or `name`).
pub fn tls_session(
    config: &Arc<rustls::ClientConfig>,
    url: &Url,
    name: Option<&str>,
) -> crate::error::Result<rustls::ClientConnection> {
    let name = name.unwrap_or(&url.host);
    let server = rustls::pki_types::ServerName::try_from(name.to_string())
        .map_err(|e| Error::invalid(format!("{name:?}"), format!("not a server name: {e}")))?;
    rustls::ClientConnection::new(config.clone(), server)
        .map_err(|e| Error::invalid("TLS", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("tcp://logs.example.org:10514").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            (Scheme::Tcp, "logs.example.org", 10514)
        );
        assert_eq!(Url::parse("udp://127.0.0.1").unwrap().port, 514);
        assert_eq!(Url::parse("TLS://[::1]").unwrap().port, 6514);
        let v6 = Url::parse("tls://[2001:db8::1]:6514/").unwrap();
        assert_eq!(v6.host, "2001:db8::1");
        assert_eq!(v6.to_string(), "tls://[2001:db8::1]:6514");
        for bad in [
            "logs:514",
            "http://x:1",
            "tcp://:514",
            "tcp://x:0",
            "tcp://x:65536",
            "tcp://::1:514",
            "tcp://[::1]x",
            "tcp://user@x:1",
            "relp://x",
            "relp+tls://[::1]",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relp_urls_name_their_port_and_say_their_scheme() {
        let u = Url::parse("relp://127.0.0.1:2514").unwrap();
        assert_eq!((u.scheme, u.port), (Scheme::Relp, 2514));
        assert_eq!(u.to_string(), "relp://127.0.0.1:2514");
        let u = Url::parse("RELP+TLS://[::1]:20514").unwrap();
        assert_eq!(u.scheme, Scheme::RelpTls);
        assert!(u.scheme.is_tls() && u.scheme.is_relp());
        assert_eq!(u.to_string(), "relp+tls://[::1]:20514");
    }

    #[test]
    fn a_raw_stream_sends_bytes_as_they_are() {
        let (_r, w) = rustix::pipe::pipe().unwrap();
        let mut link = Link::Stream(Stream::new(w, Acks::Written, None));
        link.set_raw();
        link.push(b"1 open 0\n");
        assert_eq!(link.appended(), 9);
        assert_eq!(link.resend_window(), 0);
    }

    #[test]
    fn octet_counting_frames() {
        let (_r, w) = rustix::pipe::pipe().unwrap();
        let mut s = Stream::new(w, Acks::Written, None);
        s.push(b"<13>1 - - - - - - hi");
        s.push(b"");
        assert_eq!(s.plain, b"20 <13>1 - - - - - - hi0 ");
        assert_eq!(s.appended, 25);
    }
}
