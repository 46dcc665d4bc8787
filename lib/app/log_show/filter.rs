//! Which lines to show: a range of severities, exact matches on fields,
//! and a regular expression to find in the message.
//!
//! Severities and fields are those of reader lines (syslog-read,
//! klog-read; see `format::reader_line`). Any other line is a service's
//! own output, which counts as `info`, as journald counts a service's
//! standard output, and has no field.

use super::fields;
use crate::error::Usage;
use crate::format::reader_line::{self, Facility, RecordView, Severity};
use crate::logdir::read::reader::{LineTest, Select};
use crate::logdir::summary::{self, Ranges, Summary};

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

    /// Whether a line's text is of a severity in the range: its priority's
    /// if it is a reader line, else `info`. Only the priority is looked at
    /// when that decides (most lines): the rest of the line is parsed only
    /// when the priority is in the range and `info` is not, or the reverse.
    pub fn keeps(self, text: &[u8]) -> bool {
        let info = self.contains(Severity::INFO);
        match RecordView::priority(text) {
            Ok((p, _)) if self.contains(p.severity) != info => match RecordView::parse(text) {
                Ok(_) => !info,
                Err(_) => info,
            },
            _ => info,
        }
    }
}

/// A regular expression to find in a line's message, as journalctl's
/// `--grep`: all lowercase, it matches any case; with an uppercase
/// letter, only its own case.
pub struct Grep {
    how: Find,
    scratch: Vec<u8>,
}

/// How a pattern is looked for: plain ASCII text, which most are, by a
/// substring search (in a copy folded to lowercase for any case), which is
/// twice as fast on short lines as the regular expression engine, whose
/// cost is per call; anything else by the regular expression.
enum Find {
    Text {
        finder: Box<memchr::memmem::Finder<'static>>,
        any_case: bool,
        folded: Vec<u8>,
    },
    Regex(regex::bytes::Regex),
}

impl Grep {
    pub fn new(pattern: &str, case_sensitive: Option<bool>) -> Result<Grep, Usage> {
        let any_case = case_sensitive.map_or(!pattern.chars().any(char::is_uppercase), |c| !c);
        let how = if pattern.is_ascii() && regex::escape(pattern) == pattern {
            let needle = match any_case {
                true => pattern.to_ascii_lowercase(),
                false => pattern.to_string(),
            };
            Find::Text {
                finder: Box::new(memchr::memmem::Finder::new(needle.as_bytes()).into_owned()),
                any_case,
                folded: Vec::new(),
            }
        } else {
            Find::Regex(
                regex::bytes::RegexBuilder::new(pattern)
                    .case_insensitive(any_case)
                    .build()
                    .map_err(|e| Usage(format!("{pattern:?} is not a regular expression: {e}")))?,
            )
        };
        Ok(Grep {
            how,
            scratch: Vec::new(),
        })
    }

    /// Whether the message of a line matches: a reader line's message
    /// unescaped, any other line whole.
    pub fn matches(&mut self, text: &[u8]) -> bool {
        // Text found nowhere in a line without escapes is not in its
        // message: most lines are ruled out at the cost of one search.
        if let Find::Text { .. } = self.how
            && memchr::memchr(b'\\', text).is_none()
            && !self.how.is_in(text)
        {
            return false;
        }
        let message = match RecordView::parse(text) {
            Ok(view) => unescaped(view.message, &mut self.scratch),
            Err(_) => text,
        };
        self.how.is_in(message)
    }
}

impl Find {
    fn is_in(&mut self, haystack: &[u8]) -> bool {
        match self {
            Find::Regex(regex) => regex.is_match(haystack),
            Find::Text {
                finder,
                any_case: false,
                ..
            } => finder.find(haystack).is_some(),
            Find::Text {
                finder,
                any_case: true,
                folded,
            } => {
                folded.clear();
                folded.extend(haystack.iter().map(u8::to_ascii_lowercase));
                finder.find(folded).is_some()
            }
        }
    }
}

/// `escaped` unescaped: itself when it has no escape, else in `scratch`.
/// What does not unescape (a line from elsewhere) is taken as it is.
fn unescaped<'a>(escaped: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
    if memchr::memchr(b'\\', escaped).is_none() {
        return escaped;
    }
    match reader_line::unescape(escaped) {
        Ok(bytes) => {
            *scratch = bytes;
            scratch
        }
        Err(_) => escaped,
    }
}

/// What a `FIELD=VALUE` match looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Field {
    /// The app of the tag (`-t`).
    Identifier,
    /// The process id of the tag.
    Procid,
    /// The facility (`--facility`), by its code.
    Facility,
    /// The severity, by its code (`PRIORITY=`).
    Priority,
    /// A field after the TAB, by its key in the line; or, named as the
    /// journal names a lowercase key (`FROM`), by that key too.
    Key(String, Option<String>),
}

