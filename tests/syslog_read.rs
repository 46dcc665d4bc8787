//! syslog-read through real sockets, with real senders: util-linux logger,
//! Python's SysLogHandler, glibc's and musl's syslog(3).

mod common;

use std::ffi::CString;
use std::fs;
use std::io::{ErrorKind, Read};
use std::net::UdpSocket;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::receivers::{Fields, Receiver, Server, Transport};
use common::*;
use rill::format::reader_line::Record;

const LONG: Duration = Duration::from_secs(30);

/// A running syslog-read whose standard output a thread reads, once told.
struct Reader {
    child: Option<Child>,
    out: Arc<Mutex<Vec<u8>>>,
    reading: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stderr: PathBuf,
    /// The read end of its output pipe (the thread holds it open).
    pipe: std::os::fd::RawFd,
}

impl Reader {
    fn start(scratch: &Scratch, args: &[&str]) -> Reader {
        let sockets = args
            .iter()
            .filter(|a| ["--unix", "--udp"].contains(a))
            .count();
        Reader::spawn(scratch, Command::new(SYSLOG_READ).args(args), sockets, true)
    }

    /// Starts `command`, which runs syslog-read with `sockets` sockets;
    /// waits until it receives on all of them.
    fn spawn(scratch: &Scratch, command: &mut Command, sockets: usize, read: bool) -> Reader {
        let stderr = scratch.path(&format!("stderr-{}", rand_tag()));
        let err = fs::File::create(&stderr).expect("stderr file");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn syslog-read");
        let mut stdout = child.stdout.take().expect("stdout");
        let pipe = stdout.as_raw_fd();
        let out = Arc::new(Mutex::new(Vec::new()));
        let reading = Arc::new(AtomicBool::new(read));
        let thread = {
            let (out, reading) = (out.clone(), reading.clone());
            std::thread::spawn(move || {
                // Large reads: a resumed reader empties the pipe at once.
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    while !reading.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    match stdout.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => out.lock().expect("lock").extend_from_slice(&buf[..n]),
                    }
                }
            })
        };
        let reader = Reader {
            child: Some(child),
            out,
            reading,
            thread: Some(thread),
            stderr,
            pipe,
        };
        let ready = wait_until(LONG, || {
            reader.stderr_text().matches("receiving on").count() >= sockets || reader.exited()
        });
        assert!(
            ready && !reader.exited(),
            "not ready: {}",
            reader.stderr_text()
        );
        reader
    }

    fn exited(&self) -> bool {
        let pid = self.pid();
        !Path::new(&format!("/proc/{pid}")).exists()
            || fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The port of the `n`th UDP socket it reported.
    fn udp_port(&self, n: usize) -> u16 {
        self.stderr_text()
            .lines()
            .filter_map(|l| l.split("receiving on udp ").nth(1))
            .nth(n)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|addr| addr.rsplit(':').next())
            .and_then(|port| port.parse().ok())
            .expect("a UDP port on stderr")
    }

    fn resume(&self) {
        self.reading.store(true, Ordering::SeqCst);
    }

    /// Makes its output pipe 1 MiB, as cyclog's input pipe is: a full
    /// output buffer can then go at once.
    fn enlarge_pipe(&self) {
        // SAFETY: fcntl on a descriptor the reading thread keeps open.
        let rc = unsafe { libc::fcntl(self.pipe, libc::F_SETPIPE_SZ, 1 << 20) };
        assert!(rc >= 0, "F_SETPIPE_SZ: {}", std::io::Error::last_os_error());
    }

    /// Stops reading its output (after the read under way, if any).
    fn pause(&self) {
        self.reading.store(false, Ordering::SeqCst);
    }

    fn lines(&self) -> Vec<String> {
        let out = self.out.lock().expect("lock");
        let text = String::from_utf8(out.clone()).expect("output is UTF-8");
        text.lines().map(str::to_string).collect()
    }

    /// Waits for at least `n` lines.
    fn wait_lines(&self, n: usize) -> Vec<String> {
        wait_until(LONG, || self.lines().len() >= n);
        let lines = self.lines();
        assert!(
            lines.len() >= n,
            "{} lines, {n} expected: {lines:#?}\n{}",
            lines.len(),
            self.stderr_text()
        );
        lines
    }

    /// TERM; the exit status and every line written.
    fn stop(mut self) -> (ExitStatus, Vec<String>) {
        self.resume();
        let mut child = self.child.take().expect("running");
        signal(&child, rustix::process::Signal::TERM);
        let status = wait_child(&mut child, LONG);
        self.thread.take().expect("reader").join().expect("join");
        (status, self.lines())
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
        self.reading.store(true, Ordering::SeqCst);
    }
}

fn rand_tag() -> String {
    use std::sync::atomic::AtomicUsize;
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst).to_string()
}

