//! A reader's standard output: lines gathered in memory and written in
//! batches, without blocking, so that a reader stops reading while the
//! pipe is full yet still hears its signals.
//!
//! When stdout is a pipe it is opened again through `/proc/self/fd/1`,
//! which gives an open file description of our own: setting O_NONBLOCK on
//! it leaves alone the pipe end that the supervisor holds and that a
//! `2>&1` stderr shares. Anything else is written with blocking writes.
//!
//! To a pipe, each write is whole lines of at most PIPE_BUF bytes, which
//! the pipe takes whole or not at all: a line never reaches the log writer
//! in pieces, nor mixed with what another writer to the same pipe writes
//! (stderr, or other services fanned in, as nosh allows). Only a line
//! longer than PIPE_BUF goes in pieces.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Gather about this much before writing, unless the input pauses first.
pub const CHUNK: usize = 256 << 10;

/// What a pipe takes at once, whole (POSIX: at least 512; Linux: 4096).
const PIPE_BUF: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    /// Everything gathered is written.
    Done,
    /// The pipe is full: poll for POLLOUT and flush again.
    Blocked,
}

pub struct Output {
    /// Our own description of the stdout pipe; stdout itself if none.
    own: Option<OwnedFd>,
    /// Stdout is a pipe: write whole lines, PIPE_BUF at a time.
    pipe: bool,
    buf: Vec<u8>,
    written: usize,
}

impl Output {
    /// Call before dropping privileges: the pipe may not be ours to open
    /// again after.
    pub fn stdout() -> Output {
        let stdout = rustix::stdio::stdout();
        Output {
            own: reopen_pipe(stdout),
            pipe: fs::fstat(stdout)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Fifo),
            buf: Vec::with_capacity(CHUNK + (64 << 10)),
            written: 0,
        }
    }

    /// Where lines are added.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Bytes gathered and not yet written.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.written
    }

    /// Writes as much as stdout takes.
    pub fn flush(&mut self) -> io::Result<Flush> {
        while self.written < self.buf.len() {
            let rest = &self.buf[self.written..];
            let piece = match self.pipe {
                true => whole_lines(rest),
                false => rest,
            };
            match rustix::io::write(self.as_fd(), piece) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(Errno::AGAIN) => {
                    // Lines keep being added while the pipe is full: keep
                    // what is written from piling up in front of them.
                    if self.written >= CHUNK {
                        self.buf.drain(..self.written);
                        self.written = 0;
                    }
                    return Ok(Flush::Blocked);
                }
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.buf.clear();
        self.written = 0;
        Ok(Flush::Done)
    }

    /// Whether standard error is the very file standard output is: then a
    /// message on stderr waits for the same reader, and may never go.
    pub fn shares_stderr(&self) -> bool {
        let same = |a: fs::Stat, b: fs::Stat| (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino);
        match (
            fs::fstat(rustix::stdio::stdout()),
            fs::fstat(rustix::stdio::stderr()),
        ) {
            (Ok(out), Ok(err)) => same(out, err),
            _ => false,
        }
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
    if FileType::from_raw_mode(st.st_mode) != FileType::Fifo {
        return None;
    }
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
