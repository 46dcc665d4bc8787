//! Verifying a sealed log directory on disk (logseal(7)): its seal files
//! and log files fed, in the order the verifier takes them, to
//! [`Verifier`]. Nothing read is trusted: names that are not exactly a seal
//! file's or an archive's are passed over, links are not followed, files
//! that are not regular are refused, and compressed archives are checked
//! by the bytes they hold once decompressed.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self, Mode, OFlags};

use crate::error::{Context, Result};
use crate::logdir::read::compressed::{Decoded, Format};
use crate::logdir::seal::{SEAL_DIR, Seed, Verdict, Verifier, seal_file_stamp};
use crate::logdir::{self, CURRENT};

/// Bytes read and fed at a time.
const BLOCK: usize = 1 << 20;

/// Verifies the log directory at `path` with `seed`. Err: the directory
/// could not be read (not a verdict on it).
pub fn verify_dir(path: &Path, seed: &Seed) -> Result<Verdict> {
    let shown = path.display().to_string();
    let dir = logdir::open_dir(path.as_os_str()).context(|| format!("{shown}: open"))?;
    let mut v = Verifier::new(seed);
    let mut buf = vec![0u8; BLOCK];
    match fs::openat(
        &dir,
        SEAL_DIR,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(seals) => {
            let mut stamps = Vec::new();
            let mut has_current = false;
            for entry in
                fs::Dir::read_from(&seals).context(|| format!("{shown}/{SEAL_DIR}: list"))?
            {
                let entry = entry.context(|| format!("{shown}/{SEAL_DIR}: list"))?;
                let name = entry.file_name().to_bytes();
                if name == CURRENT.as_bytes() {
                    has_current = true;
                } else if let Some(stamp) = seal_file_stamp(name) {
                    stamps.push(stamp);
                }
            }
            stamps.sort();
            let names = stamps
                .iter()
                .map(|s| s.to_string())
                .chain(has_current.then(|| CURRENT.to_string()));
            for name in names {
                let bytes = read_seal_file(seals.as_fd(), &name)
                    .context(|| format!("{shown}/{SEAL_DIR}/{name}: read"))?;
                v.seal_file(&format!("{SEAL_DIR}/{name}"), &bytes);
            }
        }
        // No seals: the verifier says so when the files begin.
        Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(e).context(|| format!("{shown}/{SEAL_DIR}: open")),
    }
    let archives =
        logdir::list_archives(dir.as_fd()).context(|| format!("{shown}: list the archives"))?;
    for (archive, _) in archives {
        let name = archive.name();
        let file = match logdir::open_file(dir.as_fd(), &name, OFlags::RDONLY, 0) {
            Ok(file) => file,
            // Finished meanwhile: `.u` renamed `.s`.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !archive.complete => {
                let done = logdir::Archive {
                    complete: true,
                    ..archive.clone()
                }
                .name();
                logdir::open_file(dir.as_fd(), &done, OFlags::RDONLY, 0)
                    .context(|| format!("{shown}/{done}: open"))?
            }
            Err(e) => return Err(e).context(|| format!("{shown}/{name}: open")),
        };
        v.begin_archive(archive.stamp);
        feed_file(&mut v, file, &mut buf).context(|| format!("{shown}/{name}: read"))?;
    }
    match logdir::open_file(dir.as_fd(), CURRENT, OFlags::RDONLY, 0) {
        Ok(file) => {
            v.begin_current();
            feed_file(&mut v, file, &mut buf).context(|| format!("{shown}/{CURRENT}: read"))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).context(|| format!("{shown}/{CURRENT}: open")),
    }
    Ok(v.finish())
}

/// A seal file, whole: its records are short, and a seal file longer than
/// this limit is no honest writer's (one record per seal of one file).
fn read_seal_file(dir: BorrowedFd<'_>, name: &str) -> std::io::Result<Vec<u8>> {
    const LIMIT: u64 = 1 << 30;
    let file = logdir::open_file(dir, name, OFlags::RDONLY, 0)?;
    let mut bytes = Vec::new();
    std::fs::File::from(file)
        .take(LIMIT)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Feeds a log file's bytes, decompressed if a processor compressed it.
fn feed_file(v: &mut Verifier, file: OwnedFd, buf: &mut [u8]) -> std::io::Result<()> {
    let format = Format::of(file.as_fd())?;
    let mut reader: Box<dyn Read> = match format {
        Format::Plain => Box::new(std::fs::File::from(file)),
        f if f.decodable() => Box::new(Decoded::open(file.as_fd(), f)?),
        // Not decoded: its bytes, which cannot match a seal of text.
        _ => Box::new(std::fs::File::from(file)),
    };
    loop {
        match reader.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => v.feed(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