/// The line holding `marker`, parsed.
fn find(lines: &[String], marker: &str) -> Record {
    let line = lines
        .iter()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no line with {marker:?} in {lines:#?}"));
    Record::parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

fn field(r: &Record, key: &str) -> Option<String> {
    r.field(key)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// A process's uid and gid, from /proc.
fn ids_of(pid: u32) -> (u32, u32) {
    let id = |key: &str| -> u32 {
        proc_status(pid, key)
            .first()
            .and_then(|v| v.parse().ok())
            .expect("id")
    };
    (id("Uid"), id("Gid"))
}

/// Runs a sender to completion; returns its pid.
fn run_sender(command: &mut Command) -> u32 {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sender");
    let pid = child.id();
    let status = wait_child(&mut child, LONG);
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "sender failed: {err}");
    pid
}

/// Checks that a local line carries the sender's own credentials.
fn assert_credentials(r: &Record, pid: u32, uid: u32, gid: u32) {
    assert_eq!(field(r, "pid"), Some(pid.to_string()), "{r:?}");
    assert_eq!(field(r, "uid"), Some(uid.to_string()), "{r:?}");
    assert_eq!(field(r, "gid"), Some(gid.to_string()), "{r:?}");
}

#[test]
fn util_linux_logger_in_every_mode() {
    require("logger");
    let s = Scratch::new("logger");
    let sock = s.path("log");
    let reader = Reader::start(
        &s,
        &[
            "--unix",
            path_arg(&sock),
            "--udp",
            "127.0.0.1:0",
            "--udp",
            "[::1]:0",
        ],
    );
    let (port4, port6) = (
        reader.udp_port(0).to_string(),
        reader.udp_port(1).to_string(),
    );
    let (uid, gid) = (
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    );
    let sock = path_arg(&sock);
    let logger = |args: &[&str]| run_sender(Command::new("logger").args(args));
    let local = logger(&["-u", sock, "-t", "plain", "-p", "local3.warning", "m-local"]);
    let bsd = logger(&["-u", sock, "--rfc3164", "-t", "bsd", "m-3164"]);
    let ietf = logger(&[
        "-u",
        sock,
        "--rfc5424",
        "-t",
        "ietf",
        "--msgid",
        "ID47",
        "m-5424",
    ]);
    let with_id = logger(&["-u", sock, "-i", "-t", "withpid", "m-pid"]);
    let sd = logger(&[
        "-u",
        sock,
        "--rfc5424=notime,notq,nohost",
        "--sd-id",
        "x@32473",
        "--sd-param",
        "a=\"b c\"",
        "-t",
        "sd",
        "m-sd",
    ]);
    logger(&[
        "-d",
        "-n",
        "127.0.0.1",
        "-P",
        &port4,
        "-t",
        "udp4",
        "m-udp4",
    ]);
    logger(&[
        "-d",
        "-n",
        "::1",
        "-P",
        &port6,
        "--rfc3164",
        "-t",
        "udp6",
        "m-udp6",
    ]);
    let lines = reader.wait_lines(7);

    let r = find(&lines, "m-local");
    assert_eq!(r.priority.to_string(), "local3.warning");
    assert_eq!(
        (&r.app[..], &r.message[..]),
        (&b"plain"[..], &b"m-local"[..])
    );
    assert_eq!(field(&r, "fmt").as_deref(), Some("rfc3164"));
    assert!(
        field(&r, "time3164").is_some() && field(&r, "host").is_none(),
        "{r:?}"
    );
    assert_credentials(&r, local, uid, gid);

    let r = find(&lines, "m-3164");
    assert_eq!(
        (&r.app[..], field(&r, "fmt").as_deref()),
        (&b"bsd"[..], Some("rfc3164"))
    );
    assert!(field(&r, "host").is_some(), "{r:?}");
    assert_credentials(&r, bsd, uid, gid);

    let r = find(&lines, "m-5424");
    assert_eq!((&r.app[..], &r.message[..]), (&b"ietf"[..], &b"m-5424"[..]));
    assert_eq!(field(&r, "fmt").as_deref(), Some("rfc5424"));
    assert_eq!(field(&r, "msgid").as_deref(), Some("ID47"));
    assert!(field(&r, "time").is_some_and(|t| t.contains('T')), "{r:?}");
    assert!(
        field(&r, "sd").is_some_and(|sd| sd.starts_with("[timeQuality ")),
        "{r:?}"
    );
    assert_credentials(&r, ietf, uid, gid);

    let r = find(&lines, "m-pid");
    assert_eq!(r.procid, with_id.to_string().into_bytes(), "the tag's pid");
    assert_credentials(&r, with_id, uid, gid);

    let r = find(&lines, "m-sd");
    assert_eq!(field(&r, "sd").as_deref(), Some("[x@32473 a=\"b c\"]"));
    assert!(
        field(&r, "time").is_none() && field(&r, "host").is_none(),
        "{r:?}"
    );
    assert_credentials(&r, sd, uid, gid);

    let r = find(&lines, "m-udp4");
    assert_eq!(field(&r, "fmt").as_deref(), Some("rfc5424"));
    assert!(
        field(&r, "from").is_some_and(|f| f.starts_with("127.0.0.1:")),
        "{r:?}"
    );
    assert!(
        field(&r, "pid").is_none() && field(&r, "uid").is_none(),
        "{r:?}"
    );

    let r = find(&lines, "m-udp6");
    assert_eq!(field(&r, "fmt").as_deref(), Some("rfc3164"));
    assert!(
        field(&r, "from").is_some_and(|f| f.starts_with("[::1]:")),
        "{r:?}"
    );

    let (status, lines) = reader.stop();
    assert!(status.success(), "{status:?}");
    assert_eq!(lines.len(), 7, "{lines:#?}");
}

#[test]
fn python_sysloghandler() {
    require("python3");
    let s = Scratch::new("python");
    let sock = s.path("log");
    let reader = Reader::start(&s, &["--unix", path_arg(&sock), "--udp", "127.0.0.1:0"]);
    let port = reader.udp_port(0);
    let script = r#"
import logging, logging.handlers, sys
address = sys.argv[1] if len(sys.argv) == 2 else (sys.argv[1], int(sys.argv[2]))
log = logging.getLogger("rill")
log.addHandler(logging.handlers.SysLogHandler(address=address))
log.warning("plain from python\nwith a second line")
handler = log.handlers[0]
handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
handler.ident = "myapp[42]: "
log.error("with ident")
"#;
    let unix = run_sender(Command::new("python3").args(["-c", script, path_arg(&sock)]));
    run_sender(Command::new("python3").args(["-c", script, "127.0.0.1", &port.to_string()]));
    let lines = reader.wait_lines(4);
    let (uid, gid) = (
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    );

    let local: Vec<&String> = lines.iter().filter(|l| l.contains(" uid=")).collect();
    assert_eq!(local.len(), 2, "{lines:#?}");
    let r = Record::parse(local[0].as_bytes()).expect("line");
    // No timestamp, a trailing NUL (trimmed); the text is the sender's.
    assert_eq!(r.priority.to_string(), "user.warning");
    assert_eq!(r.message, b"plain from python\nwith a second line");
    assert_eq!(field(&r, "fmt").as_deref(), Some("none"));
    assert!(local[0].contains("python\\nwith"), "{}", local[0]);
    assert_credentials(&r, unix, uid, gid);
    let r = Record::parse(local[1].as_bytes()).expect("line");
    assert_eq!(r.priority.to_string(), "user.err");
    assert_eq!((&r.app[..], &r.procid[..]), (&b"myapp"[..], &b"42"[..]));
    assert_eq!(r.message, b"rill: with ident");
    assert_credentials(&r, unix, uid, gid);

    let remote: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(" from=127.0.0.1:"))
        .collect();
    assert_eq!(remote.len(), 2, "{lines:#?}");
    let r = Record::parse(remote[0].as_bytes()).expect("line");
    assert_eq!(r.message, b"plain from python\nwith a second line");
}

/// Builds `source` with `compiler` into the scratch directory.
fn build_c(scratch: &Scratch, compiler: &str, flags: &[&str], source: &str, name: &str) -> PathBuf {
    require(compiler);
    let c = scratch.path(&format!("{name}.c"));
    fs::write(&c, source).expect("write C source");
    let exe = scratch.path(name);
    let status = Command::new(compiler)
        .args(flags)
        .arg("-o")
        .arg(&exe)
        .arg(&c)
        .status()
        .expect("run the compiler");
    assert!(status.success(), "{compiler} failed");
    exe
}

/// Runs `exe` as uid and gid 65534 in a mount namespace of its own whose
/// /dev/log is `sock`: syslog(3) knows no other path.
fn run_with_dev_log(exe: &Path, args: &[&str], sock: &Path) -> u32 {
    let target = CString::new(path_arg(sock)).expect("path");
    let mut command = Command::new(exe);
    command.args(args);
    // SAFETY: only async-signal-safe system calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let fail = || Err(std::io::Error::last_os_error());
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return fail();
            }
            let none = std::ptr::null();
            if libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                none.cast(),
            ) != 0
                || libc::mount(
                    c"tmpfs".as_ptr(),
                    c"/dev".as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    none.cast(),
                ) != 0
                || libc::symlink(target.as_ptr(), c"/dev/log".as_ptr()) != 0
                || libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return fail();
            }
            Ok(())
        });
    }
    run_sender(&mut command)
}

const SYSLOG_C: &str = r#"
#include <string.h>
#include <syslog.h>
/* argv[1]: an ident, or - for none; argv[2]: the message. */
int main(int argc, char **argv) {
    const char *ident = strcmp(argv[1], "-") ? argv[1] : 0;
    openlog(ident, ident ? LOG_PID : 0, LOG_LOCAL3);
    syslog(LOG_WARNING, "%s", argv[2]);
    closelog();
    return 0;
}
"#;

#[test]
fn glibc_and_musl_syslog() {
    require_root();
    let s = Scratch::new("libc");
    let glibc = build_c(&s, "cc", &["-O"], SYSLOG_C, "glibc-sender");
    let musl = build_c(&s, "musl-gcc", &["-O", "-static"], SYSLOG_C, "musl-sender");
    fs::set_permissions(&s.root, fs::Permissions::from_mode(0o755)).expect("chmod");
    let sock = s.path("log");
    let reader = Reader::start(&s, &["--unix", path_arg(&sock)]);

    let g1 = run_with_dev_log(&glibc, &["rilltest", "glibc with ident"], &sock);
    let g2 = run_with_dev_log(&glibc, &["-", "glibc without ident"], &sock);
    let m1 = run_with_dev_log(&musl, &["rilltest", "musl with ident"], &sock);
    let m2 = run_with_dev_log(&musl, &["-", "musl without ident"], &sock);
    let lines = reader.wait_lines(4);

    for (marker, pid) in [("glibc with ident", g1), ("musl with ident", m1)] {
        let r = find(&lines, marker);
        assert_eq!(r.priority.to_string(), "local3.warning", "{marker}");
        assert_eq!(r.app, b"rilltest", "{marker}");
        assert_eq!(r.procid, pid.to_string().into_bytes(), "{marker}: LOG_PID");
        assert_eq!(
            r.message,
            marker.as_bytes(),
            "{marker}: musl's LF is trimmed"
        );
        assert_eq!(field(&r, "fmt").as_deref(), Some("rfc3164"), "{marker}");
        assert!(
            field(&r, "time3164").is_some() && field(&r, "host").is_none(),
            "{r:?}"
        );
        assert_credentials(&r, pid, 65534, 65534);
    }
    // glibc names the program; musl sends an empty ident.
    let r = find(&lines, "glibc without ident");
    assert_eq!(
        (&r.app[..], &r.procid[..]),
        (&b"glibc-sender"[..], &b""[..])
    );
    assert_credentials(&r, g2, 65534, 65534);
    let r = find(&lines, "musl without ident");
    assert_eq!((&r.app[..], &r.procid[..]), (&b""[..], &b""[..]));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("local3.warning -: musl without ident\t"))
    );
    assert_credentials(&r, m2, 65534, 65534);
}

