//! `cyclog --split-by FIELD ROOT`: one log directory per host (or other
//! field), through the real binary, pipes and signals; read back with the
//! tests' own log directory reader, log-show and export-to-remote.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;

use common::receivers::*;
use common::*;
use rill::format::host_dirname::{self, Value};
use rill::format::reader_line::{Priority, Record};
use rustix::process::Signal;

/// A reader line from `host` (no host field if `None`).
fn line(host: Option<&[u8]>, msg: &str) -> Vec<u8> {
    let mut r = Record::new(
        Priority::parse("daemon.info").expect("priority"),
        msg.as_bytes(),
    );
    r.app = b"app".to_vec();
    if let Some(host) = host {
        r.push_field("host", host);
    }
    r.push_field("from", "127.0.0.1:514");
    r.to_line()
}

/// `count` lines from `hosts` hosts, round robin: (host, line).
fn fleet(hosts: usize, count: usize) -> Vec<(String, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let host = format!("host{:03}", i % hosts);
            let text = format!("message {i:08} {}", "x".repeat(i % 61));
            let l = line(Some(host.as_bytes()), &text);
            (host, l)
        })
        .collect()
}

fn lines_of(fleet: &[(String, Vec<u8>)]) -> Vec<Vec<u8>> {
    fleet.iter().map(|(_, l)| l.clone()).collect()
}

/// The directories under `root` by name, each with its lines; fails on
/// anything in `root` that is not such a directory.
fn read_root(root: &Path) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut dirs = BTreeMap::new();
    for entry in fs::read_dir(root).expect("read root") {
        let entry = entry.expect("entry");
        let name = entry.file_name().into_string().expect("an ASCII name");
        assert!(
            entry.file_type().expect("type").is_dir(),
            "{name}: not a directory"
        );
        dirs.insert(name, texts(&read_logdir(&entry.path())));
    }
    dirs
}

/// The host field of a line, as the tests' own parse sees it.
fn host_of(line: &[u8]) -> Option<Vec<u8>> {
    Record::parse(line)
        .ok()
        .and_then(|r| r.field("host").map(<[u8]>::to_vec))
}

/// Each host's lines, in order, as they went in.
fn by_host(lines: &[Vec<u8>]) -> BTreeMap<Option<Vec<u8>>, Vec<Vec<u8>>> {
    let mut want: BTreeMap<Option<Vec<u8>>, Vec<Vec<u8>>> = BTreeMap::new();
    for l in lines {
        want.entry(host_of(l)).or_default().push(l.clone());
    }
    want
}

/// Every line is in the directory of its host, once, in order; each
/// directory holds one host's lines (or the lines without one, in `%none`),
/// and its name says that host.
fn assert_split_by_host(root: &Path, lines: &[Vec<u8>]) {
    let got = read_root(root);
    let want = by_host(lines);
    assert_eq!(got.len(), want.len(), "directories: {:?}", got.keys());
    for (host, want_lines) in &want {
        let name = match host {
            Some(h) => host_dirname::dirname_of(h),
            None => "%none".to_string(),
        };
        let got_lines = got
            .get(&name)
            .unwrap_or_else(|| panic!("no directory {name} for {host:?}"));
        assert_same_lines(got_lines, want_lines, &name);
        if let Some(h) = host {
            match host_dirname::value_of(&name).expect("a name of the mapping") {
                Value::Whole(v) => assert_eq!(&v, h, "{name}"),
                Value::Start(v) => assert!(h.starts_with(&v), "{name}"),
            }
        }
    }
}

fn run(args: &[&str], input: &[u8]) -> (i32, String) {
    run_with_input(CYCLOG, args, input)
}

