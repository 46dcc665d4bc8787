//! Standard input, read so that nothing is lost if we are killed.
//!
//! When stdin is a pipe (the normal case under a supervisor, which holds
//! both ends), data is *peeked* with tee(2) into a private pipe and read from
//! there; it leaves stdin only when `consume` is called, after it has been
//! written. A writer killed at any moment leaves the unwritten data in the
//! supervisor's pipe for its successor. Any other stdin (a file, a terminal,
//! a socket) is read the ordinary way.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, Mode, OFlags};
use rustix::io::Errno;
use rustix::pipe::{self, PipeFlags, SpliceFlags};

/// The most bytes taken from stdin at once.
pub const CHUNK: usize = 256 * 1024;

/// The size asked for the input pipe and our copy of it (Linux allows
/// unprivileged processes up to 1 MiB).
const PIPE_SIZE: usize = 1 << 20;

enum Source {
    /// Peek with tee(2) into `copy`, discard by splicing to `null`.
    Peek {
        copy_r: OwnedFd,
        copy_w: OwnedFd,
        null: OwnedFd,
    },
    Read,
}

pub enum Fill {
    /// More bytes are buffered.
    Data,
    /// Nothing to read now.
    Empty,
    /// All writers are gone and everything was read.
    Eof,
}

pub struct Input {
    fd: BorrowedFd<'static>,
    source: Source,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Input {
    pub fn stdin() -> Input {
        let fd = rustix::stdio::stdin();
        let is_pipe = fs::fstat(fd)
            .map(|st| fs::FileType::from_raw_mode(st.st_mode) == fs::FileType::Fifo)
            .unwrap_or(false);
        let source = if is_pipe {
            // A writer fills a large pipe while we write the last chunk,
            // instead of waiting for each 64 KiB to be taken; and a
            // successor finds more of what we leave in it.
            if pipe::fcntl_getpipe_size(fd).is_ok_and(|size| size < PIPE_SIZE) {
                let _ = pipe::fcntl_setpipe_size(fd, PIPE_SIZE);
            }
            peek_source().unwrap_or(Source::Read)
        } else {
            Source::Read
        };
        Input {
            fd,
            source,
            buf: vec![0u8; CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Whether unconsumed data stays in the pipe (kill -9 loses nothing).
    pub fn is_peeking(&self) -> bool {
        matches!(self.source, Source::Peek { .. })
    }

    pub fn fd(&self) -> BorrowedFd<'static> {
        self.fd
    }

    /// The bytes taken but not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Takes up to `max` more bytes, without blocking when peeking. Only
    /// when nothing is buffered: a peek always starts at the pipe's head.
    pub fn fill(&mut self, max: usize) -> std::io::Result<Fill> {
        debug_assert!(self.start == self.end);
        self.start = 0;
        self.end = 0;
        let max = max.min(self.buf.len());
        loop {
            let got = match &self.source {
                Source::Peek { copy_r, copy_w, .. } => {
                    match pipe::tee(self.fd, copy_w, max, SpliceFlags::NONBLOCK) {
                        Ok(0) => return Ok(Fill::Eof),
                        Ok(n) => read_all(copy_r, &mut self.buf[..n]).map(|()| n),
                        Err(Errno::AGAIN) => return Ok(Fill::Empty),
                        Err(Errno::INTR) => continue,
                        Err(Errno::INVAL) => {
                            // Not a pipe tee(2) accepts after all.
                            self.source = Source::Read;
                            continue;
                        }
                        Err(e) => Err(e),
                    }
                }
                Source::Read => match rustix::io::read(self.fd, &mut self.buf[..max]) {
                    Ok(0) => return Ok(Fill::Eof),
                    Ok(n) => Ok(n),
                    Err(Errno::AGAIN) => return Ok(Fill::Empty),
                    Err(Errno::INTR) => continue,
                    Err(e) => Err(e),
                },
            };
            self.end = got?;
            return Ok(Fill::Data);
        }
    }

    /// Takes more bytes after those buffered, up to `max` buffered in all
    /// (a line not yet ended waits for its rest). Peeking, the pipe's head
    /// is peeked again: the buffered bytes are still there, first. Reading,
    /// the buffered bytes move to the front and more are read after them.
    pub fn refill(&mut self, max: usize) -> std::io::Result<Fill> {
        let have = self.end - self.start;
        let max = max.min(self.buf.len());
        if have >= max {
            return Ok(Fill::Empty);
        }
        if self.is_peeking() {
            self.start = self.end;
            let filled = self.fill(max);
            if !matches!(filled, Ok(Fill::Data)) {
                // Nothing was peeked: the buffer still holds what it held.
                self.start = 0;
                self.end = have;
            }
            return filled;
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.start = 0;
        self.end = have;
        loop {
            return match rustix::io::read(self.fd, &mut self.buf[have..max]) {
                Ok(0) => Ok(Fill::Eof),
                Ok(n) => {
                    self.end = have + n;
                    Ok(Fill::Data)
                }
                Err(Errno::AGAIN) => Ok(Fill::Empty),
                Err(Errno::INTR) => continue,
                Err(e) => Err(e.into()),
            };
        }
    }

    /// Drops the first `n` buffered bytes: they are written.
    pub fn consume(&mut self, n: usize) -> std::io::Result<()> {
        assert!(n <= self.end - self.start);
        if let Source::Peek { null, .. } = &self.source {
            let mut left = n;
            while left > 0 {
                match pipe::splice(self.fd, None, null, None, left, SpliceFlags::empty()) {
                    Ok(0) => return Err(std::io::Error::from(Errno::PIPE)),
                    Ok(k) => left -= k,
                    Err(Errno::INTR) => continue,
                    Err(Errno::INVAL) => {
                        // No splice to /dev/null here: read the bytes away.
                        let scratch = &mut self.buf[self.start..self.start + left];
                        match rustix::io::read(self.fd, scratch) {
                            Ok(k) if k > 0 => left -= k,
                            Ok(_) => return Err(std::io::Error::from(Errno::PIPE)),
                            Err(Errno::INTR) => continue,
                            Err(e) => return Err(e.into()),
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.start += n;
        Ok(())
    }

    /// Bytes waiting in stdin beyond what is buffered, if it can tell.
    pub fn waiting(&self) -> Option<usize> {
        let queued = rustix::io::ioctl_fionread(self.fd).ok()? as usize;
        Some(if self.is_peeking() {
            queued.saturating_sub(self.end - self.start)
        } else {
            queued
        })
    }
}

fn peek_source() -> Option<Source> {
    let (copy_r, copy_w) = pipe::pipe_with(PipeFlags::CLOEXEC).ok()?;
    // The copy must hold a whole chunk, however the writer filled its pipe.
    let _ = pipe::fcntl_setpipe_size(&copy_w, PIPE_SIZE);
    if pipe::fcntl_getpipe_size(&copy_w).ok()? < CHUNK {
        return None;
    }
    let null = fs::open("/dev/null", OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    Some(Source::Peek {
        copy_r,
        copy_w,
        null,
    })
}

fn read_all(fd: impl AsFd, buf: &mut [u8]) -> Result<(), Errno> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::read(&fd, &mut buf[done..]) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => done += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