#[test]
fn one_datagram_is_exactly_one_line() {
    let s = Scratch::new("forge");
    let sock = s.path("log");
    let reader = Reader::start(&s, &["--unix", path_arg(&sock), "--max-size", "200"]);
    let client = UnixDatagram::unbound().expect("socket");
    let long = [b"<13>app: ".as_slice(), &[b'L'; 300]].concat();
    let datagrams: Vec<&[u8]> = vec![
        b"<13>app: one\nauth.emerg fake: forged line\r\n",
        b"<13>app: tab\tuid=0 pid=1\x00nul \x1b[31mred\x7f \\x41 \xff\xfe",
        b"<13>app: trailing NULs and LFs\n\0\n\0",
        b"",
        b"no priority at all",
        &long,
    ];
    for d in &datagrams {
        client.send_to(d, &sock).expect("send");
    }
    let lines = reader.wait_lines(datagrams.len());
    let (status, lines2) = reader.stop();
    assert!(status.success());
    assert_eq!(lines2.len(), datagrams.len(), "{lines2:#?}");
    let me = std::process::id();
    let records: Vec<Record> = lines
        .iter()
        .map(|l| Record::parse(l.as_bytes()).expect("every line parses"))
        .collect();
    assert_eq!(records[0].message, b"one\nauth.emerg fake: forged line\r");
    assert_eq!(
        records[1].message,
        b"tab\tuid=0 pid=1\x00nul \x1b[31mred\x7f \\x41 \xff\xfe"
    );
    assert_eq!(
        field(&records[1], "uid"),
        Some(rustix::process::getuid().as_raw().to_string())
    );
    assert_eq!(
        field(&records[1], "pid"),
        Some(me.to_string()),
        "the forged pid=1 is text"
    );
    assert_eq!(records[2].message, b"trailing NULs and LFs");
    assert_eq!(
        (records[3].message.len(), field(&records[3], "nopri")),
        (0, Some("1".into()))
    );
    assert_eq!(records[4].message, b"no priority at all");
    assert_eq!(records[4].priority.to_string(), "user.notice");
    assert_eq!(
        field(&records[5], "truncated"),
        Some(long.len().to_string())
    );
    assert_eq!(records[5].message, &long[9..200]);
    for line in &lines {
        assert!(line.split('\t').count() <= 2, "one TAB at most: {line}");
    }
}

/// A sender may pass descriptors with a datagram (SCM_RIGHTS): each is
/// closed as it comes, and the line still names the sender.
#[test]
fn descriptors_passed_with_a_datagram_are_closed_and_the_sender_still_named() {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix};
    let s = Scratch::new("rights");
    let sock = s.path("log");
    let reader = Reader::start(&s, &["--unix", path_arg(&sock)]);
    let open_fds = || {
        std::fs::read_dir(format!(
            "/proc/{}/fd",
            reader.child.as_ref().expect("running").id()
        ))
        .map(|d| d.count())
    };
    let client = UnixDatagram::unbound().expect("socket");
    client.send_to(b"<13>app: before", &sock).expect("send");
    reader.wait_lines(1);
    let before = open_fds().expect("syslog-read's descriptors");
    let to = SocketAddrUnix::new(&sock).expect("address");
    let files: Vec<std::fs::File> = (0..3)
        .map(|_| std::fs::File::open("/dev/null").expect("/dev/null"))
        .collect();
    const SENT: usize = 50;
    for i in 0..SENT {
        let fds: Vec<BorrowedFd> = files[..1 + i % 3].iter().map(|f| f.as_fd()).collect();
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
        let text = format!("<13>app: with {} descriptors, {i}", fds.len());
        let iov = [std::io::IoSlice::new(text.as_bytes())];
        rustix::net::sendmsg_addr(&client, &to, &iov, &mut control, SendFlags::empty())
            .expect("sendmsg");
    }
    let lines = reader.wait_lines(1 + SENT);
    assert_eq!(
        open_fds().expect("syslog-read's descriptors"),
        before,
        "none kept"
    );
    let (status, _) = reader.stop();
    assert!(status.success());
    let (uid, gid) = ids_of(std::process::id());
    for line in &lines[1..] {
        let r = Record::parse(line.as_bytes()).expect("a line");
        assert!(r.message.starts_with(b"with "), "{line}");
        assert_credentials(&r, std::process::id(), uid, gid);
    }
}

#[test]
fn the_socket_path() {
    let s = Scratch::new("path");
    let run = |args: &[&str]| {
        Command::new(SYSLOG_READ)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run")
    };
    // Not a socket: refused, and left alone.
    let file = s.path("file");
    fs::write(&file, "precious").expect("write");
    let out = run(&["--unix", path_arg(&file)]);
    assert_eq!(out.status.code(), Some(111));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a socket"));
    assert_eq!(fs::read_to_string(&file).expect("read"), "precious");
    // A socket someone receives on: refused.
    let live = s.path("live");
    let holder = UnixDatagram::bind(&live).expect("bind");
    let out = run(&["--unix", path_arg(&live)]);
    assert_eq!(out.status.code(), Some(111), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("another process"));
    // A stale one is replaced; the mode is 0666 unless told.
    drop(holder);
    let reader = Reader::start(&s, &["--unix", path_arg(&live)]);
    assert_eq!(mode(&live), 0o666);
    UnixDatagram::unbound()
        .expect("socket")
        .send_to(b"<13>x: hi", &live)
        .expect("send");
    reader.wait_lines(1);
    let (status, _) = reader.stop();
    assert!(status.success());
    let other = s.path("other");
    let reader = Reader::start(&s, &["--unix", path_arg(&other), "--mode", "0620"]);
    assert_eq!(mode(&other), 0o620);
    drop(reader);
    // Usage errors.
    for args in [
        &[][..],
        &["--udp", "localhost:514"],
        &["--unix", "x", "--mode", "999"],
        &["--unix", "x", "--max-size", "0"],
        &["--unix", "x", "--shed-after", "soon"],
        &["--bogus"],
    ] {
        let out = Command::new(SYSLOG_READ)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(100), "{args:?}: {out:?}");
    }
}

