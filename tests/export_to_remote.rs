//! export-to-remote against real syslog servers (rsyslog, syslog-ng) on
//! loopback: what each server parsed, field by field, against what went
//! into the log; and delivery across kill -9, server restarts, rotations.
//!
//! Most reader lines here are built with `rill::format::reader_line`, the format
//! syslog-read and klog-read write; one test sends datagrams through
//! syslog-read and cyclog themselves.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use common::receivers::*;
use common::*;
use rill::format::reader_line::{Priority, Record};
use rustix::process::Signal;

const HOST: &str = "testhost";

struct Export {
    child: Child,
    err: PathBuf,
}

impl Export {
    fn start(cursors: &Path, args: &[&str], err: &Path) -> Export {
        let child = Command::new(EXPORT)
            .args(args)
            .arg(cursors)
            .stdin(Stdio::null())
            .stderr(Stdio::from(
                fs::File::options()
                    .create(true)
                    .append(true)
                    .open(err)
                    .expect("stderr"),
            ))
            .spawn()
            .expect("spawn export-to-remote");
        let pid = child.id();
        assert!(wait_until(LONG, || blocks_term(pid)), "never became ready");
        Export {
            child,
            err: err.to_path_buf(),
        }
    }

    fn to(receiver: &Receiver, cursors: &Path, extra: &[&str], err: &Path) -> Export {
        let url = receiver.url();
        let args = [&["--to", url.as_str(), "--hostname", HOST][..], extra].concat();
        Export::start(cursors, &args, err)
    }

    fn stop(mut self) -> i32 {
        signal(&self.child, Signal::TERM);
        wait_child(&mut self.child, LONG).code().unwrap_or(-1)
    }

    fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        // A test that failed leaves no exporter behind.
        kill_and_reap(&mut self.child);
    }
}

/// What a server should have parsed from one line.
#[derive(Clone, Debug)]
struct Want {
    pri: u16,
    /// `None`: the line's stamp, in UTC (filled in once it is known).
    timestamp: Option<String>,
    hostname: String,
    app: String,
    procid: String,
    msgid: String,
    sd: String,
    msg: Vec<u8>,
}

fn want(pri: u16, app: &str, sd: &str, msg: &[u8]) -> Want {
    Want {
        pri,
        timestamp: None,
        hostname: HOST.into(),
        app: app.into(),
        procid: "-".into(),
        msgid: "-".into(),
        sd: sd.into(),
        msg: msg.to_vec(),
    }
}

fn record(priority: &str, app: &str, procid: &str, msg: &[u8], fields: &[(&str, &str)]) -> Vec<u8> {
    let mut r = Record::new(Priority::parse(priority).expect("priority"), msg);
    r.app = app.as_bytes().to_vec();
    r.procid = procid.as_bytes().to_vec();
    for (k, v) in fields {
        r.push_field(k, v);
    }
    r.to_line()
}

/// A line as written to the log, and what it must become.
type Case = (Vec<u8>, Want);

