//! `--disk-usage`: the space log directories take in the file system, and
//! sizes as journalctl writes them (`512B`, `8.0M`, `1.5G`).

use crate::error::{Context, Result};
use std::path::Path;

/// The space the files of a log directory take (its archives, `current`,
/// `previous` and the rest), in bytes of allocated blocks, as journalctl
/// counts the journal's.
pub fn disk_usage(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let list = || format!("list {}", dir.display());
    for entry in std::fs::read_dir(dir).context(list)? {
        let entry = entry.context(list)?;
        let meta = entry
            .metadata()
            .context(|| format!("stat {}", entry.path().display()))?;
        if meta.is_file() {
            total += meta.blocks() * 512;
        }
    }
    Ok(total)
}

/// A size as systemd's `format_bytes` writes it: below 1024 in bytes
/// (`512B`), else in the largest binary unit it reaches, one decimal
/// truncated (`8.0M`, `1.5G`).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 6] = [
        ("E", 1 << 60),
        ("P", 1 << 50),
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ];
    for (suffix, factor) in UNITS {
        if bytes >= factor {
            let tenth = (bytes % factor) as u128 * 10 / u128::from(factor);
            return format!("{}.{tenth}{suffix}", bytes / factor);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_journalctl_writes_them() {
        assert_eq!(format_bytes(0), "0B");
        assert_eq!(format_bytes(1023), "1023B");
        assert_eq!(format_bytes(1024), "1.0K");
        assert_eq!(format_bytes(8 << 20), "8.0M");
        assert_eq!(format_bytes((3 << 29) + 1), "1.5G");
        assert_eq!(format_bytes((2 << 20) - 1), "1.9M");
    }
}
