//! `log-show --verify KEY DIR...`: checks sealed log directories against
//! their seals (logseal(7)) and says, one line per directory on standard
//! output, what holds: intact, intact with lines after the last seal, or
//! tampered with the first bad place. The key comes from the person, as the
//! verification line or a file holding it, never from a directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{self, EXIT_TEMPORARY};
use crate::error::Usage;
use crate::format::stamp::Stamp;
use crate::logdir::read::verify::verify_dir;
use crate::logdir::seal::{Seed, Summary, Verdict};

/// Exit code when a directory fails verification.
pub const EXIT_TAMPERED: i32 = 1;

/// The seed from KEY: the verification line itself, or a file holding it.
pub fn read_key(key: &str) -> Result<Seed, Usage> {
    let line = if key.starts_with("rill-seal-verify-1:") {
        key.to_owned()
    } else {
        let bytes =
            std::fs::read(Path::new(key)).map_err(|e| Usage(format!("{key}: read: {e}")))?;
        if bytes.len() > 4096 {
            return Err(Usage(format!("{key}: not a verification line (too long)")));
        }
        String::from_utf8(bytes).map_err(|_| Usage(format!("{key}: not a verification line")))?
    };
    Seed::parse_verification_line(&line).map_err(|e| Usage(format!("the key: {e}")))
}

fn when(stamp: Stamp) -> String {
    let utc = stamp.to_utc();
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(utc.unix.max(0) as u64);
    let text = humantime::format_rfc3339_seconds(time).to_string();
    format!("{} UTC", text.trim_end_matches('Z').replacen('T', " ", 1))
}

fn summary_text(s: &Summary) -> String {
    let mut text = format!(
        "sealed through seal {} of {}; {} archive{} checked",
        s.last_seq,
        when(s.last_at),
        s.archives_checked,
        if s.archives_checked == 1 { "" } else { "s" }
    );
    if s.archives_not_covered > 0 {
        text.push_str(&format!(
            ", {} older not covered (from before sealing began, or past the cap)",
            s.archives_not_covered
        ));
    }
    if s.rotation_interrupted {
        text.push_str("; a rotation was cut short after its seal");
    }
    if s.archives_unsealed > 0 {
        text.push_str(&format!(
            "; {} newer archive{} rotated before {} end seal (a writer stopped by a crash, \
             or still at work)",
            s.archives_unsealed,
            if s.archives_unsealed == 1 { "" } else { "s" },
            if s.archives_unsealed == 1 {
                "its"
            } else {
                "their"
            }
        ));
    }
    text
}

/// One line for a directory's verdict.
pub fn verdict_line(dir: &Path, verdict: &Verdict) -> String {
    let dir = dir.display();
    match verdict {
        Verdict::Intact(s) => format!("{dir}: intact: {}", summary_text(s)),
        Verdict::UnsealedTail {
            summary,
            lines,
            bytes,
        } => format!(
            "{dir}: intact, but {lines} line{} ({bytes} bytes) at the end{} \
             were written after the last seal and are not covered: {}",
            if *lines == 1 { "" } else { "s" },
            if summary.archives_unsealed > 0 {
                ""
            } else {
                " of current"
            },
            summary_text(summary)
        ),
        Verdict::Tampered(t) => format!("{dir}: TAMPERED: {t}"),
    }
}

/// Verifies each directory; the exit code: 0 when all are intact,
/// [`EXIT_TAMPERED`] when one is not, 111 when one could not be read.
pub fn verify(seed: &Seed, dirs: &[PathBuf]) -> i32 {
    let mut code = 0;
    let mut out = std::io::stdout().lock();
    for dir in dirs {
        match verify_dir(dir, seed) {
            Ok(verdict) => {
                let _ = writeln!(out, "{}", verdict_line(dir, &verdict));
                if matches!(verdict, Verdict::Tampered(_)) {
                    code = EXIT_TAMPERED;
                }
            }
            Err(e) => {
                cli::warn(&format!("{}: unable to verify: {e}", dir.display()));
                if code == 0 {
                    code = EXIT_TEMPORARY;
                }
            }
        }
    }
    if out.flush().is_err() && code == 0 {
        code = EXIT_TEMPORARY;
    }
    code
}