/// Reader lines (as syslog-read and klog-read write them) and what each
/// must become.
fn reader_cases() -> Vec<Case> {
    let relayed_sd = r#"[exampleSDID@32473 iut="3" eventSource="App\]"]"#;
    let quoted = br#"disk 91% full: "quoted" \back ]bracket"#;
    vec![
        (
            record(
                "local3.warning",
                "myapp",
                "1234",
                quoted,
                &[
                    ("fmt", "rfc5424"),
                    ("time", "2024-01-02T03:04:05.123456+01:00"),
                    ("host", "relay7.example.org"),
                    ("msgid", "ID47"),
                    ("sd", relayed_sd),
                    ("from", "192.0.2.7:514"),
                ],
            ),
            Want {
                timestamp: Some("2024-01-02T03:04:05.123456+01:00".into()),
                hostname: "relay7.example.org".into(),
                procid: "1234".into(),
                msgid: "ID47".into(),
                ..want(
                    156,
                    "myapp",
                    &format!(r#"{relayed_sd}[rill@32473 fmt="rfc5424" from="192.0.2.7:514"]"#),
                    quoted,
                )
            },
        ),
        (
            record(
                "auth.info",
                "sshd",
                "4242",
                b"Accepted publickey for root from 10.0.0.1 port 22 ssh2",
                &[
                    ("fmt", "rfc3164"),
                    ("time3164", "Jan  2 03:04:05"),
                    ("pid", "4242"),
                    ("uid", "0"),
                    ("gid", "0"),
                ],
            ),
            Want {
                procid: "4242".into(),
                ..want(
                    38,
                    "sshd",
                    r#"[rill@32473 fmt="rfc3164" time3164="Jan  2 03:04:05" pid="4242" uid="0" gid="0"]"#,
                    b"Accepted publickey for root from 10.0.0.1 port 22 ssh2",
                )
            },
        ),
        (
            record(
                "user.notice",
                "app",
                "",
                "h\u{e9}llo w\u{f6}rld \u{2713}\tdone".as_bytes(),
                &[("fmt", "rfc5424"), ("bom", "1")],
            ),
            want(
                13,
                "app",
                r#"[rill@32473 fmt="rfc5424"]"#,
                "\u{feff}h\u{e9}llo w\u{f6}rld \u{2713}\tdone".as_bytes(),
            ),
        ),
        (
            record(
                "kern.warning",
                "kernel",
                "",
                b"usb 1-1: new high-speed USB device number 2",
                &[
                    ("seq", "1234"),
                    ("boot", "12.345678"),
                    ("time", "2026-12-01T03:00:12.345678Z"),
                    ("SUBSYSTEM", "usb"),
                    ("DEVICE", "c189:1"),
                ],
            ),
            // klog-read's event time is the TIMESTAMP.
            Want {
                timestamp: Some("2026-12-01T03:00:12.345678Z".into()),
                ..want(
                    4,
                    "kernel",
                    r#"[rill@32473 seq="1234" boot="12.345678" SUBSYSTEM="usb" DEVICE="c189:1"]"#,
                    b"usb 1-1: new high-speed USB device number 2",
                )
            },
        ),
        (
            record(
                "daemon.err",
                "db",
                "77",
                b"panic:\n  at frame 1\n  at frame 2",
                &[],
            ),
            Want {
                procid: "77".into(),
                ..want(27, "db", "-", b"panic:\n  at frame 1\n  at frame 2")
            },
        ),
        (
            record("user.info", "bin", "", b"raw \xff\xfe bytes", &[]),
            want(14, "bin", "-", b"raw \xff\xfe bytes"),
        ),
        (
            record(
                "user.notice",
                "logger",
                "",
                b"relayed without a hostname",
                &[("fmt", "rfc3164"), ("from", "[2001:db8::7]:514")],
            ),
            Want {
                hostname: "2001:db8::7".into(),
                ..want(
                    13,
                    "logger",
                    r#"[rill@32473 fmt="rfc3164" from="[2001:db8::7\]:514"]"#,
                    b"relayed without a hostname",
                )
            },
        ),
        (
            record("user.notice", "empty", "", b"", &[]),
            want(13, "empty", "-", b""),
        ),
    ]
}

/// Three cursors: reader lines; a service's output with its own default
/// priority; a service whose output only looks like reader lines.
fn setup_cases(s: &Scratch) -> (PathBuf, Vec<Want>) {
    let cursors = s.path("cursors");
    let mut wants = Vec::new();
    let dirs: [(&str, Vec<Case>); 3] = [
        ("syslog", reader_cases()),
        (
            "svc",
            ["service said: 100% done [ok]", "second \"line\""]
                .iter()
                .map(|t| (t.as_bytes().to_vec(), want(131, "svc", "-", t.as_bytes())))
                .collect(),
        ),
        (
            "shady",
            vec![(
                b"auth.emerg sshd[1]: forged\thost=evil uid=0".to_vec(),
                want(
                    29,
                    "shady",
                    "-",
                    b"auth.emerg sshd[1]: forged\thost=evil uid=0",
                ),
            )],
        ),
    ];
    for (name, cases) in dirs {
        let log = s.path(&format!("log-{name}"));
        let lines: Vec<Vec<u8>> = cases.iter().map(|(l, _)| l.clone()).collect();
        cyclog_write(&log, &[], &lines);
        let dir = cursor_dir(&cursors, name, &log);
        match name {
            "svc" => fs::write(dir.join("priority"), "local0.err\n").expect("priority"),
            "shady" => fs::write(dir.join("plain"), "").expect("plain"),
            _ => {}
        }
        for (line, (_, mut w)) in read_logdir(&log).iter().zip(cases) {
            w.timestamp.get_or_insert_with(|| utc_of(&line.stamp));
            wants.push(w);
        }
    }
    (cursors, wants)
}

/// A TAI64N stamp (24 hex digits, true TAI) as UTC with microseconds.
fn utc_of(hex: &str) -> String {
    let secs = u64::from_str_radix(&hex[..16], 16).expect("hex") - (1 << 62) - 37;
    let nanos = u32::from_str_radix(&hex[16..], 16).expect("hex");
    let t = UNIX_EPOCH + Duration::new(secs, nanos);
    humantime::format_rfc3339_micros(t).to_string()
}

/// One field as the servers differ in saying the same thing.
fn normal(server: Server, key: &str, value: &[u8]) -> Vec<u8> {
    let mut v = value.to_vec();
    if v.is_empty() && key != "msg" {
        v = b"-".to_vec();
    }
    if key == "timestamp" {
        let mut t = String::from_utf8_lossy(&v).into_owned();
        if let Some(base) = t.strip_suffix("+00:00") {
            t = format!("{base}Z");
        }
        // syslog-ng shows fractions with six digits, whatever was sent.
        if let Some((whole, rest)) = t.split_once('.') {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits < 6 {
                let zone = &rest[digits..];
                t = format!("{whole}.{:0<6}{zone}", &rest[..digits]);
            }
        }
        return t.into_bytes();
    }
    if key == "msg" && server == Server::SyslogNg {
        // syslog-ng drops the BOM, and shows invalid UTF-8 as \xHH.
        if let Some(rest) = v.strip_prefix("\u{feff}".as_bytes()) {
            v = rest.to_vec();
        }
        let mut out = Vec::new();
        for chunk in v.utf8_chunks() {
            out.extend_from_slice(chunk.valid().as_bytes());
            for b in chunk.invalid() {
                out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
            }
        }
        v = out;
    }
    v
}

fn check_fields(server: Server, got: &[Fields], wants: &[Want]) {
    assert_eq!(got.len(), wants.len(), "messages received: {got:#?}");
    for w in wants {
        let want_msg = normal(server, "msg", &w.msg);
        let g = got
            .iter()
            .find(|g| {
                normal(server, "msg", g.get("msg").map_or(&[][..], Vec::as_slice)) == want_msg
                    && g.get("app-name").map(Vec::as_slice) == Some(w.app.as_bytes())
            })
            .unwrap_or_else(|| panic!("{server:?}: no message like {w:#?} in {got:#?}"));
        let timestamp = w.timestamp.clone().expect("known once written");
        let expect = [
            ("pri", w.pri.to_string().into_bytes()),
            ("timestamp", timestamp.into_bytes()),
            ("hostname", w.hostname.clone().into_bytes()),
            ("app-name", w.app.clone().into_bytes()),
            ("procid", w.procid.clone().into_bytes()),
            ("msgid", w.msgid.clone().into_bytes()),
            ("structured-data", w.sd.clone().into_bytes()),
        ];
        for (key, value) in expect {
            let field = g.get(key).unwrap_or_else(|| panic!("no {key} in {g:?}"));
            assert_eq!(
                String::from_utf8_lossy(&normal(server, key, field)),
                String::from_utf8_lossy(&normal(server, key, &value)),
                "{server:?}: {key} of {w:?}"
            );
        }
    }
}

fn fields_arrive_intact(server: Server, transport: Transport) {
    let s = Scratch::new(&format!("fields-{server:?}-{transport:?}"));
    let tls = matches!(transport, Transport::Tls | Transport::RelpTls);
    let certs = tls.then(|| Certs::make(&s.path("certs")));
    let receiver = Receiver::start(server, transport, &s.path("server"), certs.as_ref());
    let (cursors, wants) = setup_cases(&s);
    let files = certs
        .as_ref()
        .map(|c| [&c.ca, &c.client_cert, &c.client_key].map(|p| p.to_string_lossy().into_owned()));
    let extra: Vec<&str> = match (&files, transport) {
        // imrelp over TLS asks for the client's certificate.
        (Some([ca, cert, key]), Transport::RelpTls) => {
            vec!["--ca", ca, "--cert", cert, "--key", key]
        }
        (Some([ca, ..]), _) => vec!["--ca", ca],
        (None, _) => vec![],
    };
    let e = Export::to(&receiver, &cursors, &extra, &s.path("export.stderr"));
    let got = receiver.wait_for(wants.len(), LONG);
    let err = e.stderr();
    assert_eq!(e.stop(), 0, "{err}");
    check_fields(server, &got, &wants);
}

#[test]
fn rsyslog_udp_gets_every_field() {
    fields_arrive_intact(Server::Rsyslog, Transport::Udp);
}

#[test]
fn rsyslog_tcp_gets_every_field() {
    fields_arrive_intact(Server::Rsyslog, Transport::Tcp);
}

#[test]
fn rsyslog_tls_gets_every_field() {
    fields_arrive_intact(Server::Rsyslog, Transport::Tls);
}

#[test]
fn rsyslog_relp_gets_every_field() {
    fields_arrive_intact(Server::Rsyslog, Transport::Relp);
}

#[test]
fn rsyslog_relp_tls_gets_every_field() {
    fields_arrive_intact(Server::Rsyslog, Transport::RelpTls);
}

#[test]
fn syslog_ng_udp_gets_every_field() {
    fields_arrive_intact(Server::SyslogNg, Transport::Udp);
}

#[test]
fn syslog_ng_tcp_gets_every_field() {
    fields_arrive_intact(Server::SyslogNg, Transport::Tcp);
}

#[test]
fn syslog_ng_tls_gets_every_field() {
    fields_arrive_intact(Server::SyslogNg, Transport::Tls);
}

/// This process's pid, uid and gid, and as the parameters of rill's SD
/// element: what syslog-read sees of the tests' local senders.
fn own_credentials() -> (u32, u32, u32, String) {
    let (pid, uid, gid) = (
        std::process::id(),
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    );
    (
        pid,
        uid,
        gid,
        format!(r#"pid="{pid}" uid="{uid}" gid="{gid}""#),
    )
}

/// Datagrams sent to a real syslog-read (its unix socket and UDP), piped
/// into a real cyclog, then exported: each server gets each message as it
/// was sent, with the sender's credentials or address.
fn through_syslog_read(server: Server) {
    let s = Scratch::new(&format!("through-syslog-read-{server:?}"));
    let creds = own_credentials().3;
    let wants = vec![
        (
            &b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 77 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\\]\"] \xef\xbb\xbfevent: line1\nline2"[..],
            Want {
                timestamp: Some("2003-10-11T22:14:15.003Z".into()),
                hostname: "mymachine.example.com".into(),
                procid: "77".into(),
                msgid: "ID47".into(),
                ..want(
                    165,
                    "evntslog",
                    &format!(r#"[exampleSDID@32473 iut="3" eventSource="App\]"][rill@32473 fmt="rfc5424" {creds}]"#),
                    "\u{feff}event: line1\nline2".as_bytes(),
                )
            },
        ),
        (
            b"<38>Nov  1 03:04:05 sshd[4242]: Accepted publickey for root\n",
            Want {
                procid: "4242".into(),
                ..want(
                    38,
                    "sshd",
                    &format!(r#"[rill@32473 fmt="rfc3164" time3164="11-01T03:04:05" {creds}]"#),
                    b"Accepted publickey for root",
                )
            },
        ),
        (
            b"no priority \x01 \"here\"\r\nsecond \xff",
            want(
                13,
                "syslog",
                &format!(r#"[rill@32473 fmt="none" nopri="1" {creds}]"#),
                b"no priority \x01 \"here\"\r\nsecond \xff",
            ),
        ),
    ];
    let udp = vec![(
        &b"<189>123: *Mar  1 18:46:11.123: %SYS-5-CONFIG_I: Configured"[..],
        Want {
            hostname: "127.0.0.1".into(),
            ..want(
                189,
                "%SYS-5-CONFIG_I",
                r#"[rill@32473 fmt="rfc3164" time3164="03-01T18:46:11.123" seq="123" unsynced="*" from="127.0.0.1:PORT"]"#,
                b"Configured",
            )
        },
    )];

    via_syslog_read(&s, server, wants, udp);
}

/// Sends `local` datagrams to a real syslog-read's unix socket and `udp`
/// ones to its UDP socket (`PORT` in a wanted SD is the sender's port),
/// pipes its lines into a real cyclog, exports them to `server` over TCP,
/// and checks that the server got each message as wanted; returns what it
/// got.
fn via_syslog_read(
    s: &Scratch,
    server: Server,
    local: Vec<(&[u8], Want)>,
    udp: Vec<(&[u8], Want)>,
) -> Vec<Fields> {
    let log = s.path("log");
    let sock = s.path("dev-log");
    let mut wants = local;
    let reader_err = s.path("syslog-read.stderr");
    let mut reader = Command::new(SYSLOG_READ)
        .args(["--unix", path_arg(&sock), "--udp", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&reader_err).expect("stderr"))
        .spawn()
        .expect("spawn syslog-read");
    let mut cyclog = Command::new(CYCLOG)
        .arg(&log)
        .stdin(reader.stdout.take().expect("stdout"))
        .spawn()
        .expect("spawn cyclog");
    let said = || fs::read_to_string(&reader_err).unwrap_or_default();
    assert!(
        wait_until(LONG, || said().matches("receiving on").count() == 2),
        "syslog-read not ready: {}",
        said()
    );
    let port = said()
        .lines()
        .find_map(|l| l.split("receiving on udp 127.0.0.1:").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse::<u16>().ok())
        .expect("the UDP port on stderr");
    let local = std::os::unix::net::UnixDatagram::unbound().expect("unix socket");
    for (datagram, _) in &wants {
        local.send_to(datagram, &sock).expect("send to syslog-read");
    }
    let net = std::net::UdpSocket::bind("127.0.0.1:0").expect("UDP socket");
    for (datagram, _) in &udp {
        net.send_to(datagram, ("127.0.0.1", port))
            .expect("send UDP");
    }
    let from = net.local_addr().expect("address").port().to_string();
    wants.extend(udp.into_iter().map(|(d, mut w)| {
        w.sd = w.sd.replace("PORT", &from);
        (d, w)
    }));
    wait_until(LONG, || {
        fs::read(log.join("current")).is_ok_and(|c| c.split(|&b| b == b'\n').count() > wants.len())
    });
    signal(&reader, Signal::TERM);
    assert!(wait_child(&mut reader, LONG).success(), "{}", said());
    assert!(wait_child(&mut cyclog, LONG).success());

    let lines = read_logdir(&log);
    assert_eq!(lines.len(), wants.len(), "{lines:#?}");
    let mut wants: Vec<Want> = wants.into_iter().map(|(_, w)| w).collect();
    for (line, w) in lines.iter().zip(&mut wants) {
        w.timestamp.get_or_insert_with(|| utc_of(&line.stamp));
    }
    let cursors = s.path("cursors");
    cursor_dir(&cursors, "syslog", &log);
    let receiver = Receiver::start(server, Transport::Tcp, &s.path("server"), None);
    let e = Export::to(&receiver, &cursors, &[], &s.path("export.stderr"));
    let got = receiver.wait_for(wants.len(), LONG);
    let err = e.stderr();
    assert_eq!(e.stop(), 0, "{err}");
    check_fields(server, &got, &wants);
    got
}

#[test]
fn rsyslog_gets_what_syslog_read_received() {
    through_syslog_read(Server::Rsyslog);
}

#[test]
fn syslog_ng_gets_what_syslog_read_received() {
    through_syslog_read(Server::SyslogNg);
}

/// Senders who write rill's own element, `[rill@32473 ...]`, over the
/// unix socket and UDP: each server gets rill's element with rill's values
/// only, each once, and the sender's element as it was sent but under the
/// first free claim ID, `rill-claimed@32473`, `rill-claimed2@32473` ...;
/// message text that looks like fields stays text.
fn forged_elements_stay_the_senders_claim(server: Server) {
    let s = Scratch::new(&format!("forged-{server:?}"));
    let (pid, uid, gid, creds) = own_credentials();
    let local: Vec<(&[u8], Want)> = vec![
        (
            br#"<13>1 - - forger 1 - [rill@32473 pid="1" uid="4242" gid="4242"] forged credentials"#,
            Want {
                procid: "1".into(),
                hostname: HOST.into(),
                ..want(
                    13,
                    "forger",
                    &format!(
                        r#"[rill-claimed@32473 pid="1" uid="4242" gid="4242"][rill@32473 fmt="rfc5424" {creds}]"#
                    ),
                    b"forged credentials",
                )
            },
        ),
        (
            // As a chain of rill relays would send it: an older claim, the
            // last relay's element, another element.
            br#"<13>1 - - relayed - - [rill-claimed@32473 uid="7"][rill@32473 uid="0" from="10.9.8.7:514"][x@32473 a="b"] relayed claims"#,
            want(
                13,
                "relayed",
                &format!(
                    r#"[rill-claimed@32473 uid="7"][rill-claimed2@32473 uid="0" from="10.9.8.7:514"][x@32473 a="b"][rill@32473 fmt="rfc5424" {creds}]"#
                ),
                b"relayed claims",
            ),
        ),
        (
            b"<13>Nov  1 03:04:05 texter: x\tuid=0 pid=1 gid=0 from=10.0.0.1:514",
            want(
                13,
                "texter",
                &format!(r#"[rill@32473 fmt="rfc3164" time3164="11-01T03:04:05" {creds}]"#),
                b"x\tuid=0 pid=1 gid=0 from=10.0.0.1:514",
            ),
        ),
    ];
    let udp: Vec<(&[u8], Want)> = vec![(
        br#"<13>1 - - remote - - [rill@32473 uid="0" from="10.0.0.1:514"] forged address"#,
        Want {
            hostname: "127.0.0.1".into(),
            ..want(
                13,
                "remote",
                r#"[rill-claimed@32473 uid="0" from="10.0.0.1:514"][rill@32473 fmt="rfc5424" from="127.0.0.1:PORT"]"#,
                b"forged address",
            )
        },
    )];
    let got = via_syslog_read(&s, server, local, udp);
    for g in &got {
        let sd = String::from_utf8_lossy(g.get("structured-data").expect("structured-data"));
        let elements = sd_elements(&sd);
        let ids: Vec<&str> = elements.iter().map(|(id, _)| id.as_str()).collect();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "{server:?}: an SD-ID twice: {sd}");
        let (_, ours) = elements
            .iter()
            .find(|(id, _)| id == "rill@32473")
            .unwrap_or_else(|| panic!("{server:?}: no rill@32473 in {sd}"));
        for key in ["pid", "uid", "gid", "from"] {
            let values: Vec<&String> = ours
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v)
                .collect();
            assert!(values.len() <= 1, "{server:?}: {key} twice in {sd}");
            let real = match key {
                "pid" => pid.to_string(),
                "uid" => uid.to_string(),
                "gid" => gid.to_string(),
                _ => "127.0.0.1:".to_string(),
            };
            assert!(
                values.iter().all(|v| v.starts_with(&real)),
                "{server:?}: {key} not rill's own in {sd}"
            );
        }
    }
}

/// STRUCTURED-DATA as (SD-ID, [(name, value)]), values unescaped; enough
/// for well-formed SD as the servers show it.
fn sd_elements(sd: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut elements = Vec::new();
    let mut chars = sd.chars().peekable();
    while chars.next() == Some('[') {
        let mut id = String::new();
        while let Some(&c) = chars.peek() {
            if c == ' ' || c == ']' {
                break;
            }
            id.push(c);
            chars.next();
        }
        let mut params = Vec::new();
        while chars.next() == Some(' ') {
            let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
            assert_eq!(chars.next(), Some('"'), "{sd}");
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            params.push((name, value));
        }
        elements.push((id, params));
    }
    elements
}

#[test]
fn rsyslog_gets_only_rills_own_values_under_its_sd_id() {
    forged_elements_stay_the_senders_claim(Server::Rsyslog);
}

#[test]
fn syslog_ng_gets_only_rills_own_values_under_its_sd_id() {
    forged_elements_stay_the_senders_claim(Server::SyslogNg);
}

/// The messages as received, in order.
fn messages(receiver: &Receiver) -> Vec<Vec<u8>> {
    messages_of(&receiver.received())
}

fn messages_of(got: &[Fields]) -> Vec<Vec<u8>> {
    got.iter()
        .map(|f| f.get("msg").cloned().unwrap_or_default())
        .collect()
}

#[test]
fn kill_9_mid_stream_resends_only_after_the_saved_cursor() {
    let s = Scratch::new("export-kill");
    let receiver = Receiver::start(Server::Rsyslog, Transport::Tcp, &s.path("server"), None);
    let log = s.path("log");
    let lines = numbered_lines(60_000);
    cyclog_write(&log, &["--max-file-size", "256k"], &lines);
    let cursors = s.path("cursors");
    cursor_dir(&cursors, "app", &log);
    let stamps: Vec<String> = read_logdir(&log).into_iter().map(|l| l.stamp).collect();
    let err = s.path("export.stderr");
    let mut resume = 0;
    for round in 0..4 {
        let before = receiver.count();
        let e = Export::to(&receiver, &cursors, &[], &err);
        if round < 3 {
            // Soon after it starts: the rest is in flight or not yet read.
            wait_until(LONG, || receiver.count() >= before + 1000);
            e.kill9();
            // What the kernel still had for the dead exporter lands first.
            receiver.settle();
        } else {
            // Done when the cursor is saved after the last line.
            let final_stamp = stamps.last().expect("lines").clone();
            wait_until(LONG, || {
                fs::read_to_string(cursors.join("app/last"))
                    .is_ok_and(|l| l.starts_with(&final_stamp))
            });
            assert_eq!(e.stop(), 0);
            receiver.settle();
        }
        let got = messages(&receiver);
        if resume < lines.len() && got.len() > before {
            assert_eq!(
                String::from_utf8_lossy(&got[before]),
                String::from_utf8_lossy(&lines[resume]),
                "round {round}: resumed just after the saved cursor"
            );
        }
        // No `last` yet (killed before the first save): from the start.
        resume = saved_cursor(&cursors, &log).0;
    }
    assert_eq!(resume, lines.len(), "saved after the last line");
    let got = messages(&receiver);
    let repeated = check_resends(&got, &lines);
    assert!(repeated > 0, "three kill -9s mid-stream repeat something");
    // Each kill sends again what was not confirmed: within the window.
    let mut seen = std::collections::HashSet::new();
    let again: usize = got
        .iter()
        .filter(|m| !seen.insert(m.as_slice()))
        .map(|m| framed_len(m))
        .sum();
    assert!(again <= 3 * DUPLICATE_BOUND, "{again} bytes sent again");
}

fn restart_loses_nothing(transport: Transport) {
    let s = Scratch::new(&format!("export-restart-{transport:?}"));
    let certs = (transport == Transport::Tls).then(|| Certs::make(&s.path("certs")));
    let mut receiver = Receiver::start(
        Server::Rsyslog,
        transport,
        &s.path("server"),
        certs.as_ref(),
    );
    let log = s.path("log");
    let lines = numbered_lines(50_000);
    let cursors = s.path("cursors");
    cyclog_write(&log, &[], &lines[..2000]);
    cursor_dir(&cursors, "app", &log);
    let ca = certs.as_ref().map(|c| c.ca.to_string_lossy().into_owned());
    let mut extra = vec!["--max-backoff", "1s"];
    if let Some(ca) = &ca {
        extra.extend(["--ca", ca.as_str()]);
    }
    let e = Export::to(&receiver, &cursors, &extra, &s.path("export.stderr"));
    receiver.wait_for(2000, LONG);
    // Stopped once all was acknowledged and quiet for longer than the
    // exporter waits (2 s) to know the server has read it all: none of
    // these lines may come again. Logging goes on while it is down.
    std::thread::sleep(Duration::from_millis(3500));
    receiver.stop();
    cyclog_write(&log, &[], &lines[2000..4000]);
    std::thread::sleep(Duration::from_millis(1500));
    receiver.restart();
    // Stopped in the middle of a stream, with lines its kernel took but
    // it never read.
    let before = receiver.count();
    cyclog_write(&log, &[], &lines[4000..]);
    wait_until(LONG, || receiver.count() >= before + 1000);
    receiver.stop();
    std::thread::sleep(Duration::from_millis(500));
    receiver.restart();
    let final_stamp = read_logdir(&log).last().expect("lines").stamp.clone();
    wait_until(LONG, || {
        fs::read_to_string(cursors.join("app/last")).is_ok_and(|l| l.starts_with(&final_stamp))
    });
    receiver.settle();
    let err = e.stderr();
    assert_eq!(e.stop(), 0, "{err}");
    let got = messages(&receiver);
    check_resends(&got, &lines);
    // Stopped mid-stream, the server may have lost up to the whole window
    // (8 MiB, more than these lines), so any later line may come again.
    let mut times = std::collections::HashMap::new();
    for g in &got {
        *times.entry(g.as_slice()).or_insert(0) += 1;
    }
    for line in &lines[..2000] {
        assert_eq!(
            times[line.as_slice()],
            1,
            "{}",
            String::from_utf8_lossy(line)
        );
    }
    assert!(err.contains("trying again"), "{err}");
}

#[test]
fn a_tcp_server_restarted_loses_nothing() {
    restart_loses_nothing(Transport::Tcp);
}

#[test]
fn a_tls_server_restarted_loses_nothing() {
    restart_loses_nothing(Transport::Tls);
}

/// RFC 6587 frames from a stream: each message's MSG, as far as whole.
struct Frames {
    buf: Vec<u8>,
    msgs: Vec<Vec<u8>>,
}

impl Frames {
    fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        loop {
            let Some(sp) = self.buf.iter().position(|&b| b == b' ') else {
                return;
            };
            let len: usize = std::str::from_utf8(&self.buf[..sp])
                .expect("length")
                .parse()
                .expect("length");
            if self.buf.len() < sp + 1 + len {
                return;
            }
            let message = self.buf[sp + 1..sp + 1 + len].to_vec();
            // <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG
            let msg = message.splitn(8, |&b| b == b' ').nth(7).unwrap_or_default();
            self.msgs.push(msg.to_vec());
            self.buf.drain(..sp + 1 + len);
        }
    }
}

#[test]
fn a_server_closing_with_unread_data_loses_nothing() {
    use std::io::Read;
    let s = Scratch::new("export-unread");
    let log = s.path("log");
    let lines = numbered_lines(100_000);
    cyclog_write(&log, &["--max-file-size", "1M"], &lines);
    let cursors = s.path("cursors");
    cursor_dir(&cursors, "app", &log);
    let server = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let url = format!(
        "tcp://127.0.0.1:{}",
        server.local_addr().expect("addr").port()
    );
    let e = Export::start(&cursors, &["--to", &url], &s.path("export.stderr"));
    let mut frames = Frames {
        buf: Vec::new(),
        msgs: Vec::new(),
    };
    // A server that reads a little, then stalls while its kernel takes
    // (and acknowledges) more, then goes away without reading it.
    let (mut first, _) = server.accept().expect("accept");
    let mut buf = vec![0u8; 64 * 1024];
    while frames.msgs.len() < 5000 {
        let n = first.read(&mut buf).expect("read");
        assert!(n > 0, "closed early");
        frames.feed(&buf[..n]);
    }
    std::thread::sleep(Duration::from_millis(500));
    drop(first);
    frames.buf.clear();
    let (mut second, _) = server.accept().expect("accept again");
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut distinct = std::collections::HashSet::new();
    while distinct.len() < lines.len() {
        let n = second.read(&mut buf).unwrap_or_else(|e| {
            let missing = lines.iter().position(|l| !distinct.contains(l));
            panic!(
                "{e}: {} lines, the first missing: {missing:?}",
                distinct.len()
            )
        });
        assert!(n > 0, "closed early");
        frames.feed(&buf[..n]);
        distinct.extend(frames.msgs.drain(..));
    }
    let err = e.stderr();
    assert_eq!(e.stop(), 0, "{err}");
    assert!(err.contains("link lost"), "{err}");
}

#[test]
fn rotation_and_shared_stamps_during_export() {
    let s = Scratch::new("export-rotate");
    let receiver = Receiver::start(Server::Rsyslog, Transport::Tcp, &s.path("server"), None);
    let cursors = s.path("cursors");
    // One directory rotating fast while it is exported.
    let busy = s.path("busy");
    let lines = numbered_lines(20_000);
    cyclog_write(&busy, &["--max-file-size", "4096"], &lines[..100]);
    cursor_dir(&cursors, "busy", &busy);
    // Another whose writer gives lines one stamp (as multilog can).
    let same = s.path("same");
    fs::create_dir_all(&same).expect("same");
    let archive = same.join(format!("@{:016x}{:08x}.s", (1u64 << 62) + 1_700_000_006, 0));
    let first = [
        stamped(5, 0, "s1"),
        stamped(5, 0, "s2"),
        stamped(5, 0, "s3"),
    ];
    fs::write(&archive, first.join("\n") + "\n").expect("archive");
    fs::write(
        same.join("current"),
        [stamped(7, 0, "t1"), stamped(7, 0, "t2")].join("\n") + "\n",
    )
    .expect("current");
    cursor_dir(&cursors, "same", &same);
    let err = s.path("export.stderr");
    let e = Export::to(&receiver, &cursors, &[], &err);
    for chunk in lines[100..].chunks(1000) {
        cyclog_write(&busy, &["--max-file-size", "4096"], chunk);
    }
    wait_until(LONG, || receiver.count() >= lines.len() + 5);
    assert_eq!(
        e.stop(),
        0,
        "{}",
        fs::read_to_string(&err).unwrap_or_default()
    );
    // More lines with the last stamp: not skipped on the next run.
    let current = [
        stamped(7, 0, "t1"),
        stamped(7, 0, "t2"),
        stamped(7, 0, "t3"),
        stamped(8, 0, "u1"),
    ];
    fs::write(same.join("current"), current.join("\n") + "\n").expect("current");
    let e = Export::to(&receiver, &cursors, &[], &err);
    wait_until(LONG, || receiver.count() >= lines.len() + 7);
    assert_eq!(e.stop(), 0);
    let got = receiver.received();
    let by_app = |app: &str| -> Vec<Vec<u8>> {
        got.iter()
            .filter(|f| f.get("app-name").map(Vec::as_slice) == Some(app.as_bytes()))
            .map(|f| f.get("msg").cloned().unwrap_or_default())
            .collect()
    };
    assert_same_lines(
        &by_app("busy"),
        &lines,
        "the busy directory, once each, in order",
    );
    let want: Vec<Vec<u8>> = ["s1", "s2", "s3", "t1", "t2", "t3", "u1"]
        .iter()
        .map(|t| t.as_bytes().to_vec())
        .collect();
    assert_same_lines(&by_app("same"), &want, "lines sharing stamps, once each");
    assert!(archives(&busy).len() > 50, "it rotated");
}

#[test]
fn a_nosh_cursor_directory_is_exported_from_its_position() {
    let s = Scratch::new("export-nosh");
    let receiver = Receiver::start(Server::Rsyslog, Transport::Udp, &s.path("server"), None);
    let log = s.path("log");
    fs::create_dir_all(&log).expect("log");
    let lines: Vec<String> = (1..=5).map(|i| stamped(i, 0, &format!("n{i}"))).collect();
    fs::write(log.join("current"), lines.join("\n") + "\n").expect("current");
    let cursors = s.path("cursors");
    let dir = cursor_dir(&cursors, "nosh", &log);
    // As nosh's export-to-rsyslog left it: the stamp of the last line sent.
    fs::write(dir.join("last"), format!("{}\n", &lines[1][1..25])).expect("last");
    let e = Export::to(&receiver, &cursors, &[], &s.path("export.stderr"));
    wait_until(LONG, || receiver.count() >= 3);
    assert_eq!(e.stop(), 0);
    assert_eq!(
        messages(&receiver),
        [b"n3".to_vec(), b"n4".to_vec(), b"n5".to_vec()]
    );
    let last = fs::read(dir.join("last")).expect("last");
    assert_eq!(
        &last[..25],
        format!("{}\n", &lines[4][1..25]).as_bytes(),
        "nosh reads it"
    );
}

#[test]
fn without_to_it_writes_to_descriptor_7() {
    let s = Scratch::new("export-fd7");
    let log = s.path("log");
    cyclog_write(&log, &[], &[b"via ucspi".to_vec(), b"second".to_vec()]);
    let cursors = s.path("cursors");
    cursor_dir(&cursors, "ucspi", &log);
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    let mut command = Command::new(EXPORT);
    command.args(["--hostname", HOST]).arg(&cursors);
    let theirs_fd = std::os::fd::OwnedFd::from(theirs);
    // SAFETY: in the child, between fork and exec, only dup2 is called.
    unsafe {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let raw = theirs_fd.as_raw_fd();
        command.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.stderr(Stdio::null()).spawn().expect("spawn");
    drop(theirs_fd);
    ours.set_read_timeout(Some(LONG)).expect("timeout");
    let mut got = Vec::new();
    let mut reader = ours;
    while !got.ends_with(b"second") {
        let mut buf = [0u8; 4096];
        let n = std::io::Read::read(&mut reader, &mut buf).expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    signal(&child, Signal::TERM);
    assert_eq!(wait_child(&mut child, LONG).code(), Some(0));
    let text = String::from_utf8(got).expect("UTF-8");
    // Octet counting, RFC 5424, the cursor's name as APP-NAME.
    let (len, rest) = text.split_once(' ').expect("frame");
    let first = &rest[..len.parse::<usize>().expect("length")];
    assert!(first.starts_with("<29>1 "), "{first}");
    assert!(
        first.ends_with(" testhost ucspi - - - via ucspi"),
        "{first}"
    );
}

#[test]
fn a_server_with_the_wrong_name_gets_nothing() {
    let s = Scratch::new("export-tls-name");
    let certs = Certs::make(&s.path("certs"));
    let receiver = Receiver::start(
        Server::Rsyslog,
        Transport::Tls,
        &s.path("server"),
        Some(&certs),
    );
    let log = s.path("log");
    cyclog_write(&log, &[], &[b"secret".to_vec()]);
    let cursors = s.path("cursors");
    cursor_dir(&cursors, "app", &log);
    let ca = certs.ca.to_string_lossy().into_owned();
    let e = Export::to(
        &receiver,
        &cursors,
        &["--ca", &ca, "--server-name", "elsewhere.example"],
        &s.path("export.stderr"),
    );
    assert!(
        wait_until(LONG, || e.stderr().contains("TLS")),
        "{}",
        e.stderr()
    );
    let err = e.stderr();
    assert_eq!(e.stop(), 0);
    assert_eq!(receiver.count(), 0, "{err}");
    let last = fs::read_to_string(cursors.join("app/last")).unwrap_or_default();
    assert!(
        !last.contains("rill after"),
        "nothing delivered, nothing saved: {last}"
    );
}

/// A server demanding a client certificate refuses the session only
/// after TLS 1.3 let the client send: nothing it refused counts as
/// delivered, and the run with a certificate sends all of it.
#[test]
fn a_tls_server_refusing_a_client_without_certificate_then_gets_everything() {
    let s = Scratch::new("export-tls-client");
    let certs = Certs::make(&s.path("certs"));
    let receiver = Receiver::start_with(
        Server::Rsyslog,
        Transport::Tls,
        &s.path("server"),
        Some(&certs),
        true,
    );
    let log = s.path("log");
    let lines = numbered_lines(20_000);
    cyclog_write(&log, &["--max-file-size", "1M"], &lines);
    let cursors = s.path("cursors");
    cursor_dir(&cursors, "app", &log);
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let (ca, cert, key) = (
        path(&certs.ca),
        path(&certs.client_cert),
        path(&certs.client_key),
    );
    // Without a certificate: refused, again and again, nothing delivered.
    let err = s.path("export.stderr");
    let e = Export::to(&receiver, &cursors, &["--ca", &ca], &err);
    assert!(
        wait_until(LONG, || e.stderr().matches("link lost").count() >= 2),
        "{}",
        e.stderr()
    );
    assert_eq!(e.stop(), 0);
    assert_eq!(receiver.count(), 0);
    // With one: every line.
    let args = ["--ca", ca.as_str(), "--cert", &cert, "--key", &key];
    let e = Export::to(&receiver, &cursors, &args, &err);
    receiver.wait_for(lines.len(), LONG);
    let text = e.stderr();
    assert_eq!(e.stop(), 0, "{text}");
    check_resends(&messages(&receiver), &lines);
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["--to", "http://x", "c"][..],
        &["--to", "tcp://x:1"],
        &["--to", "tcp://x:1", "--ca", "ca.pem", "c"],
        &["--priority", "bogus.level", "c"],
        &["--sd-id", "has space", "c"],
        &["--bogus"],
    ] {
        let out = Command::new(EXPORT).args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(100), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("export-to-remote: fatal: "));
    }
}

/// Unread bytes in a socket's receive queue (SIOCINQ).
fn unread(socket: &std::net::TcpStream) -> usize {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCINQ (FIONREAD) writes one int through the pointer.
    let r = unsafe { libc::ioctl(socket.as_raw_fd(), libc::FIONREAD, &mut n) };
    if r < 0 { 0 } else { n as usize }
}

/// Reads frames from `socket` until every line of `lines` came; the
/// messages in order of arrival.
fn read_all_lines(socket: &mut impl std::io::Read, lines: &[Vec<u8>], got: &mut Vec<Vec<u8>>) {
    let mut frames = Frames {
        buf: Vec::new(),
        msgs: Vec::new(),
    };
    let mut distinct: std::collections::HashSet<Vec<u8>> = got.iter().cloned().collect();
    let mut buf = vec![0u8; 64 * 1024];
    while distinct.len() < lines.len() {
        let n = socket.read(&mut buf).unwrap_or_else(|e| {
            let missing = lines.iter().position(|l| !distinct.contains(l));
            panic!(
                "{e}: {} lines, the first missing: {missing:?}",
                distinct.len()
            )
        });
        assert!(n > 0, "closed early");
        frames.feed(&buf[..n]);
        for m in frames.msgs.drain(..) {
            distinct.insert(m.clone());
            got.push(m);
        }
    }
}

/// A server whose kernel acknowledged lines its program never read, then
/// gone while export-to-remote stops (TERM) or dies (kill -9): the saved
/// cursor must not have passed them, so the next run sends them.
#[test]
fn stopping_while_the_server_has_unread_lines_loses_nothing() {
    use std::io::Read;
    for kill in [false, true] {
        let s = Scratch::new(&format!("export-unread-stop-{kill}"));
        let log = s.path("log");
        let lines = numbered_lines(100_000);
        cyclog_write(&log, &["--max-file-size", "1M"], &lines);
        let cursors = s.path("cursors");
        cursor_dir(&cursors, "app", &log);
        let server = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let url = format!(
            "tcp://127.0.0.1:{}",
            server.local_addr().expect("addr").port()
        );
        let err = s.path("export.stderr");
        let e = Export::start(&cursors, &["--to", &url], &err);
        let mut frames = Frames {
            buf: Vec::new(),
            msgs: Vec::new(),
        };
        let (mut first, _) = server.accept().expect("accept");
        let mut buf = vec![0u8; 64 * 1024];
        while frames.msgs.len() < 5000 {
            let n = first.read(&mut buf).expect("read");
            assert!(n > 0, "closed early");
            frames.feed(&buf[..n]);
        }
        // Its kernel takes (and acknowledges) more; its program reads none.
        // (However little: a loaded machine's TCP may keep windows small.)
        assert!(
            wait_until(LONG, || unread(&first) > 0),
            "kill {kill}: {}",
            fs::read_to_string(&err).unwrap_or_default()
        );
        if kill {
            // Long enough for acknowledged marks to be saved, were they.
            std::thread::sleep(Duration::from_millis(300));
            e.kill9();
        } else {
            assert_eq!(
                e.stop(),
                0,
                "{}",
                fs::read_to_string(&err).unwrap_or_default()
            );
        }
        drop(first);
        let e = Export::start(&cursors, &["--to", &url], &err);
        let (mut second, _) = server.accept().expect("accept again");
        second
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut got = std::mem::take(&mut frames.msgs);
        read_all_lines(&mut second, &lines, &mut got);
        let err = e.stderr();
        assert_eq!(e.stop(), 0, "{err}");
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Order {
    /// The server stops (TERM), then export-to-remote does (TERM).
    ServerThenTerm,
    /// The server stops, then export-to-remote is killed (-9).
    ServerThenKill,
    /// export-to-remote stops (TERM) while the server runs, then the server.
    TermThenServer,
    /// export-to-remote is killed while the server runs, then the server.
    KillThenServer,
}

/// Most bytes of stream (messages as framed, before any encryption) sent
/// again after one break: the resend window (8 MiB acknowledged), plus
/// what can be in flight unacknowledged (a socket send buffer, 4 MiB at
/// most by default, and the exporter's own 256 KiB plus TLS records).
const DUPLICATE_BOUND: usize = (8 << 20) + (4 << 20) + (512 << 10);

/// The bytes a message of these tests takes on the stream, which is what
/// the resend window counts: RFC 6587 octet counting of
/// `<29>1 TIMESTAMP HOST app - - - MSG`, the timestamp always 27 bytes
/// (UTC, microseconds, `Z`).
fn framed_len(msg: &[u8]) -> usize {
    let body = "<29>1 ".len() + 27 + 1 + HOST.len() + " app - - - ".len() + msg.len();
    body.to_string().len() + 1 + body
}

/// The index of the first line a cursor's `last` says to send, in a log
/// directory whose stamps, in order, are `stamps`. Read independently of
/// the library: nosh's first line means every line stamped then or before
/// is done; ours, `rill after STAMP N end|mid` with the same stamp, means
/// after the N-th line stamped STAMP. No `last`, or an empty one: the start.
fn saved_resume(last: &[u8], stamps: &[String]) -> usize {
    let text = String::from_utf8_lossy(last);
    let mut rows = text.lines();
    let Some(nosh) = rows.next() else { return 0 };
    let first = stamps.partition_point(|s| s.as_str() < nosh);
    let words: Vec<&str> = rows.next().unwrap_or("").split_whitespace().collect();
    match words[..] {
        ["rill", "after", stamp, same, "end" | "mid"] if stamp == nosh => {
            first + same.parse::<usize>().expect("rill after: a count of lines")
        }
        _ => stamps.partition_point(|s| s.as_str() <= nosh),
    }
}

/// The cursor `app`'s saved resume point in `log`, and when `last` was
/// written (its modification time), if it was.
fn saved_cursor(cursors: &Path, log: &Path) -> (usize, Option<std::time::SystemTime>) {
    let path = cursors.join("app/last");
    let last = fs::read(&path).unwrap_or_default();
    let written = fs::metadata(&path).and_then(|m| m.modified()).ok();
    let stamps: Vec<String> = read_logdir(log).into_iter().map(|l| l.stamp).collect();
    (saved_resume(&last, &stamps), written)
}

/// The server's count of messages, noted with the time it was known by:
/// it had at least that many then.
fn sample(samples: &mut Vec<(std::time::SystemTime, usize)>, receiver: &Receiver) -> usize {
    let n = receiver.count();
    samples.push((std::time::SystemTime::now(), n));
    n
}

/// One run of export-to-remote, ended by a break.
struct Break {
    order: Order,
    /// The server's count when the run began.
    began: usize,
    /// The first line the saved cursor sends again.
    resume: usize,
    /// What the server had, at least, when that cursor was written.
    at_save: usize,
    /// How long before export-to-remote ended the cursor was written
    /// (`None`: never).
    save_age: Option<Duration>,
}

/// export-to-remote stopped or killed around a restart of rsyslog, in
/// every order, mid-stream: every line arrives, and each next run starts
/// exactly after the saved cursor. A clean stop with the server up is
/// confirmed (nothing sent twice); a stop with the server gone saves what
/// was confirmed, at most `DUPLICATE_BOUND` behind what the server had.
///
/// A kill -9 also loses what was confirmed but not yet written to `last`
/// (up to 200 ms and a disk sync, longer on a loaded machine): the lines
/// the server got after the cursor was written come again too. So for a
/// kill the bound is checked where it holds whatever the load: when `last`
/// was written, it was at most `DUPLICATE_BOUND` behind what the server
/// had then (its count sampled at or before `last`'s modification time;
/// rsyslog writes its output in batches, so that count may be older, which
/// only loosens the check). Each break's report says what was resent.
fn stops_around_server_restarts_lose_nothing(transport: Transport) {
    let s = Scratch::new(&format!("export-orders-{transport:?}"));
    let certs = (transport == Transport::Tls).then(|| Certs::make(&s.path("certs")));
    let mut receiver = Receiver::start(
        Server::Rsyslog,
        transport,
        &s.path("server"),
        certs.as_ref(),
    );
    let orders = [
        Order::ServerThenTerm,
        Order::TermThenServer,
        Order::ServerThenKill,
        Order::KillThenServer,
    ];
    let per_round = 30_000;
    let lines = numbered_lines(per_round * (orders.len() + 1));
    let log = s.path("log");
    let cursors = s.path("cursors");
    cyclog_write(&log, &["--max-file-size", "1M"], &lines[..per_round]);
    cursor_dir(&cursors, "app", &log);
    let ca = certs.as_ref().map(|c| c.ca.to_string_lossy().into_owned());
    let mut extra = vec!["--max-backoff", "1s"];
    if let Some(ca) = &ca {
        extra.extend(["--ca", ca.as_str()]);
    }
    let err = s.path("export.stderr");
    let mut samples = Vec::new();
    let mut breaks = Vec::new();
    for (round, order) in orders.iter().enumerate() {
        let before = sample(&mut samples, &receiver);
        let e = Export::to(&receiver, &cursors, &extra, &err);
        // Logging goes on; stopped mid-stream.
        cyclog_write(
            &log,
            &["--max-file-size", "1M"],
            &lines[per_round * (round + 1)..per_round * (round + 2)],
        );
        wait_until(LONG, || sample(&mut samples, &receiver) >= before + 2000);
        // When export-to-remote ended.
        let ended = match order {
            Order::ServerThenTerm => {
                receiver.stop();
                assert_eq!(
                    e.stop(),
                    0,
                    "{}",
                    fs::read_to_string(&err).unwrap_or_default()
                );
                std::time::SystemTime::now()
            }
            Order::ServerThenKill => {
                receiver.stop();
                sample(&mut samples, &receiver);
                e.kill9();
                std::time::SystemTime::now()
            }
            Order::TermThenServer => {
                assert_eq!(
                    e.stop(),
                    0,
                    "{}",
                    fs::read_to_string(&err).unwrap_or_default()
                );
                let ended = std::time::SystemTime::now();
                receiver.settle();
                receiver.stop();
                ended
            }
            Order::KillThenServer => {
                e.kill9();
                let ended = std::time::SystemTime::now();
                receiver.settle();
                receiver.stop();
                ended
            }
        };
        let (resume, written) = saved_cursor(&cursors, &log);
        let at_save = samples
            .iter()
            .filter(|(t, _)| written.is_some_and(|w| *t <= w))
            .map(|&(_, n)| n)
            .max()
            .unwrap_or(0);
        breaks.push(Break {
            order: *order,
            began: before,
            resume,
            at_save,
            save_age: written.map(|w| ended.duration_since(w).unwrap_or_default()),
        });
        receiver.restart();
    }
    let last_began = receiver.count();
    let e = Export::to(&receiver, &cursors, &extra, &err);
    let all: std::collections::HashSet<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let complete = wait_until(Duration::from_secs(120), || {
        let got = messages(&receiver);
        got.iter()
            .map(Vec::as_slice)
            .collect::<std::collections::HashSet<_>>()
            .is_superset(&all)
    });
    let text = e.stderr();
    assert_eq!(e.stop(), 0, "{text}");
    receiver.settle();
    let got = messages(&receiver);
    assert!(complete, "lines missing: {text}");
    let index: std::collections::HashMap<&[u8], usize> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_slice(), i))
        .collect();
    // The lines at or after `from` among `got`, once each, in stream bytes.
    let bytes_from = |got: &[Vec<u8>], from: usize| -> usize {
        let mut seen = std::collections::HashSet::new();
        got.iter()
            .map(|m| index[m.as_slice()])
            .filter(|&i| i >= from && seen.insert(i))
            .map(|i| framed_len(&lines[i]))
            .sum()
    };
    for (n, b) in breaks.iter().enumerate() {
        let next = breaks.get(n + 1).map_or(last_began, |b| b.began);
        let at_save = b.at_save.clamp(b.began, next);
        // What this run delivered: after the saved cursor, sent again.
        let again = bytes_from(&got[b.began..next], b.resume);
        let behind = bytes_from(&got[b.began..at_save], b.resume);
        let reached = |end: usize| got[b.began..end].iter().map(|m| index[m.as_slice()]).max();
        let report = format!(
            "round {n}, {:?}: saved cursor at line {}, written {:?} before \
             export-to-remote ended, when the server had {} messages (through line {:?}); \
             at the break it had {next} (through line {:?}); \
             {again} bytes after the cursor sent again, {behind} of them before it was written",
            b.order,
            b.resume,
            b.save_age,
            at_save,
            reached(at_save),
            reached(next),
        );
        eprintln!("{report}");
        if let Some(first) = got.get(next) {
            assert_eq!(
                String::from_utf8_lossy(first),
                String::from_utf8_lossy(&lines[b.resume]),
                "the next run resumes just after the saved cursor: {report}"
            );
        }
        match b.order {
            Order::TermThenServer => {
                assert_eq!(again, 0, "a confirmed stop sends nothing again: {report}")
            }
            Order::ServerThenTerm => {
                assert!(again <= DUPLICATE_BOUND, "over the window: {report}")
            }
            Order::ServerThenKill | Order::KillThenServer => assert!(
                behind <= DUPLICATE_BOUND,
                "the cursor was saved over the window behind the server: {report}"
            ),
        }
    }
    check_resends(&got, &lines);
}

#[test]
fn tcp_stops_and_kills_around_server_restarts_lose_nothing() {
    stops_around_server_restarts_lose_nothing(Transport::Tcp);
}

#[test]
fn tls_stops_and_kills_around_server_restarts_lose_nothing() {
    stops_around_server_restarts_lose_nothing(Transport::Tls);
}

/// A TLS 1.3 server, as rustls makes one, that demands a client
/// certificate from the test CA.
fn mtls_server_config(certs: &Certs) -> std::sync::Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let pems = |p: &Path| -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_file_iter(p)
            .expect("PEM")
            .collect::<Result<_, _>>()
            .expect("certificates")
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in pems(&certs.ca) {
        roots.add(ca).expect("CA");
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("verifier");
    let key = PrivateKeyDer::from_pem_file(&certs.key).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_client_cert_verifier(verifier)
        .with_single_cert(pems(&certs.cert), key)
        .expect("server configuration");
    Arc::new(config)
}

/// A server demanding a client certificate learns that the client has
/// none only when it reads the client's last handshake flight, which
/// TLS 1.3 lets the client follow with its messages at once: the server's
/// kernel acknowledges them, then the server refuses the session. None
/// of it was delivered, so the run with a certificate sends all of it.
#[test]
fn lines_sent_before_a_tls_refusal_are_sent_again_with_a_certificate() {
    use std::io::Write;
    let s = Scratch::new("export-mtls-refused");
    let certs = Certs::make(&s.path("certs"));
    let config = mtls_server_config(&certs);
    let log = s.path("log");
    let lines = numbered_lines(50);
    cyclog_write(&log, &[], &lines);
    let cursors = s.path("cursors");
    cursor_dir(&cursors, "app", &log);
    let server = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let url = format!(
        "tls://127.0.0.1:{}",
        server.local_addr().expect("addr").port()
    );
    let ca = certs.ca.to_string_lossy().into_owned();
    let err = s.path("export.stderr");
    let e = Export::start(&cursors, &["--to", &url, "--ca", &ca], &err);
    let (mut sock, _) = server.accept().expect("accept");
    let mut conn = rustls::ServerConnection::new(config.clone()).expect("session");
    // The client's hello, and the server's flight in answer.
    while !conn.wants_write() {
        conn.read_tls(&mut sock).expect("read the hello");
        conn.process_new_packets().expect("the hello");
    }
    while conn.wants_write() {
        conn.write_tls(&mut sock).expect("write the flight");
    }
    sock.flush().expect("flush");
    // The client's flight and its messages, acknowledged, not yet read;
    // time for an exporter that took that as delivery to save it.
    assert!(wait_until(LONG, || unread(&sock) > 2000));
    wait_until(Duration::from_secs(3), || {
        fs::read_to_string(cursors.join("app/last")).is_ok_and(|l| !l.is_empty())
    });
    // Then refused: the alert, and the connection closed.
    conn.read_tls(&mut sock).expect("read the flight");
    assert!(
        conn.process_new_packets().is_err(),
        "no certificate, refused"
    );
    while conn.wants_write() {
        let _ = conn.write_tls(&mut sock);
    }
    drop(sock);
    assert!(
        wait_until(LONG, || e.stderr().contains("link lost")),
        "{}",
        e.stderr()
    );
    assert_eq!(
        e.stop(),
        0,
        "{}",
        fs::read_to_string(&err).unwrap_or_default()
    );
    // With a certificate: every line (connections of the first run that
    // were still waiting are refused by their end).
    let (cert, key) = (
        certs.client_cert.to_string_lossy().into_owned(),
        certs.client_key.to_string_lossy().into_owned(),
    );
    let args = ["--to", &url, "--ca", &ca, "--cert", &cert, "--key", &key];
    let e = Export::start(&cursors, &args, &err);
    let mut got = Vec::new();
    for _ in 0..5 {
        let (sock, _) = server.accept().expect("accept");
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let conn = rustls::ServerConnection::new(config.clone()).expect("session");
        let mut tls = rustls::StreamOwned::new(conn, sock);
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            read_all_lines(&mut tls, &lines, &mut got)
        }))
        .is_ok()
        {
            break;
        }
    }
    let text = e.stderr();
    assert_eq!(e.stop(), 0, "{text}");
    let distinct: std::collections::HashSet<&Vec<u8>> = got.iter().collect();
    assert_eq!(distinct.len(), lines.len(), "{text}");
}

