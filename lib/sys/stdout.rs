//! Standard output (or a pager's pipe), the one way every program writes
//! its lines: gathered in memory and written in large pieces, never
//! blocking so long that a stop signal goes unheard, and never putting a
//! line that fits PIPE_BUF into a shared pipe in pieces.
//!
//! The policy, by what the descriptor is:
//!
//! - A pipe: opened again through `/proc/self/fd/1`, which gives an open
//!   file description of our own: O_NONBLOCK on it leaves alone the pipe
//!   end that the supervisor holds and that a `2>&1` stderr shares. Each
//!   write is whole lines of at most PIPE_BUF bytes, which a pipe takes
//!   whole or not at all: a line never reaches the log writer in pieces,
//!   nor mixed with what another writer to the same pipe writes (stderr,
//!   or other services fanned in, as nosh allows).
//! - A pipe that is ours alone: written everything at once, as a file is;
//!   nobody else writes between pieces. A pager's pipe is ours alone (made
//!   non-blocking as it is), and so is the standard output of a command a
//!   person runs (`interactive`) unless its stderr is the same pipe: a
//!   supervisor's pipe, by contrast, may have other services fanned in.
//! - A supervisor's pipe that its user says no other process writes to
//!   (`own_stdout`: a log service of its own, no fan-in): written in
//!   pieces as large as it takes, a few syscalls where PIPE_BUF pieces
//!   would take hundreds. Our own stderr may still be that pipe (`exec
//!   2>&1` in a run script): a write the pipe cuts inside a line leaves
//!   `line_open` true until the rest is written, and the program must
//!   write nothing to stderr meanwhile (its caller holds its messages).
//!   The rest waits for room as any other lines do, so a stop signal is
//!   heard meanwhile.
//! - A socket, a terminal, or a pipe that cannot be opened again: its
//!   description is shared and stays blocking, so it is polled for room
//!   before each write, and each write is whole lines of at most PIPE_BUF
//!   bytes (what one that polls writable takes without blocking).
//! - Anything else (a regular file, `/dev/null`): everything gathered, in
//!   one write; a file does not keep a writer waiting.
//!
//! Only a line longer than PIPE_BUF goes in pieces, and a stop signal is
//! heard between lines, never inside one (`write_all`).

use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use rustix::event::{PollFd, PollFlags};
use rustix::fs::{self, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::sys::poll;

/// Gather about this much before writing, unless the input pauses first.
pub const CHUNK: usize = 256 << 10;

/// What a pipe takes at once, whole (POSIX: at least 512; Linux: 4096).
const PIPE_BUF: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    /// Everything gathered is written.
    Done,
    /// No room: poll for POLLOUT and flush again.
    Blocked,
}

/// How `write_all` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wrote {
    /// All of it.
    All,
    /// A stop signal came while there was no room: this many bytes, whole
    /// lines, were written.
    Interrupted(usize),
}

/// How writes go to the descriptor (see the module's policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    /// Non-blocking and ours: whole lines, PIPE_BUF at a time.
    Pipe,
    /// Non-blocking, and no other process writing: everything at once
    /// (a stderr that is the same pipe waits while `line_open`).
    Alone,
    /// Blocking and shared: polled first, whole lines, PIPE_BUF at a time.
    Polled,
    /// Everything at once.
    File,
}

pub struct Output {
    /// Our own description of the pipe; stdout itself if none.
    own: Option<OwnedFd>,
    way: Way,
    buf: Vec<u8>,
    written: usize,
    /// Bytes written and since removed from the front of `buf`.
    base: u64,
    /// The last write ended inside a line.
    open: bool,
}

impl Output {
    /// Standard output, which other writers may share. Call before
    /// dropping privileges: the pipe may not be ours to open again after.
    pub fn stdout() -> Output {
        Output::open_stdout(Way::Pipe)
    }

    /// Standard output, a pipe (if it is one) that no other process writes
    /// to; our own stderr may be the same pipe.
    pub fn own_stdout() -> Output {
        Output::open_stdout(Way::Alone)
    }

