//! rill: collect a Unix machine's logs the daemontools way.
//!
//! The library behind the programs in `bins/`. Each module is one concept;
//! none knows which program uses it. The formats shared between programs
//! are each defined once: the log directory and its stamped lines
//! (`logdir`, `stamp`), and the reader line (`record`).

pub mod cidr;
pub mod cli;
pub mod collect;
pub mod compressed;
pub mod cursor;
pub mod dgram;
pub mod dirwriter;
pub mod display;
pub mod error;
pub mod export;
pub mod filter;
pub mod follow;
pub mod host_dirname;
pub mod input;
pub mod intent;
pub mod kmsg;
pub mod kmsgreader;
pub mod kmsgsource;
pub mod kmsgstate;
pub mod ledger;
pub mod lineout;
pub mod listenfds;
pub mod logdir;
pub mod logdirs;
pub mod logread;
pub mod logset;
pub mod merge;
pub mod outbuf;
pub mod pager;
pub mod pieces;
pub mod privilege;
pub mod processor;
pub mod rate_limit;
pub mod record;
pub mod relp;
pub mod remote;
pub mod rfc5424;
pub mod seal;
pub mod show;
pub mod signals;
pub mod stamp;
pub mod stream_framing;
pub mod syncer;
pub mod syslog;
#[cfg(test)]
mod testrand;
pub mod tls;
pub mod wallclock;
