//! The server side of a RELP session (as rsyslog's imrelp is), as a state
//! machine without I/O, on the frame code of `net::relp`.
//!
//! The session: the client's first command must be `open` (TXNR 1), whose
//! offers must include `commands=syslog`; it is answered `200 OK` with
//! our offers (`relp_version=0`, `relp_software=rill,VERSION`,
//! `commands=syslog`). Then `syslog` commands, each handed out as
//! `Request::Syslog` for the caller to answer (`answer`) when it is done
//! with the message: answers go out in the order of the commands, an
//! answer given early waits for those before it. `close` is answered
//! `200 OK` after everything before it, and ends the session. Any other
//! command is answered `500` and the session goes on (librelp does the
//! same).
//!
//! Errors end the session at once (the caller closes the connection,
//! after sending `serverclose` and what answers were due): bytes that
//! are not RELP, a frame above `max_data`, a TXNR out of sequence, a
//! command before `open`, an `open` without `commands=syslog`.
//!
//! `server_close` queues the `serverclose` hint (TXNR 0) a server sends
//! before it closes a session itself.

use std::collections::VecDeque;
use std::fmt;

use crate::net::relp::{
    Command, FrameError, FrameReader, Offers, RELP_VERSION, Response, Txnr, write_frame,
};

/// A command the caller must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A message; answer it with `answer(txnr, ..)` once it is written.
    Syslog { txnr: Txnr, data: Vec<u8> },
    /// The client closed the session; when its answer is sent, close.
    Close,
}

/// Why a session ended in error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionError {
    Frame(FrameError),
    OutOfSequence { got: Txnr, expected: Txnr },
    NotOpen(String),
    NoSyslog,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Frame(e) => write!(f, "RELP: {e}"),
            SessionError::OutOfSequence { got, expected } => {
                write!(f, "RELP: transaction {got} where {expected} was due")
            }
            SessionError::NotOpen(command) => write!(f, "RELP: {command} before open"),
            SessionError::NoSyslog => write!(f, "RELP: the client does not offer commands=syslog"),
        }
    }
}

impl std::error::Error for SessionError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    AwaitOpen,
    Open,
    Closed,
}

/// An answer to send once every one before it is given.
#[derive(Debug)]
struct Due {
    txnr: Txnr,
    response: Option<Vec<u8>>,
}

pub struct Session {
    reader: FrameReader,
    phase: Phase,
    expected: Txnr,
    /// Answers owed, in the order of the commands.
    due: VecDeque<Due>,
    out: Vec<u8>,
}

impl Session {
    pub fn new(max_data: usize) -> Session {
        Session {
            reader: FrameReader::new(max_data),
            phase: Phase::AwaitOpen,
            expected: Txnr::FIRST,
            due: VecDeque::new(),
            out: Vec::new(),
        }
    }

    /// Takes in received bytes; appends what the caller must act on to
    /// `requests`, in order.
    pub fn received(
        &mut self,
        mut input: &[u8],
        requests: &mut Vec<Request>,
    ) -> Result<(), SessionError> {
        while self.phase != Phase::Closed {
            let Some(frame) = self
                .reader
                .next_frame(&mut input)
                .map_err(SessionError::Frame)?
            else {
                break;
            };
            if frame.txnr != self.expected {
                return Err(SessionError::OutOfSequence {
                    got: frame.txnr,
                    expected: self.expected,
                });
            }
            self.expected = self.expected.next();
            match (self.phase, frame.command) {
                (Phase::AwaitOpen, Command::Open) => {
                    let offers = Offers::parse(&frame.data);
                    let syslog = offers
                        .get("commands")
                        .is_some_and(|c| c.iter().any(|c| c == "syslog"));
                    if !syslog {
                        self.respond(frame.txnr, 500, b"commands=syslog required", &[]);
                        return Err(SessionError::NoSyslog);
                    }
                    let mut data = Vec::new();
                    server_offers().write(&mut data);
                    self.respond(frame.txnr, Response::OK, b"OK", &data);
                    self.phase = Phase::Open;
                }
                (Phase::AwaitOpen, command) => {
                    return Err(SessionError::NotOpen(command.name().to_string()));
                }
                (_, Command::Syslog) => {
                    self.due.push_back(Due {
                        txnr: frame.txnr,
                        response: None,
                    });
                    requests.push(Request::Syslog {
                        txnr: frame.txnr,
                        data: frame.data,
                    });
                }
                (_, Command::Close) => {
                    self.respond(frame.txnr, Response::OK, b"OK", &[]);
                    self.phase = Phase::Closed;
                    requests.push(Request::Close);
                }
                (_, command) => {
                    let text = format!("command {} not supported", command.name());
                    self.respond(frame.txnr, 500, text.as_bytes(), &[]);
                }
            }
        }
        Ok(())
    }

    /// Answers message `txnr`: `code` 200 with `text` "OK", or a refusal.
    pub fn answer(&mut self, txnr: Txnr, code: u16, text: &[u8]) {
        if let Some(due) = self.due.iter_mut().find(|d| d.txnr == txnr) {
            due.response = Some(response(code, text, &[]));
        }
        self.release();
    }

    /// Queues an answer (to a command not handed out) in its turn.
    fn respond(&mut self, txnr: Txnr, code: u16, text: &[u8], data: &[u8]) {
        self.due.push_back(Due {
            txnr,
            response: Some(response(code, text, data)),
        });
        self.release();
    }

    /// Moves the answers whose turn has come to the output.
    fn release(&mut self) {
        while let Some(Due {
            response: Some(_), ..
        }) = self.due.front()
        {
            if let Some(Due {
                txnr,
                response: Some(data),
            }) = self.due.pop_front()
            {
                write_frame(&mut self.out, txnr, &Command::Rsp, &data);
            }
        }
    }

