//! Descriptors handed down by the supervisor: systemd's and nosh's
//! LISTEN_FDS protocol (`nosh`'s `local-datagram-socket-listen`,
//! `udp-socket-listen`, `fifo-listen` ...).

use std::os::fd::{FromRawFd, OwnedFd};

/// The first passed descriptor.
pub const FIRST: i32 = 3;

/// The descriptors passed with `LISTEN_FDS` (from fd 3 on), when
/// `LISTEN_PID`, if set, is this process. The variables are removed so that
/// children do not take the descriptors for theirs.
pub fn take() -> Vec<OwnedFd> {
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.trim().parse::<i32>().ok());
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .is_none_or(|pid| pid.trim().parse::<u32>().ok() == Some(std::process::id()));
    // SAFETY: removing variables before any thread is started.
    unsafe {
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    match count {
        Some(n) if n > 0 && for_us => (FIRST..FIRST + n).filter_map(owned_if_open).collect(),
        _ => Vec::new(),
    }
}

/// Fd 3, if it is open: what a UCSPI-style or nosh chain-loader passes when
/// it does not set LISTEN_FDS.
pub fn fd3() -> Option<OwnedFd> {
    owned_if_open(FIRST)
}

fn owned_if_open(fd: i32) -> Option<OwnedFd> {
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