/// An exporter left behind while its log directory rotates through `gzip`
/// sends every line once, in order, the cursor inside an archive that was
/// compressed meanwhile.
#[test]
fn an_exporter_lagging_behind_gzip_rotations_sends_every_line_once_in_order() {
    require("gzip");
    let s = Scratch::new("export-gzip");
    let receiver = Receiver::start(Server::Rsyslog, Transport::Tcp, &s.path("server"), None);
    let log = s.path("log");
    let cursors = s.path("cursors");
    let args = ["--max-file-size", "8192", "--processor", "gzip"];
    let lines = numbered_lines(4000);
    // All in `current` (no rotation yet, however loaded the machine).
    cyclog_write(&log, &[], &lines[..1000]);
    // The cursor inside `current`, after its middle line.
    let current = file_lines(&log.join("current"));
    let mid = &current[current.len() / 2];
    let first = lines.iter().position(|l| mid.ends_with(l)).expect("a line") + 1;
    cursor_dir(&cursors, "app", &log);
    fs::write(
        cursors.join("app/last"),
        format!("{}\n", String::from_utf8_lossy(&mid[1..25])),
    )
    .expect("last");
    // Left behind: that current and several after it rotated and gzipped.
    for part in lines[1000..3000].chunks(500) {
        cyclog_write(&log, &args, part);
    }
    let gzipped = || {
        archives(&log)
            .iter()
            .filter(|a| fs::read(log.join(a)).is_ok_and(|b| b.starts_with(&[0x1f, 0x8b])))
            .count()
    };
    // Every archive gzip'd, the one the cursor is in among them.
    let all = archives(&log).len();
    assert!(all >= 2 && gzipped() == all, "{:?}", archives(&log));
    let err = s.path("export.stderr");
    let e = Export::to(&receiver, &cursors, &[], &err);
    wait_until(LONG, || receiver.count() >= 3000 - first);
    assert_eq!(e.stop(), 0);
    // Stopped at the end of `current`; it and more are gzipped meanwhile.
    for part in lines[3000..].chunks(250) {
        cyclog_write(&log, &args, part);
    }
    let e = Export::to(&receiver, &cursors, &[], &err);
    wait_until(LONG, || receiver.count() >= 4000 - first);
    assert_eq!(e.stop(), 0);
    receiver.settle();
    let err = fs::read_to_string(&err).unwrap_or_default();
    assert!(!err.contains("warning"), "{err}");
    let got: Vec<Vec<u8>> = receiver
        .received()
        .iter()
        .map(|f| f.get("msg").cloned().unwrap_or_default())
        .collect();
    assert_same_lines(&got, &lines[first..], "sent");
}

