//! The system as our programs use it: signals, descriptors handed down by a
//! supervisor, standard input read so that nothing is lost, standard output
//! written without blocking a stop, waiting until a deadline, files
//! replaced atomically, privileges, the pager, `main`'s promise that it
//! has no other thread yet (for changing the environment), and background
//! threads' lower priority.
//!
//! May use `cli` for messages; knows no format and no program.

pub mod atomic_file;
pub mod background;
pub mod listen_fds;
pub mod pager;
pub mod poll;
pub mod privilege;
pub mod signals;
pub mod single_threaded;
pub mod stdin;
pub mod stdout;