impl Field {
    /// A field named as in the line (`host`, `pid`, `SUBSYSTEM`), or as
    /// journalctl names it (`SYSLOG_IDENTIFIER`, `_HOSTNAME` ...).
    fn named(name: &str) -> Option<Field> {
        Some(match name {
            "SYSLOG_IDENTIFIER" => Field::Identifier,
            "SYSLOG_PID" => Field::Procid,
            "SYSLOG_FACILITY" => Field::Facility,
            "PRIORITY" => Field::Priority,
            name => {
                let key = fields::rill_key(name)?;
                let lower = key.to_ascii_lowercase();
                let also = (lower != key && fields::journal_name(&lower) == key).then_some(lower);
                Field::Key(key.to_string(), also)
            }
        })
    }
}

/// Exact matches on fields, as journalctl combines them: values of the
/// same field are alternatives, different fields must all match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matches {
    /// Each field with the values it may have.
    groups: Vec<(Field, Vec<Vec<u8>>)>,
}

impl Matches {
    fn add(&mut self, field: Field, value: Vec<u8>) {
        match self.groups.iter_mut().find(|(f, _)| *f == field) {
            Some((_, values)) => values.push(value),
            None => self.groups.push((field, vec![value])),
        }
    }

    /// `-t NAME`: the app of the tag.
    pub fn identifier(&mut self, name: &str) {
        self.add(Field::Identifier, name.as_bytes().to_vec());
    }

    /// `--facility NAME`: a facility by name or number.
    pub fn facility(&mut self, name: &str) -> Result<(), Usage> {
        let facility = Facility::from_name(name)
            .or_else(|| name.parse().ok().and_then(Facility::new))
            .ok_or_else(|| Usage(format!("{name:?} is not a facility (kern user mail daemon auth syslog lpr news uucp cron authpriv ftp ntp security console cron2 local0 to local7, or 0 to 23)")))?;
        self.add(Field::Facility, facility.code().to_string().into_bytes());
        Ok(())
    }

    /// `FIELD=VALUE`, if `arg` is one: its part before `=` is a field key
    /// (so that a path, with its `/`, never is). `Ok(false)`: not one.
    pub fn field(&mut self, arg: &str) -> Result<bool, Usage> {
        let Some((name, value)) = arg.split_once('=') else {
            return Ok(false);
        };
        if !reader_line::is_key(name) {
            return Ok(false);
        }
        let field =
            Field::named(name).ok_or_else(|| Usage(format!("{name}: no line has such a field")))?;
        let value = match field {
            Field::Priority => match Severity::from_name(value) {
                Some(s) => s.code().to_string(),
                None => return Err(Usage(format!("{arg}: {value:?} is not a priority"))),
            },
            Field::Facility => match Facility::from_name(value)
                .or_else(|| value.parse().ok().and_then(Facility::new))
            {
                Some(f) => f.code().to_string(),
                None => return Err(Usage(format!("{arg}: {value:?} is not a facility"))),
            },
            _ => value.to_string(),
        };
        self.add(field, value.into_bytes());
        Ok(true)
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Whether a line has every field asked for, each with one of its
    /// values. A line that is not a reader line has none.
    fn keep(&self, view: Option<&RecordView<'_>>, scratch: &mut Vec<u8>) -> bool {
        let Some(view) = view else {
            return self.groups.is_empty();
        };
        let mut number = [0u8; 3];
        self.groups.iter().all(|(field, values)| {
            let found = match field {
                Field::Identifier => Some(reader_line::app_of(view.tag)),
                Field::Procid => reader_line::procid_of(view.tag),
                Field::Facility => Some(code(view.priority.facility.code(), &mut number)),
                Field::Priority => Some(code(view.priority.severity.code(), &mut number)),
                Field::Key(key, also) => view.fields.and_then(|f| {
                    fields::value_of(f, key)
                        .or_else(|| also.as_deref().and_then(|k| fields::value_of(f, k)))
                }),
            };
            let Some(found) = found else {
                return false;
            };
            let found = match field {
                Field::Identifier if found == b"-" => &b""[..],
                _ => unescaped(found, scratch),
            };
            values.iter().any(|v| v == found)
        })
    }
}

/// A number below 1000 in decimal, in `buf`.
fn code(n: u8, buf: &mut [u8; 3]) -> &[u8] {
    let text = [b'0' + n / 100, b'0' + n / 10 % 10, b'0' + n % 10];
    let skip = if n >= 100 {
        0
    } else if n >= 10 {
        1
    } else {
        2
    };
    buf.copy_from_slice(&text);
    &buf[skip..]
}

impl Field {
    /// The keys a summary knows this field by.
    fn summary_keys(&self) -> Vec<&str> {
        match self {
            Field::Identifier => vec![summary::IDENTIFIER],
            Field::Procid => vec![summary::PROCID],
            Field::Facility => vec![summary::FACILITY],
            Field::Priority => vec![summary::SEVERITY],
            Field::Key(key, also) => std::iter::once(key.as_str())
                .chain(also.as_deref())
                .collect(),
        }
    }
}

/// What a line must be to be shown.
#[derive(Default)]
pub struct Filter {
    pub severities: Option<Severities>,
    pub matches: Matches,
    pub grep: Option<Grep>,
    scratch: Vec<u8>,
}

impl Filter {
    /// Whether any line could be left out.
    pub fn selects(&self) -> bool {
        self.severities.is_some() || !self.matches.is_empty() || self.grep.is_some()
    }

