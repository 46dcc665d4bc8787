//! RELP, the Reliable Event Logging Protocol (librelp, rsyslog's imrelp
//! and omrelp): the frame codec both sides share, and the client session
//! as a state machine without I/O.
//!
//! # The frame
//!
//! ```text
//! FRAME   = TXNR SP COMMAND SP DATALEN [SP DATA] LF
//! TXNR    = 1*9DIGIT     0 for hints (serverclose); else 1..=999999999,
//!                        +1 per command of a session, from 1, after
//!                        999999999 back to 1
//! COMMAND = 1*32ALPHA    open, syslog, close, rsp, serverclose, ...
//! DATALEN = 1*9DIGIT     octets of DATA; 0: no SP and no DATA
//! ```
//!
//! `open` carries the offers, one per line: `NAME[=VALUE*(,VALUE)]`. The
//! client offers `relp_version=0`, `relp_software=rill,VERSION` and
//! `commands=syslog`; the server answers with what it accepts, and a
//! session that the server does not grant `syslog` is no use.
//!
//! `rsp` answers the command of the same TXNR, in the order the commands
//! came: `CODE SP TEXT [LF DATA]`, CODE three digits, `200` for success
//! (`200 OK`), anything else a refusal (`500 ...`); TEXT is for people;
//! DATA, for `open`, the server's offers. `close` is answered by `rsp`
//! too, after every command before it. `serverclose` (TXNR 0, no answer)
//! says the server is closing the connection.
//!
//! # Bounds
//!
//! A frame's DATA is at most `max_data` octets (librelp's default, and
//! ours: 128 KiB); a bigger DATALEN is a protocol error found in the
//! header, before anything is allocated. The client keeps at most a window
//! of unanswered messages: `Window::messages` (16384; librelp's default is
//! 128, too few to send in batches) and
//! `Window::bytes` (4 MiB of message octets; a single message bigger than
//! that still goes, alone). Its output waits in one buffer the caller
//! drains; it holds at most the window plus a few small frames.
//!
//! # The client session
//!
//! `Client` is fed the bytes the connection received (`received`) and
//! drained of the bytes to send (`output`, `consumed`); it never reads,
//! writes or waits. It sends `open` at once; after the server's `200` it
//! is `Open` and takes messages (`send`) while the window has room. Each
//! answer is an `Event`: `Acked` in the order sent, `Refused` with the
//! server's code and text, `ServerClose`, `Closed` (the answer to our
//! `close`), `ProtocolError`. A refusal, a protocol error or a
//! `serverclose` ends the session: what is left unanswered stays
//! unanswered, never skipped. Once the connection is gone (or the session
//! ended), `into_unanswered` gives back every message not answered `200`,
//! in the order sent, to send again on a new session (with new TXNRs: a
//! session always starts at 1).
//!
//! # Notes for export-to-remote (`relp://`, `relp+tls://`)
//!
//! - The byte stream is `remote::Stream` (TCP or TLS), in the same poll
//!   loop: POLLIN feeds `received`, POLLOUT drains `output`. Delivery is
//!   known from the answers, not from SIOCOUTQ: the resend window of
//!   `remote` does not apply.
//! - `send` takes the ledger position of each line as its tag; the ledger
//!   (and the cursor) moves only on `Acked`, to that tag: acks come in
//!   order, so the acked tags are always a prefix of what was sent.
//! - On `Refused` or `ProtocolError`: `warning:` on stderr with the
//!   server's code and text and the line's position, close the
//!   connection, back off as for a broken connection, and start a new
//!   session that sends `into_unanswered()` first, in order, before any
//!   new line. Nothing is skipped; a line the server keeps refusing keeps
//!   the cursor where it is, and says so each time.
//! - A message longer than `max_data` is refused by `send`
//!   (`SendError::TooLarge`) before anything goes out: the exporter must
//!   decide (truncate as for TCP's message limit, and say so).
//! - TERM: `close`, keep draining until `Closed` or a deadline, then exit;
//!   the unanswered lines stay after the cursor, for the next start.
//! - Window and `max_data` become options (`--relp-window`,
//!   `--relp-window-bytes`), with these defaults, in the man page.
//! - `relp+tls://`: imrelp with a certificate (`tls="on"`, `tls.mycert`)
//!   insists on the client's, whatever its `tls.authMode`: the exporter
//!   needs `--cert` and `--key` there, and should say so when the
//!   handshake fails for want of one. librelp's certificate-less TLS is
//!   anonymous Diffie-Hellman (gnutls `+ANON-DH`), which rustls does not
//!   speak: say that it is unsupported, rather than fail obscurely.
//! - librelp answers `close` with an empty `rsp` (no code): taken as the
//!   close's answer here.
//! - syslog-read as an imrelp-like server will share `FrameReader`,
//!   `write_frame`, `Response` and `Offers`: a server answers `open` with
//!   `Response { code: 200, text: "OK", data: offers }` and each `syslog`
//!   with `200 OK`, checks that TXNRs come in sequence, and sends
//!   `serverclose` before it closes.

use std::collections::VecDeque;
use std::fmt;

use crate::format::decimal::write_decimal;

/// librelp's and imrelp's default maximum DATA of a frame.
pub const DEFAULT_MAX_DATA: usize = 128 * 1024;

/// The most digits TXNR and DATALEN may have.
const MAX_DIGITS: u8 = 9;

/// The most letters a command may have.
const MAX_COMMAND: usize = 32;

/// The relp_version this code speaks (librelp's too).
pub const RELP_VERSION: u32 = 0;

/// A transaction number: 0 for hints, 1..=999_999_999 for commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Txnr(u32);

impl Txnr {
    pub const MAX: u32 = 999_999_999;
    /// Hints (serverclose) carry this; nothing answers them.
    pub const HINT: Txnr = Txnr(0);
    /// The first command of every session.
    pub const FIRST: Txnr = Txnr(1);

