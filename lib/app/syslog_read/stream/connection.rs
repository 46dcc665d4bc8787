//! One connection of syslog-read's stream inputs: where its bytes come
//! from (a socket, or standard input), its TLS and RELP sessions, and the
//! moves of one turn: bytes to messages (`push`), a TLS record in
//! (`read_tls`), answers and TLS records out (`send`).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::Instant;

use super::{Arrival, Tls, show};
use crate::cli;
use crate::net::relp::Txnr;
use crate::net::relp_server::{self, Request};
use crate::net::stream_framing::{Deframer, Framing, FramingError, Message};
use crate::net::tls;

/// A TLS session on a connection.
pub(super) struct Session {
    pub(super) conn: rustls::ServerConnection,
    pub(super) tls: Arc<Tls>,
    /// The handshake is done and the client's certificate checked.
    pub(super) checked: bool,
}

/// Where a connection's bytes come from.
pub(super) enum Io {
    Tcp(TcpStream),
    /// Standard input: a socket (made non-blocking: under a UCSPI
    /// server it is ours alone) read as a connection is; anything else
    /// read once per readiness, as it may block.
    Stdin {
        socket: bool,
    },
}

pub(super) struct Connection {
    pub(super) io: Io,
    pub(super) session: Option<Session>,
    /// The peer showed a certificate the `--client-ca` vouches for and
    /// `--allow-name` allows.
    pub(super) authenticated: bool,
    /// TLS or RELP has bytes to send that the socket did not take.
    pub(super) wants_out: bool,
    pub(super) relp: Option<Relp>,
    pub(super) peer: Option<SocketAddr>,
    pub(super) deframer: Deframer,
    pub(super) last_active: Instant,
    /// poll(2) said it is readable, or a full chunk came last time.
    pub(super) readable: bool,
    /// Drained by a short read: left to fill until then, neither read
    /// nor polled (`STREAM_REST`).
    pub(super) rest_until: Option<Instant>,
}

impl Connection {
    /// Whether poll(2) is to watch it: not known readable, not resting.
    pub(super) fn polled(&self) -> bool {
        !self.readable && self.rest_until.is_none()
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        match &self.io {
            Io::Tcp(s) => s.as_fd(),
            Io::Stdin { .. } => rustix::stdio::stdin(),
        }
    }

    pub(super) fn name(&self) -> String {
        match self.peer {
            Some(peer) => format!("connection from {}", show(&peer)),
            None => "the connection on standard input".to_string(),
        }
    }
}

/// A RELP session on a connection, and the messages whose answer waits
/// for their line to be written: (TXNR, where the line ends in the
/// output).
pub(super) struct Relp {
    pub(super) session: relp_server::Session,
    pub(super) acks: VecDeque<(Txnr, u64)>,
}