/// log-show with `args`, then the directories of `root` as the shell's
/// glob `root/*/` names them: its standard output.
fn log_show_glob(args: &str, root: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("\"$0\" --no-pager -n all {args} \"$1\"/*/"))
        .arg(LOG_SHOW)
        .arg(root)
        .output()
        .expect("log-show");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn hostile_host_names_never_leave_root_nor_share_a_directory() {
    let s = Scratch::new("split-hostile");
    let root = s.path("root");
    let long = vec![b'h'; 10 << 10];
    let mut long2 = long.clone();
    long2.push(b'2');
    let hosts: Vec<Vec<u8>> = vec![
        b"..".to_vec(),
        b".".to_vec(),
        b"../../etc".to_vec(),
        b"../../../../../../tmp/escaped".to_vec(),
        b"/".to_vec(),
        b"a/b".to_vec(),
        b"".to_vec(),
        long,
        long2,
        b"\xff\xfe not utf-8".to_vec(),
        b"Web01".to_vec(),
        b"web01".to_vec(),
        b"WEB01".to_vec(),
        b"%none".to_vec(),
        b"%empty".to_vec(),
        b"%41".to_vec(),
        b"A".to_vec(),
        b"-rf".to_vec(),
        b"lock".to_vec(),
        b"current".to_vec(),
        b"@4000000000000000".to_vec(),
        b"tab\there\nnewline".to_vec(),
    ];
    let mut lines = Vec::new();
    for round in 0..3 {
        for (i, h) in hosts.iter().enumerate() {
            lines.push(line(Some(h), &format!("round {round} host {i}")));
        }
        lines.push(line(None, &format!("round {round} without a host")));
        lines.push(format!("round {round}: not a reader line").into_bytes());
    }
    let (code, err) = run(&["--split-by", "host", path_arg(&root)], &joined(&lines));
    assert_eq!(code, 0, "{err}");
    assert_split_by_host(&root, &lines);
    // hosts, and %none for the lines without one or not reader lines.
    assert_eq!(read_root(&root).len(), hosts.len() + 1);
    assert!(!s.path("etc").exists() && !s.root.join("../etc/root").exists());
    assert!(!Path::new("/tmp/escaped").exists());
    for name in read_root(&root).keys() {
        assert!(name.len() <= 200 && !name.starts_with('.'), "{name}");
    }
}

#[test]
fn facility_splits_an_auth_directory_apart() {
    let s = Scratch::new("split-facility");
    let root = s.path("root");
    let lines = vec![
        b"auth.notice sshd[7]: accepted publickey\thost=web01".to_vec(),
        b"daemon.info cron[8]: job ran\thost=web01".to_vec(),
        b"authpriv.info sudo: session opened\thost=db1".to_vec(),
        b"auth.err sshd[9]: failed password\thost=db1".to_vec(),
    ];
    let (code, err) = run(
        &["--split-by", "facility", path_arg(&root)],
        &joined(&lines),
    );
    assert_eq!(code, 0, "{err}");
    let got = read_root(&root);
    assert_eq!(got["auth"], vec![lines[0].clone(), lines[3].clone()]);
    assert_eq!(got["daemon"], vec![lines[1].clone()]);
    assert_eq!(got["authpriv"], vec![lines[2].clone()]);
}

/// Many hosts, few directories open at once, small files that rotate often,
/// and 50 kills -9 at random moments: every line once, in order, in its
/// host's directory.
#[test]
fn kill_9_loses_nothing_and_writes_nothing_twice_in_any_hosts_directory() {
    const KILLS: usize = 50;
    let s = Scratch::new("split-kill9");
    let root = s.path("root");
    let mut sup = Supervised::new(
        CYCLOG,
        &[
            "--split-by",
            "host",
            "--max-open-dirs",
            "8",
            "--max-file-size",
            "8k",
            "--max-total-size",
            "1G",
            path_arg(&root),
        ],
        s.path("stderr"),
    );
    let fleet = fleet(37, 30_000);
    let mut lines = lines_of(&fleet);
    // Some lines without a host, one longer than the longest line (split
    // into pieces, each stamped).
    lines.insert(1000, b"a plain line".to_vec());
    lines.insert(15_000, vec![b'y'; 200 << 10]);
    let kills = kill_9_while_feeding(&mut sup, joined(&lines), KILLS, (700, 9000), 4242);
    assert_eq!(sup.wait(LONG).code(), Some(0), "{}", sup.stderr_text());
    assert!(kills >= KILLS / 2, "only {kills} kills happened");
    let mut got = read_root(&root);
    let none = got.get_mut("%none").expect("%none");
    let mut joined_back: Vec<Vec<u8>> = Vec::new();
    for l in none.drain(..) {
        match joined_back.last_mut() {
            Some(prev) if prev.starts_with(b"yyy") && l.starts_with(b"yyy") => {
                prev.extend_from_slice(&l)
            }
            _ => joined_back.push(l),
        }
    }
    *none = joined_back;
    let want = by_host(&lines);
    assert_eq!(got.len(), want.len(), "{:?}", got.keys());
    for (host, want_lines) in &want {
        let name = host
            .as_ref()
            .map_or("%none".to_string(), |h| host_dirname::dirname_of(h));
        assert_same_lines(
            &got[&name],
            want_lines,
            &format!("{name} after {kills} kills"),
        );
    }
}

