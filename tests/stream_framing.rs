//! `rill::net::stream_framing` against real senders: util-linux `logger` (both
//! framings), rsyslog's omfwd (octet-counted and traditional) and
//! syslog-ng's network() and syslog() destinations, each sending over TCP
//! to a small test-only listener on 127.0.0.1 and an ephemeral port that
//! deframes what it reads. The listener reads in small, varying chunks,
//! so frames arrive split at every kind of place. Each message is checked
//! byte for byte.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use common::receivers::syslog_ng;
use common::*;
use rill::net::stream_framing::{Deframer, Framing, FramingError, Limits};

#[derive(Clone, Debug, PartialEq, Eq)]
struct Got {
    connection: usize,
    bytes: Vec<u8>,
    truncated: bool,
    framing: Framing,
}

#[derive(Default)]
struct Seen {
    messages: Vec<Got>,
    /// How each connection ended.
    ends: Vec<(usize, Result<(), FramingError>)>,
}

/// Accepts connections on 127.0.0.1 and deframes each, until the test
/// ends.
struct Listener {
    port: u16,
    seen: Arc<Mutex<Seen>>,
}

impl Listener {
    fn start(limits: Limits) -> Listener {
        let socket = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = socket.local_addr().expect("local address").port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = seen.clone();
        std::thread::spawn(move || {
            for (connection, stream) in socket.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let seen = shared.clone();
                std::thread::spawn(move || deframe(connection, stream, limits, &seen));
            }
        });
        Listener { port, seen }
    }

    fn wait_for(&self, n: usize) -> Vec<Got> {
        wait_until(LONG, || self.seen.lock().expect("lock").messages.len() >= n);
        self.seen.lock().expect("lock").messages.clone()
    }

    fn wait_for_ends(&self, n: usize) -> Vec<(usize, Result<(), FramingError>)> {
        wait_until(LONG, || self.seen.lock().expect("lock").ends.len() >= n);
        self.seen.lock().expect("lock").ends.clone()
    }
}

fn deframe(connection: usize, mut stream: impl Read, limits: Limits, seen: &Mutex<Seen>) {
    let mut deframer = Deframer::new(limits);
    let mut buffer = [0u8; 4096];
    let record = |m: rill::net::stream_framing::Message<'_>| {
        seen.lock().expect("lock").messages.push(Got {
            connection,
            bytes: m.bytes.to_vec(),
            truncated: m.truncated,
            framing: m.framing,
        })
    };
    // Chunks of 1 to 13 octets, then whole buffers: frames split anywhere.
    for size in (1..=13)
        .cycle()
        .take(400)
        .chain(std::iter::repeat(buffer.len()))
    {
        let n = match stream.read(&mut buffer[..size]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Err(e) = deframer.push(&buffer[..n], record) {
            seen.lock().expect("lock").ends.push((connection, Err(e)));
            return;
        }
    }
    let end = deframer.finish(record);
    seen.lock().expect("lock").ends.push((connection, end));
}

/// logger's RFC 5424 header without time or host: `<13>1 - - app - - - `.
fn logger_message(body: &[u8]) -> Vec<u8> {
    [&b"<13>1 - - app - - - "[..], body].concat()
}

fn bodies() -> Vec<Vec<u8>> {
    vec![
        b"hello world".to_vec(),
        b"123 starts with digits".to_vec(),
        b"  leading spaces and a tab\there".to_vec(),
        b"<not a pri> and a % sign".to_vec(),
        "caf\u{e9} \u{2603}".as_bytes().to_vec(),
        vec![b'x'; 3000],
        b"last".to_vec(),
    ]
}

