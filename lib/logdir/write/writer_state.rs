//! The writer's state (`WriterState`): what it is doing, kept in `cyclog.state` in each
//! log directory, so that a writer killed at any instant can be restarted
//! with nothing lost and nothing written twice.
//!
//! Input is peeked from the pipe, written, and only then consumed. Before
//! writing a chunk the writer records `Pending` (the chunk's length and hash,
//! where it starts in `current`, how many bytes it will add); once the chunk
//! is consumed it records `Idle` with the size of `current`. On restart:
//!
//! - `Pending`, and the pipe still starts with the chunk (same length and
//!   hash): it was not consumed. If `current` holds all of it, skip it in
//!   the input; if only part, cut `current` back and write it again.
//! - `Pending`, and the pipe holds something else: it was consumed; keep
//!   `current` as it is.
//! - `Idle` matching `current`'s size: `current` is ours and whole, even if
//!   it ends in the middle of a line (the rest of that line is in the pipe).
//!
//! A writer that skips a chunk on restart keeps its predecessor's `Pending`
//! record, and its `current` where it is (no rotation), until that chunk is
//! consumed: an `Idle` written before would tell a third writer that the
//! chunk, still in the pipe, was never written.
//!
//! The one case this cannot tell apart: killed between consuming a chunk and
//! recording `Idle` (two system calls apart), when the next chunk in the pipe
//! is byte for byte the same. The writer then skips that second copy.
//!
//! The record is one fixed-size line, rewritten in place with one pwrite(2)
//! (atomic against kill -9; it is not synced, as a pipe does not survive a
//! power cut anyway).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, OFlags};

use crate::error::{Context, Result};
use crate::logdir::{WRITER_STATE, open_file, read_exact_at};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriterState {
    /// Nothing in flight; `current` was `size` bytes long.
    Idle { size: u64 },
    /// A chunk of `len` input bytes hashing to `hash` is being written to
    /// `current` from offset `at`, adding `out_len` bytes.
    Pending {
        len: u64,
        hash: u64,
        at: u64,
        out_len: u64,
    },
}

const RECORD_LEN: usize = 80;

impl WriterState {
    fn encode(self) -> [u8; RECORD_LEN] {
        let text = match self {
            WriterState::Idle { size } => format!("idle {size:016x}"),
            WriterState::Pending {
                len,
                hash,
                at,
                out_len,
            } => {
                format!("pending {len:016x} {hash:016x} {at:016x} {out_len:016x}")
            }
        };
        let mut out = [b' '; RECORD_LEN];
        out[..text.len()].copy_from_slice(text.as_bytes());
        out[RECORD_LEN - 1] = b'\n';
        out
    }

    fn decode(bytes: &[u8]) -> Option<WriterState> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut words = text.split_ascii_whitespace();
        let keyword = words.next()?;
        let numbers: Vec<u64> = words
            .map(|w| u64::from_str_radix(w, 16).ok())
            .collect::<Option<_>>()?;
        match (keyword, numbers.as_slice()) {
            ("idle", &[size]) => Some(WriterState::Idle { size }),
            ("pending", &[len, hash, at, out_len]) => Some(WriterState::Pending {
                len,
                hash,
                at,
                out_len,
            }),
            _ => None,
        }
    }
}

/// `cyclog.state` in one log directory.
pub struct StateFile {
    fd: OwnedFd,
}

impl StateFile {
    pub fn open(dir: BorrowedFd<'_>, dir_name: &str) -> Result<StateFile> {
        let fd = open_file(dir, WRITER_STATE, OFlags::RDWR | OFlags::CREATE, 0o644)
            .context(|| format!("unable to open {dir_name}/{WRITER_STATE}"))?;
        // Give the record its space now, so that rewriting it in place needs
        // none later, when the disk may be full.
        let size = fs::fstat(&fd)
            .context(|| format!("{dir_name}/{WRITER_STATE}: fstat"))?
            .st_size;
        if (size as usize) < RECORD_LEN {
            let mut blank = [b' '; RECORD_LEN];
            blank[RECORD_LEN - 1] = b'\n';
            // Best effort: on a disk already full it will be written later.
            let _ = rustix::io::pwrite(&fd, &blank, 0);
        }
        Ok(StateFile { fd })
    }

    /// The record in a directory's `cyclog.state`, read without opening
    /// it for writing or creating it: none if absent or unreadable.
    pub fn read_in(dir: BorrowedFd<'_>) -> Option<WriterState> {
        let fd = open_file(dir, WRITER_STATE, OFlags::RDONLY, 0).ok()?;
        StateFile { fd }.read()
    }

    /// The record left by the last writer, if any and readable.
    pub fn read(&self) -> Option<WriterState> {
        let mut buf = [0u8; RECORD_LEN];
        match read_exact_at(self.fd.as_fd(), &mut buf, 0) {
            Ok(RECORD_LEN) => WriterState::decode(&buf),
            _ => None,
        }
    }

    pub fn write(&self, record: WriterState) -> std::io::Result<()> {
        let bytes = record.encode();
        let mut done = 0;
        while done < RECORD_LEN {
            match rustix::io::pwrite(&self.fd, &bytes[done..], done as u64) {
                Ok(n) => done += n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// A fast 64-bit hash of a chunk (not cryptographic: it only has to tell a
/// chunk from the different data that follows it in the same pipe). Four
/// independent lanes, so that the multiplications do not wait on each other.
pub fn chunk_hash(data: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mix = |h: u64, v: u64| (h ^ v).wrapping_mul(K).rotate_left(29);
    let word = |b: &[u8]| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let mut lanes = [1u64, 2, 3, 4].map(|i| (data.len() as u64 + i).wrapping_mul(K));
    let mut blocks = data.chunks_exact(32);
    for block in &mut blocks {
        for (lane, w) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            *lane = mix(*lane, word(w));
        }
    }
    let mut h = lanes.iter().fold(0u64, |h, &lane| mix(h, lane));
    let mut words = blocks.remainder().chunks_exact(8);
    for w in &mut words {
        h = mix(h, word(w));
    }
    for &b in words.remainder() {
        h = mix(h, u64::from(b));
    }
    // Final mix so every input bit reaches every output bit.
    h ^= h >> 32;
    h = h.wrapping_mul(0xd6e8_feb8_6659_fd93);
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        for r in [
            WriterState::Idle { size: 0 },
            WriterState::Idle { size: 123456789 },
            WriterState::Pending {
                len: 65536,
                hash: u64::MAX,
                at: 7,
                out_len: 90000,
            },
        ] {
            assert_eq!(WriterState::decode(&r.encode()), Some(r));
        }
        assert_eq!(WriterState::decode(b"garbage"), None);
        assert_eq!(WriterState::decode(&[0u8; RECORD_LEN]), None);
    }

    #[test]
    fn hash_tells_neighbouring_chunks_apart() {
        assert_ne!(chunk_hash(b"line 1\n"), chunk_hash(b"line 2\n"));
        assert_ne!(chunk_hash(b"a"), chunk_hash(b"a\0"));
        assert_ne!(chunk_hash(b""), chunk_hash(b"\0"));
        assert_eq!(chunk_hash(b"same bytes"), chunk_hash(b"same bytes"));
        // Every byte of a long chunk counts, whichever lane it falls in.
        let base: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        for i in [0, 7, 8, 31, 32, 500, 998, 999] {
            let mut changed = base.clone();
            changed[i] ^= 1;
            assert_ne!(chunk_hash(&base), chunk_hash(&changed), "byte {i}");
        }
    }
}
