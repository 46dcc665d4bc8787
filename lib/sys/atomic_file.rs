//! Replacing a small file whole, so that a crash leaves the old contents
//! or the new, never a mix: the new contents are written to a temporary
//! file beside it, synced, renamed over it, and the directory synced.
//!
//! The steps are also given one by one, for a caller that syncs many
//! files at once (one syncfs(2) instead of an fsync(2) each).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Context, Result};

/// A file of a directory, and the temporary name its new contents take.
pub struct AtomicFile<'a> {
    pub dir: BorrowedFd<'a>,
    /// The directory as messages name it; empty for the current one.
    pub shown: &'a str,
    pub name: &'a Path,
    pub temp: &'a Path,
    /// For the temporary file, before the umask.
    pub mode: Mode,
}

impl AtomicFile<'_> {
    /// Replaces the file with `bytes`, durably.
    pub fn replace(&self, bytes: &[u8]) -> Result<()> {
        let written = self.write_temp(bytes)?;
        self.commit(&written)
    }

    /// Writes `bytes` to the temporary file, not synced; the file written.
    pub fn write_temp(&self, bytes: &[u8]) -> Result<OwnedFd> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC;
        let fd = fs::openat(self.dir, self.temp, flags, self.mode)
            .context(|| format!("create {}", self.path(self.temp)))?;
        write_all_at(fd.as_fd(), bytes).context(|| format!("write {}", self.path(self.temp)))?;
        Ok(fd)
    }

    /// After `write_temp`: syncs the temporary file `written`, renames it
    /// over the file, syncs the directory.
    pub fn commit(&self, written: &OwnedFd) -> Result<()> {
        fs::fsync(written).context(|| format!("fsync {}", self.path(self.temp)))?;
        self.rename()?;
        fs::fsync(self.dir).context(|| format!("fsync {}", self.dir_path()))
    }

    /// Renames the temporary file over the file (both synced by the caller).
    pub fn rename(&self) -> Result<()> {
        fs::renameat(self.dir, self.temp, self.dir, self.name).context(|| {
            format!(
                "rename {} to {}",
                self.path(self.temp),
                self.path(self.name)
            )
        })
    }

    fn path(&self, name: &Path) -> String {
        match self.shown {
            "" => name.display().to_string(),
            dir if dir.ends_with('/') => format!("{dir}{}", name.display()),
            dir => format!("{dir}/{}", name.display()),
        }
    }

    fn dir_path(&self) -> &str {
        if self.shown.is_empty() {
            "."
        } else {
            self.shown
        }
    }
}

/// Writes all of `bytes` at the start of `fd`.
pub fn write_all_at(fd: BorrowedFd<'_>, bytes: &[u8]) -> rustix::io::Result<()> {
    let mut done = 0;
    while done < bytes.len() {
        match rustix::io::pwrite(fd, &bytes[done..], done as u64) {
            Ok(n) => done += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_replaced_whole_and_no_temporary_file_is_left() {
        let root = std::env::temp_dir().join(format!("rill-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let dir = fs::open(&root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let shown = root.to_string_lossy();
        let file = AtomicFile {
            dir: dir.as_fd(),
            shown: &shown,
            name: Path::new("f"),
            temp: Path::new("f.new"),
            mode: Mode::from_raw_mode(0o644),
        };
        file.replace(b"a longer first version\n").unwrap();
        file.replace(b"second\n").unwrap();
        assert_eq!(std::fs::read(root.join("f")).unwrap(), b"second\n");
        assert!(!root.join("f.new").exists());
        std::fs::create_dir(root.join("d")).unwrap();
        let in_the_way = AtomicFile {
            name: Path::new("d"),
            ..file
        };
        let err = in_the_way.replace(b"x").unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("rename {shown}/f.new to {shown}/d: ")),
            "{err}"
        );
        assert!(Path::new(&root.join("d")).is_dir());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