    pub fn new(n: u32) -> Option<Txnr> {
        (n <= Txnr::MAX).then_some(Txnr(n))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// The next command's number: after 999999999 comes 1.
    pub fn next(self) -> Txnr {
        if self.0 >= Txnr::MAX {
            Txnr(1)
        } else {
            Txnr(self.0 + 1)
        }
    }
}

impl fmt::Display for Txnr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A command name: those RELP defines, or any other 1 to 32 ASCII letters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Open,
    Syslog,
    Close,
    Rsp,
    ServerClose,
    /// Any other name (only `Command::parse` makes one).
    Other(OtherName),
}

impl Command {
    /// A command from its name; None unless 1 to 32 ASCII letters.
    pub fn parse(name: &[u8]) -> Option<Command> {
        let valid = !name.is_empty()
            && name.len() <= MAX_COMMAND
            && name.iter().all(u8::is_ascii_alphabetic);
        valid.then(|| Command::known_valid(name))
    }

    /// A command from a name already checked to be 1 to 32 letters.
    fn known_valid(name: &[u8]) -> Command {
        match name {
            b"open" => Command::Open,
            b"syslog" => Command::Syslog,
            b"close" => Command::Close,
            b"rsp" => Command::Rsp,
            b"serverclose" => Command::ServerClose,
            // Letters only: valid UTF-8.
            _ => Command::Other(OtherName(String::from_utf8_lossy(name).into_owned())),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Command::Open => "open",
            Command::Syslog => "syslog",
            Command::Close => "close",
            Command::Rsp => "rsp",
            Command::ServerClose => "serverclose",
            Command::Other(name) => &name.0,
        }
    }
}

/// A command name RELP does not define: 1 to 32 ASCII letters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherName(String);

/// One frame, received or to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub txnr: Txnr,
    pub command: Command,
    pub data: Vec<u8>,
}

/// Appends a frame to `out`. `command` must be valid (`Command::parse`
/// makes only valid ones); `data` may be any octets, at most 999999999.
pub fn write_frame(out: &mut Vec<u8>, txnr: Txnr, command: &Command, data: &[u8]) {
    debug_assert!(data.len() <= Txnr::MAX as usize);
    write_decimal(u64::from(txnr.0), out);
    out.push(b' ');
    out.extend_from_slice(command.name().as_bytes());
    out.push(b' ');
    write_decimal(data.len() as u64, out);
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
}