fn logger(port: u16, extra: &[&str], lines: &[Vec<u8>]) {
    require("logger");
    let mut child = Command::new("logger")
        .args(["--tcp", "-n", "127.0.0.1", "-P", &port.to_string()])
        .args([
            "--rfc5424=notq,notime,nohost",
            "-t",
            "app",
            "--size",
            "8192",
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .spawn()
        .expect("run logger");
    let mut input = child.stdin.take().expect("stdin");
    for line in lines {
        input.write_all(line).expect("write to logger");
        input.write_all(b"\n").expect("write to logger");
    }
    drop(input);
    assert!(wait_child(&mut child, LONG).success(), "logger failed");
}

fn assert_messages(got: &[Got], want: &[Vec<u8>], framing: Framing) {
    let bytes: Vec<Vec<u8>> = got.iter().map(|g| g.bytes.clone()).collect();
    assert_same_lines(&bytes, want, "messages");
    for g in got {
        assert_eq!(g.framing, framing, "{g:?}");
        assert!(!g.truncated, "{g:?}");
    }
}

#[test]
fn logger_octet_counted_messages_arrive_byte_exact() {
    let listener = Listener::start(Limits::default());
    logger(listener.port, &["--octet-count"], &bodies());
    let want: Vec<Vec<u8>> = bodies().iter().map(|b| logger_message(b)).collect();
    assert_messages(&listener.wait_for(want.len()), &want, Framing::OctetCounted);
    assert_eq!(listener.wait_for_ends(1), vec![(0, Ok(()))]);
}

#[test]
fn logger_non_transparent_messages_arrive_byte_exact() {
    let listener = Listener::start(Limits::default());
    logger(listener.port, &[], &bodies());
    let want: Vec<Vec<u8>> = bodies().iter().map(|b| logger_message(b)).collect();
    assert_messages(
        &listener.wait_for(want.len()),
        &want,
        Framing::NonTransparent,
    );
    assert_eq!(listener.wait_for_ends(1), vec![(0, Ok(()))]);
}

#[test]
fn a_real_senders_long_message_is_cut_and_the_next_is_whole_in_both_framings() {
    let limits = Limits {
        max_message: 1000,
        ..Limits::default()
    };
    let lines = vec![vec![b'y'; 5000], b"after".to_vec()];
    for extra in [&["--octet-count"][..], &[]] {
        let listener = Listener::start(limits);
        logger(listener.port, extra, &lines);
        let got = listener.wait_for(2);
        assert_eq!(got.len(), 2, "{extra:?}");
        assert_eq!(got[0].bytes, logger_message(&lines[0])[..1000].to_vec());
        assert!(got[0].truncated);
        assert_eq!(got[1].bytes, logger_message(b"after"));
        assert!(!got[1].truncated);
        assert_eq!(listener.wait_for_ends(1), vec![(0, Ok(()))]);
    }
}

/// A syslog server run privately in `dir`, stopped (killed) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        kill_and_reap(&mut self.0);
    }
}

fn start(mut command: Command, dir: &Path, socket: &Path) -> Server {
    let server = Server(spawn_logging(&mut command, &dir.join("server.stderr")));
    assert!(
        wait_until(LONG, || socket.exists()),
        "the server never made {}: {}",
        socket.display(),
        std::fs::read_to_string(dir.join("server.stderr")).unwrap_or_default()
    );
    server
}

/// Sends `body` to the server's unix socket as logger does.
fn log_to(socket: &Path, body: &str) {
    let status = Command::new("logger")
        .arg("-u")
        .arg(socket)
        .args(["--rfc5424=notq,notime,nohost", "-t", "app", body])
        .status()
        .expect("run logger");
    assert!(status.success());
}

/// What the servers relay.
const BODIES: [&str; 3] = ["msg one", "42 digits first", "msg three"];

/// Sends `BODIES` to a server's unix socket; the messages the listener got
/// from it on each of two connections, as `by_connection` orders them.
fn relay(socket: &Path, listener: &Listener) -> Vec<Vec<Got>> {
    for body in BODIES {
        log_to(socket, body);
    }
    let got = listener.wait_for(2 * BODIES.len());
    let connections = by_connection(&got);
    assert_eq!(connections.len(), 2, "{got:?}");
    connections
}

/// Groups messages by connection, each connection's in order, connections
/// ordered by their first message's framing (octet-counted first).
fn by_connection(got: &[Got]) -> Vec<Vec<Got>> {
    let mut connections: Vec<Vec<Got>> = Vec::new();
    for g in got {
        match connections
            .iter_mut()
            .find(|c| c[0].connection == g.connection)
        {
            Some(c) => c.push(g.clone()),
            None => connections.push(vec![g.clone()]),
        }
    }
    connections.sort_by_key(|c| c[0].framing != Framing::OctetCounted);
    connections
}

