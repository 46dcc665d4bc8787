//! Which lines to show: a range of severities and a text to find.
//!
//! Severities are those of reader lines (syslog-read, klog-read; see
//! `format::reader_line`). Any other line is a service's own output, which counts as
//! `info`, as journald counts a service's standard output.

use crate::error::Usage;
use crate::format::reader_line::{RecordView, Severity};

/// Severities from the most to the least urgent, both included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Severities {
    most: Severity,
    least: Severity,
}

impl Severities {
    /// `err` (that and more urgent), `warning..emerg`, `0..3`.
    pub fn parse(text: &str) -> Result<Severities, Usage> {
        let one = |name: &str| {
            Severity::from_name(name.trim()).ok_or_else(|| {
                Usage(format!("{name:?} is not a priority (emerg alert crit err warning notice info debug, or 0 to 7)"))
            })
        };
        match text.split_once("..") {
            Some((a, b)) => {
                let (a, b) = (one(a)?, one(b)?);
                Ok(Severities {
                    most: a.min(b),
                    least: a.max(b),
                })
            }
            None => Ok(Severities {
                most: Severity::EMERG,
                least: one(text)?,
            }),
        }
    }

    pub fn contains(self, severity: Severity) -> bool {
        (self.most..=self.least).contains(&severity)
    }
}

/// Text to find in a line, as journalctl's `--grep` does but without
/// regular expressions: all lowercase, it matches any case (of ASCII
/// letters); with an uppercase letter, only its own case.
pub struct Grep {
    finder: memchr::memmem::Finder<'static>,
    any_case: bool,
    folded: Vec<u8>,
}

impl Grep {
    pub fn new(text: &str, case_sensitive: Option<bool>) -> Grep {
        let any_case = case_sensitive.map_or(!text.chars().any(char::is_uppercase), |c| !c);
        let needle = if any_case {
            text.to_ascii_lowercase()
        } else {
            text.to_string()
        };
        Grep {
            finder: memchr::memmem::Finder::new(needle.as_bytes()).into_owned(),
            any_case,
            folded: Vec::new(),
        }
    }

    pub fn matches(&mut self, text: &[u8]) -> bool {
        if !self.any_case {
            return self.finder.find(text).is_some();
        }
        self.folded.clear();
        self.folded
            .extend(text.iter().map(|b| b.to_ascii_lowercase()));
        self.finder.find(&self.folded).is_some()
    }
}

/// What a line must be to be shown.
#[derive(Default)]
pub struct Filter {
    pub severities: Option<Severities>,
    pub grep: Option<Grep>,
}

impl Filter {
    /// Whether a line's text (after its stamp) is shown. The text is
    /// matched as it is stored: a reader line whole, with its priority,
    /// tag and fields.
    pub fn keep(&mut self, text: &[u8]) -> bool {
        if let Some(range) = self.severities {
            let severity = RecordView::parse(text).map_or(Severity::INFO, |r| r.priority.severity);
            if !range.contains(severity) {
                return false;
            }
        }
        self.grep.as_mut().is_none_or(|g| g.matches(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sev(n: u8) -> Severity {
        Severity::new(n).unwrap()
    }

    #[test]
    fn priorities_as_journalctl_takes_them() {
        let err = Severities::parse("err").unwrap();
        assert!(err.contains(sev(0)) && err.contains(sev(3)) && !err.contains(sev(4)));
        assert_eq!(Severities::parse("3"), Ok(err));
        assert_eq!(Severities::parse("0..3"), Ok(err));
        assert_eq!(Severities::parse("err..emerg"), Ok(err));
        let notice = Severities::parse("notice..warning").unwrap();
        assert!(!notice.contains(sev(3)) && notice.contains(sev(4)) && notice.contains(sev(5)));
        assert!(!notice.contains(sev(6)));
        for bad in ["", "loud", "8", "err..", "..err", "1..9"] {
            assert!(Severities::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn plain_lines_count_as_info() {
        let mut f = Filter {
            severities: Some(Severities::parse("warning").unwrap()),
            grep: None,
        };
        assert!(f.keep(b"daemon.err sshd[1]: bad"));
        assert!(f.keep(b"kern.warning kernel: hot"));
        assert!(!f.keep(b"daemon.info sshd[1]: fine"));
        assert!(!f.keep(b"just some output"));
        assert!(!f.keep(b"nonsense.err x: not a priority"));
        f.severities = Some(Severities::parse("info").unwrap());
        assert!(f.keep(b"just some output"));
        assert!(!f.keep(b"user.debug x: chatter"));
    }

    #[test]
    fn grep_is_smart_about_case() {
        let mut g = Grep::new("failed", None);
        assert!(g.matches(b"Login FAILED for x"));
        let mut g = Grep::new("Failed", None);
        assert!(!g.matches(b"Login FAILED for x") && g.matches(b"Failed"));
        let mut g = Grep::new("failed", Some(true));
        assert!(!g.matches(b"FAILED"));
        let mut f = Filter {
            severities: None,
            grep: Some(Grep::new("host=web1", None)),
        };
        assert!(f.keep(b"user.notice app: hi\thost=web1"));
    }
}