/// Why a byte stream is not RELP. The stream cannot go on after one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// An octet where the grammar allows none like it.
    Unexpected { octet: u8, in_field: &'static str },
    /// More than 9 digits of TXNR or DATALEN, or 32 letters of command.
    TooLong { field: &'static str },
    /// A DATALEN above the limit agreed on.
    DataTooLong { datalen: usize, max: usize },
    /// An earlier error broke the stream.
    AfterError,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Unexpected { octet, in_field } => {
                write!(f, "invalid frame: octet {octet:#04x} in {in_field}")
            }
            FrameError::TooLong { field } => write!(f, "invalid frame: {field} too long"),
            FrameError::DataTooLong { datalen, max } => {
                write!(f, "frame of {datalen} octets, more than the {max} allowed")
            }
            FrameError::AfterError => write!(f, "stream broken by an earlier framing error"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Where the reader is in the frame it is reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadState {
    Txnr,
    Command,
    Datalen,
    /// The SP between DATALEN and DATA was read; `data` fills up.
    Data,
    /// Only the LF is missing.
    Trailer,
    Broken,
}

/// An incremental frame parser: bytes in, frames out, split anywhere.
/// Memory: at most one frame of `max_data` octets.
#[derive(Debug)]
pub struct FrameReader {
    max_data: usize,
    state: ReadState,
    digits: u8,
    txnr: u32,
    command: Vec<u8>,
    datalen: usize,
    data: Vec<u8>,
}

impl FrameReader {
    pub fn new(max_data: usize) -> FrameReader {
        FrameReader {
            max_data,
            state: ReadState::Txnr,
            digits: 0,
            txnr: 0,
            command: Vec::with_capacity(MAX_COMMAND),
            datalen: 0,
            data: Vec::new(),
        }
    }

    /// Reads from `input` up to the end of the next frame, advancing it
    /// past what was read: Some(frame) when one is complete, None when
    /// `input` ran out first (the part read is kept for the next call).
    pub fn next_frame(&mut self, input: &mut &[u8]) -> Result<Option<Frame>, FrameError> {
        while !input.is_empty() {
            if self.state == ReadState::Data {
                let want = self.datalen - self.data.len();
                let take = want.min(input.len());
                self.data.extend_from_slice(&input[..take]);
                *input = &input[take..];
                if self.data.len() == self.datalen {
                    self.state = ReadState::Trailer;
                }
                continue;
            }
            let octet = input[0];
            *input = &input[1..];
            if let Some(frame) = self.header_octet(octet).inspect_err(|_| {
                self.state = ReadState::Broken;
            })? {
                return Ok(Some(frame));
            }
        }
        Ok(None)
    }

    /// Reads every complete frame in `input`; a partial one is kept.
    pub fn frames(&mut self, mut input: &[u8]) -> Result<Vec<Frame>, FrameError> {
        let mut frames = Vec::new();
        while let Some(frame) = self.next_frame(&mut input)? {
            frames.push(frame);
        }
        Ok(frames)
    }

    /// One octet outside DATA; a frame when it was the trailer.
    fn header_octet(&mut self, octet: u8) -> Result<Option<Frame>, FrameError> {
        match self.state {
            ReadState::Txnr => match octet {
                b'0'..=b'9' => self.txnr = self.txnr * 10 + u32::from(self.digit(octet, "TXNR")?),
                b' ' if self.digits > 0 => {
                    self.digits = 0;
                    self.state = ReadState::Command;
                }
                _ => return Err(unexpected(octet, "TXNR")),
            },
            ReadState::Command => match octet {
                b'a'..=b'z' | b'A'..=b'Z' if self.command.len() < MAX_COMMAND => {
                    self.command.push(octet)
                }
                b'a'..=b'z' | b'A'..=b'Z' => return Err(FrameError::TooLong { field: "command" }),
                b' ' if !self.command.is_empty() => self.state = ReadState::Datalen,
                _ => return Err(unexpected(octet, "command")),
            },
            ReadState::Datalen => match octet {
                b'0'..=b'9' => {
                    self.datalen = self.datalen * 10 + usize::from(self.digit(octet, "DATALEN")?)
                }
                b'\n' if self.digits > 0 && self.datalen == 0 => return Ok(Some(self.finish())),
                b' ' if self.digits > 0 && self.datalen > 0 => {
                    if self.datalen > self.max_data {
                        return Err(FrameError::DataTooLong {
                            datalen: self.datalen,
                            max: self.max_data,
                        });
                    }
                    self.data.reserve_exact(self.datalen);
                    self.state = ReadState::Data;
                }
                _ => return Err(unexpected(octet, "DATALEN")),
            },
            ReadState::Trailer if octet == b'\n' => return Ok(Some(self.finish())),
            ReadState::Trailer => return Err(unexpected(octet, "trailer")),
            // next_frame reads DATA in bulk; an octet at a time is as right.
            ReadState::Data => {
                self.data.push(octet);
                if self.data.len() == self.datalen {
                    self.state = ReadState::Trailer;
                }
            }
            ReadState::Broken => return Err(FrameError::AfterError),
        }
        Ok(None)
    }

    /// A digit's value, counting it against the 9 allowed.
    fn digit(&mut self, octet: u8, field: &'static str) -> Result<u8, FrameError> {
        if self.digits == MAX_DIGITS {
            return Err(FrameError::TooLong { field });
        }
        self.digits += 1;
        Ok(octet - b'0')
    }

    fn finish(&mut self) -> Frame {
        let frame = Frame {
            txnr: Txnr(self.txnr),
            command: Command::known_valid(&self.command),
            data: std::mem::take(&mut self.data),
        };
        self.state = ReadState::Txnr;
        self.digits = 0;
        self.txnr = 0;
        self.command.clear();
        self.datalen = 0;
        frame
    }
}

fn unexpected(octet: u8, in_field: &'static str) -> FrameError {
    FrameError::Unexpected { octet, in_field }
}

/// The data of a `rsp`: `CODE SP TEXT [LF DATA]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Three digits; 200 is success.
    pub code: u16,
    /// For people; no LF. Bytes as the server sent them.
    pub text: Vec<u8>,
    /// What the command answered asks for (offers, for `open`).
    pub data: Vec<u8>,
}

impl Response {
    pub const OK: u16 = 200;

    pub fn ok(&self) -> bool {
        self.code == Response::OK
    }

    /// A response from a `rsp` frame's data. A bare `CODE` (no SP, no
    /// text) is taken too.
    pub fn parse(data: &[u8]) -> Result<Response, String> {
        let code = match data.get(..3) {
            Some(digits) if digits.iter().all(u8::is_ascii_digit) => digits
                .iter()
                .fold(0u16, |n, d| n * 10 + u16::from(d - b'0')),
            _ => return Err(format!("rsp without a status code: {}", shown(data))),
        };
        let rest = &data[3..];
        let rest = match rest.first() {
            None => rest,
            Some(b' ') => &rest[1..],
            Some(b'\n') => rest,
            Some(_) => {
                return Err(format!(
                    "rsp status code not followed by SP: {}",
                    shown(data)
                ));
            }
        };
        let (text, data) = match memchr::memchr(b'\n', rest) {
            Some(lf) => (&rest[..lf], &rest[lf + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        Ok(Response {
            code,
            text: text.to_vec(),
            data: data.to_vec(),
        })
    }

    /// Appends the data of a `rsp` frame for this response.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("{:03}", self.code % 1000).as_bytes());
        out.push(b' ');
        out.extend(self.text.iter().filter(|&&b| b != b'\n'));
        if !self.data.is_empty() {
            out.push(b'\n');
            out.extend_from_slice(&self.data);
        }
    }

    /// Code and text, for a message on stderr.
    pub fn describe(&self) -> String {
        format!("{:03} {}", self.code, shown(&self.text))
    }
}

/// Offers: `NAME[=VALUE*(,VALUE)]` lines, in the order given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Offers {
    pub offers: Vec<(String, Vec<String>)>,
}

impl Offers {
    /// What rill offers when it opens a session.
    pub fn client() -> Offers {
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

    /// Offers from `open`'s data or its answer. Empty lines and empty
    /// values are skipped (librelp writes a trailing LF); names and values
    /// are taken as text (invalid UTF-8 replaced).
    pub fn parse(data: &[u8]) -> Offers {
        let offers = data
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                let (name, values) = match memchr::memchr(b'=', line) {
                    Some(eq) => (&line[..eq], &line[eq + 1..]),
                    None => (line, &line[line.len()..]),
                };
                let values = values
                    .split(|&b| b == b',')
                    .filter(|v| !v.is_empty())
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .collect();
                (String::from_utf8_lossy(name).into_owned(), values)
            })
            .collect();
        Offers { offers }
    }

    /// The values of the first offer named `name`.
    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.offers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Appends the offers, a line each (LF between lines).
    pub fn write(&self, out: &mut Vec<u8>) {
        for (i, (name, values)) in self.offers.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(name.as_bytes());
            if !values.is_empty() {
                out.push(b'=');
                out.extend_from_slice(values.join(",").as_bytes());
            }
        }
    }
}

/// How much may wait for answers at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Unanswered messages, at most (at least 1).
    pub messages: usize,
    /// Octets of unanswered messages, at most; one message alone may be
    /// bigger.
    pub bytes: usize,
}

