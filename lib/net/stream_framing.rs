//! Syslog over a byte stream (TCP, TLS, a UCSPI connection on stdin): the
//! two framings of RFC 6587, detected per message, taken apart
//! incrementally with bounded memory.
//!
//! # The framings
//!
//! ```text
//! OCTET-COUNTED  = MSG-LEN SP MSG          MSG-LEN = 1*12DIGIT, the octets of MSG
//! NON-TRANSPARENT = MSG TRAILER            TRAILER = LF, or NUL when `nul_ends_message`
//! ```
//!
//! A frame whose first octet is a digit is octet-counted; any other first
//! octet starts a non-transparent frame. This is rsyslog's rule (imtcp:
//! `runtime/tcps_sess.c` `processDataRcvd`; imptcp: `plugins/imptcp/imptcp.c`
//! `processDataRcvd`, both at rsyslog commit ee72adcd), applied afresh at the
//! start of every frame, so one connection may mix the two. A syslog
//! message proper starts with `<`, so the rule never misreads one.
//!
//! What we match in rsyslog, decision by decision:
//!
//! - the octet count is read up to the first non-digit, which should be
//!   SP; an octet-counted MSG is taken whole, LF, NUL and CR included;
//! - a non-transparent frame ends at LF (and at NUL when
//!   `nul_ends_message`, rsyslog's `AddtlFrameDelimiter="0"`); a CR
//!   before the LF stays in the message, as in rsyslog: the framing
//!   changes no octet, the parser above decides;
//! - a frame of zero octets (an empty line, LF LF) is no message and is
//!   dropped, as rsyslog's "discarding zero-sized message";
//! - a leading SP starts a non-transparent frame (rsyslog's Cisco
//!   `SPFramingFix` is off by default);
//! - a count of 0 is no octet count: the frame is read as non-transparent,
//!   the digits being the start of the message;
//! - a message longer than `max_message` is delivered cut to
//!   `max_message` octets with `truncated` set, and the rest of its frame
//!   skipped (rsyslog's `discardTruncatedMsg="on"`);
//! - at the end of the stream, a non-transparent frame without its LF is
//!   delivered (rsyslog: "legacy syslog/tcp message - processing"); an
//!   octet-counted frame cut short is an error (rsyslog: "Incomplete frame
//!   at end of stream").
//!
//! Where we differ, for a hostile sender:
//!
//! - an octet count above `max_frame` is a connection error
//!   (`FramingError::CountTooLarge`) found as soon as the digits exceed
//!   it, before anything is allocated; rsyslog instead switches to
//!   non-transparent framing and reads on. More than 12 digits (leading
//!   zeros) is the same error.
//! - a count ended by anything but SP: rsyslog logs an error, consumes
//!   that octet and counts on, which swallows the start of a message
//!   whose text merely starts with a digit (`123abc LF`). We read such a
//!   frame as non-transparent instead, the digits and that octet being
//!   the start of the message; nothing the sender sent is dropped. A
//!   count of 0 likewise keeps its SP (rsyslog drops it).
//!
//! # Memory
//!
//! The deframer keeps at most `max_message` octets of a message (plus at
//! most 12 digits of a count): a peer that sends half a frame and stops,
//! or a frame of any length, holds no more; between messages it keeps at
//! most 4 KiB of buffer. Input is consumed at whatever split it arrives;
//! a message wholly inside one input chunk is delivered from it without
//! a copy.

use memchr::{memchr, memchr2};

/// The bounds of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest message delivered whole; longer ones are cut.
    pub max_message: usize,
    /// The largest octet count accepted; a larger one ends the connection.
    /// At least `max_message` (raised to it if less).
    pub max_frame: usize,
    /// Whether NUL ends a non-transparent frame as LF does.
    pub nul_ends_message: bool,
}

impl Default for Limits {
    /// rsyslog's defaults: messages of 8 KiB, frames of at most 200000
    /// octets; NUL ends a message (RFC 6587 3.4.2 mentions senders that
    /// use it).
    fn default() -> Limits {
        Limits {
            max_message: 8192,
            max_frame: 200_000,
            nul_ends_message: true,
        }
    }
}

