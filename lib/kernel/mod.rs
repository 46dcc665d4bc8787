//! The kernel log as a source of records: opening /dev/kmsg (or
//! /proc/kmsg, or an inherited descriptor), and the state that lets a
//! restarted reader in the same boot skip what it already wrote. The record
//! format itself is `format::kmsg`.
//!
//! May use `format`, `sys` and `cli`; knows no program.

pub mod source;
pub mod state;