impl Default for Window {
    fn default() -> Window {
        Window {
            messages: 16384,
            bytes: 4 << 20,
        }
    }
}

/// A client session's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    pub window: Window,
    /// The largest DATA of a frame either way (a message, an answer).
    pub max_data: usize,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            window: Window::default(),
            max_data: DEFAULT_MAX_DATA,
        }
    }
}

/// What the server's bytes meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<T> {
    /// The server accepted `open`: messages may be sent.
    Opened { server: Offers },
    /// The server answered `open` with other than 200; the session ended.
    OpenRefused { response: Response },
    /// Answered 200: the message is the server's.
    Acked { txnr: Txnr, tag: T },
    /// Answered other than 200; the session ended, and the message stays
    /// unanswered (first in `into_unanswered`).
    Refused { txnr: Txnr, response: Response },
    /// The server closes the connection; the session ended.
    ServerClose,
    /// The answer to our `close`: every message was answered.
    Closed,
    /// The server broke the protocol; the session ended.
    ProtocolError(String),
}

/// Why `send` did not take a message. Nothing was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Not open: still opening, closing, or ended.
    NotOpen,
    /// The window is full: wait for answers.
    WindowFull,
    /// Longer than a frame may be.
    TooLarge { len: usize, max: usize },
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotOpen => write!(f, "RELP session not open"),
            SendError::WindowFull => write!(f, "RELP window full"),
            SendError::TooLarge { len, max } => {
                write!(
                    f,
                    "message of {len} octets, more than the {max} a RELP frame may carry"
                )
            }
        }
    }
}

impl std::error::Error for SendError {}

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Our `close` was answered.
    Closed,
    ServerClosed,
    OpenRefused,
    Refused,
    ProtocolError,
}

/// Where a session is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// `open` sent with this TXNR; no answer yet.
    Opening {
        txnr: Txnr,
    },
    Open {
        server: Offers,
    },
    /// `close` sent with this TXNR: no more messages.
    Closing {
        txnr: Txnr,
    },
    Ended(End),
}

/// What a caller may see of the phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Opening,
    Open,
    Closing,
    Ended(End),
}

/// A message sent and not yet answered 200.
#[derive(Debug)]
struct InFlight<T> {
    txnr: Txnr,
    message: Vec<u8>,
    tag: T,
}

/// A message to send again on a new session, in the order it was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unanswered<T> {
    pub message: Vec<u8>,
    pub tag: T,
}

/// A client session, without I/O. `T` tags each message for the caller
/// (export-to-remote: the line's ledger position); it comes back with the
/// message's answer.
#[derive(Debug)]
pub struct Client<T> {
    config: ClientConfig,
    reader: FrameReader,
    phase: Phase,
    next_txnr: Txnr,
    in_flight: VecDeque<InFlight<T>>,
    in_flight_bytes: usize,
    output: Vec<u8>,
    /// How much of `output` the caller has sent.
    sent: usize,
}

impl<T> Client<T> {
    /// A session whose `open` waits in `output`.
    pub fn new(config: ClientConfig) -> Client<T> {
        let mut client = Client {
            config: ClientConfig {
                window: Window {
                    messages: config.window.messages.max(1),
                    bytes: config.window.bytes,
                },
                ..config
            },
            reader: FrameReader::new(config.max_data),
            phase: Phase::Ended(End::Closed),
            next_txnr: Txnr::FIRST,
            in_flight: VecDeque::new(),
            in_flight_bytes: 0,
            output: Vec::new(),
            sent: 0,
        };
        let mut offers = Vec::new();
        Offers::client().write(&mut offers);
        let txnr = client.command(&Command::Open, &offers);
        client.phase = Phase::Opening { txnr };
        client
    }

    pub fn state(&self) -> State {
        match self.phase {
            Phase::Opening { .. } => State::Opening,
            Phase::Open { .. } => State::Open,
            Phase::Closing { .. } => State::Closing,
            Phase::Ended(end) => State::Ended(end),
        }
    }

    /// The server's offers, once open.
    pub fn server_offers(&self) -> Option<&Offers> {
        match &self.phase {
            Phase::Open { server } => Some(server),
            _ => None,
        }
    }

    /// Messages sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Octets of the messages sent and not yet answered.
    pub fn in_flight_bytes(&self) -> usize {
        self.in_flight_bytes
    }

    /// Whether `send` would take a message of `len` octets now.
    pub fn can_send(&self, len: usize) -> bool {
        self.check_send(len).is_ok()
    }

    fn check_send(&self, len: usize) -> Result<(), SendError> {
        if !matches!(self.phase, Phase::Open { .. }) {
            return Err(SendError::NotOpen);
        }
        if len > self.config.max_data {
            return Err(SendError::TooLarge {
                len,
                max: self.config.max_data,
            });
        }
        let window = self.config.window;
        if self.in_flight.len() >= window.messages
            || (!self.in_flight.is_empty() && self.in_flight_bytes + len > window.bytes)
        {
            return Err(SendError::WindowFull);
        }
        Ok(())
    }

    /// Sends a message (a `syslog` command): its TXNR, or why not.
    pub fn send(&mut self, message: &[u8], tag: T) -> Result<Txnr, SendError> {
        self.check_send(message.len())?;
        let txnr = self.command(&Command::Syslog, message);
        self.in_flight.push_back(InFlight {
            txnr,
            message: message.to_vec(),
            tag,
        });
        self.in_flight_bytes += message.len();
        Ok(txnr)
    }

    /// Sends `close`: no more messages; `Closed` comes once the server
    /// answered everything. Only an open session can close.
    pub fn close(&mut self) -> Result<(), SendError> {
        if !matches!(self.phase, Phase::Open { .. }) {
            return Err(SendError::NotOpen);
        }
        let txnr = self.command(&Command::Close, b"");
        self.phase = Phase::Closing { txnr };
        Ok(())
    }

