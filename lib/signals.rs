//! Signals as readable events: blocked, then read from a signalfd that the
//! program polls beside its input, so no handler ever runs asynchronously.
//! Children started with `std::process::Command` get an empty mask back.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

pub use libc::{SIGALRM, SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM};

/// The signals that stop a reader or a writer cleanly: what supervisors
/// send (TERM; HUP and QUIT from some), and INT from a terminal.
pub const STOP: [i32; 4] = [SIGTERM, SIGINT, SIGHUP, SIGQUIT];

pub struct Signals {
    fd: OwnedFd,
}

impl Signals {
    /// Blocks `signals` for the whole process and returns their signalfd.
    /// Their dispositions are reset first: a signal inherited as ignored
    /// (as a shell's background jobs get SIGINT) would never reach the fd.
    pub fn block(signals: &[i32]) -> io::Result<Signals> {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset before use;
        // the calls only read the set and the returned descriptor is owned here.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &signal in signals {
                libc::sigaddset(&mut set, signal);
            }
            if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            for &signal in signals {
                libc::signal(signal, libc::SIG_DFL);
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Signals {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// The signals that arrived since the last call, in order.
    pub fn take(&self) -> Vec<i32> {
        let mut arrived = Vec::new();
        let mut buf = [0u8; std::mem::size_of::<libc::signalfd_siginfo>() * 8];
        let record = std::mem::size_of::<libc::signalfd_siginfo>();
        while let Ok(n) = rustix::io::read(&self.fd, &mut buf) {
            if n == 0 {
                break;
            }
            for chunk in buf[..n].chunks_exact(record) {
                // ssi_signo is the first field, a native-endian u32.
                let signo = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                arrived.push(signo as i32);
            }
        }
        arrived
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
