//! Where kernel log records come from: `/dev/kmsg`, the same handed down
//! by a supervisor (nosh's `fifo-listen /dev/kmsg`), `/proc/kmsg` where
//! there is no `/dev/kmsg`, or a FIFO or file of records.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self, FileType, Mode, OFlags, SeekFrom};
use rustix::io::Errno;

use crate::error::{Context, Error, Result};
use crate::sys::signals;

pub const DEV_KMSG: &str = "/dev/kmsg";
pub const PROC_KMSG: &str = "/proc/kmsg";

/// How records are cut out of what is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `/dev/kmsg`: each read is one whole record, and it can be rewound
    /// to the oldest record the kernel still has.
    Device,
    /// Anything else (`/proc/kmsg`, a FIFO, a file): records back to back.
    Stream,
}

pub enum Read {
    /// This many bytes were read.
    Data(usize),
    /// Nothing to read now.
    Empty,
    /// The kernel overwrote records before they were read; the next read
    /// gives the oldest one left.
    Overrun,
    Eof,
}

pub struct Source {
    fd: OwnedFd,
    kind: Kind,
    name: String,
}

impl Source {
    /// `/dev/kmsg`, or `/proc/kmsg` on a kernel without it.
    pub fn kernel() -> Result<Source> {
        match Source::open(Path::new(DEV_KMSG)) {
            Err(e) if e.errno() == Some(libc::ENOENT) => {
                crate::cli::info(&format!("no {DEV_KMSG}: reading {PROC_KMSG}"));
                Source::open(Path::new(PROC_KMSG))
            }
            other => other,
        }
    }

    /// `path`; a FIFO is opened once it has a writer, and read until the
    /// last writer closes it.
    pub fn open(path: &Path) -> Result<Source> {
        let name = path.display().to_string();
        let is_fifo =
            fs::stat(path).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Fifo);
        let flags = if is_fifo {
            OFlags::RDONLY | OFlags::CLOEXEC
        } else {
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC
        };
        // A FIFO's open waits for a writer: let a stop signal end the wait
        // (the signals are blocked from the start, see signals.rs).
        let open = || fs::open(path, flags, Mode::empty());
        let fd = if is_fifo {
            signals::unblocked_during(&signals::STOP, open)
        } else {
            open()
        }
        .context(|| format!("open {name}"))?;
        Source::from_fd(fd, name)
    }

    /// A descriptor passed down with LISTEN_FDS.
    pub fn inherited(fd: OwnedFd) -> Result<Source> {
        Source::from_fd(fd, "LISTEN_FDS descriptor".to_string())
    }

    fn from_fd(fd: OwnedFd, name: String) -> Result<Source> {
        let st = fs::fstat(&fd).context(|| format!("fstat {name}"))?;
        let is_kmsg = FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
            && fs::major(st.st_rdev) == 1
            && fs::minor(st.st_rdev) == 11;
        // Non-blocking, to read a burst to its end and then write it out
        // at once. An inherited descriptor shares this with the
        // supervisor holding it, which does not read it.
        let flags = fs::fcntl_getfl(&fd).context(|| format!("get the flags of {name}"))?;
        fs::fcntl_setfl(&fd, flags | OFlags::NONBLOCK)
            .context(|| format!("make {name} non-blocking"))?;
        Ok(Source {
            fd,
            kind: if is_kmsg { Kind::Device } else { Kind::Stream },
            name,
        })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Goes back to the oldest record the kernel has (`/dev/kmsg` only;
    /// a fresh open starts there anyway, a descriptor handed down may not).
    pub fn rewind(&self) -> Result<()> {
        if self.kind == Kind::Device {
            fs::seek(&self.fd, SeekFrom::Start(0)).context(|| format!("seek {}", self.name))?;
        }
        Ok(())
    }

    pub fn read(&self, buf: &mut [u8]) -> Result<Read> {
        loop {
            return match rustix::io::read(&self.fd, &mut *buf) {
                Ok(0) => Ok(Read::Eof),
                Ok(n) => Ok(Read::Data(n)),
                Err(Errno::AGAIN) => Ok(Read::Empty),
                Err(Errno::INTR) => continue,
                Err(Errno::PIPE) if self.kind == Kind::Device => Ok(Read::Overrun),
                Err(e) => Err(Error::new(format!("read {}", self.name), e.into())),
            };
        }
    }
}

impl AsFd for Source {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