    /// The bytes waiting to be sent.
    pub fn output(&self) -> &[u8] {
        &self.output[self.sent..]
    }

    /// The first `n` bytes of `output` were sent.
    pub fn consumed(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n).min(self.output.len());
        if self.sent == self.output.len() {
            self.output.clear();
            self.sent = 0;
        }
    }

    /// What the server's bytes mean. Once the session ended, bytes are
    /// ignored: nothing the server says then can answer a message.
    pub fn received(&mut self, mut bytes: &[u8]) -> Vec<Event<T>> {
        let mut events = Vec::new();
        while !matches!(self.phase, Phase::Ended(_)) {
            match self.reader.next_frame(&mut bytes) {
                Ok(Some(frame)) => events.push(self.answer(frame)),
                Ok(None) => break,
                Err(e) => {
                    self.phase = Phase::Ended(End::ProtocolError);
                    events.push(Event::ProtocolError(e.to_string()));
                }
            }
        }
        events
    }

    /// Every message not answered 200, in the order sent: to send again on
    /// a new session, once this one's connection is closed.
    pub fn into_unanswered(self) -> Vec<Unanswered<T>> {
        self.in_flight
            .into_iter()
            .map(|f| Unanswered {
                message: f.message,
                tag: f.tag,
            })
            .collect()
    }

    /// Queues a command with the next TXNR.
    fn command(&mut self, command: &Command, data: &[u8]) -> Txnr {
        let txnr = self.next_txnr;
        self.next_txnr = txnr.next();
        write_frame(&mut self.output, txnr, command, data);
        txnr
    }

    /// One frame from the server, in a session not ended.
    fn answer(&mut self, frame: Frame) -> Event<T> {
        match (&frame.command, frame.txnr) {
            (Command::ServerClose, Txnr::HINT) => {
                self.phase = Phase::Ended(End::ServerClosed);
                Event::ServerClose
            }
            // librelp answers `close` with an empty rsp, no code at all.
            (Command::Rsp, txnr) if self.is_close_answer(txnr) => {
                self.phase = Phase::Ended(End::Closed);
                Event::Closed
            }
            (Command::Rsp, txnr) if txnr != Txnr::HINT => match Response::parse(&frame.data) {
                Ok(response) => self.response(txnr, response),
                Err(e) => self.protocol_error(e),
            },
            (command, txnr) => self.protocol_error(format!(
                "unexpected {} command from the server (transaction {txnr})",
                shown(command.name().as_bytes())
            )),
        }
    }

    fn response(&mut self, txnr: Txnr, response: Response) -> Event<T> {
        if matches!(self.phase, Phase::Opening { txnr: open } if open == txnr) {
            return self.opened(response);
        }
        match self.in_flight.pop_front() {
            Some(done) if done.txnr == txnr && response.ok() => {
                self.in_flight_bytes -= done.message.len();
                Event::Acked {
                    txnr,
                    tag: done.tag,
                }
            }
            Some(refused) if refused.txnr == txnr => {
                self.in_flight.push_front(refused);
                self.phase = Phase::Ended(End::Refused);
                Event::Refused { txnr, response }
            }
            other => {
                let awaited = match (&self.phase, &other) {
                    (Phase::Opening { txnr }, _) => txnr.to_string(),
                    (_, Some(f)) => f.txnr.to_string(),
                    (Phase::Closing { txnr }, None) => txnr.to_string(),
                    _ => "none".to_string(),
                };
                if let Some(unanswered) = other {
                    self.in_flight.push_front(unanswered);
                }
                self.protocol_error(format!("answer to transaction {txnr}, awaited: {awaited}"))
            }
        }
    }

    /// Whether an answer to `txnr` is the one to our `close`: it comes
    /// after every message's.
    fn is_close_answer(&self, txnr: Txnr) -> bool {
        matches!(self.phase, Phase::Closing { txnr: close } if close == txnr)
            && self.in_flight.is_empty()
    }

    fn opened(&mut self, response: Response) -> Event<T> {
        if !response.ok() {
            self.phase = Phase::Ended(End::OpenRefused);
            return Event::OpenRefused { response };
        }
        let server = Offers::parse(&response.data);
        let version = server.get("relp_version").and_then(|v| v.first());
        match version.map(|v| v.parse::<u32>()) {
            // A version above ours is one we cannot speak; ours is the lowest.
            Some(Ok(v)) if v == RELP_VERSION => {}
            _ => {
                return self.protocol_error(format!(
                    "the server offers relp_version {}, this client speaks {RELP_VERSION}",
                    version.map_or("(none)", |v| v.as_str())
                ));
            }
        }
        if !server
            .get("commands")
            .is_some_and(|c| c.iter().any(|c| c == "syslog"))
        {
            return self.protocol_error("the server does not offer the syslog command".into());
        }
        self.phase = Phase::Open {
            server: server.clone(),
        };
        Event::Opened { server }
    }

    fn protocol_error(&mut self, text: String) -> Event<T> {
        self.phase = Phase::Ended(End::ProtocolError);
        Event::ProtocolError(text)
    }
}

