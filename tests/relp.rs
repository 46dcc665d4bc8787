//! `rill::net::relp` against the real RELP server: rsyslog's imrelp (librelp),
//! private configuration on 127.0.0.1 and an ephemeral port, writing each
//! message it parsed as a flat JSON line. A small blocking client drives
//! the session over a plain TcpStream: the library does no I/O itself.

mod common;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::receivers::{Certs, Fields, Transport, free_port, parse_flat_json};
use common::*;
use rill::net::relp::{
    Client, ClientConfig, Command as RelpCommand, DEFAULT_MAX_DATA, End, Event, FrameReader,
    Offers, Response, State, Txnr, Unanswered, Window, write_frame,
};
use rustix::process::{Pid, Signal, kill_process};

const LONG: Duration = Duration::from_secs(60);

/// rsyslog with imrelp, in its own directory.
struct Rsyslog {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Rsyslog {
    fn start(dir: &Path) -> Rsyslog {
        Rsyslog::start_with(dir, None)
    }

    /// As `start`; with `certs`, RELP over TLS, each side showing a
    /// certificate from the CA (imrelp insists on the client's).
    fn start_with(dir: &Path, certs: Option<&Certs>) -> Rsyslog {
        require("rsyslogd");
        fs::create_dir_all(dir).expect("rsyslog directory");
        let mut server = Rsyslog {
            dir: dir.to_path_buf(),
            port: free_port(Transport::Tcp),
            child: None,
        };
        let fields = [
            "pri",
            "hostname",
            "app-name",
            "procid",
            "msgid",
            "structured-data",
            "msg",
        ]
        .iter()
        .map(|f| format!("property(name=\"{f}\" format=\"jsonf\")"))
        .collect::<Vec<_>>()
        .join(" constant(value=\",\") ");
        let conf = format!(
            "global(workDirectory=\"{dir}\" parser.escapeControlCharactersOnReceive=\"off\")\n\
             module(load=\"imrelp\")\n\
             template(name=\"j\" type=\"list\") {{ constant(value=\"{{\") {fields} constant(value=\"}}\\n\") }}\n\
             ruleset(name=\"r\" queue.type=\"direct\") {{ action(type=\"omfile\" file=\"{out}\" template=\"j\") }}\n\
             input(type=\"imrelp\" port=\"{port}\" address=\"127.0.0.1\" ruleset=\"r\"{tls})\n",
            dir = dir.display(),
            tls = certs.map_or(String::new(), |c| format!(
                " tls=\"on\" tls.authMode=\"certvalid\" tls.cacert=\"{}\" tls.mycert=\"{}\" tls.myprivkey=\"{}\"",
                c.ca.display(),
                c.cert.display(),
                c.key.display()
            )),
            out = server.out().display(),
            port = server.port,
        );
        fs::write(dir.join("rsyslog.conf"), conf).expect("rsyslog configuration");
        server.restart();
        server
    }

    fn out(&self) -> PathBuf {
        self.dir.join("received.json")
    }