/// Hands `bytes` of connection `c` to its deframer; false (said on
/// stderr) when the framing is broken.
pub(super) fn push(
    c: &mut Connection,
    bytes: &[u8],
    deliver: &mut impl FnMut(Arrival<'_>) -> u64,
) -> bool {
    let (peer, authenticated) = (c.peer, c.authenticated);
    let name = c.name();
    let max_message = c.deframer.limits().max_message;
    if let Some(relp) = &mut c.relp {
        let mut requests = Vec::new();
        let result = relp.session.received(bytes, &mut requests);
        for request in requests {
            let Request::Syslog { txnr, data } = request else {
                continue;
            };
            let cut = data.len() > max_message;
            let position = deliver(Arrival {
                peer,
                authenticated,
                message: Message {
                    bytes: &data[..data.len().min(max_message)],
                    truncated: cut,
                    framing: Framing::OctetCounted,
                    frame_len: Some(data.len() as u64),
                },
            });
            relp.acks.push_back((txnr, position));
        }
        if let Err(e) = result {
            cli::warn(&format!("{name}: closing it: {e}"));
            relp.session.server_close();
            send(c);
            return false;
        }
        return true;
    }
    let result: Result<(), FramingError> = c.deframer.push(bytes, |message| {
        deliver(Arrival {
            peer,
            authenticated,
            message,
        });
    });
    if let Err(e) = result {
        cli::warn(&format!("{}: closing it: {e}", c.name()));
        return false;
    }
    true
}

/// Reads a TLS record's worth from connection `c`, and sends what TLS
/// has to send; false when it is to be closed.
pub(super) fn read_tls(
    c: &mut Connection,
    buf: &mut [u8],
    now: Instant,
    stopping: bool,
    deliver: &mut impl FnMut(Arrival<'_>) -> u64,
) -> bool {
    let name = c.name();
    let (Io::Tcp(socket), Some(session)) = (&mut c.io, &mut c.session) else {
        return false;
    };
    let mut open = true;
    match session.conn.read_tls(socket) {
        Ok(0) => open = false,
        Ok(_) => c.last_active = now,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            c.readable = false;
            // As `keep_after_drain` (which would borrow all of `c`).
            open = !stopping || c.relp.is_some();
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => {
            cli::warn(&format!("{name}: receiving: {e}"));
            return false;
        }
    }
    if let Err(e) = session.conn.process_new_packets() {
        // The alert, if the socket takes it.
        let _ = session.conn.write_tls(socket);
        cli::warn(&format!("{name}: refused: TLS: {e}"));
        return false;
    }
    if !session.checked && !session.conn.is_handshaking() {
        session.checked = true;
        let tls = &session.tls;
        let certificate = session.conn.peer_certificates().and_then(|c| c.first());
        if tls.verifies_clients && !tls.allow_names.is_empty() {
            let allowed =
                certificate.is_some_and(|der| tls::certificate_names_one_of(der, &tls.allow_names));
            if !allowed {
                let names = certificate
                    .map(|der| tls::certificate_names(der))
                    .unwrap_or_default();
                cli::warn(&format!(
                    "{name}: refused: its certificate names {names:?}, none of them in --allow-name"
                ));
                return false;
            }
        }
        c.authenticated = tls.verifies_clients && certificate.is_some();
    }
    let mut plain = Vec::new();
    loop {
        match session.conn.reader().read(buf) {
            Ok(0) => {
                open = false;
                break;
            }
            Ok(n) => plain.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // The peer closed without TLS's close_notify: the end, as
            // many clients end.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                open = false;
                break;
            }
            Err(e) => {
                cli::warn(&format!("{name}: receiving: {e}"));
                open = false;
                break;
            }
        }
    }
    push(c, &plain, deliver) && send(c) && open
}

/// At a stop, a connection read to its end is closed, but one with a RELP
/// session is kept for its answers (`Streams::finish`).
pub(super) fn keep_after_drain(c: &Connection, stopping: bool) -> bool {
    !stopping || c.relp.is_some()
}

/// Sends what the connection's RELP session and TLS have to send, as far
/// as the socket takes it; false when the connection is to be closed
/// (broken, or its RELP session closed and answered).
pub(super) fn send(c: &mut Connection) -> bool {
    let name = c.name();
    let Io::Tcp(socket) = &mut c.io else {
        return true;
    };
    c.wants_out = false;
    let broken = |e: io::Error| {
        cli::warn(&format!("{name}: sending: {e}"));
        false
    };
    if let Some(relp) = &mut c.relp {
        let output = relp.session.output();
        if !output.is_empty() {
            let written = match &mut c.session {
                Some(tls) => tls.conn.writer().write(output),
                None => socket.write(output),
            };
            match written {
                Ok(n) => relp.session.consumed(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.wants_out = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => c.wants_out = true,
                Err(e) => return broken(e),
            }
            c.wants_out |= !relp.session.output().is_empty();
        }
    }
    if let Some(tls) = &mut c.session {
        while tls.conn.wants_write() {
            match tls.conn.write_tls(socket) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.wants_out = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return broken(e),
            }
        }
    }
    // A session the client closed ends once its answers are out.
    !c.relp
        .as_ref()
        .is_some_and(|r| r.session.closed() && !c.wants_out)
}