/// How a message was framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    OctetCounted,
    NonTransparent,
}

/// One message out of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The message octets, without count or trailer.
    pub bytes: &'a [u8],
    /// The message was longer than `max_message` and is cut to it.
    pub truncated: bool,
    pub framing: Framing,
    /// The octet count of an octet-counted frame (a cut message's true
    /// length); `None` for a non-transparent frame, whose length is not
    /// known when a cut message is delivered (it is delivered at once,
    /// not held while the rest of the frame is skipped).
    pub frame_len: Option<u64>,
}

/// Why a connection cannot go on (or, at its end, lost a message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramingError {
    /// An octet count above `max_frame` (the count seen so far, at least),
    /// or longer than 12 digits.
    CountTooLarge { count: u64, max: usize },
    /// The stream ended inside an octet-counted frame: `missing` octets
    /// of `count` never came (`count` is 0 when it ended in the count).
    IncompleteFrame { count: u64, missing: u64 },
}

impl std::fmt::Display for FramingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            FramingError::CountTooLarge { count, max } => {
                write!(f, "octet count {count} is above the limit of {max} octets")
            }
            FramingError::IncompleteFrame { count: 0, .. } => {
                write!(f, "stream ended inside an octet count")
            }
            FramingError::IncompleteFrame { count, missing } => write!(
                f,
                "stream ended {missing} octets short of a frame of {count} octets"
            ),
        }
    }
}

impl std::error::Error for FramingError {}

/// The buffer a connection keeps between messages: a big one is given
/// back, so that many idle connections hold little.
const KEPT_CAPACITY: usize = 4096;

/// The most digits an octet count may have.
const MAX_COUNT_DIGITS: usize = 12;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between frames.
    Start,
    /// Reading the digits of a count (kept in `digits`).
    Count,
    /// Inside an octet-counted MSG: `remaining` octets to go.
    Counted {
        remaining: u64,
    },
    /// Inside a non-transparent frame.
    Open,
    /// Skipping the rest of a frame whose message was delivered cut.
    SkipCounted {
        remaining: u64,
    },
    SkipOpen,
}

/// The incremental deframer of one connection.
#[derive(Debug)]
pub struct Deframer {
    limits: Limits,
    state: State,
    /// The message so far, never more than `max_message` octets.
    message: Vec<u8>,
    digits: [u8; MAX_COUNT_DIGITS],
    digit_count: usize,
    /// The octet count of the frame being read.
    frame_count: u64,
    /// Set once `push` returned an error: all further input is refused.
    failed: Option<FramingError>,
}

