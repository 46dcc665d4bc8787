//! syslog-read --rate-limit through real sockets: a flooder and a
//! trickling sender at once, on the unix socket (told apart by pid or by
//! uid) and on UDP (by address); the trickle comes through whole and every
//! dropped message is counted exactly, the last count at the stop.

mod common;

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use common::reader::*;
use common::*;

/// Another process that sends `count` datagrams `text N` as fast as it
/// can: to the unix socket at `path`, or over UDP from `from` to `to`.
fn flooder(target: Target, count: usize, text: &str) -> Child {
    require("python3");
    let send = match target {
        Target::Unix(path) => format!(
            "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.connect({:?})",
            path_arg(path)
        ),
        Target::Udp { from, port } => format!(
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(({from:?}, 0)); \
             s.connect(('127.0.0.1', {port}))"
        ),
    };
    let script =
        format!("import socket\n{send}\nfor i in range({count}): s.send(b'<13>{text} %d' % i)\n");
    Command::new("python3")
        .args(["-c", &script])
        .spawn()
        .expect("python3")
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Unix(&'a Path),
    Udp { from: &'a str, port: u16 },
}

/// Sends 20 messages `trickle N` with `send`, one each 50 ms, while
/// another process floods with `flood` as fast as it can; checks that the
/// whole trickle and some of the flood came through, and that the notices
/// count exactly what did not, each for the flooder (named by `name`
/// from its pid).
fn flood_and_trickle(
    reader: Reader,
    (flood, count): (Target, usize),
    name: impl Fn(u32) -> String,
    mut send: impl FnMut(&[u8]),
) {
    const TRICKLE: usize = 20;
    let mut child = flooder(flood, count, "flood");
    let flooder_name = name(child.id());
    for i in 0..TRICKLE {
        send(format!("<13>trickle {i}").as_bytes());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(wait_child(&mut child, LONG).success());
    let lines = reader.stop();
    assert!(
        !lines.iter().any(|l| l.contains("cause=kernel")),
        "the kernel dropped datagrams: the counts cannot be checked"
    );
    assert_eq!(
        numbers(&lines, "trickle"),
        (0..TRICKLE).collect::<Vec<_>>(),
        "the trickle, whole and in order"
    );
    let flooded = numbers(&lines, "flood");
    assert!(
        !flooded.is_empty() && flooded.len() < count / 2,
        "{} of the flood got through",
        flooded.len()
    );
    let notices = suppressed(&lines);
    let want = format!("sender {flooder_name}: ");
    for (text, _) in &notices {
        assert!(text.starts_with(&want), "{text:?}, only {want:?} dropped");
        assert!(text.ends_with(" messages suppressed"), "{text:?}");
    }
    let counted: u64 = notices.iter().map(|(_, n)| n).sum();
    assert_eq!(
        counted,
        (count - flooded.len()) as u64,
        "the counts are exact: {notices:?}"
    );
}

#[test]
fn on_the_unix_socket_a_flooding_process_loses_its_excess_and_a_trickling_one_nothing() {
    let scratch = Scratch::new("rate-unix");
    let socket = scratch.path("log");
    let reader = Reader::start(
        &scratch,
        &["--unix", path_arg(&socket), "--rate-limit", "100/1s"],
    );
    let sender = UnixDatagram::unbound().expect("socket");
    flood_and_trickle(
        reader,
        (Target::Unix(&socket), 20_000),
        |pid| format!("pid {pid}"),
        |m| {
            sender.send_to(m, &socket).expect("send");
        },
    );
}

#[test]
fn on_udp_a_flooding_address_loses_its_excess_and_a_trickling_one_nothing() {
    let scratch = Scratch::new("rate-udp");
    let reader = Reader::start(
        &scratch,
        &["--udp", "127.0.0.1:0", "--rate-limit", "100/1s"],
    );
    let port = reader.udp_port();
    // Another address on loopback: another sender, whatever the ports.
    let sender = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    sender.connect(("127.0.0.1", port)).expect("connect");
    flood_and_trickle(
        reader,
        // Well within what the receive buffer holds when it may be raised
        // (root, as CI runs), however slow the reader: none is lost
        // before it is counted.
        (
            Target::Udp {
                from: "127.0.0.1",
                port,
            },
            5_000,
        ),
        |_| "127.0.0.1".to_string(),
        |m| {
            sender.send(m).expect("send");
        },
    );
}

/// Sends `count` messages `text N` from this process, then `count` from
/// another process of the same user, to a reader limited to 3 at once per
/// sender; returns its lines after the stop.
fn two_processes_one_user(by: &str, count: usize) -> Vec<String> {
    let scratch = Scratch::new("rate-by");
    let socket = scratch.path("log");
    let reader = Reader::start(
        &scratch,
        &[
            "--unix",
            path_arg(&socket),
            "--rate-limit",
            "1/1h,3",
            "--rate-limit-by",
            by,
        ],
    );
    let sender = UnixDatagram::unbound().expect("socket");
    for i in 0..count {
        sender
            .send_to(format!("<13>here {i}").as_bytes(), &socket)
            .expect("send");
    }
    let mut child = flooder(Target::Unix(&socket), count, "there");
    assert!(wait_child(&mut child, LONG).success());
    reader.stop()
}

#[test]
fn by_pid_each_process_has_its_own_allowance() {
    let lines = two_processes_one_user("pid", 5);
    assert_eq!(numbers(&lines, "here"), [0, 1, 2]);
    assert_eq!(numbers(&lines, "there"), [0, 1, 2]);
    let notices = suppressed(&lines);
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(
        notices
            .iter()
            .all(|(text, n)| text.starts_with("sender pid ") && *n == 2)
    );
}

#[test]
fn by_uid_the_processes_of_a_user_share_one() {
    let lines = two_processes_one_user("uid", 5);
    assert_eq!(numbers(&lines, "here"), [0, 1, 2]);
    assert_eq!(numbers(&lines, "there"), Vec::<usize>::new());
    let uid = rustix::process::getuid().as_raw();
    assert_eq!(
        suppressed(&lines),
        [(format!("sender uid {uid}: 7 messages suppressed"), 7)]
    );
}

#[test]
fn a_sender_that_stops_is_reported_after_the_interval_without_a_stop() {
    let scratch = Scratch::new("rate-interval");
    let socket = scratch.path("log");
    let reader = Reader::start(
        &scratch,
        &["--unix", path_arg(&socket), "--rate-limit", "1/1s,1"],
    );
    let sender = UnixDatagram::unbound().expect("socket");
    for i in 0..10 {
        sender
            .send_to(format!("<13>burst {i}").as_bytes(), &socket)
            .expect("send");
    }
    // Nothing more is sent: the count must come by itself, a second after
    // the first drop.
    let reported = wait_until(LONG, || !suppressed(&reader.lines()).is_empty());
    assert!(reported, "no notice: {:?}", reader.lines());
    let pid = std::process::id();
    let lines = reader.stop();
    assert_eq!(numbers(&lines, "burst"), [0]);
    assert_eq!(
        suppressed(&lines),
        [(format!("sender pid {pid}: 9 messages suppressed"), 9)]
    );
}

#[test]
fn bad_rate_limits_are_usage_errors() {
    for (args, want) in [
        (&["--rate-limit", "0/1s"][..], "at least 1"),
        (&["--rate-limit", "10"], "N/DURATION"),
        (&["--rate-limit", "10/fortnight"], "duration"),
        (
            &["--rate-limit", "10/1s", "--rate-limit-by", "gid"],
            "neither pid nor uid",
        ),
        (&["--rate-limit-by", "uid"], "no --rate-limit"),
    ] {
        let scratch = Scratch::new("rate-usage");
        let socket = scratch.path("log");
        let mut all = vec!["--unix", path_arg(&socket)];
        all.extend_from_slice(args);
        let out = Command::new(SYSLOG_READ)
            .args(&all)
            .output()
            .expect("run syslog-read");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(100), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!socket.exists(), "{args:?}: no socket is left behind");
    }
}
