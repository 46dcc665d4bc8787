//! The network: sockets that receive syslog datagrams, the remote end a
//! forwarder writes to (UDP, TCP, TLS, and RELP over them), and the pieces a
//! receiving server needs (stream framing, who may send, how fast).
//!
//! May use `format`, `sys` and `cli`; knows no program.

pub mod cidr;
pub mod datagram;
pub mod rate_limit;
pub mod relp;
pub mod relp_link;
pub mod relp_server;
pub mod remote;
pub mod stream_framing;
pub mod tls;
