//! The engines of the programs, one module per program and named after it.
//! Each is the program's loop and its decisions: what to read, where to
//! write, when to stop. A program's file in `bins/` parses its arguments
//! and calls its engine.
//!
//! May use every floor below (`logdir`, `net`, `kernel`, `format`, `sys`,
//! `cli`); no engine uses another.

pub mod cyclog;
pub mod export_to_remote;
pub mod follow_log_directories;
pub mod klog_read;
pub mod log_show;
pub mod syslog_read;
