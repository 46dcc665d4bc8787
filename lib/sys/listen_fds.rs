//! Descriptors handed down by the supervisor: systemd's and nosh's
//! LISTEN_FDS protocol (`nosh`'s `local-datagram-socket-listen`,
//! `udp-socket-listen`, `fifo-listen` ...).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::sys::single_threaded::SingleThreaded;

/// The first passed descriptor.
pub const FIRST: i32 = 3;

/// The descriptors passed with `LISTEN_FDS` (from fd 3 on), when
/// `LISTEN_PID`, if set, is this process. The variables are removed so that
/// children do not take the descriptors for theirs, which needs `main`'s
/// promise that no other thread reads the environment.
pub fn take(_: &SingleThreaded) -> Vec<OwnedFd> {
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.trim().parse::<i32>().ok());
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .is_none_or(|pid| pid.trim().parse::<u32>().ok() == Some(std::process::id()));
    // SAFETY: no other thread exists (the SingleThreaded token).
    unsafe {
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    match count {
        Some(n) if n > 0 && for_us => (FIRST..FIRST + n).filter_map(inherited).collect(),
        _ => Vec::new(),
    }
}

/// Fd 3, if it is open: what a UCSPI-style or nosh chain-loader passes when
/// it does not set LISTEN_FDS.
pub fn fd3() -> Option<OwnedFd> {
    inherited(FIRST)
}

/// Descriptor `fd`, if it is open, as ours from here on (close-on-exec):
/// one that whatever started us left to us, such as the connection a UCSPI
/// client leaves on fd 7.
pub fn inherited(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only asks whether the descriptor exists.
    let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
    if !open {
        return None;
    }
    // SAFETY: the descriptor is open and was passed to this process to own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let _ = rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC);
    Some(fd)
}