    /// The standard output of a command a person runs (log-show): a pipe
    /// is ours alone, unless stderr is the same pipe.
    pub fn interactive() -> Output {
        let alone = !shares_stderr();
        Output::open_stdout(if alone { Way::Alone } else { Way::Pipe })
    }

    /// Standard output, a pipe of it written `pipe`'s way.
    fn open_stdout(pipe: Way) -> Output {
        let stdout = rustix::stdio::stdout();
        let kind = fs::fstat(stdout).map(|st| FileType::from_raw_mode(st.st_mode));
        let own = match kind {
            Ok(FileType::Fifo) => reopen_pipe(stdout),
            _ => None,
        };
        let way = match kind {
            _ if own.is_some() => pipe,
            Ok(FileType::Fifo | FileType::Socket) => Way::Polled,
            _ if stdout.is_terminal() => Way::Polled,
            _ => Way::File,
        };
        Output::with(own, way)
    }

    /// The write end of a pipe that is ours alone (a pager's).
    pub fn pipe(fd: OwnedFd) -> Output {
        let nonblocking = fs::fcntl_getfl(&fd)
            .and_then(|flags| fs::fcntl_setfl(&fd, flags | OFlags::NONBLOCK))
            .is_ok();
        let way = if nonblocking { Way::Alone } else { Way::Polled };
        Output::with(Some(fd), way)
    }

    fn with(own: Option<OwnedFd>, way: Way) -> Output {
        Output {
            own,
            way,
            buf: Vec::with_capacity(CHUNK + (64 << 10)),
            written: 0,
            base: 0,
            open: false,
        }
    }

    /// Where lines are added.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Bytes ever gathered: where the next line will start, counted from
    /// the first byte.
    pub fn appended(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Bytes ever written: every line that ended at or before this is out.
    pub fn written_total(&self) -> u64 {
        self.base + self.written as u64
    }

    /// Bytes gathered and not yet written.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.written
    }

    /// Whether the output holds the start of a line whose rest is not yet
    /// written: nothing else may go to it (a stderr that is the same
    /// pipe) until it is.
    pub fn line_open(&self) -> bool {
        self.open
    }

    /// Writes as much as the output takes without waiting.
    pub fn flush(&mut self) -> io::Result<Flush> {
        while self.written < self.buf.len() {
            match self.write_some(&self.buf[self.written..])? {
                Some(n) => {
                    self.written += n;
                    self.open = self.buf[self.written - 1] != b'\n';
                }
                None => {
                    // Lines keep being added while the output is full:
                    // keep what is written from piling up in front of them.
                    if self.written >= CHUNK {
                        self.buf.drain(..self.written);
                        self.base += self.written as u64;
                        self.written = 0;
                    }
                    return Ok(Flush::Blocked);
                }
            }
        }
        self.base += self.buf.len() as u64;
        self.buf.clear();
        self.written = 0;
        Ok(Flush::Done)
    }

    /// Writes everything gathered, waiting for room unless `signals` is
    /// readable first; what is not written stays gathered.
    pub fn flush_all(&mut self, signals: impl AsFd) -> io::Result<Wrote> {
        let (written, wrote) = self.send(&self.buf, self.written, signals.as_fd())?;
        if written > self.written {
            self.open = self.buf[written - 1] != b'\n';
        }
        self.written = written;
        if wrote == Wrote::All {
            self.base += self.buf.len() as u64;
            self.buf.clear();
            self.written = 0;
        }
        Ok(wrote)
    }

    /// Writes `data` (whole lines) past what is gathered, waiting for room
    /// unless `signals` is readable first.
    pub fn write_all(&mut self, data: &[u8], signals: impl AsFd) -> io::Result<Wrote> {
        if self.flush_all(signals.as_fd())? != Wrote::All {
            return Ok(Wrote::Interrupted(0));
        }
        let (written, wrote) = self.send(data, 0, signals.as_fd())?;
        if written > 0 {
            self.open = data[written - 1] != b'\n';
        }
        Ok(wrote)
    }

