//! runit's svlogd: `cyclog [svlogd options] DIR...`, each directory kept as
//! its `config` file says, read into the same plan as a multilog script.
//!
//! `config` is read line by line: empty lines and lines starting with `#`
//! are skipped; `sSIZE` (0: never rotate), `nNUM` (0: keep all), `NMIN`,
//! `tSECONDS`, `!PROCESSOR` set how the directory is kept; `+PATTERN` and
//! `-PATTERN` select and deselect lines for it (each line starts
//! selected); `ePATTERN` and `EPATTERN` select and deselect lines for
//! standard error the same way (each line starts deselected). Patterns are svlogd's (see
//! [`svlogd_match`]) and see a line's first `-l` bytes (1000), never its
//! stamp. `u` and `U` (copies over UDP) and `p` (a prefix) are refused, not
//! ignored; so is any other line.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use crate::error::Usage;
use crate::logdir::write::writer::Policy;

use super::script::{Action, AlertForm, Dialect, Pattern, Script, Select, Step};

#[cfg(doc)]
use super::script::svlogd_match;

/// svlogd's options, where they mean something for cyclog.
#[derive(Debug)]
pub struct Options {
    /// `-l LEN`: what patterns and alerts see of a line.
    pub window: usize,
    /// `-t`, `-tt`, `-ttt`: stamps on alerts (cyclog always stamps lines).
    pub stamped: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            window: 1000,
            stamped: false,
        }
    }
}

/// svlogd's defaults for a directory without `config` lines.
pub fn defaults(base: &Policy, window: usize) -> Policy {
    Policy {
        max_file_size: 1_000_000,
        max_files: Some(10),
        max_total_size: u64::MAX,
        // svlogd rotates once `current` is within a line's length of its size.
        margin: window as u64,
        ..base.clone()
    }
}

/// The plan for `dirs`, each with its `config` if it has one, over `base`.
pub fn script(dirs: &[OsString], options: &Options, base: &Policy) -> Result<Script, Usage> {
    let mut steps = Vec::new();
    let mut kept = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        if kept.iter().any(|(d, _)| d == dir) {
            return Err(Usage(format!("{}: named twice", dir.to_string_lossy())));
        }
        let config = Path::new(dir).join("config");
        let text = match std::fs::read(&config) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Usage(format!("{}: {e}", config.display()))),
        };
        let mut policy = base.clone();
        let mut select = vec![Select::Set(true)];
        // Each line starts deselected for standard error.
        let mut alert = vec![Select::Set(false)];
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            let at = || format!("{}: line {}", config.display(), n + 1);
            let Some((&first, rest)) = line.split_first() else {
                continue;
            };
            let pattern = || Pattern::Svlogd {
                pattern: rest.to_vec(),
                window: options.window,
            };
            let number = || -> Result<u64, Usage> {
                std::str::from_utf8(rest)
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .ok_or_else(|| Usage(format!("{}: not a number after {}", at(), first as char)))
            };
            match first {
                b'#' => {}
                b'+' => select.push(Select::Plus(pattern())),
                b'-' => select.push(Select::Minus(pattern())),
                b'e' => alert.push(Select::Plus(pattern())),
                b'E' => alert.push(Select::Minus(pattern())),
                b's' => {
                    policy.max_file_size = match number()? {
                        0 => u64::MAX,
                        size => size.max(4096),
                    }
                }
                b'n' => policy.max_files = Some(number()?).filter(|&n| n > 0),
                // On a full disk, make room by deleting the oldest archives.
                b'N' => {
                    number()?;
                    policy.delete_when_full = true;
                }
                b't' => {
                    let secs = number()?;
                    policy.rotate_every = (secs > 0).then(|| Duration::from_secs(secs));
                }
                b'!' => {
                    policy.processor =
                        (!rest.is_empty()).then(|| String::from_utf8_lossy(rest).into_owned())
                }
                b'u' | b'U' => {
                    return Err(Usage(format!(
                        "{}: svlogd's {} (copies over UDP) is not supported: export-to-remote \
                         sends a log directory to a syslog server, reliably (see \
                         export-to-remote(8))",
                        at(),
                        first as char
                    )));
                }
                b'p' => {
                    return Err(Usage(format!(
                        "{}: svlogd's p (a prefix on each line) is not supported: cyclog \
                         writes each line as it came",
                        at()
                    )));
                }
                _ => {
                    return Err(Usage(format!(
                        "{}: {:?} is not an svlogd config line",
                        at(),
                        String::from_utf8_lossy(line)
                    )));
                }
            }
        }
        if alert.len() > 1 {
            steps.push(Step {
                select: alert,
                action: Action::Alert {
                    form: AlertForm::Svlogd {
                        window: options.window,
                    },
                    stamped: options.stamped,
                },
            });
        }
        steps.push(Step {
            select,
            action: Action::Dir(i),
        });
        kept.push((dir.clone(), policy));
    }
    if kept.is_empty() {
        return Err(Usage("no log directory named".into()));
    }
    Ok(Script {
        dialect: Dialect::Svlogd,
        steps,
        dirs: kept,
        patterns_see_stamp: false,
    })
}
