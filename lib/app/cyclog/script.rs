//! multilog and s6-log scripts: the words after cyclog's options, read as
//! the peer reads them, into a typed plan of actions applied to each line in
//! order.
//!
//! A script is a list of words. Selection words change whether the line at
//! hand is selected; settings words (`s`, `n`, `!`, …) apply to the
//! directories named after them; action words (a directory, `=status`, an
//! alert) act on the line if it is selected at that point. Each line starts
//! selected. Both peers evaluate the same way: `+p` selects the line if `p`
//! matches, `-p` deselects it if `p` matches, and s6-log's `f` selects it
//! exactly if no action so far acted on it.
//!
//! The two dialects differ in their patterns: multilog's are globs that must
//! match the whole line (see [`glob_match`]) and see its first 1000 bytes,
//! after the stamp if the script starts with `t`; s6-log's are POSIX
//! extended regular expressions that may match anywhere in the line, and see
//! the line without its stamp. Which dialect a script is in is decided by
//! its words, never guessed from a pattern: see [`Dialect`].
//!
//! A directory word must start with `.` or `/`, as both peers require; any
//! other word that is not an action is refused, with how to write it.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use crate::error::Usage;
use crate::logdir::write::writer::Policy;

/// How many bytes of a line multilog's patterns and status files see.
pub const MULTILOG_SEEN: usize = 1000;

/// What a multilog pattern sees in front of the line when the script starts
/// with `t`: a stamp's shape. The pattern must not depend on the stamp's
/// value, which a rewrite after a kill would change.
pub const PATTERN_STAMP: &[u8] = b"@400000000000000000000000 ";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// daemontools' multilog: glob patterns, `e` prints the line raw.
    Multilog,
    /// s6-log: regular expressions, `f`, `2` alerts with a prefix.
    S6Log,
    /// runit's svlogd: each directory's `config` (see `svlogd`).
    Svlogd,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Multilog => "multilog",
            Dialect::S6Log => "s6-log",
            Dialect::Svlogd => "svlogd",
        }
    }
}

pub enum Pattern {
    Glob(Vec<u8>),
    Regex(regex::bytes::Regex),
    /// svlogd's pattern, seeing the first `window` bytes (its `-l`).
    Svlogd {
        pattern: Vec<u8>,
        window: usize,
    },
}

impl Pattern {
    fn matches(&self, line: &[u8], stamped: bool) -> bool {
        match self {
            Pattern::Glob(glob) => {
                if stamped {
                    let mut seen = Vec::with_capacity(MULTILOG_SEEN);
                    seen.extend_from_slice(PATTERN_STAMP);
                    let room = MULTILOG_SEEN - PATTERN_STAMP.len();
                    seen.extend_from_slice(&line[..line.len().min(room)]);
                    glob_match(glob, &seen)
                } else {
                    glob_match(glob, &line[..line.len().min(MULTILOG_SEEN)])
                }
            }
            Pattern::Regex(re) => re.is_match(line),
            Pattern::Svlogd { pattern, window } => {
                svlogd_match(pattern, &line[..line.len().min(*window)])
            }
        }
    }
}

pub enum Select {
    Plus(Pattern),
    Minus(Pattern),
    /// s6-log's `f`: selected exactly if no action acted on the line yet.
    NotActedOn,
    /// Selected or not, whatever came before (svlogd's each directory and
    /// each alert start afresh).
    Set(bool),
}