/// The most messages export-to-remote leaves unanswered (`--relp-window`,
/// smaller than the default to keep the bound tight): what a kill of
/// either side may make it send again.
const RELP_WINDOW: usize = 128;

/// Lines answered but not yet in the saved cursor when export-to-remote
/// is killed: a save waits up to 200 ms and a disk sync, some 2,000 lines
/// at a debug build's pace here; more for a slow sync on a loaded machine.
const UNSAVED: usize = 5_000;

/// Waits until the server wrote every one of `lines` (at least once).
fn wait_for_all(receiver: &Receiver, lines: &[Vec<u8>], limit: Duration) -> bool {
    let want: std::collections::HashSet<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    wait_until(limit, || {
        receiver.count() >= lines.len() && {
            let got = messages(receiver);
            let got: std::collections::HashSet<&[u8]> = got.iter().map(Vec::as_slice).collect();
            got.is_superset(&want)
        }
    })
}

/// export-to-remote to a RELP server on `port`, reconnecting within a
/// second.
fn export_relp(port: u16, cursors: &Path, err: &Path) -> Export {
    let url = format!("relp://127.0.0.1:{port}");
    let window = RELP_WINDOW.to_string();
    let args = [
        "--to",
        &url,
        "--hostname",
        HOST,
        "--max-backoff",
        "1s",
        "--relp-window",
        &window,
    ];
    Export::start(cursors, &args, err)
}

