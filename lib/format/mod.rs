//! The data formats that are the contracts between programs, each defined
//! once: the TAI64N stamp and wall-clock times, the reader line (one
//! message per line with its fields), the syslog grammar (RFC 5424 and
//! RFC 3164, parsed and built), the kernel's record, the directory name
//! a sender's host gets, and the decimal numbers they all write. And the
//! line itself: `line_buffer` cuts bytes into lines, with one policy for a
//! line too long to hold.
//!
//! Pure: no system calls and no program here; may use `cli` and
//! `sys::single_threaded` for nothing but their types.

pub mod decimal;
pub mod event_time;
pub mod host_dirname;
pub mod kmsg;
pub mod line_buffer;
pub mod reader_line;
pub mod stamp;
pub mod syslog;
pub mod wallclock;