/// How a status file is written from a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusForm {
    /// multilog: the first 1000 bytes, padded with LFs to 1001.
    Multilog,
    /// s6-log: the line and its LF cut to `size` bytes, or padded with LFs
    /// to `size`; 0: the line and its LF as they are.
    S6Log { size: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertForm {
    /// multilog's `e`: the first 200 bytes (stamp included), raw.
    Multilog,
    /// s6-log's `2`: `cyclog: alert: `, the first `limit` bytes and `...`
    /// if cut (no limit if 0).
    S6Log { limit: usize },
    /// svlogd's `e`/`E`: the first `window` bytes, and `...` if the line
    /// has that many.
    Svlogd { window: usize },
}

pub enum Action {
    /// A log directory, index into `Script::dirs`.
    Dir(usize),
    Status {
        path: OsString,
        form: StatusForm,
        stamped: bool,
    },
    /// To standard error, as the peer writes it.
    Alert { form: AlertForm, stamped: bool },
}

/// One step of the script: selection words, then the action they lead to.
pub struct Step {
    pub select: Vec<Select>,
    pub action: Action,
}

pub struct Script {
    pub dialect: Dialect,
    pub steps: Vec<Step>,
    /// Each directory and how it is kept, in the order named.
    pub dirs: Vec<(OsString, Policy)>,
    /// multilog's `t`: patterns see a stamp in front of the line.
    pub patterns_see_stamp: bool,
}

impl Script {
    /// Which actions act on `line`, in script order: `acts[i]` for step `i`.
    pub fn decide(&self, line: &[u8], acts: &mut Vec<bool>) {
        acts.clear();
        let (mut selected, mut acted) = (true, false);
        for step in &self.steps {
            for select in &step.select {
                match select {
                    Select::Plus(p) => {
                        if !selected && p.matches(line, self.patterns_see_stamp) {
                            selected = true;
                        }
                    }
                    Select::Minus(p) => {
                        if selected && p.matches(line, self.patterns_see_stamp) {
                            selected = false;
                        }
                    }
                    Select::NotActedOn => selected = !acted,
                    Select::Set(to) => selected = *to,
                }
            }
            acted |= selected;
            acts.push(selected);
        }
    }

    /// Whether directory `dir` takes `line`.
    pub fn dir_takes(&self, dir: usize, line: &[u8]) -> bool {
        let mut acts = Vec::with_capacity(self.steps.len());
        self.decide(line, &mut acts);
        let step = self
            .steps
            .iter()
            .position(|s| matches!(s.action, Action::Dir(d) if d == dir));
        step.is_some_and(|i| acts[i])
    }

    /// Whether some action other than a directory is in the script.
    pub fn has_side_actions(&self) -> bool {
        self.steps
            .iter()
            .any(|s| !matches!(s.action, Action::Dir(_)))
    }
}

/// multilog's match: each non-star matches itself; a star before the end
/// matches the shortest run up to the next occurrence of the pattern's next
/// character (no backtracking, as multilog's match.c); a star at the end
/// matches anything. The pattern must match the whole line.
pub fn glob_match(pattern: &[u8], line: &[u8]) -> bool {
    star_match(pattern, line, false)
}

/// svlogd's match: as multilog's, and a `+` matches the pattern's next
/// character one or more times; once the line is used up inside a `+` run,
/// it matches (runit's pmatch.c).
pub fn svlogd_match(pattern: &[u8], line: &[u8]) -> bool {
    star_match(pattern, line, true)
}

fn star_match(pattern: &[u8], line: &[u8], plus_runs: bool) -> bool {
    let (mut p, mut b) = (pattern, line);
    loop {
        let Some((&c, rest)) = p.split_first() else {
            return b.is_empty();
        };
        p = rest;
        match c {
            b'*' => {
                let Some(&next) = p.first() else {
                    return true;
                };
                match memchr::memchr(next, b) {
                    Some(i) => b = &b[i..],
                    None => return false,
                }
            }
            b'+' if plus_runs => {
                let Some((&next, rest)) = p.split_first() else {
                    return false;
                };
                p = rest;
                if b.first() != Some(&next) {
                    return false;
                }
                let run = b.iter().take_while(|&&d| d == next).count();
                b = &b[run..];
                if b.is_empty() {
                    return true;
                }
            }
            _ => match b.split_first() {
                Some((&d, rest)) if d == c => b = rest,
                _ => return false,
            },
        }
    }
}

/// The s6-log options given before the script, where they mean something
/// for cyclog.
#[derive(Default, Debug)]
pub struct S6Options {
    /// `-d FD`: write a newline to FD once every directory is open.
    pub notify_fd: Option<i32>,
    /// `-l N`: split lines longer than N (0: s6-log's "never"; cyclog keeps
    /// its --max-line then).
    pub line_limit: Option<usize>,
    /// Any s6-log option was given: the script is s6-log's.
    pub given: bool,
}

/// The multilog or s6-log action a word is, if it is one.
pub fn action_name(word: &[u8]) -> Option<&'static str> {
    let number = |rest: &[u8]| !rest.is_empty() && rest.iter().all(u8::is_ascii_digit);
    let (&first, rest) = word.split_first()?;
    Some(match first {
        b'.' | b'/' => return None,
        b't' if rest.is_empty() => "multilog's and s6-log's t (stamps)",
        b'T' if rest.is_empty() => "s6-log's T (ISO 8601 stamps)",
        b'e' if rest.is_empty() => "multilog's e (copy to standard error)",
        b'2' if rest.is_empty() => "s6-log's 2 (alert on standard error)",
        b'1' if rest.is_empty() => "s6-log's 1 (copy to standard output)",
        b'f' if rest.is_empty() => "s6-log's f (select the lines not yet acted on)",
        b'p' => "s6-log's pPREFIX (line prefix)",
        b's' if number(rest) => "multilog's and s6-log's sSIZE (file size)",
        b'n' if number(rest) => "multilog's and s6-log's nCOUNT (number of files)",
        b'S' if number(rest) => "s6-log's STOTAL (total size)",
        b'l' if number(rest) => "s6-log's lTOLERANCE (rotation tolerance)",
        b'r' if number(rest) => "s6-log's rCOOLDOWN (retry interval)",
        b'R' if number(rest) => "s6-log's RPERIOD (rotation period)",
        b'E' if number(rest) => "s6-log's ESIZE (alert size)",
        b'^' if number(rest) => "s6-log's ^SIZE (status file size)",
        b'!' => "multilog's and s6-log's !PROCESSOR (processor)",
        b'?' => "s6-log's ?PROCESSOR (processor)",
        b'+' | b'-' => "multilog's and s6-log's +PATTERN or -PATTERN (line selection)",
        b'=' => "multilog's and s6-log's =FILE (status file)",
        _ => return None,
    })
}

