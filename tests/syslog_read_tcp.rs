//! syslog-read's stream inputs through real sockets and real senders:
//! `--tcp` with util-linux logger (both framings) and raw connections,
//! `--stream` under tcpserver (ucspi-tcp), `--allow`, `--max-connections`,
//! `--idle-timeout`, bounded messages, backpressure, and the rate limit
//! over TCP.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::reader::*;
use common::*;

const LOCAL: &str = "127.0.0.1:0";

fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).expect("connect")
}

fn field(line: &str, key: &str) -> Option<String> {
    parse(line)
        .field(key)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn find<'a>(lines: &'a [String], text: &str) -> &'a String {
    lines
        .iter()
        .find(|l| message(l) == text)
        .unwrap_or_else(|| panic!("no {text:?} in {lines:#?}"))
}

fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Waits until the peer closes `stream` (a read gives 0 or an error).
fn closed_by_peer(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(LONG)).expect("read timeout");
    let mut buf = [0u8; 16];
    matches!(stream.read(&mut buf), Ok(0) | Err(_))
}

#[test]
fn logger_over_tcp_in_both_framings_lands_with_every_field() {
    require("logger");
    let s = Scratch::new("tcp-logger");
    let reader = Reader::start(&s, &["--tcp", LOCAL]);
    let port = reader.port("tcp", 0).to_string();
    let tag = format!("t{}", std::process::id());
    for (framing, text) in [("", "non-transparent"), ("--octet-count", "octet-counted")] {
        let mut args = vec!["--tcp", "-n", "127.0.0.1", "-P", &port, "-t", &tag];
        args.extend(["-p", "local3.warning", "--msgid", "ID47"]);
        args.extend(["--sd-id", "ex@32473", "--sd-param", r#"a="1""#]);
        if !framing.is_empty() {
            args.push(framing);
        }
        args.push(text);
        let status = Command::new("logger").args(&args).status().expect("logger");
        assert!(status.success());
    }
    let status = Command::new("logger")
        .args(["--tcp", "--rfc3164", "-n", "127.0.0.1", "-P", &port])
        .args(["-t", &tag, "-p", "mail.err", "old style"])
        .status()
        .expect("logger");
    assert!(status.success());
    reader.wait_lines(3);
    let lines = reader.stop();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    for text in ["non-transparent", "octet-counted"] {
        let line = find(&lines, text);
        let r = parse(line);
        assert_eq!(r.priority.to_string(), "local3.warning", "{line}");
        assert_eq!(r.app, tag.as_bytes(), "{line}");
        assert_eq!(field(line, "fmt").as_deref(), Some("rfc5424"));
        assert_eq!(field(line, "host"), Some(hostname()));
        assert_eq!(field(line, "msgid").as_deref(), Some("ID47"));
        let sd = field(line, "sd").expect("sd");
        assert!(sd.ends_with(r#"[ex@32473 a="1"]"#), "{sd}");
        assert!(
            field(line, "time").is_some_and(|t| t.starts_with("20")),
            "{line}"
        );
        let from = field(line, "from").expect("from");
        assert!(from.starts_with("127.0.0.1:"), "{from}");
        assert!(from[10..].parse::<u16>().is_ok(), "{from}");
        assert_eq!(field(line, "truncated"), None);
        assert_eq!(field(line, "pid"), None, "no local credentials: {line}");
    }
    let line = find(&lines, "old style");
    assert_eq!(parse(line).priority.to_string(), "mail.err");
    assert_eq!(field(line, "fmt").as_deref(), Some("rfc3164"));
    assert_eq!(field(line, "host"), Some(hostname()));
}

#[test]
fn framings_mix_in_one_connection_and_an_unended_last_message_is_kept() {
    let s = Scratch::new("tcp-framings");
    let reader = Reader::start(&s, &["--tcp", LOCAL, "--tcp", "[::1]:0"]);
    let mut c = connect(reader.port("tcp", 0));
    // Split anywhere: the framing does not depend on how bytes arrive.
    let stream = b"<13>a: one\n16 <13>b: two\nthree\n<13>c: four\r\n\n<13>d: five\0<13>e: six";
    for piece in stream.chunks(5) {
        c.write_all(piece).expect("write");
        c.flush().expect("flush");
    }
    drop(c);
    let mut v6 = TcpStream::connect(("::1", reader.port("tcp", 1))).expect("connect ::1");
    v6.write_all(b"<14>f: over v6\n").expect("write");
    drop(v6);
    reader.wait_lines(6);
    let lines = reader.stop();
    assert_eq!(lines.len(), 6, "{lines:#?}");
    let (v6, v4): (Vec<&String>, Vec<&String>) = lines
        .iter()
        .partition(|l| field(l, "from").is_some_and(|f| f.starts_with("[::1]:")));
    let texts: Vec<String> = v4.iter().map(|l| message(l)).collect();
    assert_eq!(
        texts,
        ["one", "two\nthree", "four\r", "five", "six"].map(String::from),
        "{lines:#?}"
    );
    assert_eq!(v6.len(), 1, "{lines:#?}");
    assert_eq!(message(v6[0]), "over v6");
}

#[test]
fn long_messages_are_cut_and_marked_and_an_absurd_count_closes_only_its_connection() {
    let s = Scratch::new("tcp-bounds");
    let reader = Reader::start(&s, &["--tcp", LOCAL, "--max-size", "100"]);
    let port = reader.port("tcp", 0);
    let long = "x".repeat(300);
    let mut c = connect(port);
    write!(c, "<13>lf: {long}\n{} <13>oc: {long}<13>after: ok\n", 308).expect("write");
    let mut bad = connect(port);
    bad.write_all(b"<13>bad: before\n99999999999 <13>never")
        .expect("write");
    assert!(closed_by_peer(&mut bad), "an absurd count closes");
    c.write_all(b"<13>still: open\n")
        .expect("the other goes on");
    drop(c);
    reader.wait_lines(5);
    let err = reader.stderr();
    let lines = reader.stop();
    assert_eq!(lines.len(), 5, "{lines:#?}");
    let lf = lines.iter().find(|l| parse(l).app == b"lf").expect("lf");
    assert_eq!(parse(lf).message.len() + "<13>lf: ".len(), 100, "{lf}");
    assert_eq!(field(lf, "truncated").as_deref(), Some("unknown"));
    let oc = lines.iter().find(|l| parse(l).app == b"oc").expect("oc");
    assert_eq!(field(oc, "truncated").as_deref(), Some("308"));
    find(&lines, "ok");
    find(&lines, "open");
    find(&lines, "before");
    assert!(
        err.contains("octet count") && err.contains("connection from 127.0.0.1:"),
        "said on stderr: {err}"
    );
}

#[test]
fn allow_refuses_other_senders_tcp_at_once_and_datagrams_counted() {
    let s = Scratch::new("tcp-allow");
    let reader = Reader::start(
        &s,
        &["--tcp", LOCAL, "--udp", LOCAL, "--allow", "192.0.2.0/24"],
    );
    let mut c = connect(reader.port("tcp", 0));
    let _ = c.write_all(b"<13>refused: tcp\n");
    assert!(closed_by_peer(&mut c), "closed at once");
    let udp = std::net::UdpSocket::bind(LOCAL).expect("bind");
    for _ in 0..3 {
        udp.send_to(b"<13>refused: udp", ("127.0.0.1", reader.udp_port()))
            .expect("send");
    }
    let said = wait_until(LONG, || reader.stderr().contains("not in --allow"));
    assert!(said, "{}", reader.stderr());
    assert!(
        reader.stderr().contains("the last from 127.0.0.1:"),
        "{}",
        reader.stderr()
    );
    std::thread::sleep(Duration::from_millis(200));
    let lines = reader.stop();
    // The first at once, the rest at most every 10 s, the last at the stop.
    let mut dropped = 0;
    for line in &lines {
        assert_eq!(field(line, "cause").as_deref(), Some("allow"), "{lines:#?}");
        let n = field(line, "dropped").expect("dropped");
        dropped += n.parse::<u64>().expect("a count");
    }
    assert_eq!(dropped, 3, "{lines:#?}");

    let s = Scratch::new("tcp-allow-in");
    let reader = Reader::start(&s, &["--tcp", LOCAL, "--allow", "127.0.0.0/8"]);
    let mut c = connect(reader.port("tcp", 0));
    c.write_all(b"<13>allowed: in\n").expect("write");
    drop(c);
    reader.wait_lines(1);
    let lines = reader.stop();
    find(&lines, "in");
}

#[test]
fn past_max_connections_new_ones_wait_and_idle_ones_are_closed() {
    let s = Scratch::new("tcp-max");
    let reader = Reader::start(
        &s,
        &[
            "--tcp",
            LOCAL,
            "--max-connections",
            "2",
            "--idle-timeout",
            "3s",
        ],
    );
    let port = reader.port("tcp", 0);
    let mut first = connect(port);
    first.write_all(b"<13>a: first\n").expect("write");
    let mut second = connect(port);
    second.write_all(b"<13>a: second\n").expect("write");
    reader.wait_lines(2);
    let mut third = connect(port);
    third.write_all(b"<13>a: third\n").expect("write");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(reader.lines().len(), 2, "the third waits");
    first.shutdown(Shutdown::Write).expect("shutdown");
    reader.wait_lines(3);
    // Nothing more is sent: the idle ones are closed by the reader.
    let started = Instant::now();
    assert!(closed_by_peer(&mut second), "idle closed");
    assert!(closed_by_peer(&mut third), "idle closed");
    assert!(started.elapsed() >= Duration::from_secs(1), "not at once");
    assert!(
        reader.stderr().contains("idle for 3s"),
        "{}",
        reader.stderr()
    );
    let lines = reader.stop();
    assert_eq!(
        lines.iter().map(|l| message(l)).collect::<Vec<_>>(),
        ["first", "second", "third"]
    );
}

#[test]
fn under_tcpserver_one_connection_on_stdin_and_the_peer_from_its_environment() {
    require("tcpserver");
    require("logger");
    let s = Scratch::new("tcp-stream");
    let out = s.path("out");
    let port = receivers::free_port(receivers::Transport::Tcp).to_string();
    let script = format!(
        "exec {SYSLOG_READ} --stream >>{} 2>>{}",
        path_arg(&out),
        path_arg(&s.path("err"))
    );
    let mut server = Command::new("tcpserver")
        .args(["-v", "-c", "4", "127.0.0.1", &port, "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpserver");
    let mut status = BufReader::new(server.stderr.take().expect("stderr"));
    let mut first = String::new();
    status
        .read_line(&mut first)
        .expect("tcpserver says it listens");
    assert!(first.contains("status"), "{first}");
    for (i, framing) in ["--octet-count", "--rfc3164"].iter().enumerate() {
        let status = Command::new("logger")
            .args([
                "--tcp",
                "-n",
                "127.0.0.1",
                "-P",
                &port,
                framing,
                "-t",
                "ucspi",
            ])
            .arg(format!("via tcpserver {i}"))
            .status()
            .expect("logger");
        assert!(status.success());
    }
    let lines = || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert!(wait_until(LONG, || lines().len() >= 2), "{:?}", lines());
    kill_and_reap(&mut server);
    let lines = lines();
    for i in 0..2 {
        let line = find(&lines, &format!("via tcpserver {i}"));
        assert_eq!(parse(line).app, b"ucspi");
        let from = field(line, "from").expect("from");
        assert!(from.starts_with("127.0.0.1:"), "{from}");
        assert_eq!(field(line, "host"), Some(hostname()));
    }
    assert_eq!(lines.len(), 2, "{lines:#?}");

    // A pipe, the peer named by the environment; its end ends the run.
    let ran = run_piped(
        SYSLOG_READ,
        &["--stream"],
        &[("TCPREMOTEIP", "192.0.2.7"), ("TCPREMOTEPORT", "4242")],
        b"<13>p: piped\n10 <13>p: end",
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let text = String::from_utf8_lossy(&ran.stdout).into_owned();
    let got: Vec<String> = text.lines().map(String::from).collect();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(field(&got[0], "from").as_deref(), Some("192.0.2.7:4242"));
    assert_eq!(message(&got[1]), "end");
}

#[test]
fn a_blocked_output_stops_the_reading_and_loses_nothing() {
    let s = Scratch::new("tcp-backpressure");
    let err = s.path("err");
    let mut child = Command::new(SYSLOG_READ)
        .args(["--tcp", LOCAL])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err).expect("err"))
        .spawn()
        .expect("spawn");
    let said = || std::fs::read_to_string(&err).unwrap_or_default();
    assert!(wait_until(LONG, || said().contains("receiving on tcp")));
    let port: u16 = said()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .expect("port");
    const N: usize = 200_000;
    let sender = std::thread::spawn(move || {
        let mut c = connect(port);
        let mut buf = Vec::new();
        for i in 0..N {
            writeln!(buf, "<13>bp: message {i:06} {}", "y".repeat(40)).expect("format");
        }
        c.write_all(&buf).expect("write all");
    });
    // Nothing is read from the output for a while: the reader must stop
    // reading (the sender blocks), not drop.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!sender.is_finished(), "the sender is held back by TCP");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut n = 0;
    let mut line = String::new();
    while n < N {
        line.clear();
        assert!(out.read_line(&mut line).expect("read") > 0, "ended at {n}");
        assert_eq!(
            message(line.trim_end()),
            format!("message {n:06} {}", "y".repeat(40))
        );
        n += 1;
    }
    sender.join().expect("sender");
    signal(&child, rustix::process::Signal::TERM);
    assert!(wait_child(&mut child, LONG).success());
}

/// `--own-pipe` with stderr the same pipe, as a run script's `exec 2>&1`
/// makes it: the pipe is written in large pieces and fills while warnings
/// come; a warning never lands inside a line.
#[test]
fn own_pipe_writes_large_pieces_and_its_warnings_never_land_inside_a_line() {
    let (mut child, read) = spawn_into_one_pipe(SYSLOG_READ, &["--own-pipe", "--tcp", LOCAL]);
    let mut out = BufReader::with_capacity(1 << 16, std::fs::File::from(read));
    let mut line = String::new();
    let port: u16 = loop {
        line.clear();
        assert!(out.read_line(&mut line).expect("read") > 0, "no start");
        if line.contains("receiving on tcp") {
            break line
                .trim_end()
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port");
        }
    };
    const N: usize = 100_000;
    const WARNINGS: usize = 300;
    let sender = std::thread::spawn(move || {
        let mut c = connect(port);
        let mut buf = Vec::new();
        for i in 0..N {
            writeln!(buf, "<13>own: message {i:06} {}", "o".repeat(131)).expect("format");
        }
        c.write_all(&buf).expect("write all");
    });
    // Each absurd octet count is a warning on stderr, while the pipe is
    // full and the flood's lines are cut by it.
    let warner = std::thread::spawn(move || {
        for _ in 0..WARNINGS {
            let mut bad = connect(port);
            bad.write_all(b"99999999999 <13>never").expect("write");
            assert!(closed_by_peer(&mut bad), "an absurd count closes");
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let (mut n, mut warned) = (0, 0);
    while n < N || warned < WARNINGS {
        line.clear();
        assert!(out.read_line(&mut line).expect("read") > 0, "ended at {n}");
        let line = line.strip_suffix('\n').expect("whole lines");
        if line.starts_with("syslog-read: ") {
            assert!(line.contains("octet count"), "{line}");
            warned += 1;
            continue;
        }
        assert_eq!(message(line), format!("message {n:06} {}", "o".repeat(131)));
        n += 1;
    }
    sender.join().expect("sender");
    warner.join().expect("warner");
    signal(&child, rustix::process::Signal::TERM);
    assert!(wait_child(&mut child, LONG).success());
}

/// Stderr the same pipe as the output (`exec 2>&1`), and a log writer that
/// takes nothing: a warning that comes while the pipe is full waits, and
/// does not hold the reader in a write to stderr, deaf to stop signals.
#[test]
fn a_full_pipe_that_is_also_stderr_never_holds_the_reader_in_a_warning() {
    let (mut child, read) = spawn_into_one_pipe(SYSLOG_READ, &["--tcp", LOCAL]);
    let pid = child.id();
    let mut start = Vec::new();
    while !String::from_utf8_lossy(&start).contains('\n') {
        let mut byte = [0u8; 1];
        assert_eq!(
            rustix::io::read(&read, &mut byte).expect("read"),
            1,
            "no start"
        );
        start.push(byte[0]);
    }
    let start = String::from_utf8_lossy(&start).into_owned();
    let port: u16 = start
        .trim_end()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {start:?}"));
    // Whole lines fill the pipe (each write at most PIPE_BUF, whole
    // lines): it is full at the end of a line.
    let mut flood = connect(port);
    for i in 0..2_000 {
        writeln!(flood, "<13>full: message {i:06} {}", "f".repeat(100)).expect("send");
    }
    let queued = || rustix::io::ioctl_fionread(&read).unwrap_or(0);
    let mut last = 0;
    let full = wait_until(LONG, || {
        std::thread::sleep(Duration::from_millis(100));
        let now = queued();
        std::mem::replace(&mut last, now) == now && now > 50_000
    });
    assert!(full, "{} queued", queued());
    // An absurd octet count: a warning on stderr, and the connection shut.
    let mut bad = connect(port);
    bad.write_all(b"99999999999 <13>never").expect("write");
    assert!(closed_by_peer(&mut bad), "an absurd count closes");
    signal(&child, rustix::process::Signal::TERM);
    assert!(wait_until(LONG, || term_taken(pid)), "the stop not taken");
    signal(&child, rustix::process::Signal::TERM);
    let status = wait_child(&mut child, LONG);
    assert_eq!(status.code(), Some(111), "a second stop gives up");
    let mut got = Vec::new();
    std::fs::File::from(read)
        .read_to_end(&mut got)
        .expect("read");
    let text = String::from_utf8(got).expect("UTF-8");
    assert!(text.ends_with('\n'), "whole lines");
    for line in text.lines() {
        assert!(line.starts_with("user.notice full: message "), "{line:.80}");
    }
}

#[test]
fn over_tcp_a_flooding_address_loses_its_excess_and_a_trickling_one_nothing() {
    require("python3");
    let s = Scratch::new("tcp-rate");
    let reader = Reader::start(&s, &["--tcp", LOCAL, "--rate-limit", "100/1s"]);
    let port = reader.port("tcp", 0);
    const FLOOD: usize = 20_000;
    let script = format!(
        "import socket\ns = socket.create_connection(('127.0.0.1', {port}), source_address=('127.0.0.1', 0))\n\
         s.sendall(b''.join(b'<13>flood %d\\n' % i for i in range({FLOOD})))\ns.close()\n"
    );
    let mut flooder = Command::new("python3")
        .args(["-c", &script])
        .spawn()
        .expect("python3");
    // Another address on loopback: another sender.
    let mut trickle = bind_and_connect("127.0.0.2", port);
    for i in 0..20 {
        trickle
            .write_all(format!("<13>trickle {i}\n").as_bytes())
            .expect("send");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(trickle);
    assert!(wait_child(&mut flooder, LONG).success());
    // All the flood is read (taken or counted) before the stop.
    std::thread::sleep(Duration::from_millis(500));
    let lines = reader.stop();
    assert_eq!(numbers(&lines, "trickle"), (0..20).collect::<Vec<_>>());
    let flooded = numbers(&lines, "flood");
    assert!(!flooded.is_empty() && flooded.len() < FLOOD / 2);
    let notices = suppressed(&lines);
    for (text, _) in &notices {
        assert!(text.starts_with("sender 127.0.0.1: "), "{text}");
    }
    let counted: u64 = notices.iter().map(|(_, n)| n).sum();
    assert_eq!(counted, (FLOOD - flooded.len()) as u64, "{notices:?}");
}

/// A connection that a short read drained rests a moment before it is read
/// again (a sender a little slower than the reader); a stop takes what it
/// sent all the same, in order.
#[test]
fn a_stop_takes_what_a_resting_connection_sent_just_before_it() {
    let s = Scratch::new("tcp-rest");
    let reader = Reader::start(&s, &["--tcp", LOCAL]);
    let port = reader.port("tcp", 0);
    let mut c = connect(port);
    const N: usize = 3000;
    // Many short writes, most of them a read of their own.
    for i in 0..N {
        c.write_all(format!("<13>rest {i}\n").as_bytes())
            .expect("send");
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // Once the reader's kernel holds every byte (which a stop must take),
    // the stop comes at once: the last writes may wait in a resting
    // connection.
    assert!(wait_until(LONG, || unsent(&c) == 0), "bytes left unsent");
    let lines = reader.stop();
    assert_eq!(numbers(&lines, "rest"), (0..N).collect::<Vec<_>>());
}

/// Bytes written to `c` that its peer has not acknowledged yet.
fn unsent(c: &TcpStream) -> libc::c_int {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = -1;
    // SAFETY: TIOCOUTQ writes one c_int, to a c_int we own.
    let rc = unsafe { libc::ioctl(c.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    assert_eq!(rc, 0, "TIOCOUTQ: {}", std::io::Error::last_os_error());
    n
}

/// A TCP connection from `source` (a loopback address) to `port`.
fn bind_and_connect(source: &str, port: u16) -> TcpStream {
    // std cannot bind before connecting: a socket made with rustix.
    use rustix::net::{AddressFamily, SocketType, bind, connect as rconnect, socket};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).expect("socket");
    let from: std::net::SocketAddr = format!("{source}:0").parse().expect("source");
    bind(&fd, &from).expect("bind");
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("to");
    rconnect(&fd, &to).expect("connect");
    TcpStream::from(fd)
}

#[test]
fn bad_stream_options_are_usage_errors() {
    for (args, want) in [
        (&["--tcp", "127.0.0.1"][..], "HOST:PORT"),
        (&["--tcp", "localhost:601"], "HOST:PORT"),
        (
            &["--tcp", "127.0.0.1:1", "--stream"],
            "or --relp-tls with it",
        ),
        (
            &["--tls", "127.0.0.1:1"],
            "needs --cert FILE and --key FILE",
        ),
        (&["--relp-tls", ":1"], "needs --cert FILE and --key FILE"),
        (
            &["--relp", ":0", "--cert", "x"],
            "no --tls or --relp-tls to use them",
        ),
        (&["--tcp", ":0", "--allow-name", "x"], "only --client-ca"),
        (&["--tcp", ":0", "--allow", "10.0.0.1/8"], "past the prefix"),
        (&["--tcp", ":0", "--max-connections", "0"], "1 or more"),
        (&["--tcp", ":0", "--idle-timeout", "0s"], "above 0"),
    ] {
        let out = Command::new(SYSLOG_READ)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run syslog-read");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(100), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}

/// The messages the forwarders are given: RFC 5424 with every field.
fn rich_messages(tag: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "<165>1 2026-11-30T20:00:0{}.123456Z host-{i} {tag} 42{i} ID{i} [ex@32473 k=\"v{i}\"] message {i} \u{e9}",
                i % 10
            )
        })
        .collect()
}

/// Checks that the lines hold `rich_messages(tag, n)`, every field as
/// sent, in order, each `from` 127.0.0.1; `rfc3164`: as syslog-ng's
/// network() rewrites them (no MSGID, no SD, a time without year).
fn assert_rich(lines: &[String], tag: &str, n: usize, rfc3164: bool) {
    let got: Vec<&String> = lines
        .iter()
        .filter(|l| parse(l).app == tag.as_bytes())
        .collect();
    assert_eq!(got.len(), n, "{lines:#?}");
    for (i, line) in got.iter().enumerate() {
        let r = parse(line);
        assert_eq!(r.priority.to_string(), "local4.notice", "{line}");
        assert_eq!(r.procid, format!("42{i}").as_bytes(), "{line}");
        assert_eq!(message(line), format!("message {i} \u{e9}"), "{line}");
        assert_eq!(field(line, "host"), Some(format!("host-{i}")), "{line}");
        let from = field(line, "from").expect("from");
        assert!(from.starts_with("127.0.0.1:"), "{line}");
        assert_eq!(field(line, "truncated"), None, "{line}");
        if rfc3164 {
            assert_eq!(field(line, "fmt").as_deref(), Some("rfc3164"), "{line}");
            continue;
        }
        assert_eq!(field(line, "fmt").as_deref(), Some("rfc5424"), "{line}");
        assert_eq!(field(line, "msgid"), Some(format!("ID{i}")), "{line}");
        assert_eq!(
            field(line, "sd"),
            Some(format!("[ex@32473 k=\"v{i}\"]")),
            "{line}"
        );
        let time = field(line, "time").expect("time");
        assert!(
            time.starts_with(&format!("2026-11-30T20:00:0{}.123456", i % 10)),
            "{line}"
        );
    }
}

/// A syslog-read on `args` (its one stream listener on port 0), a
/// forwarder made by `forwarder` to it; every message through, every
/// field checked.
fn forwarded_through(
    name: &str,
    args: &[&str],
    forwarder: impl FnOnce(&Scratch, u16) -> senders::Forwarder,
    rfc3164: bool,
) {
    let s = Scratch::new(name);
    let reader = Reader::start(&s, args);
    let proto = args[0].trim_start_matches("--");
    let port = reader.port(proto, 0);
    let f = forwarder(&s, port);
    let tag = format!("app-{}", name.replace('-', ""));
    const N: usize = 20;
    f.send(&rich_messages(&tag, N));
    let arrived = wait_until(LONG, || {
        reader
            .lines()
            .iter()
            .filter(|l| parse(l).app == tag.as_bytes())
            .count()
            >= N
    });
    assert!(
        arrived,
        "{} lines: {}\n{}",
        reader.lines().len(),
        reader.stderr(),
        f.stderr()
    );
    drop(f);
    let lines = reader.stop();
    assert_rich(&lines, &tag, N, rfc3164);
}

use common::receivers::Certs;
use common::senders::{self, Forwarder, Via};

fn tls_args<'a>(certs: &'a Certs, listen: &'a str) -> Vec<&'a str> {
    vec![
        listen,
        LOCAL,
        "--cert",
        path_arg(&certs.cert),
        "--key",
        path_arg(&certs.key),
    ]
}

#[test]
fn rsyslog_omfwd_over_tcp_octet_counted() {
    forwarded_through(
        "rs-octet",
        &["--tcp", LOCAL],
        |s, port| Forwarder::rsyslog(&s.path("rsyslog"), port, Via::TcpOctetCounted, None),
        false,
    );
}

#[test]
fn rsyslog_omfwd_over_tcp_lf_framed() {
    forwarded_through(
        "rs-lf",
        &["--tcp", LOCAL],
        |s, port| Forwarder::rsyslog(&s.path("rsyslog"), port, Via::TcpLf, None),
        false,
    );
}

#[test]
fn rsyslog_omfwd_over_tls_with_gtls() {
    let s = Scratch::new("rs-tls-certs");
    let certs = Certs::make(&s.path("certs"));
    let mut args = tls_args(&certs, "--tls");
    args.extend([
        "--client-ca",
        path_arg(&certs.ca),
        "--allow-name",
        "rill-client",
    ]);
    forwarded_through(
        "rs-tls",
        &args,
        |s, port| Forwarder::rsyslog(&s.path("rsyslog"), port, Via::Tls, Some(&certs)),
        false,
    );
}

#[test]
fn syslog_ng_syslog_over_tcp() {
    forwarded_through(
        "ng-tcp",
        &["--tcp", LOCAL],
        |s, port| Forwarder::syslog_ng(&s.path("ng"), port, Via::TcpOctetCounted, None),
        false,
    );
}

#[test]
fn syslog_ng_network_over_tcp() {
    forwarded_through(
        "ng-net",
        &["--tcp", LOCAL],
        |s, port| Forwarder::syslog_ng(&s.path("ng"), port, Via::TcpLf, None),
        true,
    );
}

#[test]
fn syslog_ng_syslog_over_tls() {
    let s = Scratch::new("ng-tls-certs");
    let certs = Certs::make(&s.path("certs"));
    let mut args = tls_args(&certs, "--tls");
    args.extend(["--client-ca", path_arg(&certs.ca)]);
    forwarded_through(
        "ng-tls",
        &args,
        |s, port| Forwarder::syslog_ng(&s.path("ng"), port, Via::Tls, Some(&certs)),
        false,
    );
}

/// openssl s_client sends `text` over TLS to `port`, showing the client
/// certificate when `with_cert`; whether the server took the connection
/// (s_client's exit status is no help: it says nothing of a refusal that
/// comes after the handshake).
fn s_client(certs: &Certs, port: u16, with_cert: bool, text: &str) {
    require("openssl");
    let mut c = Command::new("openssl");
    c.args(["s_client", "-quiet", "-no_ign_eof", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-CAfile", path_arg(&certs.ca)]);
    if with_cert {
        c.args(["-cert", path_arg(&certs.client_cert)])
            .args(["-key", path_arg(&certs.client_key)]);
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl");
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(format!("{text}\n").as_bytes());
    drop(stdin);
    wait_child(&mut child, LONG);
}

#[test]
fn mtls_an_allowed_certificate_comes_in_an_unlisted_or_missing_one_is_refused_and_said() {
    let s = Scratch::new("mtls");
    let certs = Certs::make(&s.path("certs"));
    let mut args = tls_args(&certs, "--tls");
    args.extend([
        "--client-ca",
        path_arg(&certs.ca),
        "--allow-name",
        "rill-client",
    ]);
    let reader = Reader::start(&s, &args);
    let port = reader.port("tls", 0);
    s_client(&certs, port, true, "<13>mtls: allowed");
    s_client(&certs, port, false, "<13>mtls: no certificate");
    reader.wait_lines(1);
    let said = wait_until(LONG, || {
        reader.stderr().contains("peer sent no certificates")
    });
    assert!(said, "{}", reader.stderr());
    let lines = reader.stop();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(message(&lines[0]), "allowed");

    let s = Scratch::new("mtls-unlisted");
    let mut args = tls_args(&certs, "--tls");
    args.extend(["--client-ca", path_arg(&certs.ca)]);
    args.extend(["--allow-name", "someone-else", "--allow-name", "localhost"]);
    let reader = Reader::start(&s, &args);
    s_client(&certs, reader.port("tls", 0), true, "<13>mtls: unlisted");
    let said = wait_until(LONG, || {
        reader.stderr().contains("none of them in --allow-name")
    });
    assert!(said, "{}", reader.stderr());
    assert!(
        reader.stderr().contains("[\"rill-client\"]"),
        "the names are said: {}",
        reader.stderr()
    );
    let lines = reader.stop();
    assert!(lines.is_empty(), "{lines:#?}");

    // Without --client-ca, no certificate is asked for.
    let s = Scratch::new("tls-anyone");
    let reader = Reader::start(&s, &tls_args(&certs, "--tls"));
    s_client(&certs, reader.port("tls", 0), false, "<13>tls: anyone");
    reader.wait_lines(1);
    let lines = reader.stop();
    assert_eq!(message(&lines[0]), "anyone");
}

#[test]
fn rsyslog_omrelp_plain() {
    forwarded_through(
        "rs-relp",
        &["--relp", LOCAL],
        |s, port| Forwarder::rsyslog(&s.path("rsyslog"), port, Via::Relp, None),
        false,
    );
}

#[test]
fn rsyslog_omrelp_over_tls() {
    let s = Scratch::new("rs-relp-tls-certs");
    let certs = Certs::make(&s.path("certs"));
    let mut args = tls_args(&certs, "--relp-tls");
    args.extend([
        "--client-ca",
        path_arg(&certs.ca),
        "--allow-name",
        "rill-client",
    ]);
    forwarded_through(
        "rs-relp-tls",
        &args,
        |s, port| Forwarder::rsyslog(&s.path("rsyslog"), port, Via::RelpTls, Some(&certs)),
        false,
    );
}

/// rsyslog's omrelp sends while syslog-read is killed with SIGKILL and
/// started again on the same port: every message arrives (some maybe
/// twice: those written but not yet answered), none is lost.
#[test]
fn kill_9_while_omrelp_sends_loses_nothing() {
    let s1 = Scratch::new("relp-kill9-a");
    let port = receivers::free_port(receivers::Transport::Tcp);
    let listen = format!("127.0.0.1:{port}");
    let mut first = Reader::start(&s1, &["--relp", &listen]);
    let f = Forwarder::rsyslog(&s1.path("rsyslog"), port, Via::Relp, None);
    const N: usize = 20_000;
    let messages: Vec<String> = (0..N)
        .map(|i| format!("<13>1 2026-11-30T20:00:00Z h k9 - - - kill9 {i}"))
        .collect();
    f.send(&messages);
    // Killed once some, not all, are in.
    assert!(
        wait_until(LONG, || first.lines().len() >= 100),
        "{}",
        f.stderr()
    );
    first.child.kill().expect("kill -9");
    let _ = first.child.wait();
    let before = first.lines();
    assert!(numbers(&before, "kill9").len() < N, "killed before the end");
    let s2 = Scratch::new("relp-kill9-b");
    let second = Reader::start(&s2, &["--relp", &listen]);
    let all = || {
        let mut seen: Vec<usize> = numbers(&before, "kill9");
        seen.extend(numbers(&second.lines(), "kill9"));
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    };
    assert!(
        wait_until(LONG, || all() == N),
        "{} of {N}: {}",
        all(),
        f.stderr()
    );
    drop(f);
    let after = second.stop();
    let mut seen: Vec<usize> = numbers(&before, "kill9");
    let total_lines = seen.len() + numbers(&after, "kill9").len();
    seen.extend(numbers(&after, "kill9"));
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, (0..N).collect::<Vec<_>>());
    eprintln!(
        "kill -9: {} lines before, {} duplicates",
        numbers(&before, "kill9").len(),
        total_lines - N
    );
}

/// A raw RELP client: opens a session on `port`; the connection.
fn relp_open(port: u16) -> (TcpStream, BufReader<TcpStream>) {
    let mut c = connect(port);
    let offers = "relp_version=0\ncommands=syslog\nx=y";
    c.write_all(format!("1 open {} {offers}\n", offers.len()).as_bytes())
        .expect("open");
    let mut r = BufReader::new(c.try_clone().expect("clone"));
    r.get_ref().set_read_timeout(Some(LONG)).expect("timeout");
    let mut answer = String::new();
    r.read_line(&mut answer).expect("open's answer");
    assert!(answer.starts_with("1 rsp "), "{answer:?}");
    // The offers span lines: read up to the frame's end.
    let len: usize = answer
        .split(' ')
        .nth(2)
        .and_then(|l| l.parse().ok())
        .expect("len");
    let mut rest = answer.len() - "1 rsp ".len() - len.to_string().len() - 1;
    while rest < len + 1 {
        let mut more = String::new();
        r.read_line(&mut more).expect("offers");
        rest += more.len();
    }
    (c, r)
}

fn relp_frame(txnr: u32, text: &str) -> Vec<u8> {
    format!("{txnr} syslog {} {text}\n", text.len()).into_bytes()
}

/// The answer to a RELP message comes only once its line is written: with
/// standard output blocked (a pipe nobody reads), none comes; it comes
/// when the output is read. A message the rate limit drops is answered
/// too; a stop says `serverclose`.
#[test]
fn relp_answers_wait_for_the_line_to_be_written() {
    let s = Scratch::new("relp-answer");
    let err = s.path("err");
    let mut child = Command::new(SYSLOG_READ)
        .args([
            "--relp",
            LOCAL,
            "--tcp",
            LOCAL,
            "--rate-limit",
            "1/1h,100000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err).expect("err"))
        .spawn()
        .expect("spawn");
    let said = || std::fs::read_to_string(&err).unwrap_or_default();
    assert!(wait_until(LONG, || said().matches("receiving on").count() == 2));
    let port_of = |kind: &str| -> u16 {
        said()
            .split(&format!("receiving on {kind} "))
            .nth(1)
            .and_then(|r| r.lines().next())
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .expect("port")
    };
    let (relp, tcp) = (port_of("relp"), port_of("tcp"));
    // Opened first: while the output is full, no connection is read.
    let (mut c, mut r) = relp_open(relp);
    // Fill the output: a pipe of 64 KiB and the reader's buffer of 1 MiB.
    let mut filler = connect(tcp);
    let line = format!("<13>fill: {}\n", "z".repeat(200));
    let filled = std::thread::spawn(move || {
        for _ in 0..20_000 {
            if filler.write_all(line.as_bytes()).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    c.write_all(&relp_frame(2, "<13>relp: held")).expect("send");
    r.get_ref()
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let mut answer = String::new();
    assert!(
        r.read_line(&mut answer).is_err(),
        "answered before written: {answer:?}"
    );
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let reading = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = out.read_to_string(&mut all);
        all
    });
    r.get_ref().set_read_timeout(Some(LONG)).expect("timeout");
    r.read_line(&mut answer).expect("the answer");
    assert_eq!(answer, "2 rsp 6 200 OK\n");
    filled.join().expect("filler");
    signal(&child, rustix::process::Signal::TERM);
    let mut rest = String::new();
    r.read_line(&mut rest).expect("serverclose");
    assert_eq!(rest, "0 serverclose 0\n");
    assert!(wait_child(&mut child, LONG).success());
    let all = reading.join().expect("reader");
    assert_eq!(all.lines().filter(|l| message(l) == "held").count(), 1);
}

#[test]
fn relp_a_message_over_the_rate_is_answered_and_counted() {
    let s = Scratch::new("relp-rate");
    let reader = Reader::start(&s, &["--relp", LOCAL, "--rate-limit", "1/1h,2"]);
    let (mut c, mut r) = relp_open(reader.port("relp", 0));
    for txnr in 2..7 {
        c.write_all(&relp_frame(txnr, &format!("<13>rate {txnr}")))
            .expect("send");
    }
    for txnr in 2..7 {
        let mut answer = String::new();
        r.read_line(&mut answer).expect("answer");
        assert_eq!(answer, format!("{txnr} rsp 6 200 OK\n"));
    }
    c.write_all(b"7 close 0\n").expect("close");
    let mut answer = String::new();
    r.read_line(&mut answer).expect("close's answer");
    assert_eq!(answer, "7 rsp 6 200 OK\n");
    let lines = reader.stop();
    assert_eq!(numbers(&lines, "rate"), [2, 3]);
    assert_eq!(
        suppressed(&lines),
        [("sender 127.0.0.1: 3 messages suppressed".to_string(), 3)]
    );
}

/// Lines as another rill's syslog-read wrote them, relayed by its
/// export-to-remote to a syslog-read started with `args` (listening on
/// `proto`), over `scheme` with the client certificate of `certs`; the
/// lines received.
fn relayed(name: &str, certs: &Certs, args: &[&str], proto: &str, scheme: &str) -> Vec<String> {
    let s = Scratch::new(name);
    let reader = Reader::start(&s, args);
    let port = reader.port(proto, 0);
    let log = s.path("logdir");
    let lines: Vec<Vec<u8>> = [
        "user.notice app[77]: from a local sender\tfmt=rfc3164 pid=77 uid=1000 gid=1000",
        "user.notice forger: from the network\tfmt=rfc5424 sd=[rill@32473\\x20uid=\"0\"] from=10.0.0.9:514",
    ]
    .iter()
    .map(|l| l.as_bytes().to_vec())
    .collect();
    cyclog_write(&log, &[], &lines);
    let cursors = s.path("cursors");
    cursor_dir(&cursors, "syslog", &log);
    let mut export = Command::new(EXPORT);
    export.args(["--to", &format!("{scheme}://127.0.0.1:{port}")]);
    if scheme == "tls" {
        export
            .args(["--ca", path_arg(&certs.ca)])
            .args(["--cert", path_arg(&certs.client_cert)])
            .args(["--key", path_arg(&certs.client_key)]);
    }
    let mut export = export
        .arg(&cursors)
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(s.path("export.stderr")).expect("stderr"))
        .spawn()
        .expect("export-to-remote");
    reader.wait_lines(2);
    signal(&export, rustix::process::Signal::TERM);
    assert!(wait_child(&mut export, LONG).success());
    reader.stop()
}

#[test]
fn relay_trust_rills_fields_are_kept_only_from_an_authenticated_peer() {
    let s = Scratch::new("relay-certs");
    let certs = Certs::make(&s.path("certs"));
    let mut args = tls_args(&certs, "--tls");
    args.extend([
        "--client-ca",
        path_arg(&certs.ca),
        "--allow-name",
        "rill-client",
    ]);
    let lines = relayed("relay-trusted", &certs, &args, "tls", "tls");
    let local = find(&lines, "from a local sender");
    for (key, want) in [("pid", "77"), ("uid", "1000"), ("gid", "1000")] {
        assert_eq!(field(local, key).as_deref(), Some(want), "{local}");
    }
    assert_eq!(field(local, "from"), None, "{local}");
    assert_eq!(
        field(local, "sd"),
        None,
        "the element is taken out: {local}"
    );
    assert!(field(local, "relay").is_some_and(|r| r.starts_with("127.0.0.1:")));
    let net = find(&lines, "from the network");
    assert_eq!(field(net, "from").as_deref(), Some("10.0.0.9:514"), "{net}");
    assert_eq!(
        field(net, "uid"),
        None,
        "the original's claim stays one: {net}"
    );
    assert_eq!(
        field(net, "sd").as_deref(),
        Some(r#"[rill-claimed@32473 uid="0"]"#),
        "{net}"
    );

    // TLS without client certificates, and TCP: the sender's claim.
    let tls_anyone = tls_args(&certs, "--tls");
    for (name, args, proto, scheme) in [
        ("relay-tls-anyone", &tls_anyone[..], "tls", "tls"),
        ("relay-tcp", &["--tcp", LOCAL][..], "tcp", "tcp"),
    ] {
        let lines = relayed(name, &certs, args, proto, scheme);
        let local = find(&lines, "from a local sender");
        for key in ["pid", "uid", "gid", "relay"] {
            assert_eq!(field(local, key), None, "{name}: {local}");
        }
        assert!(
            field(local, "from").is_some_and(|f| f.starts_with("127.0.0.1:")),
            "{local}"
        );
        assert_eq!(
            field(local, "sd").as_deref(),
            Some(r#"[rill@32473 fmt="rfc3164" pid="77" uid="1000" gid="1000"]"#),
            "{name}: {local}"
        );
    }
}

/// The connection on stdin ends when nothing waits to be written (its
/// last line long out): the stop comes all the same.
#[test]
fn stream_ends_when_its_input_ends_after_a_quiet_while() {
    let mut child = Command::new(SYSLOG_READ)
        .arg("--stream")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"<13>quiet: one\n").expect("write");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("the line");
    assert_eq!(message(line.trim_end()), "one");
    std::thread::sleep(Duration::from_millis(300));
    drop(stdin);
    assert!(wait_child(&mut child, LONG).success());
}

/// A RELP client outside `--allow` is told `serverclose` and closed
/// before any message; one inside is served.
#[test]
fn relp_a_client_outside_allow_gets_serverclose_and_is_closed() {
    let s = Scratch::new("relp-allow");
    let reader = Reader::start(&s, &["--relp", LOCAL, "--allow", "192.0.2.0/24"]);
    let mut c = connect(reader.port("relp", 0));
    c.set_read_timeout(Some(LONG)).expect("timeout");
    let mut got = Vec::new();
    c.read_to_end(&mut got).expect("read to the end");
    assert_eq!(got, b"0 serverclose 0\n");
    let said = wait_until(LONG, || reader.stderr().contains("not in --allow"));
    assert!(said, "{}", reader.stderr());
    assert!(reader.stop().is_empty());
}

/// A TLS client that sends and closes without reading anything (as
/// loggen does) loses nothing: the server sends it nothing after the
/// handshake (no TLS 1.3 session tickets), so its close is no reset that
/// would make the kernel drop what it sent last.
#[test]
fn a_tls_client_that_never_reads_loses_nothing_when_it_closes() {
    require("python3");
    let s = Scratch::new("tls-no-read");
    let certs = Certs::make(&s.path("certs"));
    let reader = Reader::start(&s, &tls_args(&certs, "--tls"));
    let port = reader.port("tls", 0);
    const N: usize = 100_000;
    let script = format!(
        "import socket, ssl\n\
         c = ssl.create_default_context(cafile={ca:?})\n\
         s = c.wrap_socket(socket.create_connection(('127.0.0.1', {port})), server_hostname='localhost')\n\
         s.sendall(b''.join(b'<13>noread %d\\n' % i for i in range({N})))\n\
         s.close()\n",
        ca = path_arg(&certs.ca)
    );
    let status = Command::new("python3")
        .args(["-c", &script])
        .status()
        .expect("python3");
    assert!(status.success());
    let arrived = wait_until(LONG, || numbers(&reader.lines(), "noread").len() == N);
    assert!(
        arrived,
        "{} of {N}: {}",
        numbers(&reader.lines(), "noread").len(),
        reader.stderr()
    );
    let lines = reader.stop();
    assert_eq!(numbers(&lines, "noread"), (0..N).collect::<Vec<_>>());
}
