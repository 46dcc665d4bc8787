//! rill: collect a Unix machine's logs the daemontools way.
//!
//! The library behind the programs in `bins/`, in floors. Each floor may
//! use the floors below it, never one above:
//!
//! ```text
//! app/                      one engine per program, named after it
//!  │
//!  ├─▶ logdir/  net/  kernel/   the log directory, the network, the kernel log
//!  │     │       │      │
//!  └─────┴───────┴──────┴─▶ format/  sys/  cli/   data formats, system calls, messages
//! ```
//!
//! - `app`: what a program does, its loop; nothing below knows a program.
//! - `logdir`: the log directory (logdir(5)): writing it crash-safe, reading,
//!   merging and following it through cursors, sealing it.
//! - `net`: sockets, the remote end (UDP, TCP, TLS) and the protocols over it.
//! - `kernel`: the kernel log as a source of records.
//! - `format`: the contracts between programs, each defined once: the
//!   stamp, the reader line, the syslog grammar, the kernel record.
//! - `sys`: the system as our programs use it: signals, descriptors,
//!   standard input and output, privileges.
//! - `cli`: what every program says on stderr, and its exit codes.
//!
//! The middle floor's three do not use one another, and no engine uses
//! another's. On the bottom floor `sys` and `cli` know no format; `format`
//! uses `sys` only for the `SingleThreaded` type. `tests/layers.sh` (run by
//! `make test`) checks all of this.
//!
//! `error` holds the one error type (what was being done, to what, and why)
//! and the one usage error (a bad value given), used on every floor; which
//! exit code each gets is decided in `app` or `bins` only.

pub mod app;
pub mod cli;
pub mod error;
pub mod format;
pub mod kernel;
pub mod logdir;
pub mod net;
pub mod sys;
/// What the unit tests share.
#[cfg(test)]
mod testutil;
