//! Waiting on descriptors until a deadline: poll(2) with the time left to
//! an `Instant`, measured at the call.
//!
//! EINTR is a wake with nothing ready (a stop signal is a readable
//! signalfd, never an interruption). Any other failure is returned as
//! `poll: ERROR`; the caller decides. The rule every program follows: a
//! loop that runs until stopped (cyclog, klog-read, syslog-read,
//! follow-log-directories, export-to-remote) warns and takes the wake as
//! one with nothing ready, then goes on (poll can only fail for want of
//! kernel memory, which passes); a wait that is the whole of what its
//! caller does (log-show's, a blocked write's) fails with it.

use std::time::Instant;

use rustix::event::PollFd;
use rustix::io::Errno;
use rustix::time::Timespec;

use crate::error::{Context, Result};

/// Waits until a descriptor of `fds` is ready or `deadline` comes (never
/// with `None`; a deadline already past only looks). How many are ready.
pub fn until(fds: &mut [PollFd<'_>], deadline: Option<Instant>) -> Result<usize> {
    let timeout = deadline.map(|d| {
        let left = d.saturating_duration_since(Instant::now());
        Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        }
    });
    match rustix::event::poll(fds, timeout.as_ref()) {
        Err(Errno::INTR) => Ok(0),
        ready => ready.context(|| "poll".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::PollFlags;
    use std::time::Duration;

    #[test]
    fn a_past_deadline_only_looks_and_a_near_one_is_kept() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let mut fds = [PollFd::new(&r, PollFlags::IN)];
        let past = Instant::now() - Duration::from_secs(1);
        assert_eq!(until(&mut fds, Some(past)).unwrap(), 0);
        let start = Instant::now();
        assert_eq!(
            until(&mut fds, Some(start + Duration::from_millis(30))).unwrap(),
            0
        );
        assert!(start.elapsed() >= Duration::from_millis(30));
        rustix::io::write(&w, b"x").unwrap();
        let mut fds = [PollFd::new(&r, PollFlags::IN)];
        assert_eq!(until(&mut fds, None).unwrap(), 1);
        assert!(!fds[0].revents().is_empty());
    }
}