    /// Writes `data[done..]`, waiting for room, until a signal comes while
    /// there is none at the end of a line; how far it got.
    fn send(
        &self,
        data: &[u8],
        mut done: usize,
        signals: BorrowedFd<'_>,
    ) -> io::Result<(usize, Wrote)> {
        while done < data.len() {
            if let Some(n) = self.write_some(&data[done..])? {
                done += n;
                continue;
            }
            let mut fds = [
                PollFd::new(self, PollFlags::OUT),
                PollFd::new(&signals, PollFlags::IN),
            ];
            poll::until(&mut fds, None).map_err(io::Error::other)?;
            let between_lines = done == 0 || data[done - 1] == b'\n';
            if between_lines && !fds[1].revents().is_empty() {
                return Ok((done, Wrote::Interrupted(done)));
            }
        }
        Ok((done, Wrote::All))
    }

    /// One write of the start of `rest`, as the policy says; `None`: no
    /// room now.
    fn write_some(&self, rest: &[u8]) -> io::Result<Option<usize>> {
        let piece = match self.way {
            Way::Pipe | Way::Polled => whole_lines(rest),
            Way::Alone | Way::File => rest,
        };
        if self.way == Way::Polled && !writable(self.as_fd())? {
            return Ok(None);
        }
        self.write_once(piece)
    }

    /// One write(2); `None`: no room now.
    fn write_once(&self, piece: &[u8]) -> io::Result<Option<usize>> {
        loop {
            return match rustix::io::write(self.as_fd(), piece) {
                Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => Ok(Some(n)),
                Err(Errno::AGAIN) => Ok(None),
                Err(Errno::INTR) => continue,
                Err(e) => Err(e.into()),
            };
        }
    }

    /// Whether standard error is the very file standard output is: then a
    /// message on stderr waits for the same reader, and may never go.
    pub fn shares_stderr(&self) -> bool {
        shares_stderr()
    }
}

fn shares_stderr() -> bool {
    let same = |a: fs::Stat, b: fs::Stat| (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino);
    match (
        fs::fstat(rustix::stdio::stdout()),
        fs::fstat(rustix::stdio::stderr()),
    ) {
        (Ok(out), Ok(err)) => same(out, err),
        _ => false,
    }
}

impl AsFd for Output {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.own {
            Some(fd) => fd.as_fd(),
            None => rustix::stdio::stdout(),
        }
    }
}

/// Whether `fd` has room now.
fn writable(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
    poll::until(&mut fds, Some(Instant::now())).map_err(io::Error::other)?;
    Ok(!fds[0].revents().is_empty())
}

/// The start of `rest` a pipe takes whole: at most PIPE_BUF bytes, ending
/// at the end of a line (`rest` ends at one), or a piece of a longer line.
fn whole_lines(rest: &[u8]) -> &[u8] {
    if rest.len() <= PIPE_BUF {
        return rest;
    }
    match memchr::memrchr(b'\n', &rest[..PIPE_BUF]) {
        Some(lf) => &rest[..=lf],
        None => &rest[..PIPE_BUF],
    }
}