impl Deframer {
    pub fn new(limits: Limits) -> Deframer {
        let limits = Limits {
            max_message: limits.max_message.max(1),
            max_frame: limits.max_frame.max(limits.max_message.max(1)),
            ..limits
        };
        Deframer {
            limits,
            state: State::Start,
            message: Vec::new(),
            digits: [0; MAX_COUNT_DIGITS],
            digit_count: 0,
            frame_count: 0,
            failed: None,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Octets of an unfinished message held (at most `max_message`).
    pub fn buffered(&self) -> usize {
        self.message.len() + self.digit_count
    }

    /// Whether the stream is between frames (nothing would be lost if it
    /// ended now).
    pub fn at_frame_start(&self) -> bool {
        self.state == State::Start
    }

    /// Takes in the next octets of the stream, delivering every message
    /// they complete, in order. After an error the connection is done:
    /// every later call returns the same error.
    pub fn push(
        &mut self,
        mut input: &[u8],
        mut deliver: impl FnMut(Message<'_>),
    ) -> Result<(), FramingError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        while !input.is_empty() {
            if let Some(used) = self.whole_counted_frame(input, &mut deliver) {
                input = &input[used..];
                continue;
            }
            let used = match self.step(input, &mut deliver) {
                Ok(used) => used,
                Err(e) => {
                    self.failed = Some(e);
                    self.message = Vec::new();
                    self.digit_count = 0;
                    return Err(e);
                }
            };
            input = &input[used..];
        }
        Ok(())
    }

    /// The stream ended: delivers a non-transparent frame that lacked its
    /// trailer; an octet-counted frame cut short is an error. The deframer
    /// is then ready for a new stream.
    pub fn finish(&mut self, mut deliver: impl FnMut(Message<'_>)) -> Result<(), FramingError> {
        if let Some(e) = self.failed.take() {
            self.reset();
            return Err(e);
        }
        let result = match self.state {
            State::Start | State::SkipOpen => Ok(()),
            State::Open => {
                self.deliver_buffered(Framing::NonTransparent, false, &mut deliver);
                Ok(())
            }
            State::Count => Err(FramingError::IncompleteFrame {
                count: 0,
                missing: 0,
            }),
            State::Counted { remaining } | State::SkipCounted { remaining } => {
                Err(FramingError::IncompleteFrame {
                    count: self.frame_count,
                    missing: remaining,
                })
            }
        };
        self.reset();
        result
    }

    fn reset(&mut self) {
        self.state = State::Start;
        self.message.clear();
        self.digit_count = 0;
    }

    /// The common case in one step: between frames, a valid octet count
    /// and the whole frame it counts, no longer than a message, at the
    /// start of `input`: delivered where it lies; returns the octets used.
    /// Anything else is left to `step`, which reaches the same result
    /// octet by octet.
    fn whole_counted_frame(
        &mut self,
        input: &[u8],
        deliver: &mut impl FnMut(Message<'_>),
    ) -> Option<usize> {
        if self.state != State::Start {
            return None;
        }
        let head = &input[..input.len().min(MAX_COUNT_DIGITS + 1)];
        let digits = head.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || head.get(digits) != Some(&b' ') {
            return None;
        }
        let count = head[..digits]
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        let len = usize::try_from(count).ok()?;
        let start = digits + 1;
        if count == 0 || count > self.limits.max_frame as u64 || len > self.limits.max_message {
            return None;
        }
        let bytes = input.get(start..start + len)?;
        self.frame_count = count;
        deliver(Message {
            bytes,
            truncated: false,
            framing: Framing::OctetCounted,
            frame_len: Some(count),
        });
        Some(start + len)
    }

    /// Consumes a prefix of `input` (at least one octet); returns its length.
    fn step(
        &mut self,
        input: &[u8],
        deliver: &mut impl FnMut(Message<'_>),
    ) -> Result<usize, FramingError> {
        match self.state {
            State::Start => {
                self.state = if input[0].is_ascii_digit() {
                    State::Count
                } else {
                    State::Open
                };
                Ok(0)
            }
            State::Count => self.step_count(input, deliver),
            State::Counted { remaining } => Ok(self.step_counted(input, remaining, deliver)),
            State::Open => Ok(self.step_open(input, deliver)),
            State::SkipCounted { remaining } => {
                let used = usize::try_from(remaining).map_or(input.len(), |r| r.min(input.len()));
                let left = remaining - used as u64;
                self.state = if left == 0 {
                    State::Start
                } else {
                    State::SkipCounted { remaining: left }
                };
                Ok(used)
            }
            State::SkipOpen => Ok(match self.find_trailer(input) {
                Some(at) => {
                    self.state = State::Start;
                    at + 1
                }
                None => input.len(),
            }),
        }
    }

    fn step_count(
        &mut self,
        input: &[u8],
        deliver: &mut impl FnMut(Message<'_>),
    ) -> Result<usize, FramingError> {
        let digits = input.iter().take_while(|b| b.is_ascii_digit()).count();
        let max = self.limits.max_frame;
        // Digit by digit, so that the error is the same at any split.
        for &digit in &input[..digits] {
            if self.digit_count == MAX_COUNT_DIGITS {
                let count = self.count();
                return Err(FramingError::CountTooLarge { count, max });
            }
            self.digits[self.digit_count] = digit;
            self.digit_count += 1;
            let count = self.count();
            if count > max as u64 {
                return Err(FramingError::CountTooLarge { count, max });
            }
        }
        let count = self.count();
        if digits == input.len() {
            return Ok(digits);
        }
        // `input[digits]` ends the count.
        if input[digits] == b' ' && count > 0 {
            self.digit_count = 0;
            self.frame_count = count;
            self.message.clear();
            self.state = State::Counted { remaining: count };
            return Ok(digits + 1);
        }
        // Not an octet count after all: the digits start a non-transparent
        // message, and the octet after them is read as part of it.
        let max_message = self.limits.max_message;
        self.message.clear();
        self.message
            .extend_from_slice(&self.digits[..self.digit_count.min(max_message)]);
        let cut = self.digit_count > max_message;
        self.digit_count = 0;
        self.state = State::Open;
        if cut {
            self.state = State::SkipOpen;
            self.deliver_buffered(Framing::NonTransparent, true, deliver);
        }
        Ok(digits)
    }

    fn count(&self) -> u64 {
        self.digits[..self.digit_count]
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'))
    }

    fn step_counted(
        &mut self,
        input: &[u8],
        remaining: u64,
        deliver: &mut impl FnMut(Message<'_>),
    ) -> usize {
        let max_message = self.limits.max_message;
        let available = usize::try_from(remaining).map_or(input.len(), |r| r.min(input.len()));
        let left = remaining - available as u64;
        if self.message.is_empty() && left == 0 && available <= max_message {
            self.state = State::Start;
            deliver(Message {
                bytes: &input[..available],
                truncated: false,
                framing: Framing::OctetCounted,
                frame_len: Some(self.frame_count),
            });
            return available;
        }
        // Octets past what a message may hold are skipped with the frame.
        let keep = available.min(max_message - self.message.len());
        self.message.extend_from_slice(&input[..keep]);
        let truncated = self.frame_count > max_message as u64;
        if left == 0 {
            self.state = State::Start;
            self.deliver_buffered(Framing::OctetCounted, truncated, deliver);
        } else if self.message.len() == max_message {
            self.state = State::SkipCounted { remaining: left };
            self.deliver_buffered(Framing::OctetCounted, truncated, deliver);
        } else {
            self.state = State::Counted { remaining: left };
        }
        available
    }

    fn find_trailer(&self, input: &[u8]) -> Option<usize> {
        if self.limits.nul_ends_message {
            memchr2(b'\n', 0, input)
        } else {
            memchr(b'\n', input)
        }
    }

    fn step_open(&mut self, input: &[u8], deliver: &mut impl FnMut(Message<'_>)) -> usize {
        let room = self.limits.max_message - self.message.len();
        match self.find_trailer(input) {
            Some(at) if at <= room => {
                self.state = State::Start;
                if self.message.is_empty() {
                    if at > 0 {
                        deliver(Message {
                            bytes: &input[..at],
                            truncated: false,
                            framing: Framing::NonTransparent,
                            frame_len: None,
                        });
                    }
                } else {
                    self.message.extend_from_slice(&input[..at]);
                    self.deliver_buffered(Framing::NonTransparent, false, deliver);
                }
                at + 1
            }
            Some(at) => {
                // Longer than a message may be: cut, and the frame ends here.
                self.message.extend_from_slice(&input[..room]);
                self.deliver_buffered(Framing::NonTransparent, true, deliver);
                self.state = State::Start;
                at + 1
            }
            None if input.len() <= room => {
                self.message.extend_from_slice(input);
                input.len()
            }
            None => {
                self.message.extend_from_slice(&input[..room]);
                self.deliver_buffered(Framing::NonTransparent, true, deliver);
                self.state = State::SkipOpen;
                input.len()
            }
        }
    }

    fn deliver_buffered(
        &mut self,
        framing: Framing,
        truncated: bool,
        deliver: &mut impl FnMut(Message<'_>),
    ) {
        if !self.message.is_empty() {
            let frame_len = match framing {
                Framing::OctetCounted => Some(self.frame_count),
                Framing::NonTransparent => None,
            };
            deliver(Message {
                bytes: &self.message,
                truncated,
                framing,
                frame_len,
            });
        }
        self.message.clear();
        if self.message.capacity() > KEPT_CAPACITY {
            self.message = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::rand::Rng;

    type Got = (Vec<u8>, bool, Framing);

    fn limits(max_message: usize, max_frame: usize) -> Limits {
        Limits {
            max_message,
            max_frame,
            nul_ends_message: true,
        }
    }

    /// Feeds `input` in chunks of `split` octets; returns the messages,
    /// the first error, and what `finish` said.
    fn run(l: Limits, input: &[u8], split: usize) -> (Vec<Got>, Result<(), FramingError>) {
        let mut d = Deframer::new(l);
        let mut got = Vec::new();
        let mut push = |m: Message<'_>| got.push((m.bytes.to_vec(), m.truncated, m.framing));
        for chunk in input.chunks(split.max(1)) {
            if let Err(e) = d.push(chunk, &mut push) {
                return (got, Err(e));
            }
            assert!(d.buffered() <= l.max_message.max(MAX_COUNT_DIGITS));
        }
        let end = d.finish(&mut push);
        (got, end)
    }

    /// The same messages at every split of the input.
    fn deframe(l: Limits, input: &[u8]) -> (Vec<Got>, Result<(), FramingError>) {
        let whole = run(l, input, input.len());
        for split in 1..=input.len().min(20) {
            assert_eq!(run(l, input, split), whole, "split {split}");
        }
        whole
    }

    fn msgs(input: &[u8]) -> Vec<Vec<u8>> {
        let (got, end) = deframe(Limits::default(), input);
        assert_eq!(end, Ok(()));
        got.into_iter().map(|g| g.0).collect()
    }

    #[test]
    fn a_frame_starting_with_a_digit_is_octet_counted() {
        let (got, end) = deframe(Limits::default(), b"11 <13>1 hello5 <1>ab");
        assert_eq!(end, Ok(()));
        assert_eq!(
            got,
            vec![
                (b"<13>1 hello".to_vec(), false, Framing::OctetCounted),
                (b"<1>ab".to_vec(), false, Framing::OctetCounted),
            ]
        );
    }

    #[test]
    fn any_other_frame_ends_at_lf() {
        let (got, _) = deframe(Limits::default(), b"<13>a b\n<14>c\n");
        assert_eq!(
            got,
            vec![
                (b"<13>a b".to_vec(), false, Framing::NonTransparent),
                (b"<14>c".to_vec(), false, Framing::NonTransparent),
            ]
        );
    }

    #[test]
    fn the_framings_may_alternate_message_by_message() {
        assert_eq!(
            msgs(b"<1>x\n3 <2>4 <3>\n<4>y\n"),
            vec![
                b"<1>x".to_vec(),
                b"<2>".to_vec(),
                b"<3>\n".to_vec(),
                b"<4>y".to_vec()
            ]
        );
    }

    #[test]
    fn an_octet_counted_message_keeps_lf_nul_and_cr() {
        assert_eq!(msgs(b"7 a\nb\0c\r\n"), vec![b"a\nb\0c\r\n".to_vec()]);
    }

    #[test]
    fn nul_ends_a_non_transparent_frame_when_asked() {
        assert_eq!(
            msgs(b"<1>a\0<2>b\n"),
            vec![b"<1>a".to_vec(), b"<2>b".to_vec()]
        );
        let l = Limits {
            nul_ends_message: false,
            ..Limits::default()
        };
        let (got, _) = deframe(l, b"<1>a\0<2>b\n");
        assert_eq!(got[0].0, b"<1>a\0<2>b".to_vec());
    }

    #[test]
    fn cr_before_lf_stays_in_the_message() {
        assert_eq!(msgs(b"<1>a\r\n"), vec![b"<1>a\r".to_vec()]);
    }

    #[test]
    fn empty_frames_are_no_messages() {
        assert_eq!(msgs(b"\n\n<1>a\n\0\n"), vec![b"<1>a".to_vec()]);
    }

    #[test]
    fn a_leading_space_starts_a_non_transparent_frame() {
        assert_eq!(msgs(b" <1>a\n"), vec![b" <1>a".to_vec()]);
    }

    #[test]
    fn digits_not_ended_by_a_space_are_the_start_of_a_message() {
        assert_eq!(
            msgs(b"123abc\n42\n6 <1>xyz"),
            vec![b"123abc".to_vec(), b"42".to_vec(), b"<1>xyz".to_vec()]
        );
    }

    #[test]
    fn a_count_of_zero_is_read_as_message_text() {
        assert_eq!(msgs(b"0 hello\n"), vec![b"0 hello".to_vec()]);
    }

    #[test]
    fn a_long_non_transparent_message_is_cut_and_the_rest_of_its_frame_skipped() {
        let (got, end) = deframe(limits(4, 100), b"<1>abcdef\n<2>g\n<3>hijklmn");
        assert_eq!(end, Ok(()));
        assert_eq!(
            got,
            vec![
                (b"<1>a".to_vec(), true, Framing::NonTransparent),
                (b"<2>g".to_vec(), false, Framing::NonTransparent),
                (b"<3>h".to_vec(), true, Framing::NonTransparent),
            ]
        );
    }

    #[test]
    fn a_message_of_exactly_the_maximum_is_whole() {
        let (got, _) = deframe(limits(4, 100), b"<1>a\n4 <2>b");
        assert_eq!(got[0], (b"<1>a".to_vec(), false, Framing::NonTransparent));
        assert_eq!(got[1], (b"<2>b".to_vec(), false, Framing::OctetCounted));
    }

    #[test]
    fn a_long_octet_counted_message_is_cut_and_the_rest_of_its_frame_skipped() {
        let (got, end) = deframe(limits(4, 100), b"10 <1>abcdefg6 <2>xyz");
        assert_eq!(end, Ok(()));
        assert_eq!(
            got,
            vec![
                (b"<1>a".to_vec(), true, Framing::OctetCounted),
                (b"<2>x".to_vec(), true, Framing::OctetCounted),
            ]
        );
        let mut lengths = Vec::new();
        let mut d = Deframer::new(limits(4, 100));
        d.push(b"10 <1>abcdefg4 <2>x<3>y\n", |m| lengths.push(m.frame_len))
            .expect("push");
        assert_eq!(lengths, vec![Some(10), Some(4), None]);
    }

    #[test]
    fn a_count_above_the_frame_limit_ends_the_connection_before_its_octets_come() {
        let l = limits(100, 1000);
        let (got, end) = run(l, b"<1>a\n1001 ", 1);
        assert_eq!(got.len(), 1);
        assert_eq!(
            end,
            Err(FramingError::CountTooLarge {
                count: 1001,
                max: 1000
            })
        );
        // Found in the digits, without waiting for the SP.
        let mut d = Deframer::new(l);
        assert!(d.push(b"99999", |_| {}).is_err());
        assert_eq!(d.buffered(), 0);
        // And every later push is refused.
        assert!(
            d.push(b"<1>x\n", |_| panic!("delivered after an error"))
                .is_err()
        );
    }

    #[test]
    fn a_count_of_more_than_twelve_digits_ends_the_connection() {
        let (_, end) = run(Limits::default(), b"0000000000001 x", 3);
        assert!(matches!(end, Err(FramingError::CountTooLarge { .. })));
        let (_, end) = run(Limits::default(), &[b'9'; 10_000], 7);
        assert!(matches!(end, Err(FramingError::CountTooLarge { .. })));
    }

    #[test]
    fn a_stream_ending_inside_an_octet_counted_frame_is_an_error() {
        let (got, end) = deframe(Limits::default(), b"4 <1>a10 <2>");
        assert_eq!(got.len(), 1);
        assert_eq!(
            end,
            Err(FramingError::IncompleteFrame {
                count: 10,
                missing: 7
            })
        );
        let (_, end) = deframe(Limits::default(), b"12");
        assert_eq!(
            end,
            Err(FramingError::IncompleteFrame {
                count: 0,
                missing: 0
            })
        );
    }

    #[test]
    fn a_stream_ending_inside_a_non_transparent_frame_delivers_it() {
        assert_eq!(
            msgs(b"<1>a\n<2>tail"),
            vec![b"<1>a".to_vec(), b"<2>tail".to_vec()]
        );
    }

    #[test]
    fn a_peer_dribbling_one_endless_frame_holds_at_most_one_message() {
        let l = limits(64, 1 << 20);
        let mut d = Deframer::new(l);
        let mut n = 0;
        for _ in 0..100_000 {
            d.push(b"x", |_| n += 1).expect("push");
            assert!(d.buffered() <= 64);
        }
        assert_eq!(n, 1, "one cut message, the rest skipped");
        let mut d = Deframer::new(l);
        d.push(b"1048576 ", |_| {}).expect("count");
        for _ in 0..100_000 {
            d.push(b"y", |_| {}).expect("push");
            assert!(d.buffered() <= 64);
        }
    }

    #[test]
    fn a_connection_between_messages_keeps_no_big_buffer() {
        let mut d = Deframer::new(limits(100_000, 200_000));
        d.push(&[b'x'; 50_000], |_| {}).expect("push");
        assert!(d.message.capacity() >= 50_000);
        d.push(b"\n", |m| assert_eq!(m.bytes.len(), 50_000))
            .expect("push");
        assert!(d.message.capacity() <= KEPT_CAPACITY);
    }

    #[test]
    fn a_message_wholly_in_one_chunk_is_not_copied() {
        let input = b"<1>abc\n";
        let mut d = Deframer::new(Limits::default());
        d.push(input, |m| assert_eq!(m.bytes.as_ptr(), input.as_ptr()))
            .expect("push");
    }

    #[test]
    fn random_input_at_random_splits_never_panics_and_stays_bounded() {
        let mut rng = Rng::new(0x5eed_1234);
        let alphabet = b"0123456789 \n\0\r<>a";
        for _ in 0..2_000 {
            let len = (rng.next() % 300) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    let r = rng.next();
                    if r.is_multiple_of(4) {
                        (r >> 8) as u8
                    } else {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    }
                })
                .collect();
            let l = limits(1 + (rng.next() % 40) as usize, 60);
            let whole = run(l, &input, input.len());
            for got in &whole.0 {
                assert!(!got.0.is_empty() && got.0.len() <= l.max_message);
            }
            let split = 1 + (rng.next() % 17) as usize;
            assert_eq!(
                run(l, &input, split),
                whole,
                "input {input:?} split {split}"
            );
        }
    }

    #[test]
    fn well_framed_messages_come_out_as_they_went_in() {
        let mut rng = Rng::new(42);
        let mut input = Vec::new();
        let mut want = Vec::new();
        for i in 0..500 {
            let len = 1 + (rng.next() % 100) as usize;
            let mut m: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if i % 2 == 0 {
                input.extend_from_slice(format!("{} ", m.len()).as_bytes());
                input.extend_from_slice(&m);
            } else {
                m.retain(|&b| b != b'\n' && b != 0);
                m.insert(0, b'<');
                input.extend_from_slice(&m);
                input.push(b'\n');
            }
            want.push(m);
        }
        for split in [1, 2, 3, 7, 64, 4096, input.len()] {
            let (got, end) = run(Limits::default(), &input, split);
            assert_eq!(end, Ok(()));
            let got: Vec<Vec<u8>> = got.into_iter().map(|g| g.0).collect();
            assert_eq!(got, want, "split {split}");
        }
    }
}