    fn restart(&mut self) {
        let err = fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("rsyslog.stderr"))
            .expect("stderr file");
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslog.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(err.try_clone().expect("dup")))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
    }

    fn pid(&self) -> Pid {
        let child = self.child.as_ref().expect("rsyslog running");
        Pid::from_raw(child.id() as i32).expect("pid")
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.dir.join("rsyslog.stderr")).unwrap_or_default()
    }

    /// Stops every thread of rsyslog (SIGSTOP), and waits until each is
    /// stopped: from then on it reads nothing and answers nothing.
    fn freeze(&self) {
        kill_process(self.pid(), Signal::STOP).expect("SIGSTOP rsyslog");
        let tasks = format!("/proc/{}/task", self.pid().as_raw_nonzero());
        let frozen = wait_until(LONG, || {
            fs::read_dir(&tasks).expect("rsyslog's threads").all(|t| {
                let stat =
                    fs::read_to_string(t.expect("thread").path().join("stat")).unwrap_or_default();
                // The state follows the command name in parentheses.
                stat.rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('T') || rest.starts_with('t'))
            })
        });
        assert!(frozen, "rsyslog's threads never all stopped");
    }

    /// Stops rsyslog as a supervisor would (TERM), waiting for its exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = Pid::from_raw(child.id() as i32).expect("pid");
            kill_process(pid, Signal::TERM).expect("TERM rsyslog");
            wait_child(&mut child, LONG);
        }
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            wait_child(&mut child, LONG);
        }
    }

    fn lines(&self) -> usize {
        fs::read(self.out()).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
    }

    fn wait_for(&self, n: usize) -> Vec<Fields> {
        wait_until(LONG, || self.lines() >= n);
        fs::read(self.out())
            .unwrap_or_default()
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| parse_flat_json(l).expect("rsyslog's JSON line"))
            .collect()
    }
}