#[test]
fn rsyslog_omfwd_octet_counted_and_traditional_messages_arrive_byte_exact() {
    require("rsyslogd");
    let scratch = Scratch::new("framing-rsyslog");
    let dir = &scratch.root;
    let listener = Listener::start(Limits::default());
    let socket = dir.join("log.sock");
    let conf = format!(
        "global(workDirectory=\"{dir}\" parser.escapeControlCharactersOnReceive=\"off\")\n\
         module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
         template(name=\"raw\" type=\"string\" string=\"%rawmsg%\")\n\
         template(name=\"two-lines\" type=\"string\" string=\"%rawmsg%\\nsecond line\\n\")\n\
         ruleset(name=\"r\" queue.type=\"direct\") {{\n\
           action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" template=\"two-lines\")\n\
           action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" protocol=\"tcp\" TCP_Framing=\"traditional\" template=\"raw\")\n\
         }}\n\
         input(type=\"imuxsock\" Socket=\"{socket}\" ruleset=\"r\" RateLimit.Interval=\"0\" UseSpecialParser=\"off\" ParseHostname=\"off\")\n",
        dir = dir.display(),
        port = listener.port,
        socket = socket.display(),
    );
    std::fs::write(dir.join("rsyslog.conf"), conf).expect("configuration");
    let mut command = Command::new("rsyslogd");
    command
        .arg("-n")
        .arg("-f")
        .arg(dir.join("rsyslog.conf"))
        .arg("-i")
        .arg(dir.join("rsyslog.pid"));
    let _server = start(command, dir, &socket);
    let bodies = BODIES;
    let connections = relay(&socket, &listener);
    let counted: Vec<Vec<u8>> = bodies
        .iter()
        .map(|b| [logger_message(b.as_bytes()), b"\nsecond line\n".to_vec()].concat())
        .collect();
    assert_messages(&connections[0], &counted, Framing::OctetCounted);
    let traditional: Vec<Vec<u8>> = bodies
        .iter()
        .map(|b| logger_message(b.as_bytes()))
        .collect();
    assert_messages(&connections[1], &traditional, Framing::NonTransparent);
}

#[test]
fn syslog_ng_network_and_syslog_destinations_arrive_byte_exact() {
    require("logger");
    let scratch = Scratch::new("framing-syslog-ng");
    let dir = &scratch.root;
    let listener = Listener::start(Limits::default());
    let socket = dir.join("log.sock");
    let port = listener.port;
    let conf = format!(
        "@version: 3.38\n\
         options {{ stats_freq(0); }};\n\
         source s {{ unix-dgram(\"{socket}\" flags(no-parse)); }};\n\
         destination counted {{ syslog(\"127.0.0.1\" port({port}) transport(tcp) template(\"$MSG\\nsecond line\") persist-name(\"counted\")); }};\n\
         destination lines {{ network(\"127.0.0.1\" port({port}) transport(tcp) template(\"$MSG\\n\") persist-name(\"lines\")); }};\n\
         log {{ source(s); destination(counted); destination(lines); }};\n",
        socket = socket.display(),
    );
    std::fs::write(dir.join("syslog-ng.conf"), conf).expect("configuration");
    let command = syslog_ng(&dir.join("syslog-ng.conf"), &dir.join("syslog-ng"));
    let _server = start(command, dir, &socket);
    let bodies = BODIES;
    let connections = relay(&socket, &listener);
    // syslog(): syslog-ng's own RFC 5424 header, then the template, then
    // the LF syslog-ng puts inside the count.
    assert_eq!(connections[0].len(), bodies.len());
    for (i, (g, body)) in connections[0].iter().zip(bodies).enumerate() {
        assert_eq!(g.framing, Framing::OctetCounted);
        assert!(!g.truncated);
        let sequence = format!("[meta sequenceId=\"{}\"] ", i + 1);
        let text = String::from_utf8(g.bytes.clone()).expect("UTF-8");
        let (header, rest) = text
            .split_once(&sequence)
            .unwrap_or_else(|| panic!("{text:?}"));
        assert!(
            header.starts_with("<13>1 ") && header.ends_with(" - - - "),
            "{text:?}"
        );
        let body = String::from_utf8(logger_message(body.as_bytes())).expect("UTF-8");
        assert_eq!(rest, format!("{body}\nsecond line\n"));
    }
    let lines: Vec<Vec<u8>> = bodies
        .iter()
        .map(|b| logger_message(b.as_bytes()))
        .collect();
    assert_messages(&connections[1], &lines, Framing::NonTransparent);
}
