//! Standard output for a reader: lines gathered in a buffer and written in
//! large chunks without ever blocking, so that the reader can keep watching
//! its signals and its clock while the consumer is slow, and can tell how
//! long the output has been stuck.
//!
//! A pipe (the normal case under a supervisor) is opened again through
//! /proc as a file description of our own, non-blocking, so that the
//! supervisor's shared one is left as it was. A socket is written with
//! MSG_DONTWAIT. A pipe that cannot be reopened is written PIPE_BUF bytes at
//! a time, each after poll(2) says there is room (which is then enough).
//! Anything else (a file, a terminal) is written the ordinary way.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use rustix::event::{PollFd, PollFlags};
use rustix::fs::{self, FileType, Mode, OFlags};
use rustix::io::Errno;
use rustix::net::SendFlags;

/// The most one write hands the kernel.
const MAX_WRITE: usize = 1 << 20;

/// What poll(2)'s POLLOUT promises a pipe can take without blocking.
const PIPE_BUF: usize = 4096;

enum Writer {
    /// A non-blocking file description of our own.
    Own(OwnedFd),
    Socket,
    /// A pipe we could not reopen: PIPE_BUF at a time, after a poll.
    Guarded,
    Blocking,
}

pub struct Output {
    writer: Writer,
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    start: usize,
    /// Since when writes have made no progress, while bytes wait.
    stuck_since: Option<Instant>,
    /// Standard error is the same file as standard output.
    stderr_shared: bool,
}

impl Output {
    pub fn stdout() -> Output {
        let stdout = rustix::stdio::stdout();
        let kind = fs::fstat(stdout).map(|st| (FileType::from_raw_mode(st.st_mode), st));
        let stderr_shared = match (&kind, fs::fstat(rustix::stdio::stderr())) {
            (Ok((_, out)), Ok(err)) => (out.st_dev, out.st_ino) == (err.st_dev, err.st_ino),
            _ => false,
        };
        let writer = match kind {
            Ok((FileType::Fifo, _)) => {
                let reopened = fs::open(
                    "/proc/self/fd/1",
                    OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
                    Mode::empty(),
                );
                match reopened {
                    Ok(fd) => Writer::Own(fd),
                    Err(_) => Writer::Guarded,
                }
            }
            Ok((FileType::Socket, _)) => Writer::Socket,
            _ => Writer::Blocking,
        };
        Output {
            writer,
            buf: Vec::with_capacity(MAX_WRITE),
            start: 0,
            stuck_since: None,
            stderr_shared,
        }
    }

    /// Where to append lines.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Since when the output has taken nothing, while bytes wait.
    pub fn stuck_since(&self) -> Option<Instant> {
        self.stuck_since
    }

    /// Whether warnings on stderr would land in (and wait on) the output.
    pub fn stderr_shared(&self) -> bool {
        self.stderr_shared
    }

    /// What to poll for POLLOUT while stuck.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.writer {
            Writer::Own(fd) => fd.as_fd(),
            _ => rustix::stdio::stdout(),
        }
    }

    /// Writes what the output takes now, without blocking (but for a file
    /// or a terminal, which are written in full).
    pub fn flush(&mut self, now: Instant) -> io::Result<()> {
        let mut progress = false;
        while self.pending() > 0 {
            let chunk = &self.buf[self.start..self.buf.len().min(self.start + MAX_WRITE)];
            let written = match &self.writer {
                Writer::Own(fd) => rustix::io::write(fd, chunk),
                Writer::Socket => rustix::net::send(
                    rustix::stdio::stdout(),
                    chunk,
                    SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
                ),
                Writer::Guarded => {
                    let stdout = rustix::stdio::stdout();
                    let mut fds = [PollFd::new(&stdout, PollFlags::OUT)];
                    match rustix::event::poll(&mut fds, Some(&rustix::time::Timespec::default())) {
                        Ok(1) => rustix::io::write(stdout, &chunk[..chunk.len().min(PIPE_BUF)]),
                        Ok(_) => Err(Errno::AGAIN),
                        Err(e) => Err(e),
                    }
                }
                Writer::Blocking => rustix::io::write(rustix::stdio::stdout(), chunk),
            };
            match written {
                Ok(0) => return Err(io::Error::from(Errno::PIPE)),
                Ok(n) => {
                    self.start += n;
                    progress = true;
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if self.pending() == 0 {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= MAX_WRITE / 4 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if progress || self.pending() == 0 {
            self.stuck_since = None;
        } else if self.stuck_since.is_none() {
            self.stuck_since = Some(now);
        }
        Ok(())
    }
}