#[test]
fn each_directory_keeps_its_caps_and_root_its_total() {
    caps_kept("split-caps", "128");
}

/// The same with most directories closed: the oldest archive of all may
/// be in a directory not open.
#[test]
fn root_total_is_kept_across_directories_not_open() {
    caps_kept("split-caps-closed", "3");
}

fn caps_kept(tag: &str, open: &str) {
    let s = Scratch::new(tag);
    let root = s.path("root");
    let fleet = fleet(10, 40_000);
    let lines = lines_of(&fleet);
    let (code, err) = run(
        &[
            "--split-by",
            "host",
            "--max-file-size",
            "4096",
            "--max-files",
            "30",
            "--max-root-size",
            "600k",
            "--max-open-dirs",
            open,
            path_arg(&root),
        ],
        &joined(&lines),
    );
    assert_eq!(code, 0, "{err}");
    let mut total = 0;
    for entry in fs::read_dir(&root).expect("root") {
        let dir = entry.expect("entry").path();
        let archives = archives(&dir);
        assert!(
            archives.len() <= 30,
            "{}: {}",
            dir.display(),
            archives.len()
        );
        for f in fs::read_dir(&dir).expect("dir") {
            let f = f.expect("file");
            let name = f.file_name().into_string().expect("name");
            if name == "current" || is_archive_name(&name) {
                let size = f.metadata().expect("stat").len();
                assert!(size <= 4096, "{name}: {size}");
                total += size;
            }
        }
        // The newest lines stay: the last line of each host is there.
        let host = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let last = fleet.iter().rev().find(|(h, _)| *h == host).expect("host");
        let got = texts(&read_logdir(&dir));
        assert_eq!(got.last(), Some(&last.1), "{host}");
    }
    assert!(total <= 600 << 10, "ROOT holds {total} bytes");
    assert!(total > 400 << 10, "ROOT holds only {total} bytes");
}