/// rsyslog with imrelp.
fn imrelp(s: &Scratch) -> Receiver {
    Receiver::start(Server::Rsyslog, Transport::Relp, &s.path("server"), None)
}

#[test]
fn export_to_imrelp_killed_and_restarted_loses_nothing_and_resends_at_most_a_window_each_time() {
    let s = Scratch::new("relp-export-restart");
    let mut server = imrelp(&s);
    let lines = numbered_lines(20_000);
    let (log, cursors) = (s.path("log"), s.path("cursors"));
    cyclog_write(&log, &[], &lines[..8000]);
    cursor_dir(&cursors, "app", &log);
    let err = s.path("export.stderr");
    let e = export_relp(server.port, &cursors, &err);
    let kills = [1000, 4000, 7000];
    for (round, at) in kills.iter().enumerate() {
        wait_until(LONG, || server.count() >= *at);
        server.kill9();
        // Logging goes on while the server is down.
        let more = 8000 + round * 4000;
        cyclog_write(&log, &[], &lines[more..more + 4000]);
        server.restart();
    }
    let complete = wait_for_all(&server, &lines, Duration::from_secs(120));
    let text = fs::read_to_string(&err).unwrap_or_default();
    assert!(complete, "lines missing: {text}");
    assert_eq!(e.stop(), 0, "{text}");
    let got = messages(&server);
    let again = check_resends(&got, &lines);
    eprintln!("{} kills of rsyslog: {again} lines sent again", kills.len());
    assert!(
        again <= kills.len() * RELP_WINDOW,
        "{again} lines sent again"
    );
    assert!(text.contains("link lost"), "{text}");
}

