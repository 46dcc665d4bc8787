//! Writing lines to an inherited descriptor (standard output) so that a
//! stop signal is never held up by a reader that does not read: the
//! descriptor is polled beside the signals, and to a pipe or a socket at
//! most PIPE_BUF bytes go at once (what a pipe that polls writable takes
//! without blocking), ending at a line's end when a line fits.

use std::os::fd::{AsFd, BorrowedFd};

use rustix::event::{PollFd, PollFlags};
use rustix::fs::{self, FileType};
use rustix::io::Errno;

use crate::sys::poll;

const PIPE_BUF: usize = 4096;
const LARGE: usize = 256 * 1024;

pub struct LineOut<'a> {
    fd: BorrowedFd<'a>,
    chunk: usize,
}

/// How a write ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Wrote {
    /// All of it.
    All,
    /// A signal came first: this many bytes, whole lines, were written.
    Interrupted(usize),
}

impl<'a> LineOut<'a> {
    pub fn new(fd: BorrowedFd<'a>) -> LineOut<'a> {
        let streamy = fs::fstat(fd).is_ok_and(|st| {
            matches!(
                FileType::from_raw_mode(st.st_mode),
                FileType::Fifo | FileType::Socket
            )
        });
        LineOut {
            fd,
            chunk: if streamy { PIPE_BUF } else { LARGE },
        }
    }

    /// Writes `data` (whole lines), unless `signals` becomes readable
    /// first, between lines.
    pub fn write(&mut self, data: &[u8], signals: impl AsFd) -> std::io::Result<Wrote> {
        let mut done = 0;
        // Inside a line longer than a chunk: finish it whatever comes.
        let mut inside = false;
        while done < data.len() {
            let mut fds = [
                PollFd::new(&self.fd, PollFlags::OUT),
                PollFd::new(&signals, PollFlags::IN),
            ];
            poll::until(&mut fds, None).map_err(std::io::Error::other)?;
            if !inside && !fds[1].revents().is_empty() {
                return Ok(Wrote::Interrupted(done));
            }
            if fds[0].revents().is_empty() {
                continue;
            }
            let rest = &data[done..];
            let mut end = rest.len().min(self.chunk);
            if end < rest.len() {
                match memchr::memrchr(b'\n', &rest[..end]) {
                    Some(lf) => end = lf + 1,
                    None => inside = true,
                }
            }
            match rustix::io::write(self.fd, &rest[..end]) {
                Ok(n) => {
                    done += n;
                    if inside && rest[..n].contains(&b'\n') {
                        inside = false;
                    }
                    // A short write: whatever was cut, its line is unfinished.
                    if n < end && !rest[..n].ends_with(b"\n") {
                        inside = true;
                    }
                }
                Err(Errno::INTR | Errno::AGAIN) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Wrote::All)
    }
}
