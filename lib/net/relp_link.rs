//! A RELP client session (`relp::Client`) on a connected `remote::Link`:
//! the messages waiting for room in the window, the client's bytes handed
//! to the link, the server's bytes turned into events.
//!
//! Messages are numbered from 1 in the order `push` takes them, over the
//! life of the session; `Acked` events carry that number, so that the
//! caller knows how many of its messages the server has (acks come in
//! order). What waits here is bounded: `full` says to stop pushing once
//! a window's worth of messages, or `PENDING_BYTES`, waits.

use std::collections::VecDeque;

use crate::net::relp::{Client, ClientConfig, Event, SendError, State};
use crate::net::remote::Link;

/// Bytes of messages waiting for room in the window, at most (about).
pub const PENDING_BYTES: usize = 256 * 1024;

pub struct Session {
    client: Client<u64>,
    config: ClientConfig,
    /// Messages not yet in the window, oldest first.
    pending: VecDeque<Vec<u8>>,
    pending_bytes: usize,
    /// Messages taken in all: the last one's number.
    taken: u64,
    inbound: Vec<u8>,
}

impl Session {
    /// A session whose `open` goes out on the next `feed`.
    pub fn new(config: ClientConfig) -> Session {
        Session {
            client: Client::new(config),
            config,
            pending: VecDeque::new(),
            pending_bytes: 0,
            taken: 0,
            inbound: Vec::new(),
        }
    }

    /// The largest message a frame carries: longer ones must be cut.
    pub fn max_message(&self) -> usize {
        self.config.max_data
    }

    /// Takes a message (at most `max_message` octets; longer is cut):
    /// its number.
    pub fn push(&mut self, message: &[u8]) -> u64 {
        let message = &message[..message.len().min(self.config.max_data)];
        self.pending_bytes += message.len();
        self.pending.push_back(message.to_vec());
        self.taken += 1;
        self.taken
    }

    /// Messages taken in all: the number of the last.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Enough waits here: push no more until the window moves.
    pub fn full(&self) -> bool {
        self.pending_bytes >= PENDING_BYTES || self.pending.len() >= self.config.window.messages
    }

    /// Messages taken and not yet answered 200 (waiting or in flight).
    pub fn unanswered(&self) -> usize {
        self.pending.len() + self.client.in_flight()
    }

    pub fn state(&self) -> State {
        self.client.state()
    }

    /// The window is more than half full: nothing more goes until it
    /// drains to half.
    pub fn draining(&self) -> bool {
        let window = self.config.window;
        self.client.in_flight() > window.messages / 2
            || self.client.in_flight_bytes() > window.bytes / 2
    }

    /// A command sent awaits its answer (`open`, a message, `close`).
    pub fn awaiting(&self) -> bool {
        self.client.in_flight() > 0 || matches!(self.state(), State::Opening | State::Closing)
    }

    /// Moves waiting messages into the window while it has room, and the
    /// client's bytes to the link. A window more than half full is left
    /// to drain first: messages go in batches of half a window, many
    /// frames to a write, rather than a few each time answers come.
    pub fn feed(&mut self, link: &mut Link) {
        let refill = !self.draining();
        while refill && let Some(message) = self.pending.front() {
            match self
                .client
                .send(message, self.taken - self.pending.len() as u64 + 1)
            {
                Ok(_) => {
                    self.pending_bytes -= message.len();
                    self.pending.pop_front();
                }
                // Cut to fit in `push`: only NotOpen and WindowFull remain.
                Err(SendError::NotOpen | SendError::WindowFull | SendError::TooLarge { .. }) => {
                    break;
                }
            }
        }
        let out = self.client.output();
        if !out.is_empty() {
            link.push(out);
            let n = out.len();
            self.client.consumed(n);
        }
    }

    /// Sends `close` if the session is open: `Closed` comes once every
    /// message is answered. Whether it was sent.
    pub fn close(&mut self, link: &mut Link) -> bool {
        let sent = self.client.close().is_ok();
        self.feed(link);
        sent
    }

    /// What the server sent since the last call.
    pub fn events(&mut self, link: &mut Link) -> Vec<Event<u64>> {
        link.take_received(&mut self.inbound);
        // While the window drains we send nothing for our ACKs to ride
        // on: delayed, they would hold the server's next answers behind
        // its Nagle for 40 ms each time.
        let _ = rustix::net::sockopt::set_tcp_quickack(link.fd(), true);
        let events = self.client.received(&self.inbound);
        self.inbound.clear();
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::relp::{Command, Txnr, Window, write_frame};
    use std::os::fd::OwnedFd;

    fn pipe_link() -> (OwnedFd, Link) {
        let (r, w) = rustix::pipe::pipe().unwrap();
        rustix::fs::fcntl_setfl(&r, rustix::fs::OFlags::NONBLOCK).unwrap();
        let mut link = Link::inherited(w).unwrap();
        link.set_raw();
        (r, link)
    }

    fn sent(r: &OwnedFd, link: &mut Link) -> Vec<u8> {
        link.flush().unwrap();
        let mut buf = vec![0; 65536];
        let n = rustix::io::read(r, &mut buf).unwrap_or(0);
        buf.truncate(n);
        buf
    }

    #[test]
    fn messages_wait_for_open_then_go_in_order_numbered_from_1() {
        let (r, mut link) = pipe_link();
        let mut s = Session::new(ClientConfig {
            window: Window {
                messages: 2,
                bytes: 1000,
            },
            max_data: 40,
        });
        assert_eq!(s.push(b"one"), 1);
        assert_eq!(s.push(&[b'x'; 50]), 2);
        assert!(s.full(), "a window's worth waits");
        s.feed(&mut link);
        assert!(sent(&r, &mut link).starts_with(b"1 open "));
        assert_eq!(s.unanswered(), 2);
        let mut answer = Vec::new();
        write_frame(
            &mut answer,
            Txnr::FIRST,
            &Command::Rsp,
            b"200 OK\nrelp_version=0\ncommands=syslog",
        );
        let events = s.client.received(&answer);
        assert!(matches!(events[..], [Event::Opened { .. }]), "{events:?}");
        assert_eq!(s.state(), State::Open);
        s.feed(&mut link);
        let cut = format!("3 syslog 40 {}\n", "x".repeat(40));
        assert_eq!(
            sent(&r, &mut link),
            [&b"2 syslog 3 one\n"[..], cut.as_bytes()].concat()
        );
        let mut acks = Vec::new();
        write_frame(&mut acks, Txnr::new(2).unwrap(), &Command::Rsp, b"200 OK");
        let events = s.client.received(&acks);
        assert_eq!(
            events,
            vec![Event::Acked {
                txnr: Txnr::new(2).unwrap(),
                tag: 1
            }]
        );
        assert_eq!(s.unanswered(), 1);
    }
}