fn reopen_pipe(stdout: BorrowedFd<'_>) -> Option<OwnedFd> {
    let st = fs::fstat(stdout).ok()?;
    let fd = fs::open(
        "/proc/self/fd/1",
        OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    // The very same pipe, or nothing.
    let again = fs::fstat(&fd).ok()?;
    (again.st_dev == st.st_dev && again.st_ino == st.st_ino).then_some(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output to a pipe as stdout's is written (shared), and its read end.
    fn piped() -> (Output, OwnedFd) {
        let (read, write) = rustix::pipe::pipe().unwrap();
        let mut out = Output::pipe(write);
        assert_eq!(out.way, Way::Alone);
        out.way = Way::Pipe;
        (out, read)
    }

    fn read_all(fd: &OwnedFd) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        rustix::fs::fcntl_setfl(fd, OFlags::NONBLOCK).unwrap();
        while let Ok(n @ 1..) = rustix::io::read(fd, &mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    #[test]
    fn whole_lines_end_at_a_line_end_within_pipe_buf() {
        let line = [b"x".repeat(99), b"\n".to_vec()].concat();
        let many = line.repeat(100);
        assert_eq!(whole_lines(&many).len(), 4000);
        assert_eq!(whole_lines(&line), &line[..]);
        let long = b"y".repeat(3 * PIPE_BUF);
        assert_eq!(whole_lines(&long).len(), PIPE_BUF);
    }

    #[test]
    fn a_pipe_of_ours_alone_takes_what_fits_at_once() {
        let (read, write) = rustix::pipe::pipe().unwrap();
        let mut out = Output::pipe(write);
        let data = [b"v".repeat(999), b"\n".to_vec()].concat().repeat(1000);
        out.buf().extend_from_slice(&data);
        assert_eq!(out.flush().unwrap(), Flush::Blocked);
        // The pipe filled to the byte (whole pages), its last line cut.
        let n = data.len() - out.pending();
        assert!(n > 0 && n.is_multiple_of(4096) && data[n - 1] != b'\n');
        assert_eq!(read_all(&read), &data[..n]);
    }

    #[test]
    fn a_pipe_cut_inside_a_line_is_open_until_the_rest_is_written() {
        let (read, write) = rustix::pipe::pipe().unwrap();
        let mut out = Output::pipe(write);
        // Lines that do not divide the pipe's 64 KiB.
        let line = [b"o".repeat(999), b"\n".to_vec()].concat();
        let data = line.repeat(1000);
        out.buf().extend_from_slice(&data);
        // Full inside a line: the flush does not wait for room.
        assert_eq!(out.flush().unwrap(), Flush::Blocked);
        let n = data.len() - out.pending();
        assert!(n >= 65536 && !n.is_multiple_of(line.len()), "{n}");
        assert!(out.line_open());
        let mut got = read_all(&read);
        while out.pending() > 0 {
            let _ = out.flush().unwrap();
            got.extend(read_all(&read));
            let written = out.written_total() as usize;
            assert_eq!(out.line_open(), data[written - 1] != b'\n', "{written}");
        }
        assert!(got == data, "{} bytes read of {}", got.len(), data.len());
    }

    #[test]
    fn a_full_pipe_blocks_a_flush_between_lines_and_what_is_left_goes_later() {
        let (mut out, read) = piped();
        let line = [b"z".repeat(999), b"\n".to_vec()].concat();
        let data = line.repeat(1000);
        out.buf().extend_from_slice(&data);
        assert_eq!(out.flush().unwrap(), Flush::Blocked);
        let first = read_all(&read);
        assert!(first.ends_with(b"\n") && first.len() < data.len());
        assert_eq!(out.pending(), data.len() - first.len());
        let mut got = first;
        while out.pending() > 0 {
            let _ = out.flush().unwrap();
            got.extend(read_all(&read));
        }
        assert_eq!(got, data);
    }

    #[test]
    fn a_signal_stops_a_write_to_a_full_pipe_at_a_line_end() {
        let (mut out, read) = piped();
        // A readable descriptor stands for a pending signal.
        let (signal, ring) = rustix::pipe::pipe().unwrap();
        rustix::io::write(&ring, b"!").unwrap();
        let line = [b"z".repeat(999), b"\n".to_vec()].concat();
        let data = line.repeat(1000);
        let Wrote::Interrupted(n) = out.write_all(&data, &signal).unwrap() else {
            panic!("not interrupted");
        };
        assert!(n > 0 && data[n - 1] == b'\n');
        assert_eq!(read_all(&read), &data[..n]);
    }

    #[test]
    fn a_line_longer_than_pipe_buf_is_finished_before_a_signal_is_heard() {
        let (mut out, read) = piped();
        let (signal, ring) = rustix::pipe::pipe().unwrap();
        rustix::io::write(&ring, b"!").unwrap();
        let data = [b"w".repeat(1 << 20), b"\n".to_vec(), b"next\n".to_vec()].concat();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            while got.len() < (1 << 20) + 1 {
                match rustix::io::read(&read, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            got
        });
        let wrote = out.write_all(&data, &signal).unwrap();
        drop(out);
        let got = reader.join().unwrap();
        assert!(got.len() > 1 << 20);
        assert!(matches!(wrote, Wrote::All | Wrote::Interrupted(_)));
        if let Wrote::Interrupted(n) = wrote {
            assert_eq!(n, (1 << 20) + 1);
        }
    }
}
