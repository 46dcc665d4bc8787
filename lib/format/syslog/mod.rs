//! The syslog message grammar: RFC 5424 and RFC 3164 as real senders write
//! them, parsed leniently (`parse`), and RFC 5424 built strictly (`build`).

pub mod build;
pub mod parse;
