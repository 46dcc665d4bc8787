//! Errors as values: a system error with the thing it happened to.

use std::fmt;
use std::io;

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
