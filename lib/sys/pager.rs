//! A pager for output to a terminal, started as journalctl starts one:
//! `$PAGER` (split at spaces, no shell), else `less`, else `more`, with
//! `LESS=FRXMK` unless `LESS` is set: quit at once if it all fits (F), pass
//! colours (R), leave the screen as it is (X), a long prompt (M), quit on
//! Ctrl-C (K). To start at the end (journalctl's `-e`), `less` is given
//! `+G`.

use std::process::{Child, ChildStdin, Command, Stdio};

pub struct Pager {
    child: Child,
}

impl Pager {
    /// Starts a pager reading from a pipe, returned. `None`: `$PAGER` is
    /// empty or `cat`, or nothing could be started; write directly.
    pub fn start(at_end: bool) -> Option<(Pager, ChildStdin)> {
        let chosen = std::env::var("PAGER").ok();
        let candidates: Vec<Vec<String>> = match chosen.as_deref().map(str::trim) {
            Some("") | Some("cat") => return None,
            Some(pager) => vec![pager.split_whitespace().map(String::from).collect()],
            None => Vec::new(),
        };
        let fallbacks = [vec!["less".to_string()], vec!["more".to_string()]];
        for argv in candidates.iter().chain(fallbacks.iter()) {
            let Some((program, args)) = argv.split_first() else {
                continue;
            };
            let mut command = Command::new(program);
            command.args(args).stdin(Stdio::piped());
            if at_end && program.rsplit('/').next() == Some("less") {
                command.arg("+G");
            }
            if std::env::var_os("LESS").is_none() {
                command.env("LESS", "FRXMK");
            }
            if let Ok(mut child) = command.spawn()
                && let Some(stdin) = child.stdin.take()
            {
                return Some((Pager { child }, stdin));
            }
        }
        None
    }

    /// Waits for the pager to be quit (its input must be closed first).
    pub fn wait(mut self) {
        let _ = self.child.wait();
    }
}