    /// Messages handed out and not answered yet.
    pub fn unanswered(&self) -> usize {
        self.due.iter().filter(|d| d.response.is_none()).count()
    }

    /// Whether the client closed the session.
    pub fn closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Queues `serverclose`: we close the session.
    pub fn server_close(&mut self) {
        write_frame(&mut self.out, Txnr::HINT, &Command::ServerClose, &[]);
    }

    /// Bytes to send.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// The first `n` bytes of `output` were sent.
    pub fn consumed(&mut self, n: usize) {
        self.out.drain(..n.min(self.out.len()));
    }
}

fn response(code: u16, text: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Response {
        code,
        text: text.to_vec(),
        data: data.to_vec(),
    }
    .write(&mut out);
    out
}

/// What the server offers in its answer to `open`.
fn server_offers() -> Offers {
    Offers {
        offers: vec![
            ("relp_version".into(), vec![RELP_VERSION.to_string()]),
            (
                "relp_software".into(),
                vec!["rill".into(), env!("CARGO_PKG_VERSION").into()],
            ),
            ("commands".into(), vec!["syslog".into()]),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::relp::{Client, ClientConfig, DEFAULT_MAX_DATA, Event, Window};

    fn frames(out: &[u8]) -> Vec<(u32, String, String)> {
        FrameReader::new(DEFAULT_MAX_DATA)
            .frames(out)
            .expect("frames")
            .into_iter()
            .map(|f| {
                (
                    f.txnr.get(),
                    f.command.name().to_string(),
                    String::from_utf8_lossy(&f.data).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_session_opens_takes_messages_answers_them_in_order_and_closes() {
        let mut s = Session::new(DEFAULT_MAX_DATA);
        let mut requests = Vec::new();
        let input = b"1 open 34 relp_version=0\ncommands=syslog\nx=1\n\
                      2 syslog 3 <1>\n3 syslog 3 <2>\n4 close 0\n";
        s.received(input, &mut requests).expect("received");
        assert_eq!(requests.len(), 3);
        let answers = frames(s.output());
        assert_eq!(answers.len(), 1, "only open's answer: {answers:?}");
        assert!(answers[0].2.starts_with("200 OK\nrelp_version=0\n"));
        s.consumed(s.output().len());
        // Answered out of order, sent in order; close's after both.
        s.answer(Txnr::new(3).unwrap(), 200, b"OK");
        assert!(s.output().is_empty());
        s.answer(Txnr::new(2).unwrap(), 200, b"OK");
        assert_eq!(
            frames(s.output()),
            [
                (2, "rsp".into(), "200 OK".into()),
                (3, "rsp".into(), "200 OK".into()),
                (4, "rsp".into(), "200 OK".into())
            ]
        );
        assert!(s.closed());
        assert_eq!(s.unanswered(), 0);
    }

    #[test]
    fn protocol_errors_end_the_session() {
        let mut requests = Vec::new();
        let mut s = Session::new(DEFAULT_MAX_DATA);
        assert_eq!(
            s.received(b"1 syslog 3 <1>\n", &mut requests),
            Err(SessionError::NotOpen("syslog".into()))
        );
        let mut s = Session::new(DEFAULT_MAX_DATA);
        assert!(matches!(
            s.received(b"2 open 0\n", &mut requests),
            Err(SessionError::OutOfSequence { .. })
        ));
        let mut s = Session::new(DEFAULT_MAX_DATA);
        assert_eq!(
            s.received(b"1 open 14 relp_version=0\n", &mut requests),
            Err(SessionError::NoSyslog)
        );
        assert!(frames(s.output())[0].2.starts_with("500 "));
        let mut s = Session::new(16);
        assert!(matches!(
            s.received(b"1 open 99999 ", &mut requests),
            Err(SessionError::Frame(_))
        ));
        assert!(requests.is_empty());
    }

    #[test]
    fn unknown_commands_are_refused_and_the_session_goes_on() {
        let mut s = Session::new(DEFAULT_MAX_DATA);
        let mut requests = Vec::new();
        s.received(b"1 open 15 commands=syslog\n2 starttls 0\n", &mut requests)
            .expect("received");
        let answers = frames(s.output());
        assert!(answers[1].2.starts_with("500 "), "{answers:?}");
        assert!(requests.is_empty());
    }

    #[test]
    fn serves_rills_own_client() {
        let mut server = Session::new(DEFAULT_MAX_DATA);
        let mut client: Client<u32> = Client::new(ClientConfig {
            window: Window {
                messages: 16,
                bytes: 1 << 20,
            },
            max_data: DEFAULT_MAX_DATA,
        });
        let mut opened = false;
        let mut requests = Vec::new();
        let mut acked = Vec::new();
        let mut sent = 0;
        for _ in 0..100 {
            while sent < 50
                && client
                    .send(format!("<13>m {sent}").as_bytes(), sent)
                    .is_ok()
            {
                sent += 1;
            }
            let bytes = client.output().to_vec();
            client.consumed(bytes.len());
            server.received(&bytes, &mut requests).expect("server");
            for r in requests.drain(..) {
                if let Request::Syslog { txnr, .. } = r {
                    server.answer(txnr, 200, b"OK");
                }
            }
            let answers = server.output().to_vec();
            server.consumed(answers.len());
            for event in client.received(&answers) {
                opened |= matches!(event, Event::Opened { .. });
                if let Event::Acked { tag, .. } = event {
                    acked.push(tag);
                }
            }
            if acked.len() == 50 {
                break;
            }
        }
        assert!(opened);
        assert_eq!(acked, (0..50).collect::<Vec<_>>());
    }
}