#[test]
fn a_relp_stop_mid_stream_waits_for_the_answers_and_nothing_is_sent_twice() {
    let s = Scratch::new("relp-export-stop");
    let server = imrelp(&s);
    let lines = numbered_lines(30_000);
    let (log, cursors) = (s.path("log"), s.path("cursors"));
    cyclog_write(&log, &[], &lines);
    cursor_dir(&cursors, "app", &log);
    let err = s.path("export.stderr");
    for at in [2000, 10_000] {
        let e = export_relp(server.port, &cursors, &err);
        wait_until(LONG, || server.count() >= at);
        let text = fs::read_to_string(&err).unwrap_or_default();
        assert_eq!(e.stop(), 0, "{text}");
    }
    let e = export_relp(server.port, &cursors, &err);
    let complete = wait_for_all(&server, &lines, LONG);
    let text = fs::read_to_string(&err).unwrap_or_default();
    assert!(complete, "lines missing: {text}");
    assert_eq!(e.stop(), 0, "{text}");
    let got = messages(&server);
    assert_eq!(check_resends(&got, &lines), 0, "sent twice: {text}");
    assert!(!text.contains("warning"), "{text}");
}

/// A RELP server on the codec that refuses the sixth message once (`500`,
/// then it drops the connection): export-to-remote says so with the
/// server's text, and the line comes again on the next session, with every
/// line after it, none skipped and none twice.
#[test]
fn a_relp_message_refused_is_said_with_the_servers_text_and_sent_again_never_skipped() {
    use rill::net::relp::{
        Command as RelpCommand, DEFAULT_MAX_DATA, FrameReader, Offers, Response, write_frame,
    };
    use std::io::{ErrorKind, Read, Write};
    let s = Scratch::new("relp-refused");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let lines = numbered_lines(20);
    let (log, cursors) = (s.path("log"), s.path("cursors"));
    cyclog_write(&log, &[], &lines);
    cursor_dir(&cursors, "app", &log);
    let err = s.path("export.stderr");
    let e = export_relp(port, &cursors, &err);
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut refused = false;
    let mut sessions = 0;
    let start = std::time::Instant::now();
    while got.len() < lines.len() {
        assert!(start.elapsed() < LONG, "{} of {}", got.len(), lines.len());
        let mut conn = None;
        wait_until(LONG, || {
            conn = listener.accept().ok().map(|(c, _)| c);
            conn.is_some()
        });
        let mut conn = conn.expect("export-to-remote connects");
        sessions += 1;
        conn.set_nonblocking(false).expect("blocking");
        conn.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        let mut reader = FrameReader::new(DEFAULT_MAX_DATA);
        let mut buf = [0; 65536];
        'session: while got.len() < lines.len() {
            assert!(start.elapsed() < LONG, "{} of {}", got.len(), lines.len());
            let n = match conn.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue;
                }
                Err(_) => break,
            };
            let mut answers = Vec::new();
            for frame in reader.frames(&buf[..n]).expect("export-to-remote's frames") {
                let (code, text, data) = match frame.command {
                    RelpCommand::Open => {
                        let mut offers = Vec::new();
                        Offers::client().write(&mut offers);
                        (200, "OK", offers)
                    }
                    RelpCommand::Syslog if !refused && got.len() == 5 => {
                        refused = true;
                        (500, "not now, says the test", Vec::new())
                    }
                    RelpCommand::Syslog => {
                        got.push(frame.data);
                        (200, "OK", Vec::new())
                    }
                    c => panic!("unexpected {c:?}"),
                };
                let mut rsp = Vec::new();
                Response {
                    code,
                    text: text.as_bytes().to_vec(),
                    data,
                }
                .write(&mut rsp);
                write_frame(&mut answers, frame.txnr, &RelpCommand::Rsp, &rsp);
                if code != 200 {
                    let _ = conn.write_all(&answers);
                    break 'session;
                }
            }
            conn.write_all(&answers).expect("answer export-to-remote");
        }
    }
    let text = fs::read_to_string(&err).unwrap_or_default();
    assert_eq!(e.stop(), 0, "{text}");
    assert!(sessions >= 2, "sent again on a new session");
    for (i, (g, line)) in got.iter().zip(&lines).enumerate() {
        assert!(
            g.ends_with(&[b" ", line.as_slice()].concat()),
            "message {i}: {}",
            String::from_utf8_lossy(g)
        );
    }
    assert!(
        text.contains("refused") && text.contains("500 not now, says the test"),
        "{text}"
    );
}