/// Runs syslog-read with `fds` as descriptors 3, 4 ..., through a shell
/// that sets LISTEN_PID to its own pid and execs (as nosh's and systemd's
/// socket listeners leave things), or with none of that for fd 3 alone.
fn spawn_with_fds(s: &Scratch, fds: Vec<OwnedFd>, listen_fds: bool, args: &[&str]) -> Reader {
    let script = if listen_fds {
        format!("LISTEN_FDS={} LISTEN_PID=$$ exec \"$0\" \"$@\"", fds.len())
    } else {
        "exec \"$0\" \"$@\"".to_string()
    };
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(script).arg(SYSLOG_READ).args(args);
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: dup2 and fcntl only, between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // Out of the way first, then into place from 3 on.
            let high: Vec<i32> = raw
                .iter()
                .map(|&fd| libc::fcntl(fd, libc::F_DUPFD, 100))
                .collect();
            for (i, &fd) in high.iter().enumerate() {
                if fd < 0 || libc::dup2(fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let count = fds.len();
    let reader = Reader::spawn(s, &mut command, count, true);
    drop(fds);
    reader
}

#[test]
fn inherited_sockets_as_nosh_and_systemd_pass_them() {
    let s = Scratch::new("inherit");
    let path = s.path("log");
    let unix = UnixDatagram::bind(&path).expect("bind");
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let port = udp.local_addr().expect("addr").port();
    let reader = spawn_with_fds(&s, vec![OwnedFd::from(unix), OwnedFd::from(udp)], true, &[]);
    assert!(
        reader.stderr_text().contains("receiving on unix"),
        "{}",
        reader.stderr_text()
    );
    let client = UnixDatagram::unbound().expect("socket");
    client
        .send_to(b"<13>a: over the inherited unix socket", &path)
        .expect("send");
    let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sender
        .send_to(b"<13>b: over the inherited UDP socket", ("127.0.0.1", port))
        .expect("send");
    let lines = reader.wait_lines(2);
    let r = find(&lines, "inherited unix");
    assert_eq!(
        field(&r, "pid"),
        Some(std::process::id().to_string()),
        "credentials asked for"
    );
    let r = find(&lines, "inherited UDP");
    assert_eq!(
        field(&r, "from"),
        Some(sender.local_addr().expect("addr").to_string())
    );
    let (status, _) = reader.stop();
    assert!(status.success());

    // Fd 3 alone, no LISTEN_FDS.
    let path = s.path("log3");
    let unix = UnixDatagram::bind(&path).expect("bind");
    let reader = spawn_with_fds(&s, vec![OwnedFd::from(unix)], false, &[]);
    client.send_to(b"<13>c: over fd 3", &path).expect("send");
    reader.wait_lines(1);

    // Fd 3 that is no datagram socket: refused.
    let (r, w) = rustix::pipe::pipe().expect("pipe");
    drop(w);
    let mut command = Command::new(SYSLOG_READ);
    let raw = r.as_raw_fd();
    // SAFETY: dup2 only, between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = command.stdin(Stdio::null()).output().expect("run");
    assert_eq!(out.status.code(), Some(100), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("descriptor 3"),
        "{out:?}"
    );
}

#[test]
fn dash_u_drops_root_for_good() {
    require_root();
    let s = Scratch::new("dropping");
    fs::set_permissions(&s.root, fs::Permissions::from_mode(0o755)).expect("chmod");
    let sock = s.path("log");
    let mut command = Command::new(SYSLOG_READ);
    command
        .args(["-U", "--unix", path_arg(&sock)])
        .env("UID", "65534")
        .env("GID", "65533")
        .env_remove("GIDLIST");
    let reader = Reader::spawn(&s, &mut command, 1, true);
    let pid = reader.pid();
    wait_until(LONG, || ids_of(pid) == (65534, 65533));
    assert_eq!(proc_status(pid, "Uid"), ["65534"; 4]);
    assert_eq!(proc_status(pid, "Gid"), ["65533"; 4]);
    assert_eq!(proc_status(pid, "Groups"), ["65533"]);
    // The socket was bound as root, and still receives.
    UnixDatagram::unbound()
        .expect("socket")
        .send_to(b"<13>x: after -U", &sock)
        .expect("send");
    reader.wait_lines(1);
    let (exit, _) = reader.stop();
    assert!(exit.success());
}

/// -U without a usable $UID and $GID is a usage error (100) in syslog-read
/// as in klog-read, said before any socket is made: no socket file is left
/// behind for a reader that never ran.
#[test]
fn minus_u_without_usable_ids_fails_as_usage_and_leaves_no_socket() {
    let s = Scratch::new("minusu-bad");
    let refused = s.path("refused");
    for (uid, gid, says) in [
        (None, None, "$UID is not set"),
        (Some("0"), Some("0"), "refusing to go on as root"),
        (Some("nobody"), Some("65534"), "\"nobody\" is not a number"),
    ] {
        let mut command = Command::new(SYSLOG_READ);
        command
            .args(["-U", "--unix", path_arg(&refused)])
            .env_remove("UID")
            .env_remove("GID")
            .stdin(Stdio::null());
        if let (Some(uid), Some(gid)) = (uid, gid) {
            command.env("UID", uid).env("GID", gid);
        }
        let out = command.output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(100), "UID={uid:?}: {stderr}");
        assert!(stderr.contains(says), "UID={uid:?}: {stderr}");
        assert!(!refused.exists(), "UID={uid:?}: socket file left behind");
    }
}

/// Without a socket, syslog-read says what is missing and how to give it,
/// also when descriptor 3 is open on something that is not a socket.
#[test]
fn no_socket_says_what_is_missing_and_how_to_give_it() {
    let s = Scratch::new("nosocket");
    let file = s.path("not-a-socket");
    fs::write(&file, "").expect("file");
    for fd3 in [false, true] {
        let mut command = Command::new("sh");
        let script = if fd3 {
            "exec \"$0\" 3<\"$1\""
        } else {
            "exec \"$0\" 3<&-"
        };
        command
            .args(["-c", script, SYSLOG_READ, path_arg(&file)])
            .env_remove("LISTEN_FDS")
            .stdin(Stdio::null());
        let out = command.output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(100), "fd 3 open: {fd3}: {stderr}");
        assert!(
            stderr.contains("no socket")
                && stderr.contains("--unix PATH")
                && stderr.contains("--udp ADDR")
                && stderr.contains("LISTEN_FDS"),
            "fd 3 open: {fd3}: {stderr}"
        );
        if fd3 {
            assert!(
                stderr.contains("descriptor 3 is open but not a datagram socket"),
                "{stderr}"
            );
        }
    }
}

/// A bad value names the option, what was given and what is expected.
#[test]
fn bad_values_name_the_option_the_value_and_what_is_expected() {
    for (args, says) in [
        (
            &["--shed-after", "banana"][..],
            &["--shed-after", "\"banana\"", "not a duration", "90s"][..],
        ),
        (
            &["--max-size", "0"][..],
            &["--max-size", "0", "from 1 to"][..],
        ),
        (&["--mode", "999"][..], &["--mode", "\"999\"", "octal"][..]),
        (
            &["--udp", "banana"][..],
            &["--udp", "\"banana\"", "HOST:PORT"][..],
        ),
        (&["--unix"][..], &["--unix", "needs a value"][..]),
    ] {
        let out = Command::new(SYSLOG_READ)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(100), "{args:?}: {stderr}");
        for word in says {
            assert!(stderr.contains(word), "{args:?}: {word}: {stderr}");
        }
        assert!(!stderr.contains(" at 0"), "{args:?}: {stderr}");
    }
}

/// Sends numbered datagrams without blocking until `stop` says; returns
/// the numbers sent, and whether sends were refused for `blocked_for` on
/// end at some point (the reader had stopped reading).
fn send_numbered(
    client: &UnixDatagram,
    path: &Path,
    from: usize,
    stop: impl Fn(usize, Option<Duration>) -> bool,
) -> usize {
    client.set_nonblocking(true).expect("nonblocking");
    let mut n = from;
    let mut refused_since: Option<Instant> = None;
    let start = Instant::now();
    loop {
        let refused = refused_since.map(|t| t.elapsed());
        if stop(n - from, refused) || start.elapsed() > LONG {
            return n;
        }
        let msg = format!("<13>flood[1]: message {n:08} {}", "x".repeat(60));
        match client.send_to(msg.as_bytes(), path) {
            Ok(_) => {
                n += 1;
                refused_since = None;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                refused_since.get_or_insert_with(Instant::now);
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("send: {e}"),
        }
    }
}

fn numbers(lines: &[String]) -> Vec<usize> {
    lines
        .iter()
        .filter_map(|l| l.split("message ").nth(1))
        .filter_map(|rest| rest.get(..8))
        .filter_map(|n| n.parse().ok())
        .collect()
}

#[test]
fn a_blocked_output_blocks_local_senders_and_loses_nothing() {
    let s = Scratch::new("blocked");
    let sock = s.path("log");
    let reader = Reader::spawn(
        &s,
        Command::new(SYSLOG_READ).args(["--unix", path_arg(&sock)]),
        1,
        false,
    );
    let client = UnixDatagram::unbound().expect("socket");
    // Nobody reads the output: the sender must end up refused, for good.
    let sent = send_numbered(&client, &sock, 0, |_, refused| {
        refused.is_some_and(|r| r > Duration::from_millis(500))
    });
    // Not before the 1 MiB buffer is full, nor never.
    assert!(sent > 4000 && sent < 100_000, "{sent} sent before blocking");
    reader.resume();
    let total = send_numbered(&client, &sock, sent, |n, _| n >= 5000);
    reader.wait_lines(total);
    let (status, lines) = reader.stop();
    assert!(status.success());
    assert_eq!(
        numbers(&lines),
        (0..total).collect::<Vec<_>>(),
        "every message, once, in order"
    );
}

/// Lets the output move; waits for the notice of what was dropped for
/// `cause`, and stops. Every line, and how many were dropped.
fn resume_until_dropped(reader: Reader, cause: &str) -> (Vec<String>, usize) {
    reader.resume();
    let notice = |l: &String| l.contains("\tdropped=");
    wait_until(LONG, || reader.lines().iter().any(notice));
    let (status, lines) = reader.stop();
    assert!(status.success());
    let line = lines
        .iter()
        .find(|l| notice(l))
        .expect("a line saying how many were dropped");
    let r = Record::parse(line.as_bytes()).expect("notice parses");
    assert_eq!(r.priority.to_string(), "syslog.warning", "{line}");
    assert_eq!(r.app, b"syslog-read");
    assert_eq!(field(&r, "cause").as_deref(), Some(cause), "{line}");
    assert!(
        field(&r, "fmt").is_none(),
        "no received message looks like a notice"
    );
    let dropped: usize = field(&r, "dropped")
        .and_then(|d| d.parse().ok())
        .expect("count");
    assert!(dropped > 0, "{line}");
    (lines, dropped)
}

#[test]
fn shed_after_drops_and_says_how_many() {
    let s = Scratch::new("shed");
    let sock = s.path("log");
    let reader = Reader::spawn(
        &s,
        Command::new(SYSLOG_READ).args(["--unix", path_arg(&sock), "--shed-after", "300ms"]),
        1,
        false,
    );
    let client = UnixDatagram::unbound().expect("socket");
    let started = Instant::now();
    // Blocked at first; after 300 ms of a stuck output, taken and dropped.
    let total = send_numbered(&client, &sock, 0, |_, _| {
        started.elapsed() > Duration::from_millis(1500)
    });
    let (lines, dropped) = resume_until_dropped(reader, "shed");
    let kept = numbers(&lines);
    assert_eq!(
        kept.len() + dropped,
        total,
        "each message written or counted"
    );
    assert!(kept.windows(2).all(|w| w[0] < w[1]), "in order");
}

/// `--own-pipe` with stderr the same pipe (`exec 2>&1`), and a log writer
/// that takes nothing while the pipe holds part of a line: the stop waits
/// for the writer, and a second stop signal ends it.
#[test]
fn own_pipe_cut_inside_a_line_still_hears_stop_signals() {
    let s = Scratch::new("ownstuck");
    let sock = s.path("log");
    let (mut child, read) =
        spawn_into_one_pipe(SYSLOG_READ, &["--own-pipe", "--unix", path_arg(&sock)]);
    let pid = child.id();
    assert!(wait_until(LONG, || blocks_term(pid) && sock.exists()));
    let queued = || rustix::io::ioctl_fionread(&read).unwrap_or(0);
    assert!(wait_until(LONG, || queued() > 0), "no start message");
    // Lines of 40 KB: the 64 KiB pipe (less, by how its pages were
    // filled) cannot take the second whole.
    let client = UnixDatagram::unbound().expect("socket");
    for i in 0..3 {
        let text = format!("<13>big: {i} {}", "b".repeat(40_000));
        client.send_to(text.as_bytes(), &sock).expect("send");
    }
    assert!(
        wait_until(LONG, || queued() > 41_000),
        "{} queued",
        queued()
    );
    signal(&child, rustix::process::Signal::TERM);
    // Taken, so that the second is not merged into it.
    assert!(wait_until(LONG, || term_taken(pid)), "the stop not taken");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "a stop waits for the log writer"
    );
    signal(&child, rustix::process::Signal::TERM);
    let status = wait_child(&mut child, LONG);
    assert_eq!(status.code(), Some(111), "a second stop gives up");
    let mut got = Vec::new();
    fs::File::from(read).read_to_end(&mut got).expect("read");
    let text = String::from_utf8(got).expect("UTF-8");
    let (whole, cut) = text.rsplit_once('\n').expect("whole lines first");
    assert!(
        cut.contains("big: 1 bbb"),
        "cut inside the second: {cut:.60}"
    );
    let lines: Vec<&str> = whole.lines().collect();
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with("syslog-read: "))
    );
    assert!(
        lines[lines.len() - 1].contains("big: 0 bbb"),
        "{:.60}",
        lines[1]
    );
}