    /// Whether a line's text (after its stamp) is shown.
    #[inline]
    pub fn keep(&mut self, text: &[u8]) -> bool {
        // Kept small to be inlined: with no filter, every line costs this.
        !self.selects() || self.select(text)
    }

    /// Which parts of a summarised archive can hold lines kept; `None`
    /// when a summary cannot tell (no severity and no field asked for).
    pub fn blocks(&self) -> Option<Select> {
        if self.severities.is_none() && self.matches.is_empty() {
            return None;
        }
        let mut keys: Vec<String> = self
            .severities
            .iter()
            .map(|_| summary::SEVERITY.to_string())
            .collect();
        for (field, _) in &self.matches.groups {
            keys.extend(field.summary_keys().into_iter().map(str::to_string));
        }
        let severities = self.severities.map(|range| {
            (0..8u8)
                .filter_map(Severity::new)
                .filter(|s| range.contains(*s))
                .map(|s| s.code().to_string().into_bytes())
                .collect::<Vec<_>>()
        });
        let groups = self.matches.groups.clone();
        let parts = move |summary: &Summary| {
            let mut wanted = summary.all();
            if let Some(codes) = &severities {
                let codes: Vec<&[u8]> = codes.iter().map(Vec::as_slice).collect();
                wanted = wanted.intersect(&summary.where_any(summary::SEVERITY, &codes));
            }
            for (field, values) in &groups {
                let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
                let mut any = Ranges(Vec::new());
                for key in field.summary_keys() {
                    any = any.union(&summary.where_any(key, &values));
                }
                wanted = wanted.intersect(&any);
            }
            wanted
        };
        // The reader tests each line too (`current`'s, unsummarised):
        // what fails is never merged.
        let (severities, matches) = (self.severities, self.matches.clone());
        let mut scratch = Vec::new();
        let lines: LineTest = Box::new(move |text| fits(severities, &matches, &mut scratch, text));
        Some(Select {
            keys,
            parts: Box::new(parts),
            lines: Some(lines),
            until: None,
        })
    }