/// The descriptors of `pid` open on a `lock` under `root`: one per open
/// log directory.
fn open_locks(pid: u32, root: &Path) -> usize {
    let root = fs::canonicalize(root).expect("root");
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
                .filter(|target| target.starts_with(&root) && target.ends_with("lock"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn no_more_directories_are_open_than_the_bound_and_alrm_rotates_the_closed_ones() {
    let s = Scratch::new("split-bound");
    let root = s.path("root");
    let mut sup = Supervised::new(
        CYCLOG,
        &[
            "--split-by",
            "host",
            "--max-open-dirs",
            "3",
            path_arg(&root),
        ],
        s.path("stderr"),
    );
    sup.start();
    let pid = sup.child.as_ref().expect("running").id();
    let fleet = fleet(10, 2_000);
    let lines = lines_of(&fleet);
    let mut most = 0;
    for part in lines.chunks(100) {
        sup.send(&joined(part));
        assert!(wait_until(LONG, || sup.drained()), "input not taken");
        most = most.max(open_locks(pid, &root));
    }
    assert!(most > 0, "no directory seen open");
    assert!(most <= 3, "{most} directories open at once");
    // ALRM: every directory with lines rotates, open or not.
    sup.signal(Signal::ALARM);
    let all_rotated = || {
        (0..10).all(|h| {
            let dir = root.join(format!("host{h:03}"));
            archives(&dir).len() == 1
                && fs::metadata(dir.join("current")).is_ok_and(|m| m.len() == 0)
        })
    };
    assert!(
        wait_until(LONG, all_rotated),
        "{:?}",
        read_root(&root).keys()
    );
    sup.send(&joined(&lines[..10]));
    sup.close_input();
    assert_eq!(sup.wait(LONG).code(), Some(0), "{}", sup.stderr_text());
    let all = [lines.clone(), lines[..10].to_vec()].concat();
    assert_split_by_host(&root, &all);
    // Open at the stop or closed before it, each current is left finished.
    for h in 0..10 {
        let current = root.join(format!("host{h:03}/current"));
        assert_eq!(mode(&current), 0o744, "{}", current.display());
    }
}

#[test]
fn a_second_splitter_on_the_same_root_is_refused() {
    let s = Scratch::new("split-lock");
    let root = s.path("root");
    let mut sup = Supervised::new(
        CYCLOG,
        &["--split-by", "host", path_arg(&root)],
        s.path("stderr"),
    );
    sup.start();
    // The first holds the lock once it has written a line: `start` returns
    // when it holds its signals, which may be before it locks the root.
    sup.send(b"user.notice app: first\thost=a\n");
    let first = root.join("a").join("current");
    assert!(
        wait_until(LONG, || fs::metadata(&first).is_ok_and(|m| m.len() > 0)),
        "{}",
        sup.stderr_text()
    );
    let (code, err) = run(&["--split-by", "host", path_arg(&root)], b"x\n");
    assert_eq!(code, 111, "{err}");
    assert!(err.contains("locked"), "{err}");
    sup.close_input();
    assert_eq!(sup.wait(LONG).code(), Some(0), "{}", sup.stderr_text());
}

#[test]
fn a_script_or_a_second_directory_with_split_by_is_a_usage_error() {
    for args in [
        &["--split-by", "host", "root", "t", "./other"][..],
        &["--split-by", "host", "t"],
        &["--split-by", "host", "./a", "./b"],
        &["--split-by", "no such field!", "./a"],
        &["--split-by", "host"],
        &["--max-open-dirs", "4", "./a"],
        &["--max-root-size", "1M", "s100", "./a"],
    ] {
        let (code, err) = run(args, b"");
        assert_eq!(code, 100, "{args:?}: {err}");
        assert!(err.contains("cyclog: fatal:"), "{args:?}: {err}");
    }
}

#[test]
fn log_show_reads_a_glob_of_the_host_directories() {
    let s = Scratch::new("split-show");
    let root = s.path("root");
    let fleet = fleet(5, 500);
    let (code, err) = run(
        &["--split-by", "host", path_arg(&root)],
        &joined(&lines_of(&fleet)),
    );
    assert_eq!(code, 0, "{err}");
    let got: BTreeSet<String> = log_show_glob("-o cat", &root)
        .lines()
        .map(String::from)
        .collect();
    // -o cat shows the host before the message.
    let want: BTreeSet<String> = (0..500)
        .map(|i| format!("host{:03} message {i:08} {}", i % 5, "x".repeat(i % 61)))
        .collect();
    assert!(
        got == want,
        "{} lines shown, {} expected",
        got.len(),
        want.len()
    );
    // One host's directory alone, with a field filter across all.
    let shown = log_show_glob("-o cat host=host003", &root);
    assert_eq!(shown.lines().count(), 100);
}

#[test]
fn export_to_remote_forwards_a_glob_of_the_host_directories() {
    let s = Scratch::new("split-export");
    let root = s.path("root");
    let fleet = fleet(7, 700);
    let (code, err) = run(
        &["--split-by", "host", path_arg(&root)],
        &joined(&lines_of(&fleet)),
    );
    assert_eq!(code, 0, "{err}");
    let cursors = s.path("cursors");
    let made = Command::new("sh")
        .arg("-c")
        .arg(
            "for d in \"$0\"/*/; do n=$(basename \"$d\"); mkdir -p \"$1/$n\" && \
             ln -s \"$d\" \"$1/$n/main\" || exit 1; done",
        )
        .arg(&root)
        .arg(&cursors)
        .status()
        .expect("sh");
    assert!(made.success());
    let receiver = Receiver::start(Server::Rsyslog, Transport::Tcp, &s.path("server"), None);
    let mut export = std::process::Command::new(EXPORT)
        .args(["--to", &receiver.url()])
        .arg(&cursors)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(
            fs::File::create(s.path("export.stderr")).expect("stderr"),
        ))
        .spawn()
        .expect("export-to-remote");
    let got = receiver.wait_for(700, LONG);
    signal(&export, Signal::TERM);
    let status = wait_child(&mut export, LONG);
    let err = fs::read_to_string(s.path("export.stderr")).unwrap_or_default();
    assert!(status.success(), "{err}");
    let msgs: BTreeSet<Vec<u8>> = got.iter().filter_map(|f| f.get("msg").cloned()).collect();
    let want: BTreeSet<Vec<u8>> = (0..700)
        .map(|i| format!("message {i:08} {}", "x".repeat(i % 61)).into_bytes())
        .collect();
    assert_eq!(got.len(), 700, "{err}");
    assert_eq!(msgs, want);
}

/// A full disk holds the input, for the directories not yet made as for
/// those being written; once there is room, every line is in its place.
#[test]
fn a_full_disk_holds_the_input_then_every_line_lands_once() {
    require_root();
    let s = Scratch::new("split-full");
    let mnt = Mount::tmpfs(&s.path("mnt"), "8m");
    let root = mnt.path.join("root");
    let filler = mnt.path.join("filler");
    fill(&filler);
    let mut sup = Supervised::new(
        CYCLOG,
        &["--split-by", "host", path_arg(&root)],
        s.path("stderr"),
    );
    sup.start();
    let lines = lines_of(&fleet(20, 40_000));
    let producer = feed_a_full_disk(&sup, joined(&lines));
    fs::remove_file(&filler).expect("free space");
    producer.join().expect("producer");
    sup.close_input();
    assert_eq!(sup.wait(LONG).code(), Some(0), "{}", sup.stderr_text());
    assert!(
        sup.stderr_text().contains("writing again"),
        "{}",
        sup.stderr_text()
    );
    assert_split_by_host(&root, &lines);
}

/// The receiving end as the services run it: syslog-read on UDP into
/// cyclog --split-by host. Datagrams naming hosts, hostile ones among
/// them: each lands in the directory of the host it names.
#[test]
fn syslog_read_into_split_by_host_one_directory_per_sender() {
    let s = Scratch::new("split-syslog-read");
    let root = s.path("root");
    let reader_err = s.path("syslog-read.stderr");
    let mut reader = std::process::Command::new(SYSLOG_READ)
        .args(["--udp", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(fs::File::create(&reader_err).expect("stderr"))
        .spawn()
        .expect("spawn syslog-read");
    let mut cyclog = std::process::Command::new(CYCLOG)
        .args(["--split-by", "host", path_arg(&root)])
        .stdin(reader.stdout.take().expect("stdout"))
        .spawn()
        .expect("spawn cyclog");
    let said = || fs::read_to_string(&reader_err).unwrap_or_default();
    assert!(
        wait_until(LONG, || said().contains("receiving on")),
        "syslog-read not ready: {}",
        said()
    );
    let port = said()
        .lines()
        .find_map(|l| l.split("receiving on udp 127.0.0.1:").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse::<u16>().ok())
        .expect("the UDP port on stderr");
    let net = std::net::UdpSocket::bind("127.0.0.1:0").expect("UDP socket");
    let hosts = ["web01", "db1", "..", "a/b", "Web01"];
    for round in 0..20 {
        for h in hosts {
            let datagram = format!("<13>1 2026-12-01T00:00:00Z {h} app - - - round {round}");
            net.send_to(datagram.as_bytes(), ("127.0.0.1", port))
                .expect("send UDP");
        }
    }
    // Every line written: the LFs in all the currents, read as they grow.
    let written = || {
        fs::read_dir(&root).map_or(0, |dirs| {
            dirs.filter_map(|d| fs::read(d.ok()?.path().join("current")).ok())
                .map(|c| c.iter().filter(|&&b| b == b'\n').count())
                .sum::<usize>()
        })
    };
    assert!(
        wait_until(LONG, || written() >= 20 * hosts.len()),
        "{} lines written",
        written()
    );
    signal(&reader, Signal::TERM);
    assert!(wait_child(&mut reader, LONG).success(), "{}", said());
    assert!(wait_child(&mut cyclog, LONG).success());
    let got = read_root(&root);
    let names: BTreeSet<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["web01", "db1", "%2E.", "a%2Fb", "Web01"])
    );
    for (name, lines) in &got {
        assert_eq!(lines.len(), 20, "{name}");
        for l in lines {
            let host = host_of(l).expect("a host field");
            assert_eq!(host_dirname::dirname_of(&host), *name);
        }
    }
}