#[test]
fn term_writes_what_was_received() {
    let s = Scratch::new("term");
    let sock = s.path("log");
    let out_file = s.path("out");
    let mut child = Command::new(SYSLOG_READ)
        .args(["--unix", path_arg(&sock), "--udp", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_file).expect("out"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    assert!(wait_until(LONG, || blocks_term(pid) && sock.exists()));
    let mut err = child.stderr.take().expect("stderr");
    let mut text = String::new();
    let mut buf = [0u8; 256];
    while !text.contains("receiving on udp") {
        let n = err.read(&mut buf).expect("stderr");
        assert!(n > 0, "{text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let port: u16 = text
        .split("receiving on udp 127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .expect("port");
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let unix = UnixDatagram::unbound().expect("socket");
    // A datagram sent on loopback waits in the kernel's backlog of the CPU
    // that sent it until that is processed, which on a loaded machine can
    // be after the TERM below: sent is not yet received. One more, to a
    // socket of ours from the same CPU, arrives only after the others are
    // in syslog-read's socket.
    let mut cpus = rustix::thread::CpuSet::new();
    cpus.set(rustix::thread::sched_getcpu());
    rustix::thread::sched_setaffinity(None, &cpus).expect("stay on one CPU");
    for i in 0..2000 {
        udp.send_to(format!("<13>u: udp {i:05}").as_bytes(), ("127.0.0.1", port))
            .expect("send");
    }
    let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
    probe.set_read_timeout(Some(LONG)).expect("timeout");
    udp.send_to(b"after", probe.local_addr().expect("address"))
        .expect("send");
    probe
        .recv(&mut buf)
        .expect("the datagram sent after the others");
    for i in 0..8 {
        unix.send_to(format!("<13>l: local {i:05}").as_bytes(), &sock)
            .expect("send");
    }
    // At once: what the kernel holds for us is received too.
    signal(&child, rustix::process::Signal::TERM);
    let status = wait_child(&mut child, LONG);
    assert_eq!(status.code(), Some(0));
    let out = fs::read_to_string(&out_file).expect("output");
    assert_eq!(
        out.lines().filter(|l| l.contains(": udp ")).count(),
        2000,
        "{out}"
    );
    assert_eq!(out.lines().filter(|l| l.contains(": local ")).count(), 8);
}

#[test]
fn kernel_drops_on_udp_are_counted_and_said() {
    let s = Scratch::new("kdrops");
    let reader = Reader::spawn(
        &s,
        Command::new(SYSLOG_READ).args(["--udp", "127.0.0.1:0"]),
        1,
        false,
    );
    let port = reader.udp_port(0);
    // Nobody reads the output: the receive buffer fills, then the kernel
    // drops (as it must: UDP senders never wait).
    let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let sent = 200_000;
    for i in 0..sent {
        sender
            .send_to(format!("<13>u: {i:07}").as_bytes(), ("127.0.0.1", port))
            .expect("send");
    }
    let (lines, dropped) = resume_until_dropped(reader, "kernel");
    let written = lines.iter().filter(|l| l.contains("\tfmt=")).count();
    assert!(written > 0);
    // Loopback loses nothing on the way, but let the kernel have its say.
    assert!(
        written + dropped <= sent && written + dropped >= sent - sent / 100,
        "{written} written + {dropped} dropped, {sent} sent"
    );
}

#[test]
fn a_udp_flood_keeps_neither_local_senders_nor_a_stop_waiting() {
    let s = Scratch::new("flood");
    let sock = s.path("log");
    let mut reader = Reader::start(
        &s,
        &[
            "--unix",
            path_arg(&sock),
            "--udp",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
        ],
    );
    let port = reader.udp_port(0);
    let quiet_port = reader.udp_port(1);
    // More senders than the reader can keep up with, on any machine: its
    // queue never drains while they send. Each numbers its datagrams and
    // counts those sent.
    let flooding = Arc::new(AtomicBool::new(true));
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..3).map(|_| AtomicU64::new(0)).collect());
    let floods: Vec<_> = (0..sent.len())
        .map(|t| {
            let (flooding, sent) = (flooding.clone(), sent.clone());
            std::thread::spawn(move || {
                let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
                let started = Instant::now();
                let mut n = 0u64;
                while flooding.load(Ordering::SeqCst) && started.elapsed() < LONG {
                    let datagram = format!("<13>flood: {t} {n}");
                    let _ = sender.send_to(datagram.as_bytes(), ("127.0.0.1", port));
                    n += 1;
                    sent[t].store(n, Ordering::SeqCst);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let local = UnixDatagram::unbound().expect("socket");
    local.set_nonblocking(true).expect("nonblocking");
    local
        .send_to(b"<13>local: through the flood", &sock)
        .expect("send");
    assert!(
        wait_until(Duration::from_secs(10), || {
            reader
                .lines()
                .iter()
                .any(|l| l.contains("through the flood"))
        }),
        "a local message waited behind the flood"
    );
    // Queued on both quiet sockets before the signal: they must be written.
    local
        .send_to(b"<13>local: just before the stop", &sock)
        .expect("send");
    let net = UdpSocket::bind("127.0.0.1:0").expect("bind");
    net.send_to(b"<13>net: just before the stop", ("127.0.0.1", quiet_port))
        .expect("send");
    let before: Vec<u64> = sent.iter().map(|n| n.load(Ordering::SeqCst)).collect();
    let lines = stop_through_flood(&mut reader, &flooding, floods);
    for sent in ["local: just before the stop", "net: just before the stop"] {
        assert!(
            lines.iter().any(|l| l.contains(sent)),
            "queued before the signal, not written: {sent}"
        );
    }
    // Sent after the count was taken, just before the signal: at most what
    // the socket's queue held when the reader saw the signal, and the
    // batch that reached past it. Waiting for the flood takes many more.
    let after = lines
        .iter()
        .filter_map(|l| Record::parse(l.as_bytes()).ok())
        .filter(|r| r.app == b"flood")
        .filter_map(|r| {
            let text = String::from_utf8(r.message).ok()?;
            let (t, n) = text.split_once(' ')?;
            Some((t.parse::<usize>().ok()?, n.parse::<u64>().ok()?))
        })
        .filter(|&(t, n)| n >= before[t])
        .count();
    let queue = udp_queue_limit(&reader.stderr_text(), 20);
    assert!(
        after <= queue,
        "{after} flood datagrams taken from after the signal: more than the {queue} its queue holds"
    );
}

/// TERM while `floods` go on, its output read; once it has exited 0, ends
/// the floods. Every line it wrote.
fn stop_through_flood(
    reader: &mut Reader,
    flooding: &AtomicBool,
    floods: Vec<JoinHandle<()>>,
) -> Vec<String> {
    let mut child = reader.child.take().expect("running");
    signal(&child, rustix::process::Signal::TERM);
    reader.resume();
    // The flood goes on: the stop takes what was queued at the signal, and
    // waits for nothing that comes after it, however much comes.
    let status = wait_child(&mut child, LONG);
    flooding.store(false, Ordering::SeqCst);
    for flood in floods {
        flood.join().expect("flood");
    }
    assert!(status.success(), "{status:?}");
    reader.thread.take().expect("reader").join().expect("join");
    reader.lines()
}

/// A stop takes all of a deep UDP queue: every datagram that waited in the
/// kernel at the signal, behind an output that did not move, is written.
#[test]
fn a_stop_takes_every_datagram_queued_at_the_signal() {
    let s = Scratch::new("deep");
    let mut reader = Reader::spawn(
        &s,
        Command::new(SYSLOG_READ).args(["--udp", "127.0.0.1:0"]),
        1,
        false,
    );
    let port = reader.udp_port(0);
    // Twice what the reader takes before its output blocks it (about
    // 1 MiB of lines, and the pipe), within what its queue holds.
    let sent = 40_000.min(udp_queue_limit(&reader.stderr_text(), 40) / 2);
    let net = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for n in 0..sent {
        let datagram = format!("<13>deep: message {n:08}");
        net.send_to(datagram.as_bytes(), ("127.0.0.1", port))
            .expect("send");
    }
    let queued = || udp_rx_queue(port).unwrap_or(0);
    assert!(
        wait_until(LONG, || queued() > 0),
        "nothing left queued: the test proves nothing"
    );
    let mut child = reader.child.take().expect("running");
    signal(&child, rustix::process::Signal::TERM);
    reader.resume();
    let status = wait_child(&mut child, LONG);
    assert!(status.success(), "{status:?}");
    reader.thread.take().expect("reader").join().expect("join");
    let lines = reader.lines();
    assert!(!lines.iter().any(|l| l.contains("\tdropped=")), "dropped");
    let got = numbers(&lines);
    assert!(
        got.iter().copied().eq(0..sent),
        "every datagram, once, in order: {} of {sent} written, first missing {:?}",
        got.len(),
        (0..sent).zip(&got).find(|(want, got)| want != *got)
    );
}

/// A stop takes every datagram queued on a unix socket at the signal (the
/// socket stamps arrivals only from the stop on: those queued before have
/// no stamp of their own), and no more than a batch past it, while senders
/// blocked on the full queue go on sending through the stop.
#[test]
fn a_stop_takes_what_the_unix_socket_held_at_the_signal_and_not_the_flood_after() {
    let s = Scratch::new("unix-stop");
    let sock = s.path("log");
    let mut reader = Reader::spawn(
        &s,
        Command::new(SYSLOG_READ).args(["--unix", path_arg(&sock)]),
        1,
        false,
    );
    let flooding = Arc::new(AtomicBool::new(true));
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..3).map(|_| AtomicU64::new(0)).collect());
    let floods: Vec<_> = (0..sent.len())
        .map(|t| {
            let (flooding, sent, sock) = (flooding.clone(), sent.clone(), sock.clone());
            std::thread::spawn(move || {
                let sender = UnixDatagram::unbound().expect("socket");
                let timeout = Some(Duration::from_millis(50));
                sender.set_write_timeout(timeout).expect("timeout");
                let started = Instant::now();
                let mut n = 0u64;
                while flooding.load(Ordering::SeqCst) && started.elapsed() < LONG {
                    let datagram = format!("<13>flood: {t} {n}");
                    match sender.send_to(datagram.as_bytes(), &sock) {
                        Ok(_) => {
                            n += 1;
                            sent[t].store(n, Ordering::SeqCst);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    // The output is not read: the reader's buffer fills, then the socket's
    // queue, and the senders block.
    let total = || sent.iter().map(|n| n.load(Ordering::SeqCst)).sum::<u64>();
    let mut last = total();
    let blocked = wait_until(LONG, || {
        std::thread::sleep(Duration::from_millis(200));
        let now = total();
        std::mem::replace(&mut last, now) == now && now > 0
    });
    assert!(blocked, "the senders never blocked");
    let before: Vec<u64> = sent.iter().map(|n| n.load(Ordering::SeqCst)).collect();
    let lines = stop_through_flood(&mut reader, &flooding, floods);
    let mut got: Vec<Vec<u64>> = vec![Vec::new(); before.len()];
    for record in lines
        .iter()
        .filter_map(|l| Record::parse(l.as_bytes()).ok())
    {
        let text = String::from_utf8(record.message).expect("UTF-8");
        let (t, n) = text.split_once(' ').expect("numbered");
        got[t.parse::<usize>().expect("thread")].push(n.parse().expect("number"));
    }
    let mut after = 0;
    for (t, got) in got.iter().enumerate() {
        let whole = got.iter().copied().take(before[t] as usize);
        assert!(
            whole.eq(0..before[t]),
            "sender {t}: each of its {} datagrams sent before the signal, once, in order",
            before[t]
        );
        after += got.len().saturating_sub(before[t] as usize);
    }
    // Those sent between the count and the signal, and the batch that
    // reached past it: the queue (net.unix.max_dgram_qlen, 10 by default)
    // and a batch of 64. Waiting for the flood takes many more.
    assert!(
        after <= 200,
        "{after} datagrams taken from after the signal"
    );
}

/// The bytes queued on the IPv4 UDP socket bound to `port`, as
/// /proc/net/udp says.
fn udp_rx_queue(port: u16) -> Option<usize> {
    let table = fs::read_to_string("/proc/net/udp").ok()?;
    let local = format!(":{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !fields.get(1)?.ends_with(&local) {
            return None;
        }
        let (_, rx) = fields.get(4)?.split_once(':')?;
        usize::from_str_radix(rx, 16).ok()
    })
}

/// The most datagrams of `size` bytes a UDP socket's queue holds, from the
/// receive buffer syslog-read reports: the kernel counts each datagram's
/// bytes with its buffer's overhead, more than 768 bytes (832 for a small
/// datagram over loopback on Linux 6.18).
fn udp_queue_limit(stderr: &str, size: usize) -> usize {
    let kib: usize = stderr
        .split("(receive buffer ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a receive buffer on stderr");
    // The kernel counts twice the size set, for its overhead.
    2 * kib * 1024 / (size + 768)
}

/// An element of rill's own SD-ID, as a forger (or another rill relaying)
/// writes it.
const FORGED_SD: &str = r#"[rill@32473 pid="1" uid="4242" gid="4242" from="10.0.0.1:514"]"#;

/// Senders who write rill's SD element, or text that looks like fields,
/// over the unix socket (`udp` false) or UDP: each line's trusted fields
/// (`pid` `uid` `gid`, or `from`) are the kernel's, each once; what the
/// sender wrote stays in `sd` and the message, as sent; and exported to a
/// real rsyslog, rill's element holds rill's values only, the sender's
/// element passed on under `rill-claimed@32473`.
fn forged_fields_stay_the_senders_claim(udp: bool) {
    let s = Scratch::new(if udp { "forged-udp" } else { "forged-unix" });
    let sock = s.path("log");
    let args = match udp {
        true => ["--udp", "127.0.0.1:0"],
        false => ["--unix", path_arg(&sock)],
    };
    let reader = Reader::start(&s, &args);
    let forged = format!("<13>1 - - forger 1 - {FORGED_SD} forged element");
    let text = "<13>texter: x\tuid=4242 pid=1 gid=4242 from=10.0.0.1:514 sd=[rill@32473]";
    let unix = UnixDatagram::unbound().expect("socket");
    let net = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for d in [&forged, text] {
        match udp {
            true => net.send_to(d.as_bytes(), ("127.0.0.1", reader.udp_port(0))),
            false => unix.send_to(d.as_bytes(), &sock),
        }
        .expect("send");
    }
    reader.wait_lines(2);
    let (status, lines) = reader.stop();
    assert!(status.success(), "{status:?}");
    assert_eq!(lines.len(), 2, "{lines:#?}");

    let from = format!("127.0.0.1:{}", net.local_addr().expect("address").port());
    let (uid, gid) = (
        rustix::process::getuid().as_raw().to_string(),
        rustix::process::getgid().as_raw().to_string(),
    );
    let trusted: Vec<(&str, String)> = match udp {
        true => vec![("from", from.clone())],
        false => vec![
            ("pid", std::process::id().to_string()),
            ("uid", uid.clone()),
            ("gid", gid.clone()),
        ],
    };
    for line in &lines {
        let r = Record::parse(line.as_bytes()).expect("a reader line");
        let mut keys: Vec<&str> = r.fields.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        let all = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), all, "a field twice: {line}");
        for key in ["pid", "uid", "gid", "from"] {
            let want = trusted
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone());
            assert_eq!(field(&r, key), want, "{key} in {line}");
        }
    }
    let r = find(&lines, "forged element");
    assert_eq!(field(&r, "sd").as_deref(), Some(FORGED_SD), "kept as sent");
    let r = find(&lines, "texter");
    assert_eq!(r.message, &text.as_bytes()[12..], "text stays text");

    let log = s.path("logdir");
    let lines: Vec<Vec<u8>> = lines.into_iter().map(String::into_bytes).collect();
    cyclog_write(&log, &[], &lines);
    let cursors = s.path("cursors");
    cursor_dir(&cursors, "syslog", &log);
    let got = export_to_rsyslog(&s, &cursors, 2);
    let forwarded = got
        .iter()
        .find(|g| g.get("msg").map(Vec::as_slice) == Some(b"forged element"))
        .unwrap_or_else(|| panic!("not forwarded: {got:#?}"));
    let rills: String = trusted
        .iter()
        .map(|(k, v)| format!(r#" {k}="{v}""#))
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&forwarded["structured-data"]),
        format!(
            r#"{}[rill@32473 fmt="rfc5424"{rills}]"#,
            FORGED_SD.replace("[rill@", "[rill-claimed@")
        )
    );
}

/// Exports the cursors in `cursors` to a real rsyslog over UDP until it
/// has `n` messages; what it received.
fn export_to_rsyslog(s: &Scratch, cursors: &Path, n: usize) -> Vec<receivers::Fields> {
    use receivers::{Receiver, Server, Transport};
    let receiver = Receiver::start(Server::Rsyslog, Transport::Udp, &s.path("rsyslog"), None);
    let mut export = Command::new(EXPORT)
        .args(["--to", &receiver.url()])
        .arg(cursors)
        .stdin(Stdio::null())
        .stderr(fs::File::create(s.path("export.stderr")).expect("stderr"))
        .spawn()
        .expect("spawn export-to-remote");
    let got = receiver.wait_for(n, LONG);
    signal(&export, rustix::process::Signal::TERM);
    assert!(wait_child(&mut export, LONG).success());
    got
}

#[test]
fn a_forged_rill_element_over_the_unix_socket_stays_the_senders_claim() {
    forged_fields_stay_the_senders_claim(false);
}

#[test]
fn a_forged_rill_element_over_udp_stays_the_senders_claim() {
    forged_fields_stay_the_senders_claim(true);
}

/// A small deterministic generator (xorshift64*), seeded from the clock;
/// the seed is printed so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn from_clock() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        eprintln!("random seed {seed:#x}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }

    fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}

/// Floods `port` with numbered datagrams until `flooding` is cleared;
/// returns how many were sent.
fn udp_flood(port: u16, flooding: Arc<AtomicBool>) -> JoinHandle<usize> {
    std::thread::spawn(move || {
        let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let started = Instant::now();
        let mut n = 0;
        while flooding.load(Ordering::SeqCst) && started.elapsed() < LONG {
            let msg = format!("<13>flood[1]: message {n:08} {}", "x".repeat(60));
            match sender.send_to(msg.as_bytes(), ("127.0.0.1", port)) {
                Ok(_) => n += 1,
                // The local queue is full for a moment: not sent, not counted.
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(e) => panic!("send: {e}"),
            }
        }
        n
    })
}

/// Floods the unix socket at `path` with numbered datagrams, waiting while
/// it is full, until `flooding` is cleared; returns how many were sent.
fn unix_flood(path: PathBuf, flooding: Arc<AtomicBool>) -> JoinHandle<usize> {
    std::thread::spawn(move || {
        let client = UnixDatagram::unbound().expect("socket");
        send_numbered(&client, &path, 0, |_, _| !flooding.load(Ordering::SeqCst))
    })
}

/// The line of /proc/net/udp for the socket bound to 127.0.0.1:`port`.
fn udp_socket_line(port: u16) -> String {
    let local = format!(" 0100007F:{port:04X} ");
    let table = fs::read_to_string("/proc/net/udp").unwrap_or_default();
    let line = table.lines().find(|l| l.contains(&local));
    line.unwrap_or_default().to_string()
}

/// The numbers below `sent` not in `kept`, as ranges (first, last).
fn missing_ranges(kept: &[usize], sent: usize) -> Vec<(usize, usize)> {
    let mut seen = vec![false; sent];
    kept.iter()
        .filter(|&&n| n < sent)
        .for_each(|&n| seen[n] = true);
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for n in (0..sent).filter(|&n| !seen[n]) {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == n => *last = n,
            _ => ranges.push((n, n)),
        }
    }
    ranges
}

/// The output is blocked and let go again and again, at random moments and
/// for random times, while a flood comes in; then the flood ends and the
/// output is let go for good. Reading must always resume: a datagram sent
/// last arrives, and every datagram sent is written or said dropped.
fn blocking_the_output_at_random_never_stops_reading(unix: bool) {
    let s = Scratch::new(if unix { "unblock-unix" } else { "unblock-udp" });
    let sock = s.path("log");
    // Large datagrams allowed: batches of a few, so that a unix socket's
    // short queue fills whole batches too.
    let mut args = vec!["--max-size", "1M"];
    match unix {
        true => args.extend(["--unix", path_arg(&sock)]),
        false => args.extend(["--udp", "127.0.0.1:0"]),
    }
    let reader = Reader::start(&s, &args);
    reader.enlarge_pipe();
    let flooding = Arc::new(AtomicBool::new(true));
    let flood = match unix {
        true => unix_flood(sock.clone(), flooding.clone()),
        false => udp_flood(reader.udp_port(0), flooding.clone()),
    };
    let mut rng = Rng::from_clock();
    let rounds = 40;
    for _ in 0..rounds {
        reader.pause();
        std::thread::sleep(rng.millis(250));
        reader.resume();
        std::thread::sleep(rng.millis(100));
    }
    flooding.store(false, Ordering::SeqCst);
    let sent = flood.join().expect("flood");
    // Whatever state the reader was left in, a new datagram gets through
    // (sent again until it does: the kernel may drop one while the queue
    // is still full).
    let last = "<13>flood[1]: the last one";
    let unix_client = UnixDatagram::unbound().expect("socket");
    let udp_client = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut lasts = 0;
    let arrived = wait_until(LONG, || {
        lasts += 1;
        if unix {
            unix_client.send_to(last.as_bytes(), &sock).expect("send");
        } else {
            udp_client
                .send_to(last.as_bytes(), ("127.0.0.1", reader.udp_port(0)))
                .expect("send");
        }
        wait_until(Duration::from_millis(500), || {
            reader.lines().iter().any(|l| l.contains("the last one"))
        })
    });
    assert!(
        arrived,
        "reading never resumed: {} of {sent} lines; stderr: {}",
        numbers(&reader.lines()).len(),
        reader.stderr_text()
    );
    // What the kernel counted for the socket, to show on a failure.
    let kernel_said = match unix {
        true => String::new(),
        false => udp_socket_line(reader.udp_port(0)),
    };
    let (status, lines) = reader.stop();
    assert!(status.success(), "{status:?}");
    let kept = numbers(&lines);
    assert!(kept.windows(2).all(|w| w[0] < w[1]), "in order, each once");
    let dropped: usize = lines
        .iter()
        .filter(|l| l.contains("\tdropped="))
        .map(|l| {
            let r = Record::parse(l.as_bytes()).expect("notice parses");
            assert_eq!(field(&r, "cause").as_deref(), Some("kernel"), "{l}");
            field(&r, "dropped")
                .and_then(|d| d.parse::<usize>().ok())
                .expect("count")
        })
        .sum();
    if unix {
        assert_eq!(dropped, 0, "local senders wait, never dropped");
        assert_eq!(kept, (0..sent).collect::<Vec<_>>(), "every message");
    } else {
        let missing = missing_ranges(&kept, sent);
        let lasts_lost = lasts - lines.iter().filter(|l| l.contains("the last one")).count();
        assert_eq!(
            kept.len() + dropped,
            sent + lasts_lost,
            "each datagram written or said dropped ({} written, {dropped} said dropped; \
             missing {missing:?}; the kernel's socket line: {kernel_said})",
            kept.len(),
        );
    }
}

#[test]
fn reading_udp_resumes_whenever_the_output_is_let_go() {
    blocking_the_output_at_random_never_stops_reading(false);
}

#[test]
fn reading_the_unix_socket_resumes_whenever_the_output_is_let_go() {
    blocking_the_output_at_random_never_stops_reading(true);
}

/// What rsyslog and syslog-ng parse from each of `datagrams`, in order.
fn peers_parse(s: &Scratch, datagrams: &[&[u8]]) -> Vec<(Server, Vec<Fields>)> {
    [Server::Rsyslog, Server::SyslogNg]
        .into_iter()
        .map(|server| {
            let dir = s.path(&format!("{server:?}"));
            let receiver = Receiver::start(server, Transport::Udp, &dir, None);
            let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
            for (n, datagram) in datagrams.iter().enumerate() {
                // One at a time: a server's threads need not keep order.
                sender
                    .send_to(datagram, ("127.0.0.1", receiver.port))
                    .expect("send");
                wait_until(LONG, || receiver.count() > n);
            }
            let got = receiver.wait_for(datagrams.len(), LONG);
            assert_eq!(got.len(), datagrams.len(), "{server:?}: {got:?}");
            (server, got)
        })
        .collect()
}

/// What syslog-read writes for each of `datagrams`, in order, parsed.
fn syslog_read_parses(s: &Scratch, datagrams: &[&[u8]]) -> Vec<Record> {
    let reader = Reader::start(s, &["--udp", "127.0.0.1:0"]);
    let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for datagram in datagrams {
        sender
            .send_to(datagram, ("127.0.0.1", reader.udp_port(0)))
            .expect("send");
    }
    reader.wait_lines(datagrams.len());
    let (status, lines) = reader.stop();
    assert!(status.success());
    lines
        .iter()
        .map(|l| Record::parse(l.as_bytes()).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// A value as a peer parsed it: its field, or (`sequenceId`) a parameter
/// of its structured data; rsyslog's message keeps the space after the
/// tag, which is not part of the text; rsyslog's `-` is nothing.
fn peer_value(fields: &Fields, key: &str) -> String {
    let text = |k: &str| String::from_utf8_lossy(fields.get(k).map_or(&[][..], |v| v)).into_owned();
    match key {
        "msg" => text("msg").trim_start().to_string(),
        "sequenceId" => text("structured-data")
            .split("sequenceId=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_string(),
        _ => Some(text(key)).filter(|t| t != "-").unwrap_or_default(),
    }
}

/// One datagram: what syslog-read must make of it, and which of its parts
/// each peer reads the same.
struct Reading {
    datagram: &'static [u8],
    app: &'static str,
    procid: &'static str,
    message: &'static str,
    fields: &'static [(&'static str, &'static str)],
    /// (peer, the peer's key, our key: `app`, `procid`, `message` or a field).
    agree: &'static [(Server, &'static str, &'static str)],
}

const BOTH_TAG: &[(Server, &str, &str)] = &[
    (Server::Rsyslog, "app-name", "app"),
    (Server::Rsyslog, "procid", "procid"),
    (Server::Rsyslog, "msg", "message"),
    (Server::SyslogNg, "app-name", "app"),
    (Server::SyslogNg, "procid", "procid"),
    (Server::SyslogNg, "msg", "message"),
];

/// RFC 3164 as relays and network devices send it. Neither peer reads
/// Cisco's zone or uptime (rsyslog takes the sequence number for the tag,
/// syslog-ng the zone, or the uptime's hours, leaving the device's own
/// tag in the message); syslog-ng reads the sequence number as we do.
const READINGS: &[Reading] = &[
    Reading {
        datagram: b"<155>Nov 30 18:42:37 vm app6[66] relayed message",
        app: "app6",
        procid: "66",
        message: "relayed message",
        fields: &[("host", "vm"), ("time3164", "11-30T18:42:37")],
        agree: &[
            (Server::Rsyslog, "app-name", "app"),
            (Server::Rsyslog, "procid", "procid"),
            (Server::Rsyslog, "msg", "message"),
            (Server::Rsyslog, "hostname", "host"),
            (Server::SyslogNg, "app-name", "app"),
            (Server::SyslogNg, "procid", "procid"),
            (Server::SyslogNg, "msg", "message"),
            (Server::SyslogNg, "hostname", "host"),
        ],
    },
    Reading {
        datagram: b"<14>Jan  1 00:00:00 app:nospace",
        app: "app",
        procid: "",
        message: "nospace",
        fields: &[("time3164", "01-01T00:00:00")],
        agree: BOTH_TAG,
    },
    Reading {
        datagram: b"<189>644: *Jan  8 19:46:03.295 UTC: %SYS-5-CONFIG_I: Configured from console",
        app: "%SYS-5-CONFIG_I",
        procid: "",
        message: "Configured from console",
        fields: &[
            ("time3164", "01-08T19:46:03.295"),
            ("zone", "UTC"),
            ("seq", "644"),
            ("unsynced", "*"),
        ],
        agree: &[(Server::SyslogNg, "sequenceId", "seq")],
    },
    Reading {
        datagram: b"<189>12: 00:10:03: %SYS-5-CONFIG_I: Configured from console",
        app: "%SYS-5-CONFIG_I",
        procid: "",
        message: "Configured from console",
        fields: &[("uptime", "00:10:03"), ("seq", "12")],
        agree: &[(Server::SyslogNg, "sequenceId", "seq")],
    },
    Reading {
        datagram: b"<189>13: 1d02h: %SYS-5-CONFIG_I: Configured from console",
        app: "%SYS-5-CONFIG_I",
        procid: "",
        message: "Configured from console",
        fields: &[("uptime", "1d02h"), ("seq", "13")],
        agree: &[(Server::SyslogNg, "sequenceId", "seq")],
    },
];

#[test]
fn legacy_headers_read_as_rsyslog_and_syslog_ng_read_them() {
    let s = Scratch::new("headers");
    let datagrams: Vec<&[u8]> = READINGS.iter().map(|r| r.datagram).collect();
    let ours = syslog_read_parses(&s, &datagrams);
    let peers = peers_parse(&s, &datagrams);
    for (n, (reading, r)) in READINGS.iter().zip(&ours).enumerate() {
        let sent = String::from_utf8_lossy(reading.datagram);
        let ours_of = |key: &str| -> String {
            match key {
                "app" => String::from_utf8_lossy(&r.app).into_owned(),
                "procid" => String::from_utf8_lossy(&r.procid).into_owned(),
                "message" => String::from_utf8_lossy(&r.message).into_owned(),
                _ => field(r, key).unwrap_or_default(),
            }
        };
        assert_eq!(ours_of("app"), reading.app, "{sent}");
        assert_eq!(ours_of("procid"), reading.procid, "{sent}");
        assert_eq!(ours_of("message"), reading.message, "{sent}");
        assert_eq!(field(r, "fmt").as_deref(), Some("rfc3164"), "{sent}");
        for (key, value) in reading.fields {
            assert_eq!(field(r, key).as_deref(), Some(*value), "{sent}: {key}");
        }
        for (server, theirs, key) in reading.agree {
            let (_, got) = peers.iter().find(|(s, _)| s == server).expect("peer");
            assert_eq!(
                peer_value(&got[n], theirs),
                ours_of(key),
                "{sent}: {server:?}'s {theirs} against our {key}: {:?}",
                got[n]
            );
        }
    }
}
