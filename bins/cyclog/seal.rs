//! cyclog's sealing options: `--seal KEYFILE`, `--seal-every DURATION`,
//! `--seal-lines N`, and `--make-seal-key KEYFILE`, which makes a key and
//! exits.

use std::path::PathBuf;
use std::time::Duration;

use rill::cli::{self, EXIT_TEMPORARY};
use rill::logdir::write::sealing::{self, SealPolicy};
use rill::logdir::write::writer::Policy;

const DEFAULT_EVERY: Duration = Duration::from_secs(10);
const DEFAULT_LINES: u64 = 100_000;

#[derive(Default)]
pub struct Options {
    key_file: Option<PathBuf>,
    every: Option<Duration>,
    lines: Option<u64>,
}

impl Options {
    /// Takes one of the options, by its long name.
    pub fn option(
        &mut self,
        name: &str,
        parser: &mut lexopt::Parser,
        option: &str,
    ) -> Result<(), String> {
        match name {
            "seal" => self.key_file = Some(cli::option_path(parser, option)?),
            "seal-every" => {
                let value = cli::option_text(parser, option)?;
                let every = cli::parse_duration(&value).map_err(|e| format!("{option}: {e}"))?;
                if every.is_zero() {
                    return Err(format!("{option}: must be longer than zero"));
                }
                self.every = Some(every);
            }
            "seal-lines" => {
                let value = cli::option_text(parser, option)?;
                let n = value.parse::<u64>().ok().filter(|&n| n >= 1);
                self.lines =
                    Some(n.ok_or(format!("{option}: {value:?} is not a number of at least 1"))?);
            }
            _ => make_key(cli::option_path(parser, option)?),
        }
        Ok(())
    }

    /// The sealing asked for, if any.
    pub fn policy(self, policy: &Policy) -> Result<Option<SealPolicy>, String> {
        let Some(key_file) = self.key_file else {
            if self.every.is_some() || self.lines.is_some() {
                return Err("--seal-every and --seal-lines need --seal KEYFILE".into());
            }
            return Ok(None);
        };
        if policy.processor.is_some() {
            return Err(
                "--seal: a processor changes the archives' bytes after their seal; \
                 sealing with a processor is not supported"
                    .into(),
            );
        }
        Ok(Some(SealPolicy {
            key_file,
            every: self.every.unwrap_or(DEFAULT_EVERY),
            lines: self.lines.unwrap_or(DEFAULT_LINES),
        }))
    }
}

/// A key seals one directory: its seals are numbered in one sequence.
pub fn one_directory(policies: &[Policy]) -> Result<(), String> {
    if policies.iter().any(|p| p.seal.is_some()) && policies.len() != 1 {
        return Err(format!(
            "--seal: one log directory only (a key seals one directory), {} named",
            policies.len()
        ));
    }
    Ok(())
}

/// `--make-seal-key KEYFILE`: makes the key, prints its verification line
/// once on standard output, and exits.
fn make_key(path: PathBuf) -> ! {
    match sealing::make_key(&path) {
        Ok(seed) => {
            println!("{}", seed.verification_line());
            cli::info(&format!(
                "{}: seal key made; keep the line above off this machine: \
                 log-show --verify needs it, and it is not stored here",
                path.display()
            ));
            std::process::exit(0)
        }
        Err(e) => cli::fatal(EXIT_TEMPORARY, &format!("making a seal key: {e}")),
    }
}
