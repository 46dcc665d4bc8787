//! Dropping root after opening what needs it: to the uid and gid named in
//! the environment by `chpst -U`, `s6-envuidgid` (which also sets GIDLIST)
//! or `envuidgid`.

use std::env;
use std::io;

use crate::error::{Error, Result, Usage};

/// Who to become: the ids the environment names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
}

/// `$UID`/`$GID` (supplementary groups: `$GIDLIST`, else just `$GID`), read
/// and checked before anything is opened, so that a service set up wrong
/// fails at once and leaves nothing behind. Refuses uid 0.
pub fn target_from_env() -> std::result::Result<Target, Usage> {
    let number = |name: &str| -> std::result::Result<u32, Usage> {
        let value = env::var(name).map_err(|_| {
            Usage(format!(
                "-U: ${name} is not set (run under chpst -U, s6-envuidgid or envuidgid)"
            ))
        })?;
        value
            .trim()
            .parse::<u32>()
            .map_err(|_| Usage(format!("-U: ${name}={value:?} is not a number")))
    };
    let (uid, gid) = (number("UID")?, number("GID")?);
    if uid == 0 {
        return Err(Usage::from("-U: $UID is 0: refusing to go on as root"));
    }
    let groups: Vec<libc::gid_t> = match env::var("GIDLIST") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|g| {
                g.trim()
                    .parse::<libc::gid_t>()
                    .map_err(|_| Usage(format!("-U: $GIDLIST={list:?} is not a list of numbers")))
            })
            .collect::<std::result::Result<_, _>>()?,
        _ => vec![gid],
    };
    Ok(Target { uid, gid, groups })
}

/// Becomes `target`, for good.
pub fn drop_to(target: &Target) -> Result<()> {
    let Target { uid, gid, groups } = target;
    let (uid, gid) = (*uid, *gid);
    // SAFETY: plain system calls with valid arguments; glibc applies setgid
    // and setuid to every thread, and we check the outcome after.
    unsafe {
        if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
            return Err(Error::new("-U: setgroups", io::Error::last_os_error()));
        }
        if libc::setgid(gid) != 0 {
            return Err(Error::new(
                format!("-U: setgid({gid})"),
                io::Error::last_os_error(),
            ));
        }
        if libc::setuid(uid) != 0 {
            return Err(Error::new(
                format!("-U: setuid({uid})"),
                io::Error::last_os_error(),
            ));
        }
        if libc::getuid() != uid
            || libc::geteuid() != uid
            || libc::getgid() != gid
            || libc::setuid(0) == 0
        {
            return Err(Error::invalid("-U", "could not drop root for good"));
        }
    }
    Ok(())
}
