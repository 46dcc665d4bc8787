//! Signals as readable events: blocked, then read from a signalfd that the
//! program polls beside its input, so no handler ever runs asynchronously.
//! Children started with `std::process::Command` get an empty mask back.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};

pub use libc::{SIGALRM, SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM};

/// The signals that stop a reader or a writer cleanly: what supervisors
/// send (TERM; HUP and QUIT from some), and INT from a terminal.
pub const STOP: [i32; 4] = [SIGTERM, SIGINT, SIGHUP, SIGQUIT];

pub struct Signals {
    fd: OwnedFd,
}

/// Blocks `signals` before `main`, in the first code of ours the process
/// runs: a signal that comes while it starts (a supervisor's ALRM or TERM
/// right after the exec) waits for the signalfd instead of killing it.
/// Blocking at the top of `main` is too late: the C library's and Rust's own
/// start-up (a millisecond and more on a loaded machine) come before it.
///
/// Put it at the top level of a program's file, with the signals it will
/// take through [`Signals::block`] (no others, or they would never arrive):
///
/// ```ignore
/// rill::block_signals_before_main!(&rill::sys::signals::STOP);
/// ```
#[macro_export]
macro_rules! block_signals_before_main {
    ($signals:expr) => {
        // The dynamic loader or the static start-up code calls each function
        // of an executable's .preinit_array before any constructor and main.
        #[used]
        #[unsafe(link_section = ".preinit_array")]
        static BLOCK_SIGNALS_BEFORE_MAIN: extern "C" fn() = {
            extern "C" fn block() {
                $crate::sys::signals::block_now($signals);
            }
            block
        };
    };
}

/// Blocks `signals` for the calling thread (all there is, before `main`),
/// and so for every thread it starts. Nothing else: no allocation, no std,
/// so that it can run before the runtime is set up.
pub fn block_now(signals: &[i32]) {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use;
    // sigprocmask only reads it. It cannot fail with these arguments.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &signal in signals {
            libc::sigaddset(&mut set, signal);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Runs `f` with `signals` unblocked, for a wait that they must be able to
/// end by their default action (a blocking open(2) of a FIFO that has no
/// writer yet, before the program has anything to lose). A signal that
/// came while they were blocked acts at once.
pub fn unblocked_during<T>(signals: &[i32], f: impl FnOnce() -> T) -> T {
    // SAFETY: as in block_now; the old mask is saved and put back.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &signal in signals {
            libc::sigaddset(&mut set, signal);
        }
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, &mut old);
        let result = f();
        libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        result
    }
}

impl Signals {
    /// Blocks `signals` for the whole process and returns their signalfd.
    /// Their dispositions are reset first: a signal inherited as ignored
    /// (as a shell's background jobs get SIGINT) would never reach the fd.
    pub fn block(signals: &[i32]) -> Result<Signals> {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset before use;
        // the calls only read the set and the returned descriptor is owned here.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &signal in signals {
                libc::sigaddset(&mut set, signal);
            }
            if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(Error::new("block signals", io::Error::last_os_error()));
            }
            for &signal in signals {
                libc::signal(signal, libc::SIG_DFL);
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                return Err(Error::new("open a signalfd", io::Error::last_os_error()));
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