/// Bytes from the server, shown safely: printable ASCII as is, the rest
/// escaped, at most 200 octets.
fn shown(bytes: &[u8]) -> String {
    let mut text: String = bytes
        .iter()
        .take(200)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    if bytes.len() > 200 {
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(txnr: u32, command: Command, data: &[u8]) -> Frame {
        Frame {
            txnr: Txnr(txnr),
            command,
            data: data.to_vec(),
        }
    }

    fn encoded(frames: &[Frame]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frames {
            write_frame(&mut out, f.txnr, &f.command, &f.data);
        }
        out
    }

    fn parse_all(bytes: &[u8]) -> Result<Vec<Frame>, FrameError> {
        FrameReader::new(DEFAULT_MAX_DATA).frames(bytes)
    }

    #[test]
    fn frames_are_written_as_txnr_command_datalen_data_lf() {
        let mut out = Vec::new();
        write_frame(&mut out, Txnr(7), &Command::Syslog, b"<13>1 - hello");
        write_frame(&mut out, Txnr(8), &Command::Close, b"");
        assert_eq!(out, b"7 syslog 13 <13>1 - hello\n8 close 0\n");
    }

    #[test]
    fn frames_read_back_as_written_including_lf_and_binary_data() {
        let frames = vec![
            frame(1, Command::Open, b"relp_version=0\ncommands=syslog"),
            frame(2, Command::Syslog, b"a\nb\0\xff\n"),
            frame(0, Command::ServerClose, b""),
            frame(3, Command::parse(b"starttls").unwrap(), b""),
            frame(Txnr::MAX, Command::Rsp, b"200 OK"),
        ];
        assert_eq!(parse_all(&encoded(&frames)), Ok(frames));
    }

    #[test]
    fn frames_split_at_every_byte_read_the_same() {
        let frames = vec![
            frame(
                1,
                Command::Rsp,
                b"200 OK\nrelp_version=0\ncommands=syslog\n",
            ),
            frame(2, Command::Rsp, b"200 OK"),
            frame(0, Command::ServerClose, b""),
        ];
        let bytes = encoded(&frames);
        for cut in 0..=bytes.len() {
            let mut reader = FrameReader::new(DEFAULT_MAX_DATA);
            let mut got = reader.frames(&bytes[..cut]).expect("first part");
            got.extend(reader.frames(&bytes[cut..]).expect("second part"));
            assert_eq!(got, frames, "cut at {cut}");
        }
        let mut reader = FrameReader::new(DEFAULT_MAX_DATA);
        let got: Vec<Frame> = bytes
            .iter()
            .flat_map(|b| reader.frames(std::slice::from_ref(b)).expect("byte"))
            .collect();
        assert_eq!(got, frames, "a byte at a time");
    }

    #[test]
    fn a_datalen_above_the_limit_is_refused_before_its_data_arrives() {
        let mut reader = FrameReader::new(100);
        assert_eq!(
            reader.frames(b"1 syslog 999999999 "),
            Err(FrameError::DataTooLong {
                datalen: 999_999_999,
                max: 100
            })
        );
        assert!(reader.data.capacity() < 1000, "nothing allocated for it");
        assert_eq!(reader.frames(b"x"), Err(FrameError::AfterError));
    }

    #[test]
    fn a_frame_of_exactly_the_limit_is_read() {
        let data = vec![b'x'; 100];
        let bytes = encoded(&[frame(1, Command::Syslog, &data)]);
        assert_eq!(
            FrameReader::new(100).frames(&bytes),
            Ok(vec![frame(1, Command::Syslog, &data)])
        );
    }

    #[test]
    fn hostile_headers_are_errors_never_panics() {
        let cases: &[&[u8]] = &[
            b"\n",
            b" 1 rsp 0\n",
            b"x rsp 0\n",
            b"1234567890 rsp 0\n",
            b"1  rsp 0\n",
            b"1 r5p 0\n",
            b"1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 0\n",
            b"1 rsp \n",
            b"1 rsp 1234567890 ",
            b"1 rsp 0 \n",
            b"1 rsp 3\n",
            b"1 rsp 3 abcd\n",
            b"1 rsp 3 abc\r\n",
            b"1 rsp -1 a\n",
            b"\xff\xfe",
        ];
        for case in cases {
            assert!(parse_all(case).is_err(), "accepted {:?}", shown(case));
        }
    }

    #[test]
    fn random_bytes_never_panic_the_reader_or_the_client() {
        // A small xorshift: the same bytes every run.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"0123456789 \nrspokclsyogeOK2-=,\xff";
        for _ in 0..2000 {
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let _ = FrameReader::new(16).frames(&bytes);
            let mut client = Client::<()>::new(ClientConfig::default());
            let _ = client.received(&bytes);
            let _ = Response::parse(&bytes);
            let _ = Offers::parse(&bytes);
        }
    }

    #[test]
    fn txnr_wraps_from_999999999_to_1_never_0() {
        assert_eq!(Txnr(Txnr::MAX).next(), Txnr(1));
        assert_eq!(Txnr(1).next(), Txnr(2));
        assert_eq!(Txnr::new(1_000_000_000), None);
    }

    #[test]
    fn responses_parse_code_text_and_data() {
        let r = Response::parse(b"200 OK\nrelp_version=0\ncommands=syslog").unwrap();
        assert_eq!(
            (r.code, &r.text[..], &r.data[..]),
            (200, &b"OK"[..], &b"relp_version=0\ncommands=syslog"[..])
        );
        let r = Response::parse(b"500 queue full").unwrap();
        assert!(!r.ok());
        assert_eq!(r.describe(), "500 queue full");
        assert_eq!(Response::parse(b"200").map(|r| r.code), Ok(200));
        assert!(Response::parse(b"20").is_err());
        assert!(Response::parse(b"2x0 OK").is_err());
        assert!(Response::parse(b"200OK").is_err());
        let mut out = Vec::new();
        Response {
            code: 200,
            text: b"OK".to_vec(),
            data: b"commands=syslog".to_vec(),
        }
        .write(&mut out);
        assert_eq!(out, b"200 OK\ncommands=syslog");
    }

    #[test]
    fn offers_read_as_librelp_writes_them() {
        let o = Offers::parse(
            b"relp_version=0\nrelp_software=http://librelp.adiscon.com,1.11.0,librelp\ncommands=syslog\n",
        );
        assert_eq!(o.get("relp_version"), Some(&["0".to_string()][..]));
        assert_eq!(o.get("relp_software").map(<[String]>::len), Some(3));
        assert_eq!(o.get("commands"), Some(&["syslog".to_string()][..]));
        assert_eq!(o.get("absent"), None);
        let mut out = Vec::new();
        Offers::client().write(&mut out);
        assert_eq!(
            out,
            format!(
                "relp_version=0\nrelp_software=rill,{}\ncommands=syslog",
                env!("CARGO_PKG_VERSION")
            )
            .as_bytes()
        );
        assert_eq!(Offers::parse(&out), Offers::client());
    }

    /// The server's side of a frame, as bytes.
    fn server(frames: &[(u32, Command, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (txnr, command, data) in frames {
            write_frame(&mut out, Txnr(*txnr), command, data);
        }
        out
    }

    const OPEN_OK: &[u8] = b"200 OK\nrelp_version=0\nrelp_software=librelp\ncommands=syslog\n";

    /// A client past `open`, its output drained.
    fn opened(config: ClientConfig) -> Client<u32> {
        let mut c = Client::new(config);
        let open = c.output().to_vec();
        assert!(open.starts_with(b"1 open "), "{}", shown(&open));
        c.consumed(open.len());
        let events = c.received(&server(&[(1, Command::Rsp, OPEN_OK)]));
        assert!(matches!(events[..], [Event::Opened { .. }]), "{events:?}");
        assert_eq!(c.state(), State::Open);
        c
    }

    #[test]
    fn a_client_sends_open_first_and_nothing_before_the_answer() {
        let mut c = Client::<u32>::new(ClientConfig::default());
        assert_eq!(c.state(), State::Opening);
        assert_eq!(c.send(b"m", 0), Err(SendError::NotOpen));
        assert_eq!(c.close(), Err(SendError::NotOpen));
        let mut reader = FrameReader::new(DEFAULT_MAX_DATA);
        let frames = reader.frames(c.output()).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(
            (frames[0].txnr, &frames[0].command),
            (Txnr(1), &Command::Open)
        );
        assert_eq!(Offers::parse(&frames[0].data), Offers::client());
    }

    #[test]
    fn a_server_without_the_syslog_command_ends_the_session() {
        let mut c = Client::<u32>::new(ClientConfig::default());
        let events = c.received(&server(&[(
            1,
            Command::Rsp,
            b"200 OK\nrelp_version=0\ncommands=",
        )]));
        assert!(
            matches!(events[..], [Event::ProtocolError(_)]),
            "{events:?}"
        );
        assert_eq!(c.state(), State::Ended(End::ProtocolError));
    }

    #[test]
    fn a_newer_or_missing_relp_version_ends_the_session() {
        for offers in [
            &b"200 OK\nrelp_version=1\ncommands=syslog"[..],
            b"200 OK\ncommands=syslog",
        ] {
            let mut c = Client::<u32>::new(ClientConfig::default());
            let events = c.received(&server(&[(1, Command::Rsp, offers)]));
            assert!(
                matches!(events[..], [Event::ProtocolError(_)]),
                "{events:?}"
            );
        }
    }

    #[test]
    fn an_open_refused_says_the_servers_text() {
        let mut c = Client::<u32>::new(ClientConfig::default());
        let events = c.received(&server(&[(1, Command::Rsp, b"500 error 10013 on connect")]));
        match &events[..] {
            [Event::OpenRefused { response }] => {
                assert_eq!(response.describe(), "500 error 10013 on connect")
            }
            _ => panic!("{events:?}"),
        }
        assert_eq!(c.state(), State::Ended(End::OpenRefused));
    }

    #[test]
    fn messages_are_acked_in_order_and_free_the_window() {
        let mut c = opened(ClientConfig {
            window: Window {
                messages: 3,
                bytes: 1000,
            },
            max_data: 1000,
        });
        assert_eq!(c.send(b"one", 10), Ok(Txnr(2)));
        assert_eq!(c.send(b"two", 11), Ok(Txnr(3)));
        assert_eq!(c.send(b"three", 12), Ok(Txnr(4)));
        assert_eq!(c.send(b"four", 13), Err(SendError::WindowFull));
        assert_eq!(
            c.output(),
            b"2 syslog 3 one\n3 syslog 3 two\n4 syslog 5 three\n"
        );
        c.consumed(5);
        assert!(c.output().starts_with(b"log 3 one\n"));
        c.consumed(usize::MAX);
        assert!(c.output().is_empty());
        let events = c.received(&server(&[
            (2, Command::Rsp, b"200 OK"),
            (3, Command::Rsp, b"200 OK"),
        ]));
        assert_eq!(
            events,
            vec![
                Event::Acked {
                    txnr: Txnr(2),
                    tag: 10
                },
                Event::Acked {
                    txnr: Txnr(3),
                    tag: 11
                }
            ]
        );
        assert_eq!(c.send(b"four", 13), Ok(Txnr(5)));
        assert_eq!(c.in_flight(), 2);
    }

    #[test]
    fn the_window_in_bytes_holds_but_one_message_may_exceed_it_alone() {
        let mut c = opened(ClientConfig {
            window: Window {
                messages: 100,
                bytes: 10,
            },
            max_data: 100,
        });
        assert_eq!(c.send(&[b'x'; 20], 1), Ok(Txnr(2)));
        assert_eq!(c.send(b"y", 2), Err(SendError::WindowFull));
        c.received(&server(&[(2, Command::Rsp, b"200 OK")]));
        assert_eq!(c.send(&[b'x'; 6], 3), Ok(Txnr(3)));
        assert_eq!(c.send(&[b'x'; 4], 4), Ok(Txnr(4)));
        assert_eq!(c.send(b"z", 5), Err(SendError::WindowFull));
        assert_eq!(
            c.send(&[b'x'; 101], 6),
            Err(SendError::TooLarge { len: 101, max: 100 })
        );
    }

    #[test]
    fn a_refusal_ends_the_session_and_the_refused_message_stays_first_unanswered() {
        let mut c = opened(ClientConfig::default());
        for (i, m) in [&b"a"[..], b"b", b"c"].iter().enumerate() {
            c.send(m, i as u32).unwrap();
        }
        let events = c.received(&server(&[
            (2, Command::Rsp, b"200 OK"),
            (3, Command::Rsp, b"500 message too long"),
            (4, Command::Rsp, b"200 OK"),
        ]));
        assert_eq!(events.len(), 2, "{events:?}");
        match &events[1] {
            Event::Refused { txnr, response } => {
                assert_eq!(
                    (*txnr, response.describe()),
                    (Txnr(3), "500 message too long".into())
                )
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(c.state(), State::Ended(End::Refused));
        assert_eq!(c.send(b"d", 9), Err(SendError::NotOpen));
        let left: Vec<_> = c
            .into_unanswered()
            .into_iter()
            .map(|u| (u.message, u.tag))
            .collect();
        assert_eq!(left, vec![(b"b".to_vec(), 1), (b"c".to_vec(), 2)]);
    }

    #[test]
    fn serverclose_ends_the_session_with_every_unanswered_message_kept_in_order() {
        let mut c = opened(ClientConfig::default());
        for i in 0..5u32 {
            c.send(format!("m{i}").as_bytes(), i).unwrap();
        }
        let events = c.received(&server(&[
            (2, Command::Rsp, b"200 OK"),
            (0, Command::ServerClose, b""),
            (3, Command::Rsp, b"200 OK"),
        ]));
        assert_eq!(
            events,
            vec![
                Event::Acked {
                    txnr: Txnr(2),
                    tag: 0
                },
                Event::ServerClose
            ]
        );
        let tags: Vec<u32> = c.into_unanswered().into_iter().map(|u| u.tag).collect();
        assert_eq!(tags, vec![1, 2, 3, 4]);
    }

    #[test]
    fn answers_out_of_order_or_unasked_are_protocol_errors_and_ack_nothing() {
        for (txnr, command, data) in [
            (3u32, Command::Rsp, &b"200 OK"[..]),
            (9, Command::Rsp, b"200 OK"),
            (0, Command::Rsp, b"200 OK"),
            (2, Command::Syslog, b"<13>1 - forged"),
            (2, Command::Rsp, b"OK"),
            (0, Command::parse(b"abort").unwrap(), b""),
        ] {
            let mut c = opened(ClientConfig::default());
            c.send(b"a", 1).unwrap();
            c.send(b"b", 2).unwrap();
            let events = c.received(&server(&[(txnr, command, data)]));
            assert!(
                matches!(events[..], [Event::ProtocolError(_)]),
                "{events:?}"
            );
            assert_eq!(c.into_unanswered().len(), 2);
        }
    }

    #[test]
    fn close_is_answered_after_every_message() {
        let mut c = opened(ClientConfig::default());
        c.send(b"a", 1).unwrap();
        c.close().unwrap();
        assert_eq!(c.send(b"b", 2), Err(SendError::NotOpen));
        assert!(c.output().ends_with(b"3 close 0\n"));
        let events = c.received(&server(&[
            (2, Command::Rsp, b"200 OK"),
            (3, Command::Rsp, b"200 OK"),
        ]));
        assert_eq!(
            events,
            vec![
                Event::Acked {
                    txnr: Txnr(2),
                    tag: 1
                },
                Event::Closed
            ]
        );
        assert_eq!(c.state(), State::Ended(End::Closed));
        assert!(c.into_unanswered().is_empty());
    }

    #[test]
    fn close_answered_by_an_empty_rsp_as_librelp_does_is_closed() {
        let mut c = opened(ClientConfig::default());
        c.close().unwrap();
        assert_eq!(c.received(b"2 rsp 0\n"), vec![Event::Closed]);
    }

    #[test]
    fn answers_split_at_every_byte_give_the_same_events() {
        let open = server(&[(1, Command::Rsp, OPEN_OK)]);
        for cut in 0..=open.len() {
            let mut c = Client::<u32>::new(ClientConfig::default());
            let mut events = c.received(&open[..cut]);
            events.extend(c.received(&open[cut..]));
            assert!(matches!(events[..], [Event::Opened { .. }]), "cut at {cut}");
        }
        let answers = server(&[
            (2, Command::Rsp, b"200 OK"),
            (3, Command::Rsp, b"200 OK"),
            (4, Command::Rsp, b"200 OK"),
            (0, Command::ServerClose, b""),
        ]);
        for cut in 0..=answers.len() {
            let mut c = opened(ClientConfig::default());
            for i in 0..3 {
                c.send(b"m", i).unwrap();
            }
            let mut events = c.received(&answers[..cut]);
            events.extend(c.received(&answers[cut..]));
            assert_eq!(
                events,
                vec![
                    Event::Acked {
                        txnr: Txnr(2),
                        tag: 0
                    },
                    Event::Acked {
                        txnr: Txnr(3),
                        tag: 1
                    },
                    Event::Acked {
                        txnr: Txnr(4),
                        tag: 2
                    },
                    Event::ServerClose
                ],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn txnrs_continue_past_999999999_at_1() {
        let mut c = opened(ClientConfig::default());
        c.next_txnr = Txnr(Txnr::MAX);
        assert_eq!(c.send(b"a", 1), Ok(Txnr(Txnr::MAX)));
        assert_eq!(c.send(b"b", 2), Ok(Txnr(1)));
        let events = c.received(&server(&[
            (Txnr::MAX, Command::Rsp, b"200 OK"),
            (1, Command::Rsp, b"200 OK"),
        ]));
        assert_eq!(events.len(), 2, "{events:?}");
    }
}