/// A small xorshift: the same moments every run.
struct Moments(u64);

impl Moments {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// For 30 seconds, while lines are logged, export-to-remote and rsyslog
/// are each killed -9 and started again at random moments, many times;
/// then every line is there, in order after each break, and what came
/// twice is within the bound the man page states: per kill, a window, and
/// per kill of export-to-remote, the lines answered but not yet saved.
#[test]
fn kill_9_of_exporter_and_imrelp_at_random_moments_loses_no_line() {
    let s = Scratch::new("relp-torture");
    let mut server = imrelp(&s);
    let lines = numbered_lines(200_000);
    let (log, cursors) = (s.path("log"), s.path("cursors"));
    let mut written = 5000;
    cyclog_write(&log, &[], &lines[..written]);
    cursor_dir(&cursors, "app", &log);
    let err = s.path("export.stderr");
    let mut e = Some(export_relp(server.port, &cursors, &err));
    let mut moments = Moments(0x2545_f491_4f6c_dd1d);
    let (mut export_kills, mut server_kills) = (0, 0);
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let batch = (written + 2000).min(lines.len());
        cyclog_write(&log, &[], &lines[written..batch]);
        written = batch;
        std::thread::sleep(Duration::from_millis(50 + moments.below(500)));
        let what = moments.below(6);
        if what < 3 || what == 5 {
            if let Some(e) = e.take() {
                e.kill9();
            }
            export_kills += 1;
        }
        if what >= 3 {
            server.kill9();
            server_kills += 1;
            std::thread::sleep(Duration::from_millis(moments.below(300)));
            server.restart();
        }
        if e.is_none() {
            std::thread::sleep(Duration::from_millis(moments.below(300)));
            e = Some(export_relp(server.port, &cursors, &err));
        }
    }
    let lines = &lines[..written];
    let complete = wait_for_all(&server, lines, Duration::from_secs(180));
    let text = fs::read_to_string(&err).unwrap_or_default();
    assert!(complete, "lines missing: {text}");
    assert_eq!(e.take().expect("exporter").stop(), 0, "{text}");
    let got = messages(&server);
    let again = check_resends(&got, lines);
    eprintln!(
        "{written} lines; {export_kills} kills of export-to-remote, {server_kills} of rsyslog: \
         {again} lines sent again"
    );
    assert!(export_kills >= 10 && server_kills >= 10, "too few kills");
    assert!(
        again <= (export_kills + server_kills) * RELP_WINDOW + export_kills * UNSAVED,
        "{again} lines sent again"
    );
}
