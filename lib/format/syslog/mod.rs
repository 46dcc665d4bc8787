//! The syslog message grammar: RFC 5424 and RFC 3164 as real senders write
//! them, parsed leniently (`parse`), and RFC 5424 built strictly (`build`),
//! the timestamp and structured data both read scanned once (`grammar`).

pub mod build;
pub mod grammar;
pub mod parse;
pub mod relay;