/// A connection to rsyslog, once it listens, reads timing out (so that
/// the tests' deadlines hold).
fn connect(server: &Rsyslog) -> TcpStream {
    let mut stream = None;
    wait_until(LONG, || {
        stream = TcpStream::connect(("127.0.0.1", server.port)).ok();
        stream.is_some()
    });
    let stream = stream.unwrap_or_else(|| {
        panic!(
            "rsyslog with imrelp never listened on {} (is rsyslog-relp installed? \
             `make deps` as root installs it): {}",
            server.port,
            server.stderr()
        )
    });
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    stream
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// TCP, or TLS over TCP.
trait Stream: Read + Write {}
impl<S: Read + Write> Stream for S {}

/// A blocking RELP client over TCP or TLS, for the tests: the library decides,
/// this moves the bytes. Tags are the messages' indexes.
struct Session {
    stream: Box<dyn Stream>,
    client: Client<usize>,
    /// The connection's end was seen (EOF or an error).
    gone: bool,
}

impl Session {
    /// Connects (waiting for the server to listen) and opens the session.
    fn open(server: &Rsyslog, config: ClientConfig) -> Session {
        Session::start(Box::new(connect(server)), server, config)
    }

    /// As `open`, over TLS: the server's certificate checked with the CA,
    /// the client's from the same CA.
    fn open_tls(server: &Rsyslog, config: ClientConfig, certs: &Certs) -> Session {
        let tls = rill::net::tls::client_config(&rill::net::tls::Options {
            ca: Some(certs.ca.clone()),
            cert: Some(certs.client_cert.clone()),
            key: Some(certs.client_key.clone()),
            server_name: None,
        })
        .expect("TLS client configuration");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let tls = rustls::ClientConnection::new(tls, name).expect("TLS session");
        let stream = rustls::StreamOwned::new(tls, connect(server));
        Session::start(Box::new(stream), server, config)
    }

    fn start(stream: Box<dyn Stream>, server: &Rsyslog, config: ClientConfig) -> Session {
        let mut session = Session {
            stream,
            client: Client::new(config),
            gone: false,
        };
        session.flush();
        let events = session.events_until(|e| !e.is_empty());
        match &events[..] {
            [Event::Opened { server: offers }] => {
                let software = offers.get("relp_software").unwrap_or_default();
                assert!(
                    software.iter().any(|v| v == "librelp"),
                    "imrelp's offers: {offers:?}"
                );
            }
            _ => panic!("open answered with {events:?}: {}", server.stderr()),
        }
        assert_eq!(session.client.state(), State::Open);
        session
    }

    /// Writes everything the client has to send.
    fn flush(&mut self) {
        let out = self.client.output().to_vec();
        self.stream.write_all(&out).expect("write to imrelp");
        self.client.consumed(out.len());
    }

    /// Reads what came (at most one read), or notes the connection's end.
    fn read(&mut self) -> Vec<Event<usize>> {
        let mut buf = [0; 65536];
        match self.stream.read(&mut buf) {
            Ok(0) => {
                self.gone = true;
                Vec::new()
            }
            Ok(n) => self.client.received(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Vec::new(),
            Err(_) => {
                self.gone = true;
                Vec::new()
            }
        }
    }

    /// Reads until `done` holds for what came, or the connection ended.
    fn events_until(&mut self, mut done: impl FnMut(&[Event<usize>]) -> bool) -> Vec<Event<usize>> {
        let start = Instant::now();
        let mut events = Vec::new();
        while !done(&events) && !self.gone {
            assert!(start.elapsed() < LONG, "no answer in {LONG:?}: {events:?}");
            events.extend(self.read());
        }
        events
    }

    /// Sends every message, each as soon as the window has room; returns
    /// the tags acknowledged, in the order of the acks.
    fn send_all(&mut self, messages: &[Vec<u8>], first_tag: usize) -> Vec<usize> {
        let mut next = 0;
        let mut acked = Vec::new();
        let mut most_in_flight = 0;
        let start = Instant::now();
        while acked.len() < messages.len() {
            assert!(
                start.elapsed() < LONG,
                "acked {} of {}",
                acked.len(),
                messages.len()
            );
            while next < messages.len() && self.client.can_send(messages[next].len()) {
                self.client
                    .send(&messages[next], first_tag + next)
                    .expect("room in the window");
                next += 1;
            }
            most_in_flight = most_in_flight.max(self.client.in_flight());
            self.flush();
            for event in self.read() {
                match event {
                    Event::Acked { tag, .. } => acked.push(tag),
                    e => panic!("while sending: {e:?}"),
                }
            }
            assert!(!self.gone, "imrelp closed the connection");
        }
        assert!(most_in_flight > 1, "the window was never used");
        acked
    }

    /// Closes the session: every message answered, then `Closed`.
    fn close(mut self) {
        self.client.close().expect("close an open session");
        self.flush();
        let events = self.events_until(|e| e.contains(&Event::Closed));
        assert_eq!(events, vec![Event::Closed]);
        assert_eq!(self.client.state(), State::Ended(End::Closed));
    }
}

/// RFC 5424 messages, each one different, some with UTF-8 and LF inside.
fn messages(from: usize, count: usize) -> Vec<Vec<u8>> {
    (from..from + count)
        .map(|i| {
            format!(
                "<{pri}>1 2026-11-30T20:00:00.{i:06}Z testhost relp-test {i} ID{i} [x@32473 i=\"{i}\"] message {i} \u{e9}t\u{e9}{pad}",
                pri = 8 + i % 184,
                pad = "-".repeat(i % 97),
            )
            .into_bytes()
        })
        .collect()
}

/// What rsyslog must have parsed from `messages(from, count)`, in order.
fn assert_written(got: &[Fields], from: usize, count: usize) {
    assert_eq!(got.len(), count, "messages written");
    for (i, g) in (from..).zip(got) {
        let field =
            |k: &str| String::from_utf8_lossy(g.get(k).map_or(&[][..], Vec::as_slice)).into_owned();
        assert_eq!(field("pri"), (8 + i % 184).to_string(), "PRI of {i}");
        assert_eq!(field("hostname"), "testhost");
        assert_eq!(field("app-name"), "relp-test");
        assert_eq!(field("procid"), i.to_string());
        assert_eq!(field("msgid"), format!("ID{i}"));
        assert_eq!(field("structured-data"), format!("[x@32473 i=\"{i}\"]"));
        assert_eq!(
            field("msg"),
            format!("message {i} \u{e9}t\u{e9}{}", "-".repeat(i % 97)),
            "message {i}"
        );
    }
}

fn config(messages: usize) -> ClientConfig {
    ClientConfig {
        window: Window {
            messages,
            ..Window::default()
        },
        ..ClientConfig::default()
    }
}

#[test]
fn imrelp_answers_200_to_every_message_of_a_window_and_writes_each_once() {
    let scratch = Scratch::new("relp-window");
    let server = Rsyslog::start(&scratch.path("rsyslog"));
    let all = messages(0, 300);
    let mut session = Session::open(&server, config(32));
    let acked = session.send_all(&all, 0);
    assert_eq!(
        acked,
        (0..300).collect::<Vec<_>>(),
        "acks in the order sent"
    );
    session.close();
    assert_written(&server.wait_for(300), 0, 300);
}

#[test]
fn imrelp_over_tls_answers_200_to_every_message_and_writes_each_once() {
    let scratch = Scratch::new("relp-tls");
    let certs = Certs::make(&scratch.path("certs"));
    let server = Rsyslog::start_with(&scratch.path("rsyslog"), Some(&certs));
    let all = messages(0, 100);
    let mut session = Session::open_tls(&server, config(16), &certs);
    assert_eq!(session.send_all(&all, 0), (0..100).collect::<Vec<_>>());
    session.close();
    assert_written(&server.wait_for(100), 0, 100);
}

#[test]
fn imrelp_killed_mid_window_leaves_exactly_the_unanswered_messages_to_resend() {
    let scratch = Scratch::new("relp-kill");
    let mut server = Rsyslog::start(&scratch.path("rsyslog"));
    let all = messages(0, 80);
    let mut session = Session::open(&server, config(40));
    let acked = session.send_all(&all[..50], 0);
    assert_eq!(acked, (0..50).collect::<Vec<_>>());
    // Written before the kill, so that the count below is exact.
    assert_eq!(server.wait_for(50).len(), 50);

    server.freeze();
    for (i, m) in all.iter().enumerate().skip(50) {
        session.client.send(m, i).expect("room in the window");
    }
    session.flush();
    server.kill9();
    let events = session.events_until(|_| false);
    assert!(events.is_empty(), "a killed server answered: {events:?}");
    let unanswered = session.client.into_unanswered();
    assert_eq!(
        unanswered,
        (50..80)
            .map(|i| Unanswered {
                message: all[i].clone(),
                tag: i
            })
            .collect::<Vec<_>>(),
        "exactly the unanswered messages, in order"
    );

    // A new session sends them again, first, with TXNRs from 1 again.
    server.restart();
    let mut session = Session::open(&server, config(40));
    let again: Vec<Vec<u8>> = unanswered.iter().map(|u| u.message.clone()).collect();
    let acked = session.send_all(&again, 50);
    assert_eq!(acked, (50..80).collect::<Vec<_>>());
    session.close();
    assert_written(&server.wait_for(80), 0, 80);
}

#[test]
fn imrelp_stopping_says_serverclose_after_answering_every_message() {
    let scratch = Scratch::new("relp-serverclose");
    let mut server = Rsyslog::start(&scratch.path("rsyslog"));
    let all = messages(0, 20);
    let mut session = Session::open(&server, config(8));
    assert_eq!(session.send_all(&all, 0), (0..20).collect::<Vec<_>>());
    server.stop();
    let events = session.events_until(|e| !e.is_empty());
    assert_eq!(events, vec![Event::ServerClose], "{}", server.stderr());
    assert_eq!(session.client.state(), State::Ended(End::ServerClosed));
    assert!(session.client.into_unanswered().is_empty());
    assert_written(&server.wait_for(20), 0, 20);
}

/// rsyslog as the client (omrelp) of a small server built on the codec,
/// as syslog-read's RELP input will be: every frame of librelp's client
/// reads, in TXNR sequence from 1, and its `open` offers what we expect.
#[test]
fn the_frame_codec_serves_rsyslogs_omrelp_client_as_a_server() {
    let scratch = Scratch::new("relp-omrelp");
    let dir = scratch.path("rsyslog");
    fs::create_dir_all(&dir).expect("rsyslog directory");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let relp_port = listener.local_addr().expect("addr").port();
    let tcp_port = free_port(Transport::Tcp);
    fs::write(
        dir.join("rsyslog.conf"),
        format!(
            "global(workDirectory=\"{dir}\")\n\
             module(load=\"imtcp\")\nmodule(load=\"omrelp\")\n\
             ruleset(name=\"r\") {{ action(type=\"omrelp\" target=\"127.0.0.1\" port=\"{relp_port}\" \
             template=\"RSYSLOG_SyslogProtocol23Format\") }}\n\
             input(type=\"imtcp\" port=\"{tcp_port}\" address=\"127.0.0.1\" ruleset=\"r\")\n",
            dir = dir.display()
        ),
    )
    .expect("rsyslog configuration");
    let mut rsyslog = Rsyslog {
        dir: dir.clone(),
        port: tcp_port,
        child: None,
    };
    rsyslog.restart();
    let mut input = None;
    wait_until(LONG, || {
        input = TcpStream::connect(("127.0.0.1", tcp_port)).ok();
        input.is_some()
    });
    let mut input = input.unwrap_or_else(|| panic!("imtcp never listened: {}", rsyslog.stderr()));
    let count = 200;
    for i in 0..count {
        let line = format!("<13>1 2026-11-30T20:00:00Z testhost app - - - message {i}\n");
        input.write_all(line.as_bytes()).expect("write to imtcp");
    }

    let mut conn = None;
    wait_until(LONG, || {
        conn = listener.accept().ok().map(|(s, _)| s);
        conn.is_some()
    });
    let mut conn = conn.unwrap_or_else(|| panic!("omrelp never connected: {}", rsyslog.stderr()));
    conn.set_nonblocking(false).expect("blocking");
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let mut reader = FrameReader::new(DEFAULT_MAX_DATA);
    let mut expected = Txnr::FIRST;
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut opened = false;
    let start = Instant::now();
    let mut buf = [0; 65536];
    while got.len() < count {
        assert!(
            start.elapsed() < LONG,
            "{} of {count}: {}",
            got.len(),
            rsyslog.stderr()
        );
        let n = match conn.read(&mut buf) {
            Ok(0) => panic!("omrelp closed after {} messages", got.len()),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => panic!("reading omrelp: {e}"),
        };
        let mut answers = Vec::new();
        for frame in reader.frames(&buf[..n]).expect("librelp's frames") {
            assert_eq!(frame.txnr, expected, "TXNRs in sequence");
            expected = expected.next();
            let response = match frame.command {
                RelpCommand::Open => {
                    let offers = Offers::parse(&frame.data);
                    assert_eq!(offers.get("relp_version"), Some(&["0".to_string()][..]));
                    assert!(
                        offers
                            .get("commands")
                            .is_some_and(|c| c.contains(&"syslog".to_string())),
                        "omrelp's offers: {offers:?}"
                    );
                    opened = true;
                    let mut data = Vec::new();
                    Offers::client().write(&mut data);
                    Response {
                        code: Response::OK,
                        text: b"OK".to_vec(),
                        data,
                    }
                }
                RelpCommand::Syslog => {
                    assert!(opened, "syslog before open");
                    got.push(frame.data);
                    Response {
                        code: Response::OK,
                        text: b"OK".to_vec(),
                        data: Vec::new(),
                    }
                }
                c => panic!("unexpected {c:?} from omrelp"),
            };
            let mut data = Vec::new();
            response.write(&mut data);
            write_frame(&mut answers, frame.txnr, &RelpCommand::Rsp, &data);
        }
        conn.write_all(&answers).expect("answer omrelp");
    }
    for (i, message) in got.iter().enumerate() {
        let text = String::from_utf8_lossy(message);
        assert!(
            text.starts_with("<13>1 2026-11-30T20:00:00")
                && text.contains(&format!(" app - - - message {i}")),
            "message {i}: {text}"
        );
    }
}
