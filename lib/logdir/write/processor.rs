//! A processor, as multilog's and s6-log's `!processor`: run on each
//! finished file with `previous` as its stdin and `processed` as its stdout,
//! the old `state` on fd 4 and the new one on fd 5, in the log directory.
//! On success `processed` becomes the archive; `previous` is removed last,
//! so that until then the original is always there to start again from.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use rustix::fs::{self, AtFlags, Mode, OFlags};

use crate::error::{Context, Result};
use crate::logdir::{self, Archive, NEWSTATE, PREVIOUS, PROCESSED, STATE};

/// Starts `command` (run by /bin/sh) on `previous` of the directory `dir`.
/// The child inherits the directory's lock, so a successor cannot take the
/// directory while an orphaned processor still writes in it.
pub fn spawn(
    command: &str,
    dir: BorrowedFd<'_>,
    lock: BorrowedFd<'_>,
    name: &str,
) -> Result<Child> {
    let open = |file: &str, flags: OFlags| {
        logdir::open_file(dir, file, flags, 0o644)
            .context(|| format!("unable to open {name}/{file}"))
    };
    let input = open(PREVIOUS, OFlags::RDONLY)?;
    let output = open(PROCESSED, OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC)?;
    let state = open(STATE, OFlags::RDONLY | OFlags::CREATE)?;
    let newstate = open(NEWSTATE, OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC)?;
    // Above 5, so that placing them at 4 and 5 cannot overwrite one another.
    let high = |fd: &OwnedFd| rustix::io::fcntl_dupfd_cloexec(fd, 10).context(|| "dup".to_string());
    let (state, newstate) = (high(&state)?, high(&newstate)?);
    let (state_fd, newstate_fd) = (state.as_raw_fd(), newstate.as_raw_fd());
    let (dir_fd, lock_fd) = (dir.as_raw_fd(), lock.as_raw_fd());
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::from(input))
        .stdout(Stdio::from(output));
    // SAFETY: only async-signal-safe system calls, in the child before exec.
    unsafe {
        cmd.pre_exec(move || {
            // In this order: the directory and lock may be fds 4 or 5 themselves.
            // The lock's copy (F_DUPFD, above 10) stays open across exec.
            if libc::fchdir(dir_fd) < 0
                || libc::fcntl(lock_fd, libc::F_DUPFD, 10) < 0
                || libc::dup2(state_fd, 4) < 0
                || libc::dup2(newstate_fd, 5) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .context(|| format!("{name}: starting processor {command:?}"))?;
    drop((state, newstate));
    Ok(child)
}

/// After a successful run: `processed` becomes the archive `stamp`, the new
/// state replaces the old, and `previous` goes. The archive and its size.
pub fn finish(
    dir: BorrowedFd<'_>,
    stamp: crate::format::stamp::Stamp,
    name: &str,
) -> Result<(Archive, u64)> {
    let archive = Archive {
        stamp,
        complete: true,
    };
    let processed = logdir::open_file(dir, PROCESSED, OFlags::RDONLY, 0)
        .context(|| format!("unable to open {name}/{PROCESSED}"))?;
    let size = fs::fstat(&processed)
        .context(|| format!("{name}/{PROCESSED}: fstat"))?
        .st_size as u64;
    fs::fsync(&processed).context(|| format!("{name}/{PROCESSED}: fsync"))?;
    fs::fchmod(&processed, Mode::from_raw_mode(logdir::MODE_FINISHED))
        .context(|| format!("{name}/{PROCESSED}: chmod"))?;
    fs::renameat(dir, PROCESSED, dir, archive.name())
        .context(|| format!("{name}: renaming {PROCESSED} to {}", archive.name()))?;
    match fs::renameat(dir, NEWSTATE, dir, STATE) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => Err(e).context(|| format!("{name}: renaming {NEWSTATE} to {STATE}"))?,
    }
    fs::fsync(dir).context(|| format!("{name}: fsync"))?;
    fs::unlinkat(dir, PREVIOUS, AtFlags::empty())
        .context(|| format!("{name}/{PREVIOUS}: unlink"))?;
    Ok((archive, size))
}

/// After a failed run: its partial output goes; `previous` stays.
pub fn discard(dir: BorrowedFd<'_>) {
    let _ = fs::unlinkat(dir, PROCESSED, AtFlags::empty());
    let _ = fs::unlinkat(dir, NEWSTATE, AtFlags::empty());
}

/// Whether the named file exists in `dir`.
pub fn exists(dir: impl AsFd, file: &str) -> bool {
    fs::statat(dir, file, AtFlags::SYMLINK_NOFOLLOW).is_ok()
}
