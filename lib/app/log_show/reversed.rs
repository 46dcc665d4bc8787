//! Lines kept to be shown newest first (`-r` without `-n`), in bounded
//! memory: each as shown, followed by its length (32 bits, little-endian),
//! in memory up to `SPILL` bytes, the rest in an unnamed file in
//! `$TMPDIR` (else `/var/tmp`), read back from its end a block at a time.

use std::fs::File;
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// What is kept in memory before it goes to the file.
const SPILL: usize = 16 << 20;
/// The file is read back this much at a time (more for a longer line).
const BLOCK: usize = 1 << 20;

pub struct Reversed {
    /// The newest entries, after those in the file.
    memory: Vec<u8>,
    /// Where the entry being written starts in `memory`.
    start: usize,
    file: Option<File>,
    /// The bytes in the file.
    written: u64,
}

impl Reversed {
    pub fn new() -> Reversed {
        Reversed {
            memory: Vec::new(),
            start: 0,
            file: None,
            written: 0,
        }
    }

    /// Where to write the next entry; `push` then keeps it.
    pub fn entry(&mut self) -> &mut Vec<u8> {
        self.start = self.memory.len();
        &mut self.memory
    }

    pub fn push(&mut self) -> io::Result<()> {
        let len = self.memory.len() - self.start;
        let len = u32::try_from(len).map_err(|_| io::Error::other("line too long to keep"))?;
        self.memory.extend_from_slice(&len.to_le_bytes());
        if self.memory.len() >= SPILL {
            let file = match &mut self.file {
                Some(file) => file,
                None => self.file.insert(unnamed_file()?),
            };
            file.write_all(&self.memory)?;
            self.written += self.memory.len() as u64;
            self.memory.clear();
        }
        Ok(())
    }

    /// Hands out the entries, newest first, until `show` breaks.
    pub fn drain<B>(
        &mut self,
        mut show: impl FnMut(&[u8]) -> ControlFlow<B>,
    ) -> io::Result<ControlFlow<B>> {
        if let ControlFlow::Break(b) = backwards(&self.memory, &mut show) {
            return Ok(ControlFlow::Break(b));
        }
        let Some(file) = &self.file else {
            return Ok(ControlFlow::Continue(()));
        };
        let mut end = self.written;
        let mut block = Vec::new();
        while end > 0 {
            // A block ending at `end`, holding whole entries at its end.
            let mut want = BLOCK.min(end as usize);
            loop {
                block.resize(want, 0);
                file.read_exact_at(&mut block, end - want as u64)?;
                let len = block
                    .get(want.saturating_sub(4)..)
                    .and_then(|t| <[u8; 4]>::try_from(t).ok())
                    .map(|t| u32::from_le_bytes(t) as usize)
                    .ok_or_else(|| io::Error::other("kept lines damaged"))?;
                if len + 4 <= want {
                    break;
                }
                if len as u64 + 4 > end {
                    return Err(io::Error::other("kept lines damaged"));
                }
                want = len + 4;
            }
            let whole = whole_entries(&block);
            if let ControlFlow::Break(b) = backwards(&block[block.len() - whole..], &mut show) {
                return Ok(ControlFlow::Break(b));
            }
            end -= whole as u64;
        }
        Ok(ControlFlow::Continue(()))
    }
}

/// How many bytes at the end of `block` are whole entries.
fn whole_entries(block: &[u8]) -> usize {
    let mut at = block.len();
    while at >= 4 {
        let len = u32::from_le_bytes([block[at - 4], block[at - 3], block[at - 2], block[at - 1]]);
        match (at - 4).checked_sub(len as usize) {
            Some(start) => at = start,
            None => break,
        }
    }
    block.len() - at
}

/// The entries of `bytes` (whole ones), newest first.
fn backwards<B>(bytes: &[u8], show: &mut impl FnMut(&[u8]) -> ControlFlow<B>) -> ControlFlow<B> {
    let mut at = bytes.len();
    while at >= 4 {
        let len = u32::from_le_bytes([bytes[at - 4], bytes[at - 3], bytes[at - 2], bytes[at - 1]]);
        let Some(start) = (at - 4).checked_sub(len as usize) else {
            break;
        };
        show(&bytes[start..at - 4])?;
        at = start;
    }
    ControlFlow::Continue(())
}

/// A file of ours alone, gone once closed.
fn unnamed_file() -> io::Result<File> {
    let dir = std::env::var_os("TMPDIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from);
    for attempt in 0u32..100 {
        let path = dir.join(format!("log-show.{}.{attempt}", std::process::id()));
        match File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
        }
    }
    Err(io::Error::other(format!(
        "{}: no free name for a temporary file",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(r: &mut Reversed) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let flow = r.drain(|e| {
            got.push(e.to_vec());
            ControlFlow::<()>::Continue(())
        });
        assert_eq!(flow.unwrap(), ControlFlow::Continue(()));
        got
    }

    #[test]
    fn lines_come_back_newest_first_through_the_file() {
        let mut r = Reversed::new();
        let mut lines = Vec::new();
        // Enough to spill twice, lines of every length up to a few blocks.
        let mut size = 0;
        let mut i = 0u64;
        while size < 2 * SPILL + BLOCK {
            let len =
                (i * 7919 % 5000) as usize + if i.is_multiple_of(997) { 3 * BLOCK } else { 0 };
            let line: Vec<u8> = (0..len).map(|j| (i as usize + j) as u8).collect();
            r.entry().extend_from_slice(&line);
            r.push().unwrap();
            size += len + 4;
            lines.push(line);
            i += 1;
        }
        assert!(r.written > 0);
        lines.reverse();
        assert!(all(&mut r) == lines, "{} lines", lines.len());
    }

    #[test]
    fn in_memory_only() {
        let mut r = Reversed::new();
        for line in [&b"a"[..], b"", b"ccc"] {
            r.entry().extend_from_slice(line);
            r.push().unwrap();
        }
        assert_eq!(all(&mut r), [&b"ccc"[..], b"", b"a"]);
    }
}
