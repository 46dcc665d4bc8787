//! Errors as values, the two kinds a program tells apart:
//!
//! - [`Error`]: something could not be done now. It says what was being
//!   done and to what (`open /dev/kmsg`, `rename current to @...s`), then
//!   why: a system error, or what was wrong with what was read.
//! - [`Usage`]: a value the program was given (an option's, a variable's)
//!   is wrong, and the same command will fail again.
//!
//! Which exit code each gets is the program's choice (`app/`, `bins/`).

use std::fmt;
use std::io;

/// What was being done, to what, and the error it met.
#[derive(Debug)]
pub struct Error {
    context: String,
    source: io::Error,
}

impl Error {
    pub fn new(context: impl Into<String>, source: io::Error) -> Error {
        Error {
            context: context.into(),
            source,
        }
    }

    /// `context` failed for a reason that is no system error: what was
    /// read or received is not what it should be.
    pub fn invalid(context: impl Into<String>, why: impl Into<String>) -> Error {
        Error::new(
            context,
            io::Error::new(io::ErrorKind::InvalidData, why.into()),
        )
    }

    /// Why it failed, without the context.
    pub fn io(&self) -> &io::Error {
        &self.source
    }

    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }

    /// No space or quota left: the errors that freeing disk space can cure.
    pub fn is_disk_full(&self) -> bool {
        matches!(self.errno(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// A bad value the program was given, said as the user should read it
/// (`"12q" is not a size (try ...)`); the caller names the option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

impl From<String> for Usage {
    fn from(text: String) -> Usage {
        Usage(text)
    }
}

impl From<&str> for Usage {
    fn from(text: &str) -> Usage {
        Usage(text.to_string())
    }
}

/// For a program's argument parsing, which composes its messages as text.
impl From<Usage> for String {
    fn from(usage: Usage) -> String {
        usage.0
    }
}

/// Attaches what was being done to a system error.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::new(what(), e))
    }
}

impl<T> Context<T> for rustix::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::new(what(), io::Error::from(e)))
    }
}
