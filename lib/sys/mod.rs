//! The system as our programs use it: signals, descriptors handed down by a
//! supervisor, standard input read so that nothing is lost, standard output
//! written without blocking a stop, privileges, the pager.
//!
//! May use `cli` for messages; knows no format and no program.

pub mod listen_fds;
pub mod pager;
pub mod privilege;
pub mod signals;
pub mod stdin;
pub mod stdout;