/// Words only s6-log has: a script with one is s6-log's.
fn s6_only(word: &[u8]) -> bool {
    matches!(
        word.first(),
        Some(b'T' | b'2' | b'1' | b'f' | b'p' | b'S' | b'l' | b'r' | b'R' | b'E' | b'^' | b'?')
    )
}

/// The dialect of a script, from what only one peer has: an s6-log option,
/// a word only s6-log has, or a pattern only multilog can mean (one that is
/// not a regular expression, such as `-*`) make it s6-log's or multilog's.
/// A script without patterns is multilog's (the dialects agree on all else
/// cyclog does). A script with patterns and nothing to tell, or with marks
/// of both, is refused unless `forced`: a pattern selects different lines in
/// each, and cyclog does not guess.
pub fn dialect_of(
    words: &[OsString],
    s6: &S6Options,
    forced: Option<Dialect>,
) -> Result<Dialect, Usage> {
    if let Some(d) = forced {
        return Ok(d);
    }
    let s6_mark = if s6.given {
        Some("an s6-log option".to_string())
    } else {
        words
            .iter()
            .find(|w| s6_only(w.as_bytes()))
            .map(|w| format!("{:?}", w.to_string_lossy()))
    };
    let patterns: Vec<&OsString> = words
        .iter()
        .filter(|w| matches!(w.as_bytes().first(), Some(b'+' | b'-')))
        .collect();
    let multilog_mark = words
        .iter()
        .find(|w| w.as_bytes() == b"e")
        .or_else(|| {
            patterns
                .iter()
                .copied()
                .find(|w| compile(&w.as_bytes()[1..], "").is_err())
        })
        .map(|w| format!("{:?}", w.to_string_lossy()));
    match (s6_mark, multilog_mark) {
        (Some(s6), Some(m)) => Err(Usage(format!(
            "the script has {s6}, s6-log's, and {m}, multilog's: give --dialect \
             multilog or --dialect s6-log"
        ))),
        (Some(_), None) => Ok(Dialect::S6Log),
        (None, Some(_)) => Ok(Dialect::Multilog),
        (None, None) => match patterns.first() {
            None => Ok(Dialect::Multilog),
            Some(p) => Err(Usage(format!(
                "{:?} selects different lines as multilog's pattern and as s6-log's \
                 regular expression, and nothing else in the script says which: give \
                 --dialect multilog or --dialect s6-log",
                p.to_string_lossy()
            ))),
        },
    }
}