    fn select(&mut self, text: &[u8]) -> bool {
        fits(self.severities, &self.matches, &mut self.scratch, text)
            && self.grep.as_mut().is_none_or(|g| g.matches(text))
    }
}

/// Whether a line's text has a severity in `severities` and fields as
/// `matches` asks: the part of the filter that summaries tell about.
fn fits(
    severities: Option<Severities>,
    matches: &Matches,
    scratch: &mut Vec<u8>,
    text: &[u8],
) -> bool {
    if let Some(range) = severities
        && !range.keeps(text)
    {
        return false;
    }
    if matches.is_empty() {
        return true;
    }
    let view = RecordView::parse(text).ok();
    matches.keep(view.as_ref(), scratch)
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
            ..Filter::default()
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
    fn a_priority_counts_only_on_a_whole_reader_line() {
        let err = Severities::parse("err").unwrap();
        assert!(err.keeps(b"daemon.err sshd[1]: bad\thost=a"));
        assert!(err.keeps(b"daemon.error sshd: an alias"));
        for info in [
            &b"daemon.err no tag"[..],
            b"daemon.err\tsshd: tab first",
            b"daemon.err sshd\tx=1: colon in the fields",
            b"bogus.err sshd: no such facility",
            b"",
        ] {
            assert!(!err.keeps(info), "{:?}", String::from_utf8_lossy(info));
        }
        // With info in the range, what is not a reader line is kept, and a
        // reader line outside it is not.
        let low = Severities::parse("info..debug").unwrap();
        assert!(low.keeps(b"daemon.err no tag"));
        assert!(!low.keeps(b"daemon.err sshd: bad"));
        assert!(low.keeps(b"user.debug x: chatter"));
    }

    #[test]
    fn grep_is_a_regex_smart_about_case_on_the_message() {
        let mut g = Grep::new("fail(ed|ure)", None).unwrap();
        assert!(g.matches(b"Login FAILED for x") && g.matches(b"a failure"));
        let mut g = Grep::new("Failed", None).unwrap();
        assert!(!g.matches(b"Login FAILED for x") && g.matches(b"Failed"));
        let mut g = Grep::new("failed", Some(true)).unwrap();
        assert!(!g.matches(b"FAILED"));
        let mut g = Grep::new("FAILED", Some(false)).unwrap();
        assert!(g.matches(b"failed"));
        let mut g = Grep::new("caf\u{c9}", None).unwrap();
        assert!(g.matches("caf\u{c9}".as_bytes()) && !g.matches("caf\u{e9}".as_bytes()));
        let mut g = Grep::new("caf\u{e9}", None).unwrap();
        assert!(g.matches("CAF\u{c9}".as_bytes()));
        // The message unescaped; not the priority, tag or fields.
        let mut g = Grep::new("^a\tb$", None).unwrap();
        assert!(g.matches(b"user.notice app: a\\tb\thost=web1"));
        let mut g = Grep::new("web1|notice|app", None).unwrap();
        assert!(!g.matches(b"user.notice app: hi\thost=web1"));
        for text in ["web1", "notice", "app", "hi"] {
            let mut g = Grep::new(text, None).unwrap();
            assert_eq!(g.matches(b"user.notice app: hi\thost=web1"), text == "hi");
            assert_eq!(
                g.matches(b"user.notice app: hi\\x20\thost=web1"),
                text == "hi"
            );
        }
        assert!(Grep::new("(", None).is_err());
    }

    fn matching(args: &[&str]) -> Filter {
        let mut f = Filter::default();
        for arg in args {
            if let Some(name) = arg.strip_prefix("-t") {
                f.matches.identifier(name);
            } else if let Some(name) = arg.strip_prefix("--facility=") {
                f.matches.facility(name).unwrap();
            } else {
                assert!(f.matches.field(arg).unwrap(), "{arg}");
            }
        }
        f
    }

    #[test]
    fn field_matches_are_exact_ored_per_field_anded_across() {
        let lines: [&[u8]; 6] = [
            b"daemon.err sshd[150]: a\tpid=150 host=web1",
            b"daemon.err sshd[15008]: b\tpid=15008 host=web1",
            b"auth.info my\\x20app: c\thost=web\\x202 from=10.0.0.2:514",
            b"kern.warning kernel: d\tSUBSYSTEM=usb DEVICE=c189:1",
            b"user.notice -: e",
            b"plain output pid=150",
        ];
        let kept = |args: &[&str]| -> Vec<usize> {
            let mut f = matching(args);
            (0..lines.len()).filter(|&i| f.keep(lines[i])).collect()
        };
        assert_eq!(kept(&["pid=150"]), [0]);
        assert_eq!(kept(&["_PID=150", "pid=15008"]), [0, 1]);
        assert_eq!(kept(&["host=web1", "-tsshd"]), [0, 1]);
        assert_eq!(kept(&["host=web1", "-tkernel"]), [] as [usize; 0]);
        assert_eq!(kept(&["-tmy app"]), [2]);
        assert_eq!(kept(&["_HOSTNAME=web 2"]), [2]);
        assert_eq!(kept(&["SUBSYSTEM=usb"]), [3]);
        assert_eq!(kept(&["FROM=10.0.0.2:514"]), [2]);
        assert_eq!(kept(&["from=10.0.0.2:514"]), [2]);
        assert_eq!(kept(&["HOST=web1"]), [] as [usize; 0], "host is _HOSTNAME");
        assert_eq!(kept(&["DEVICE=c189:1"]), [3]);
        assert_eq!(kept(&["--facility=daemon", "--facility=kern"]), [0, 1, 3]);
        assert_eq!(kept(&["SYSLOG_FACILITY=auth"]), [2]);
        assert_eq!(kept(&["PRIORITY=err"]), [0, 1]);
        assert_eq!(kept(&["SYSLOG_PID=150"]), [0]);
        assert_eq!(kept(&["SYSLOG_IDENTIFIER="]), [4]);
        assert_eq!(kept(&[]), [0, 1, 2, 3, 4, 5]);
        let mut m = Matches::default();
        assert_eq!(m.field("/a=b"), Ok(false));
        assert_eq!(m.field("plain"), Ok(false));
        assert!(m.field("PRIORITY=loud").is_err());
        assert!(m.facility("nope").is_err());
    }
}