/// Reads `words` as a script in `dialect`; `base` is how directories are
/// kept before any setting word (cyclog's options, over the peer's
/// defaults).
pub fn parse(words: &[OsString], dialect: Dialect, base: &Policy) -> Result<Script, Usage> {
    let mut policy = base.clone();
    let mut steps = Vec::new();
    let mut dirs: Vec<(OsString, Policy)> = Vec::new();
    let mut select = Vec::new();
    let mut patterns_see_stamp = false;
    let mut stamped = false;
    let mut alert_size = 200usize;
    let mut status_size = 1001usize;
    for (i, word) in words.iter().enumerate() {
        let bytes = word.as_bytes();
        let shown = word.to_string_lossy();
        let rest = &bytes[1.min(bytes.len())..];
        let rest_text = || String::from_utf8_lossy(rest).into_owned();
        let number = || -> Result<u64, Usage> {
            rest_text().parse::<u64>().map_err(|_| {
                Usage(format!(
                    "{shown:?} is neither a setting (a number after its letter) nor a \
                         directory: a directory in a script starts with . or / (write ./{shown})"
                ))
            })
        };
        let mut action = None;
        match bytes.first() {
            None => return Err(Usage("an empty word in the script".into())),
            Some(b'.' | b'/') => {
                if dirs.iter().any(|(d, _)| d == word) {
                    return Err(Usage(format!("{shown}: named twice")));
                }
                dirs.push((word.clone(), policy.clone()));
                action = Some(Action::Dir(dirs.len() - 1));
            }
            Some(b'+' | b'-') => {
                let pattern = match dialect {
                    Dialect::S6Log => Pattern::Regex(compile(rest, &shown)?),
                    _ => Pattern::Glob(rest.to_vec()),
                };
                select.push(if bytes[0] == b'+' {
                    Select::Plus(pattern)
                } else {
                    Select::Minus(pattern)
                });
            }
            Some(b'f') if rest.is_empty() && dialect == Dialect::S6Log => {
                select.push(Select::NotActedOn)
            }
            Some(b't') if rest.is_empty() => {
                if dialect == Dialect::Multilog {
                    if i != 0 {
                        return Err(Usage("multilog's t must be the script's first word".into()));
                    }
                    patterns_see_stamp = true;
                }
                stamped = true;
            }
            Some(b'T') if rest.is_empty() && dialect == Dialect::S6Log => {}
            Some(b'e') if rest.is_empty() && dialect == Dialect::Multilog => {
                action = Some(Action::Alert {
                    form: AlertForm::Multilog,
                    stamped,
                })
            }
            Some(b'2') if rest.is_empty() => {
                action = Some(Action::Alert {
                    form: AlertForm::S6Log { limit: alert_size },
                    stamped,
                })
            }
            Some(b'=') => {
                if rest.is_empty() {
                    return Err(Usage("\"=\" names no status file".into()));
                }
                let form = match dialect {
                    Dialect::S6Log => StatusForm::S6Log { size: status_size },
                    _ => StatusForm::Multilog,
                };
                action = Some(Action::Status {
                    path: OsStr::from_bytes(rest).to_owned(),
                    form,
                    stamped,
                });
            }
            Some(b's') if !rest.is_empty() => {
                let size = number()?;
                let (low, high) = match dialect {
                    Dialect::S6Log => (4096, 268_435_455),
                    _ => (4096, 16_777_215),
                };
                policy.max_file_size = size.clamp(low, high);
            }
            Some(b'n') if !rest.is_empty() => {
                let n = number()?;
                policy.max_files = Some(match dialect {
                    Dialect::S6Log => n,
                    // multilog keeps fewer than n old files.
                    _ => {
                        if n < 2 {
                            return Err(Usage(format!("{shown}: multilog's n is at least 2")));
                        }
                        n - 1
                    }
                });
            }
            Some(b'S') if dialect == Dialect::S6Log => {
                let total = number()?;
                policy.max_total_size = if total == 0 { u64::MAX } else { total };
            }
            Some(b'l') if dialect == Dialect::S6Log => {
                let tolerance = number()?;
                if tolerance > policy.max_file_size / 2 {
                    return Err(Usage(format!(
                        "{shown}: more than half the file size set before"
                    )));
                }
                policy.margin = tolerance;
            }
            Some(b'r') if dialect == Dialect::S6Log => {
                // cyclog's retry backs off from 0.1 s to 5 s by itself.
                number()?;
            }
            Some(b'R') if dialect == Dialect::S6Log => {
                let secs = number()?;
                policy.rotate_every = (secs > 0).then(|| Duration::from_secs(secs));
            }
            Some(b'E') if dialect == Dialect::S6Log => alert_size = number()? as usize,
            Some(b'^') if dialect == Dialect::S6Log => status_size = number()? as usize,
            Some(b'!') if dialect == Dialect::Multilog => {
                policy.processor = (!rest.is_empty()).then(rest_text)
            }
            Some(b'?') if dialect == Dialect::S6Log => {
                policy.processor = (!rest.is_empty()).then(rest_text)
            }
            Some(b'!') => {
                return Err(Usage(format!(
                    "{shown:?}: s6-log's !PROCESSOR runs execlineb, which cyclog does not: \
                     write ?PROCESSOR for /bin/sh"
                )));
            }
            Some(b'p') if dialect == Dialect::S6Log => {
                return Err(Usage(format!(
                    "{shown:?}: s6-log's line prefix is not supported: cyclog writes each \
                     line as it came"
                )));
            }
            Some(b'1') if rest.is_empty() && dialect == Dialect::S6Log => {
                return Err(Usage(
                    "s6-log's 1 (copy to standard output) is not supported: name a directory \
                     and read it with log-show or follow-log-directories"
                        .into(),
                ));
            }
            _ => {
                return Err(Usage(match action_name(bytes) {
                    Some(what) => format!(
                        "{shown:?} is {what}, which a {} script does not have",
                        dialect.name()
                    ),
                    None => format!(
                        "{shown:?} is neither a {} action nor a directory: a directory in a \
                         script starts with . or / (write ./{shown})",
                        dialect.name()
                    ),
                }));
            }
        }
        if let Some(action) = action {
            steps.push(Step {
                select: std::mem::take(&mut select),
                action,
            });
            // s6-log's t and T last one action; multilog's t, all.
            stamped &= dialect == Dialect::Multilog;
        }
    }
    if dirs.is_empty() {
        let first = words
            .iter()
            .find(|w| action_name(w.as_bytes()).is_some())
            .map(|w| w.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Err(Usage(format!(
            "the script names no directory (a directory in a script starts with . or /; \
             if {first:?} is a directory, write ./{first})"
        )));
    }
    Ok(Script {
        dialect,
        steps,
        dirs,
        patterns_see_stamp,
    })
}

fn compile(text: &[u8], shown: &str) -> Result<regex::bytes::Regex, Usage> {
    let text = std::str::from_utf8(text).map_err(|_| {
        Usage(format!(
            "{shown:?}: a regular expression must be UTF-8 here"
        ))
    })?;
    regex::bytes::RegexBuilder::new(text)
        .unicode(false)
        .build()
        .map_err(|e| Usage(format!("{shown:?}: not a regular expression: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            max_file_size: 99999,
            max_total_size: u64::MAX,
            max_files: Some(9),
            margin: 2000,
            max_line: 64 << 10,
            rotate_every: None,
            processor: None,
            delete_when_full: false,
            seal: None,
        }
    }

    fn words(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn script(dialect: Dialect, list: &[&str]) -> Script {
        parse(&words(list), dialect, &policy()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn glob_matches_as_multilog_does() {
        assert!(glob_match(b"hello", b"hello"));
        assert!(!glob_match(b"hello", b"hello world"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"*", b"anything"));
        assert!(glob_match(
            b"named[*]: Cleaned cache *",
            b"named[135]: Cleaned cache of 3121 RRs"
        ));
        // A star stops at the first occurrence of the next character: no backtracking.
        assert!(!glob_match(b"*a", b"bab"));
        assert!(glob_match(b"*: x", b"k: x"));
        assert!(!glob_match(b"*: x", b"k: y: x"));
        assert!(!glob_match(b"ab", b"a"));
        assert!(glob_match(b"* fatal: *", b"@4000 fatal: out of memory"));
    }

    #[test]
    fn svlogd_patterns_match_as_svlogd_does() {
        assert!(svlogd_match(
            b"*: *: pid *",
            b"tcpsvd: info: pid 1977 from 10.4.1.14"
        ));
        assert!(!svlogd_match(
            b"*pid*",
            b"tcpsvd: info: pid 1977 from 10.4.1.14"
        ));
        assert!(svlogd_match(b"a+b", b"abbb"));
        assert!(svlogd_match(b"a+bc", b"abbbc"));
        assert!(!svlogd_match(b"a+bc", b"ac"));
        // The line used up inside a + run: a match, whatever follows.
        assert!(svlogd_match(b"a+bxyz", b"abb"));
        assert!(!svlogd_match(b"a+", b"ab"));
    }

    #[test]
    fn each_directory_takes_the_lines_selected_at_its_place() {
        let s = script(
            Dialect::Multilog,
            &[
                "-*", "+STAT*", "./stat", "+*fatal*", "./both", "-STAT*", "./fatal",
            ],
        );
        assert!(s.dir_takes(0, b"STAT 1"));
        assert!(!s.dir_takes(0, b"fatal"));
        assert!(s.dir_takes(1, b"STAT 1"));
        assert!(s.dir_takes(1, b"a fatal error"));
        assert!(!s.dir_takes(2, b"STAT fatal"));
        assert!(s.dir_takes(2, b"a fatal error"));
        assert!(!s.dir_takes(2, b"plain"));
    }

    #[test]
    fn s6_log_regexes_match_anywhere_and_f_takes_the_rest() {
        let s = script(
            Dialect::S6Log,
            &[
                "-.*", "+fatal", "./fatal", "-.*", "+^STAT", "./stat", "f", "./rest",
            ],
        );
        assert!(s.dir_takes(0, b"a fatal error"));
        assert!(s.dir_takes(1, b"STAT ok"));
        assert!(!s.dir_takes(1, b"no STAT"));
        assert!(!s.dir_takes(2, b"STAT ok"));
        assert!(!s.dir_takes(2, b"fatal"));
        assert!(s.dir_takes(2, b"no STAT"));
        let mut acts = Vec::new();
        s.decide(b"no STAT", &mut acts);
        assert_eq!(acts, [false, false, true]);
    }

    #[test]
    fn multilog_patterns_see_the_stamp_after_t_and_1000_bytes() {
        let s = script(Dialect::Multilog, &["t", "-*", "+* fatal: *", "./main"]);
        assert!(s.dir_takes(0, b"fatal: out of memory"));
        let s = script(Dialect::Multilog, &["-*", "+*x", "./main"]);
        let mut long = vec![b'a'; 1200];
        long.push(b'x');
        assert!(!s.dir_takes(0, &long), "x lies past the 1000 bytes seen");
    }

    #[test]
    fn multilog_t_stamps_every_action_s6_log_t_the_next() {
        let stamped = |s: &Script| -> Vec<bool> {
            s.steps
                .iter()
                .filter_map(|step| match step.action {
                    Action::Status { stamped, .. } => Some(stamped),
                    _ => None,
                })
                .collect()
        };
        let s = script(Dialect::Multilog, &["t", "=a", "./d", "=b"]);
        assert_eq!(stamped(&s), [true, true]);
        let s = script(Dialect::S6Log, &["t", "=a", "./d", "=b"]);
        assert_eq!(stamped(&s), [true, false]);
    }

    #[test]
    fn settings_apply_to_the_directories_after_them() {
        let s = script(Dialect::Multilog, &["./a", "s5000", "n3", "!gzip", "./b"]);
        assert_eq!(s.dirs[0].1.max_file_size, 99999);
        assert_eq!(s.dirs[1].1.max_file_size, 5000);
        assert_eq!(s.dirs[1].1.max_files, Some(2));
        assert_eq!(s.dirs[1].1.processor.as_deref(), Some("gzip"));
        let s = script(Dialect::S6Log, &["n5", "S100000", "R60", "./a"]);
        assert_eq!(s.dirs[0].1.max_files, Some(5));
        assert_eq!(s.dirs[0].1.max_total_size, 100000);
        assert_eq!(s.dirs[0].1.rotate_every, Some(Duration::from_secs(60)));
    }

    #[test]
    fn a_word_that_is_no_action_nor_directory_is_refused_saying_how_to_write_it() {
        let e = parse(&words(&["t", "main"]), Dialect::Multilog, &policy())
            .err()
            .expect("refused");
        assert!(e.0.contains("./main"), "{e}");
        let e = parse(&words(&["t"]), Dialect::Multilog, &policy())
            .err()
            .expect("refused");
        assert!(e.0.contains("./t"), "{e}");
        let e = parse(&words(&["T", "./a"]), Dialect::Multilog, &policy())
            .err()
            .expect("refused");
        assert!(e.0.contains("s6-log's T"), "{e}");
    }

    #[test]
    fn the_dialect_is_told_by_words_never_guessed_from_a_pattern() {
        let none = S6Options::default();
        let d = |list: &[&str]| dialect_of(&words(list), &none, None);
        assert_eq!(d(&["t", "s1000", "./a"]).ok(), Some(Dialect::Multilog));
        assert_eq!(d(&["e", "+x*", "./a"]).ok(), Some(Dialect::Multilog));
        assert_eq!(d(&["T", "+x", "./a"]).ok(), Some(Dialect::S6Log));
        assert_eq!(d(&["f", "./a"]).ok(), Some(Dialect::S6Log));
        // Not a regular expression: only multilog's.
        assert_eq!(
            d(&["t", "-*", "+* fatal: *", "./a"]).ok(),
            Some(Dialect::Multilog)
        );
        let e = d(&["-x*", "./a"]).expect_err("refused");
        assert!(e.0.contains("--dialect"), "{e}");
        let e = d(&["-*", "T", "./a"]).expect_err("refused");
        assert!(e.0.contains("--dialect"), "{e}");
        let s6 = S6Options {
            given: true,
            ..S6Options::default()
        };
        assert_eq!(
            dialect_of(&words(&["+x", "./a"]), &s6, None).ok(),
            Some(Dialect::S6Log)
        );
    }
}
