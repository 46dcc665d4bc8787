//! log-show over directories with known stamps, written directly and by
//! cyclog, through real pipes, a terminal and signals.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use common::*;
use rustix::process::Signal;

/// What log-show says when no line is shown, as journalctl does.
const NO_ENTRIES: &str = "-- No entries --";

/// 2026-11-21T00:53:10Z, as Unix time.
const T: u64 = 1_795_222_390;

/// The stamp of `T + secs` UTC, true TAI, as its label.
fn label(secs: u64, nanos: u32) -> String {
    format!("@{:016x}{:08x}", (1u64 << 62) + T + secs + 37, nanos)
}

/// `T + secs` as log-show shows it with --utc.
fn utc(secs: u64, micros: u32) -> String {
    let t = T + secs;
    let (h, m, s) = ((t / 3600) % 24, (t / 60) % 60, t % 60);
    format!("2026-11-21T{h:02}:{m:02}:{s:02}.{micros:06}Z")
}

/// A file of a log directory, its lines stamped `T + secs` (`None`: no stamp).
fn write_file(dir: &Path, name: &str, lines: &[(Option<u64>, &str)]) {
    fs::create_dir_all(dir).expect("log directory");
    let body: String = lines
        .iter()
        .map(|(secs, text)| match secs {
            Some(s) => format!("{} {text}\n", label(*s, 0)),
            None => format!("{text}\n"),
        })
        .collect();
    fs::write(dir.join(name), body).expect("write log file");
}

/// The name of an archive rotated at `T + secs`.
fn archive(secs: u64) -> String {
    format!("{}.s", label(secs, 0))
}

/// An archive that fails if anything opens it to read: it must never be.
fn trap(dir: &Path, secs: u64) {
    fs::create_dir_all(dir.join(archive(secs))).expect("trap");
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.out.lines().collect()
    }

    /// Each line without its time.
    fn texts(&self) -> Vec<String> {
        self.out.lines().map(text_of).collect()
    }

    /// Each line's last word.
    fn last_words(&self) -> Vec<String> {
        self.out
            .lines()
            .map(|l| l.rsplit(' ').next().unwrap_or("").to_string())
            .collect()
    }
}

fn run_with(args: &[&str], input: &[u8], env: &[(&str, &str)]) -> Run {
    let ran = run_piped(LOG_SHOW, args, env, input);
    Run {
        code: ran.code,
        out: String::from_utf8(ran.stdout).expect("output is UTF-8"),
        err: ran.stderr,
    }
}

fn run(args: &[&str]) -> Run {
    run_with(args, b"", &[("TZ", "UTC")])
}

#[test]
fn directories_merge_by_stamp_with_their_names() {
    let s = Scratch::new("merge");
    let (a, b) = (s.path("var/sshd"), s.path("var/cron"));
    write_file(&a, &archive(3), &[(Some(0), "a0"), (Some(2), "a2")]);
    write_file(
        &a,
        "current",
        &[(Some(4), "a4"), (None, "a-unstamped"), (Some(6), "a6")],
    );
    write_file(&b, &archive(2), &[(Some(1), "b1"), (Some(2), "b2")]);
    write_file(&b, "current", &[(Some(4), "b4"), (Some(5), "b5")]);
    let r = run(&["--utc", path_arg(&a), path_arg(&b)]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    let t = |secs| utc(secs, 0);
    assert_eq!(
        r.lines(),
        [
            format!("{} sshd a0", t(0)),
            format!("{} cron b1", t(1)),
            // Equal stamps: the directory named first, first.
            format!("{} sshd a2", t(2)),
            format!("{} cron b2", t(2)),
            format!("{} sshd a4", t(4)),
            "sshd a-unstamped".to_string(),
            format!("{} cron b4", t(4)),
            format!("{} cron b5", t(5)),
            format!("{} sshd a6", t(6)),
        ]
    );
    // One directory: no name. --raw: the lines as stored, one merged stream.
    assert_eq!(
        run(&["--utc", path_arg(&b)]).lines()[0],
        format!("{} b1", t(1))
    );
    let raw = run(&["--raw", path_arg(&a), path_arg(&b)]);
    assert_eq!(
        raw.lines()[..2],
        [format!("{} a0", label(0, 0)), format!("{} b1", label(1, 0))]
    );
    assert_eq!(raw.lines()[5], "a-unstamped");
}

#[test]
fn since_and_until_are_inclusive_and_read_only_what_they_need() {
    let s = Scratch::new("window");
    let d = s.path("log");
    // Opening either trap fails: the window must skip them by their names.
    trap(&d, 10);
    write_file(
        &d,
        &archive(20),
        &[(Some(11), "l11"), (Some(12), "l12"), (Some(13), "l13")],
    );
    write_file(&d, &archive(30), &[(Some(21), "l21"), (Some(22), "l22")]);
    trap(&d, 40);
    write_file(&d, "current", &[(Some(41), "l41")]);
    let texts = Run::last_words;
    let since = utc(12, 0);
    let until = utc(21, 0);
    let r = run(&["--utc", "--since", &since, "--until", &until, path_arg(&d)]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert_eq!(texts(&r), ["l12", "l13", "l21"]);
    // An offset, a fraction, and the stamp itself name the same instants.
    let r = run(&[
        "--since",
        "2026-11-21 01:53:31.000+01:00",
        "--until",
        &label(22, 0),
        path_arg(&d),
    ]);
    assert_eq!(texts(&r), ["l21", "l22"]);
    // Just after a line, and just before one.
    let r = run(&[
        "-S",
        &label(12, 1),
        "-U",
        &label(20, 999_999_999),
        path_arg(&d),
    ]);
    assert_eq!(texts(&r), ["l13"]);
    // Ahead of every line: nothing read but current.
    let r = run(&["--since", "+1h", path_arg(&d)]);
    assert_eq!((r.code, r.lines()), (0, vec![NO_ENTRIES]), "{}", r.err);
    let r = run(&["--until", &label(41, 0), path_arg(&d)]);
    assert_eq!(r.code, 111, "the traps are read when nothing is skipped");
    assert!(r.err.contains(&archive(10)), "{}", r.err);
}

#[test]
fn times_relative_to_now() {
    let s = Scratch::new("relative");
    let d = s.path("log");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let at = |ago: u64| format!("@{:016x}00000000", (1u64 << 62) + now - ago + 37);
    let body = format!(
        "{} three hours ago\n{} one hour ago\n{} a minute ago\n",
        at(3 * 3600),
        at(3600),
        at(60)
    );
    fs::create_dir_all(&d).expect("dir");
    fs::write(d.join("current"), body).expect("write");
    let texts = |args: &[&str]| -> Vec<String> {
        let mut all = args.to_vec();
        all.push(path_arg(&d));
        let r = run(&all);
        assert_eq!(r.code, 0, "{}", r.err);
        r.texts()
    };
    assert_eq!(texts(&["--since", "2h"]), ["one hour ago", "a minute ago"]);
    assert_eq!(
        texts(&["-S", "90min ago", "-U", "-30min"]),
        ["one hour ago"]
    );
    assert_eq!(texts(&["--until", "2h ago"]), ["three hours ago"]);
    assert_eq!(texts(&["--until", "tomorrow"]).len(), 3);
    assert_eq!(run(&["--since", "+1h", path_arg(&d)]).lines(), [NO_ENTRIES]);
    assert_eq!(texts(&["--since", "yesterday"]).len(), 3);
}

#[test]
fn priority_filters_reader_lines_and_plain_lines_count_as_info() {
    let s = Scratch::new("priority");
    let d = s.path("log");
    write_file(
        &d,
        "current",
        &[
            (Some(1), "kern.emerg kernel: on fire"),
            (Some(2), "daemon.err sshd[7]: bad key"),
            (Some(3), "local3.warning app[1]: disk 91% full\thost=web1"),
            (Some(4), "user.notice app: started"),
            (Some(5), "plain service output"),
            (Some(6), "user.debug app: chatter"),
        ],
    );
    let count = |p: &str| -> Vec<String> {
        let r = run(&["--utc", "-p", p, path_arg(&d)]);
        assert_eq!(r.code, 0, "{}", r.err);
        r.texts()
    };
    assert_eq!(
        count("err"),
        ["kern.emerg kernel: on fire", "daemon.err sshd[7]: bad key"]
    );
    assert_eq!(count("3"), count("err"));
    assert_eq!(count("0..3"), count("err"));
    assert_eq!(count("warning..emerg").len(), 3);
    assert_eq!(
        count("notice..warning"),
        [
            "web1 local3.warning app[1]: disk 91% full",
            "user.notice app: started"
        ]
    );
    assert_eq!(
        count("info").last().map(String::as_str),
        Some("plain service output")
    );
    assert_eq!(count("debug").len(), 6);
    let r = run(&["-p", "loud", path_arg(&d)]);
    assert_eq!(r.code, 100);
    assert!(r.err.contains("not a priority"), "{}", r.err);
    // Fields show with -o verbose.
    let r = run(&["-o", "verbose", "host=web1", path_arg(&d)]);
    assert_eq!(r.lines().len(), 2, "{}", r.out);
    assert_eq!(r.lines()[1], "    host=web1");
    assert_eq!(run(&["-g", "BAD", path_arg(&d)]).lines(), [NO_ENTRIES]);
    assert_eq!(run(&["-g", "bad", path_arg(&d)]).lines().len(), 1);
}

#[test]
fn last_lines_read_only_the_newest_files() {
    let s = Scratch::new("last");
    let (a, b) = (s.path("a"), s.path("b"));
    trap(&a, 1);
    write_file(
        &a,
        &archive(10),
        &[(Some(2), "a2"), (Some(4), "a4"), (Some(6), "a6")],
    );
    write_file(&a, "current", &[(Some(11), "a11"), (Some(13), "a13")]);
    write_file(
        &b,
        "current",
        &[(Some(3), "daemon.err x: b3"), (Some(12), "b12")],
    );
    let texts = |args: &[&str]| -> Vec<String> {
        let r = run(args);
        assert_eq!(r.code, 0, "{}", r.err);
        r.last_words()
    };
    assert_eq!(
        texts(&["-n", "3", path_arg(&a), path_arg(&b)]),
        ["a11", "b12", "a13"]
    );
    assert_eq!(
        texts(&["-n4", path_arg(&a), path_arg(&b)]),
        ["a6", "a11", "b12", "a13"]
    );
    assert_eq!(texts(&["-n", "2", "-p", "err", path_arg(&b)]), ["b3"]);
    assert_eq!(
        texts(&[
            "-n",
            "2",
            "--until",
            &label(12, 0),
            path_arg(&a),
            path_arg(&b)
        ]),
        ["a11", "b12"]
    );
    assert!(texts(&["-n", "0", path_arg(&a)]).is_empty());
    // `-n` with nothing after it: 10, as journalctl.
    assert_eq!(texts(&["--lines", path_arg(&b)]).len(), 2);
    let r = run(&["-n", "all", path_arg(&a)]);
    assert_eq!(r.code, 111, "all of it reaches the trap");
}

/// A running log-show whose output is collected as it comes.
struct Follower {
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Follower {
    fn start(args: &[&str]) -> Follower {
        let mut child = Command::new(LOG_SHOW)
            .args(args)
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn log-show");
        let mut stdout = child.stdout.take().expect("stdout");
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&out);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
        let pid = child.id();
        assert!(
            wait_until(LONG, || blocks_term(pid)),
            "log-show never started"
        );
        Follower {
            child,
            out,
            reader: Some(reader),
        }
    }

    fn lines(&self) -> Vec<String> {
        let out = self.out.lock().expect("lock");
        String::from_utf8_lossy(&out)
            .lines()
            .map(String::from)
            .collect()
    }

    /// Waits until `count` lines were shown.
    fn wait_for(&self, count: usize) {
        assert!(
            wait_until(LONG, || self.lines().len() >= count),
            "{} lines shown, {count} expected; last {:?}",
            self.lines().len(),
            self.lines().iter().rev().take(3).collect::<Vec<_>>()
        );
    }

    /// Stops it with `signal`: its exit code, stderr, and all it showed.
    fn stop(mut self, signal: Signal) -> (i32, String, Vec<String>) {
        common::signal(&self.child, signal);
        let status = wait_child(&mut self.child, LONG);
        if let Some(reader) = self.reader.take() {
            reader.join().expect("reader");
        }
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (status.code().unwrap_or(-1), err, self.lines())
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

fn text_of(shown: &str) -> String {
    shown.split_once(' ').map_or("", |x| x.1).to_string()
}

#[test]
fn follow_goes_on_across_rotations_done_while_following() {
    let s = Scratch::new("follow");
    let dir = s.path("log");
    let mut cyclog = Supervised::new(
        CYCLOG,
        &["--max-file-size", "4096", path_arg(&dir)],
        s.path("cyclog.err"),
    );
    cyclog.start();
    let old: Vec<String> = (0..30).map(|i| format!("old {i}")).collect();
    cyclog.send(old.join("\n").as_bytes());
    cyclog.send(b"\n");
    let written =
        || fs::read(dir.join("current")).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
    assert!(wait_until(LONG, || written() == 30));
    // -f alone: the last 10 lines, then what comes.
    let follower = Follower::start(&["-f", path_arg(&dir)]);
    follower.wait_for(10);
    let mut want: Vec<String> = old[20..].to_vec();
    assert_eq!(
        follower
            .lines()
            .iter()
            .map(|l| text_of(l))
            .collect::<Vec<_>>(),
        want
    );

    // A rotation on demand, then many by size, all while following.
    cyclog.send(b"before the alarm\n");
    want.push("before the alarm".into());
    follower.wait_for(want.len());
    cyclog.signal(Signal::ALARM);
    assert!(
        wait_until(LONG, || !archives(&dir).is_empty()),
        "no rotation"
    );
    for i in 0..400 {
        let line = format!("new {i:04} {}", "y".repeat(i % 90));
        cyclog.send(format!("{line}\n").as_bytes());
        want.push(line);
    }
    follower.wait_for(want.len());
    assert!(archives(&dir).len() > 5, "too few rotations to test");
    let (code, err, shown) = follower.stop(Signal::TERM);
    assert_eq!((code, err.as_str()), (0, ""));
    let want: Vec<Vec<u8>> = want.into_iter().map(String::into_bytes).collect();
    let got: Vec<Vec<u8>> = shown.iter().map(|l| text_of(l).into_bytes()).collect();
    assert_same_lines(&got, &want, "followed");
    cyclog.close_input();
    assert!(cyclog.wait(LONG).success(), "{}", cyclog.stderr_text());
}

#[test]
fn following_two_directories_shows_each_line_once_in_its_order() {
    let s = Scratch::new("follow2");
    let (a, b) = (s.path("a"), s.path("b"));
    let mut ca = Supervised::new(
        CYCLOG,
        &["--max-file-size", "4096", path_arg(&a)],
        s.path("a.err"),
    );
    let mut cb = Supervised::new(
        CYCLOG,
        &["--max-file-size", "4096", path_arg(&b)],
        s.path("b.err"),
    );
    ca.start();
    cb.start();
    // All of it: lines may come before log-show has started.
    let follower = Follower::start(&["-f", "-n", "all", "--raw", path_arg(&a), path_arg(&b)]);
    for i in 0..300 {
        ca.send(format!("a {i}\n").as_bytes());
        cb.send(format!("b {i}\n").as_bytes());
    }
    follower.wait_for(600);
    let lines = follower.lines();
    for tag in ["a", "b"] {
        let mine: Vec<String> = lines
            .iter()
            .map(|l| text_of(l))
            .filter(|t| t.starts_with(&format!("{tag} ")))
            .collect();
        let want: Vec<String> = (0..300).map(|i| format!("{tag} {i}")).collect();
        assert_eq!(mine, want);
    }
    let (code, err, _) = follower.stop(Signal::INT);
    assert_eq!((code, err.as_str()), (0, ""));
}

#[test]
fn follow_until_ends_by_itself() {
    let s = Scratch::new("follow-until");
    let d = s.path("log");
    write_file(&d, "current", &[(Some(1), "one")]);
    let r = run(&["-f", "--until", "-1s", path_arg(&d)]);
    assert_eq!((r.code, r.lines().len()), (0, 1), "{}", r.err);
}

#[test]
fn stdin_lines_are_shown_like_s6_tai64nlocal_and_tai64nlocal() {
    require("s6-tai64nlocal");
    require("tai64nlocal");
    let input = format!(
        "{} first\nnot stamped\n{} daemon.err sshd[1]: second\n{} \n",
        label(0, 123_456_789),
        label(3600, 5000),
        label(86400 * 40, 0),
    );
    let theirs = |program: &str, input: &str| -> Vec<String> {
        let mut child = Command::new(program)
            .env("TZ", "UTC")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("wait");
        // 2026-11-21 00:53:10.123456789 text -> 2026-11-21T00:53:10.123456 text
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| match l.get(..26) {
                Some(head) if l.as_bytes().get(10) == Some(&b' ') => {
                    format!("{}{}", head.replacen(' ', "T", 1), &l[29..])
                }
                _ => l.to_string(),
            })
            .collect()
    };
    let ours = |args: &[&str], input: &str| -> Vec<String> {
        let r = run_with(args, input.as_bytes(), &[("TZ", "UTC")]);
        assert_eq!(r.code, 0, "{}", r.err);
        r.lines()
            .iter()
            .map(|l| l.replacen("+00:00", "", 1))
            .collect()
    };
    assert_eq!(ours(&["-"], &input), theirs("s6-tai64nlocal", &input));
    // daemontools' convention, with its own stamps.
    let daemontools = input
        .lines()
        .map(|l| match l.strip_prefix('@').and_then(|h| h.get(..16)) {
            Some(secs) => {
                let secs = u64::from_str_radix(secs, 16).expect("hex") - 27;
                format!("@{secs:016x}{}\n", &l[17..])
            }
            None => format!("{l}\n"),
        })
        .collect::<String>();
    assert_eq!(
        ours(&["--tai-plus-10", "-"], &daemontools),
        theirs("tai64nlocal", &daemontools)
    );
    // A window, and the last lines: unstamped lines go with the line before.
    let shown = ours(
        &[
            "--utc",
            "--since",
            &utc(0, 0),
            "--until",
            &utc(3600, 0),
            "-",
        ],
        &input,
    );
    assert_eq!(shown.len(), 2);
    assert_eq!(shown[1], "not stamped");
    assert_eq!(ours(&["-n", "1", "-"], &input).len(), 1);
    assert_eq!(ours(&["-n", "3", "-"], &input)[0], "not stamped");
}

#[test]
fn missing_and_unusable_directories_are_named_and_the_rest_shown() {
    let s = Scratch::new("bad");
    let good = s.path("good");
    write_file(&good, "current", &[(Some(1), "still shown")]);
    fs::write(s.path("file"), "not a directory").expect("file");
    let missing = s.path("missing");
    let r = run(&[
        path_arg(&missing),
        path_arg(&good),
        path_arg(&s.path("file")),
    ]);
    assert_eq!(r.code, 111);
    assert_eq!(r.lines().len(), 1);
    assert!(r.out.ends_with("still shown\n"), "{}", r.out);
    assert!(
        r.err
            .contains(&format!("log-show: warning: open {}: ", missing.display())),
        "{}",
        r.err
    );
    assert!(
        r.err
            .contains(&format!("open {}: ", s.path("file").display())),
        "{}",
        r.err
    );
    let r = run(&[path_arg(&missing)]);
    assert_eq!((r.code, r.out.as_str()), (111, ""));
    // A compressed archive is said, and skipped.
    fs::write(good.join(archive(0)), b"\x1f\x8b\x08\x00binary").expect("gzip");
    let r = run(&[path_arg(&good)]);
    assert_eq!((r.code, r.lines().len()), (0, 1));
    assert!(r.err.contains("compressed"), "{}", r.err);
    for bad in [
        &["--since", "soon", path_arg(&good)][..],
        &["-n", "-3", path_arg(&good)],
        &["-o", "jsonx", path_arg(&good)],
        &["-", path_arg(&good)],
        &["-u", "a/b"],
        &["--bogus", path_arg(&good)],
    ] {
        let r = run(bad);
        assert_eq!(r.code, 100, "{bad:?}: {}", r.err);
        assert!(r.err.contains("log-show: usage: "), "{}", r.err);
    }
}

/// A directory that is not a log directory, such as the one holding them
/// all, is refused (100) with its name, what it lacks and the log
/// directories found in it, instead of showing nothing and exiting 0.
#[test]
fn a_directory_that_is_not_a_log_directory_is_named_with_those_below_it() {
    let s = Scratch::new("parent");
    let parent = s.path("rill");
    write_file(&parent.join("klogd"), "current", &[(Some(1), "kernel")]);
    write_file(&parent.join("ntpd"), &archive(5), &[(Some(2), "ntp")]);
    fs::create_dir_all(parent.join("not-started")).expect("empty log directory");
    fs::create_dir_all(parent.join("other/deeper")).expect("other");
    for args in [
        &[path_arg(&parent)][..],
        &["-n", "5", path_arg(&parent)][..],
    ] {
        let r = run(args);
        assert_eq!((r.code, r.out.as_str()), (100, ""), "{args:?}: {}", r.err);
        assert!(
            r.err.contains(&format!(
                "log-show: fatal: {}: not a log directory",
                parent.display()
            )),
            "{}",
            r.err
        );
        assert!(
            r.err.contains(&format!(
                "{} {}",
                parent.join("klogd").display(),
                parent.join("ntpd").display()
            )) && !r.err.contains("not-started")
                && !r.err.contains("deeper"),
            "{}",
            r.err
        );
    }
    let r = run(&[path_arg(&parent.join("other"))]);
    assert_eq!(r.code, 100, "{}", r.err);
    assert!(r.err.contains("no log directory in it"), "{}", r.err);
    // An empty directory is a log service not started yet: nothing to show.
    let r = run(&[
        path_arg(&parent.join("not-started")),
        path_arg(&parent.join("klogd")),
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("kernel"), "{}", r.out);
}

#[test]
fn control_bytes_and_invalid_utf8_are_shown_escaped() {
    let s = Scratch::new("escape");
    let d = s.path("log");
    let nasty = b"\x1b]0;owned\x07 \x1b[2J \xff\xfe caf\xc3\xa9 \r\x7f \xc2\x9b";
    let mut body = format!("{} ", label(1, 0)).into_bytes();
    body.extend_from_slice(nasty);
    body.extend_from_slice(format!("\n{} user.err app: \\x1b[31m\\\\ x\n", label(2, 0)).as_bytes());
    fs::create_dir_all(&d).expect("dir");
    fs::write(d.join("current"), &body).expect("write");
    let r = run(&["--utc", path_arg(&d)]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        r.lines(),
        [
            format!(
                "{} \\x1b]0;owned\\x07 \\x1b[2J \\xff\\xfe café \\r\\x7f \\xc2\\x9b",
                utc(1, 0)
            ),
            format!("{} user.err app: \\x1b[31m\\ x", utc(2, 0)),
        ]
    );
    // --raw into a pipe gives the bytes as stored.
    let out = Command::new(LOG_SHOW)
        .args(["--raw", path_arg(&d)])
        .output()
        .expect("run");
    assert_eq!(out.stdout, body);
}

/// A pseudo-terminal: (master, slave).
fn pty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two descriptors, which are then owned here.
    let done = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(done, 0, "openpty");
    // SAFETY: both are open descriptors nobody else owns.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

fn on_terminal(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let (master, slave) = pty();
    let mut child = Command::new(LOG_SHOW)
        .args(args)
        .env("TZ", "UTC")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn log-show");
    let mut master = fs::File::from(master);
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the last writer is gone.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    });
    let status = wait_child(&mut child, LONG);
    let out = reader.join().expect("reader");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out).into_owned(),
    )
}

#[test]
fn on_a_terminal_colours_and_a_pager_as_journalctl() {
    let s = Scratch::new("tty");
    let d = s.path("log");
    write_file(
        &d,
        "current",
        &[
            (Some(1), "daemon.err sshd: bad \x1b[2J"),
            (Some(2), "plain"),
        ],
    );
    let (code, shown) = on_terminal(&["--no-pager", path_arg(&d)], &[]);
    assert_eq!(code, 0);
    assert!(
        shown.contains("\x1b[31mdaemon.err sshd: bad \\x1b[2J\x1b[0m"),
        "{shown:?}"
    );
    assert!(!shown.contains("\x1b[2J"), "{shown:?}");
    let (_, plain) = on_terminal(&["--no-pager", path_arg(&d)], &[("NO_COLOR", "1")]);
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(plain.contains("daemon.err sshd: bad \\x1b[2J"), "{plain:?}");

    // The pager gets the output, and LESS unless it is set.
    let pager = s.path("pager");
    fs::write(
        &pager,
        format!(
            "#!/bin/sh\nprintf '%s|%s\\n' \"$LESS\" \"$1\" > {0}/less\ncat > {0}/paged\n",
            s.root.display()
        ),
    )
    .expect("pager script");
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut fs::metadata(&pager).expect("stat").permissions(),
        0o755,
    );
    fs::set_permissions(&pager, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let with_arg = format!("{} --an-arg", pager.display());
    let (code, direct) = on_terminal(&[path_arg(&d)], &[("PAGER", &with_arg)]);
    assert_eq!(code, 0);
    assert!(direct.is_empty(), "{direct:?}");
    assert_eq!(
        fs::read_to_string(s.path("less")).expect("ran"),
        "FRXMK|--an-arg\n"
    );
    let paged = fs::read_to_string(s.path("paged")).expect("paged");
    assert!(paged.contains("\x1b[31mdaemon.err"), "{paged:?}");
    let (_, _) = on_terminal(&[path_arg(&d)], &[("PAGER", &with_arg), ("LESS", "R")]);
    assert_eq!(
        fs::read_to_string(s.path("less")).expect("ran"),
        "R|--an-arg\n"
    );
    // -e: less starts at the end (+G), as journalctl -e has it.
    fs::create_dir_all(s.path("bin")).expect("bin");
    let less = s.path("bin/less");
    fs::copy(&pager, &less).expect("less");
    let (code, _) = on_terminal(&["-e", path_arg(&d)], &[("PAGER", path_arg(&less))]);
    assert_eq!(code, 0);
    assert_eq!(
        fs::read_to_string(s.path("less")).expect("ran"),
        "FRXMK|+G\n"
    );
    // A pager that cannot start: written directly.
    let (code, direct) = on_terminal(&[path_arg(&d)], &[("PAGER", "/nonexistent/pager")]);
    assert_eq!(code, 0);
    assert!(direct.contains("plain"), "{direct:?}");
}

/// Compresses a file of a log directory in place, keeping its name, as a
/// processor's output becomes the archive: `gzip` or `zstd` (real ones).
fn compress(dir: &Path, name: &str, program: &str) {
    let path = dir.join(name);
    let plain = fs::read(&path).expect("file to compress");
    let ran = run_piped(program, &["-c"], &[], &plain);
    assert_eq!(ran.code, 0, "{program}: {}", ran.stderr);
    assert!(ran.stdout.len() > 4 && ran.stdout != plain);
    fs::write(&path, ran.stdout).expect("compressed file");
}

#[test]
fn lines_in_gzip_and_zstd_archives_are_shown_with_since_and_last() {
    require("gzip");
    require("zstd");
    let s = Scratch::new("compressed");
    let d = s.path("log");
    trap(&d, 1);
    write_file(
        &d,
        &archive(5),
        &[(Some(2), "a2"), (Some(3), "a3"), (Some(4), "a4")],
    );
    compress(&d, &archive(5), "gzip");
    write_file(
        &d,
        &archive(10),
        &[
            (Some(6), "a6"),
            (Some(7), "a7"),
            (None, "a7-more"),
            (Some(8), "a8"),
            (Some(9), "a9"),
        ],
    );
    compress(&d, &archive(10), "zstd");
    write_file(&d, "current", &[(Some(11), "a11"), (Some(13), "a13")]);
    let texts = |args: &[&str]| -> Vec<String> {
        let r = run(&[args, &[path_arg(&d)]].concat());
        assert_eq!((r.code, r.err.as_str()), (0, ""), "{args:?}");
        r.last_words()
    };
    let all = [
        "a2", "a3", "a4", "a6", "a7", "a7-more", "a8", "a9", "a11", "a13",
    ];
    // --since skips archives by their names: the trap is never opened.
    assert_eq!(texts(&["--since", &label(2, 0)]), all);
    assert_eq!(texts(&["--since", &label(7, 0)]), all[4..]);
    assert_eq!(
        texts(&["--since", &label(4, 0), "--until", &label(6, 0)]),
        ["a4", "a6"]
    );
    assert_eq!(texts(&["-n", "3"]), ["a9", "a11", "a13"]);
    assert_eq!(texts(&["-n", "6"]), all[4..]);
    assert_eq!(texts(&["-n", "8"]), all[2..]);
    assert_eq!(
        texts(&["-n", "2", "--until", &label(8, 0)]),
        ["a7-more", "a8"]
    );
    assert_eq!(texts(&["-n", "9", "--since", &label(3, 0)]), all[1..]);
}

#[test]
fn a_damaged_compressed_archive_is_named_with_the_lines_it_leaves_out() {
    require("gzip");
    let s = Scratch::new("compressed-cut");
    let d = s.path("log");
    let many: Vec<String> = (0..3000).map(|i| format!("line{i:05}")).collect();
    let body: Vec<(Option<u64>, &str)> = many.iter().map(|t| (Some(2), t.as_str())).collect();
    write_file(&d, &archive(5), &body);
    compress(&d, &archive(5), "gzip");
    let whole = fs::read(d.join(archive(5))).expect("archive");
    fs::write(d.join(archive(5)), &whole[..whole.len() / 2]).expect("cut");
    write_file(&d, "current", &[(Some(6), "after")]);
    let r = run(&["--since", &label(2, 0), path_arg(&d)]);
    let words = r.last_words();
    assert!(words.len() > 1 && words.len() < 3001, "{}", words.len());
    let n = words.len() - 1;
    assert_eq!(words[..n], many[..n], "whole lines, in order");
    assert_eq!(words[n], "after", "the rest is shown");
    assert!(
        r.err.contains(&archive(5))
            && r.err.contains(&format!("after line {n} "))
            && r.err.contains("are skipped"),
        "{}",
        r.err
    );
    assert_eq!(r.err.lines().count(), 1, "{}", r.err);
}

#[test]
fn follow_goes_on_across_compressing_rotations_even_when_left_behind() {
    require("gzip");
    let s = Scratch::new("follow-gzip");
    let dir = s.path("log");
    let mut cyclog = Supervised::new(
        CYCLOG,
        &["--processor", "gzip", path_arg(&dir)],
        s.path("cyclog.err"),
    );
    cyclog.start();
    let mut want: Vec<String> = Vec::new();
    let written =
        || fs::read(dir.join("current")).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
    // 50 lines, once they are all in `current`.
    let batch = |cyclog: &mut Supervised, want: &mut Vec<String>, tag: &str| {
        let lines: Vec<String> = (0..50).map(|i| format!("{tag}-{i:02}")).collect();
        cyclog.send(format!("{}\n", lines.join("\n")).as_bytes());
        want.extend(lines);
        assert!(wait_until(LONG, || written() == 50), "{tag}: not written");
    };
    batch(&mut cyclog, &mut want, "first");
    let follower = Follower::start(&["-f", "-n", "all", path_arg(&dir)]);
    follower.wait_for(50);
    // Rotations while it reads along, each one compressed.
    let mut rotations = 0;
    let mut rotate = |cyclog: &mut Supervised| {
        rotations += 1;
        cyclog.signal(Signal::ALARM);
        assert!(
            wait_until(LONG, || {
                archives(&dir).len() == rotations && !dir.join("previous").exists()
            }),
            "rotation {rotations} never processed"
        );
    };
    rotate(&mut cyclog);
    batch(&mut cyclog, &mut want, "second");
    follower.wait_for(want.len());
    // Left behind: stopped, holding its current open, while that current
    // and two after it are rotated and compressed.
    common::signal(&follower.child, Signal::STOP);
    for tag in ["third", "fourth", "fifth"] {
        rotate(&mut cyclog);
        batch(&mut cyclog, &mut want, tag);
    }
    common::signal(&follower.child, Signal::CONT);
    follower.wait_for(want.len());
    assert_eq!(
        archives(&dir)
            .iter()
            .filter(|a| fs::read(dir.join(a)).is_ok_and(|b| b.starts_with(&[0x1f, 0x8b])))
            .count(),
        4
    );
    let (code, err, shown) = follower.stop(Signal::TERM);
    assert_eq!((code, err.as_str()), (0, ""));
    let want: Vec<Vec<u8>> = want.into_iter().map(String::into_bytes).collect();
    let got: Vec<Vec<u8>> = shown.iter().map(|l| text_of(l).into_bytes()).collect();
    assert_same_lines(&got, &want, "followed");
    cyclog.close_input();
    assert!(cyclog.wait(LONG).success(), "{}", cyclog.stderr_text());
}

#[test]
fn a_multilog_directory_gzipped_by_its_processor_is_shown_whole() {
    require("multilog");
    require("gzip");
    let s = Scratch::new("multilog-gzip");
    let dir = s.path("log");
    let lines: Vec<String> = (0..20_000).map(|i| format!("m{i:05}")).collect();
    let input = format!("{}\n", lines.join("\n"));
    let ran = run_piped(
        "multilog",
        &["t", "s4096", "n1000", "!gzip", path_arg(&dir)],
        &[],
        input.as_bytes(),
    );
    assert_eq!(ran.code, 0, "multilog: {}", ran.stderr);
    let gzipped = archives(&dir)
        .iter()
        .filter(|a| fs::read(dir.join(a)).is_ok_and(|b| b.starts_with(&[0x1f, 0x8b])))
        .count();
    assert!(gzipped > 10, "{:?}", archives(&dir));
    let r = run(&["-n", "all", path_arg(&dir)]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert_eq!(r.last_words(), lines);
}

#[test]
fn a_zstd_archive_of_several_frames_is_shown_whole() {
    require("zstd");
    let s = Scratch::new("zstd-frames");
    let d = s.path("log");
    let frame = |lines: &[(Option<u64>, &str)]| {
        write_file(&d, "part", lines);
        compress(&d, "part", "zstd");
        fs::read(d.join("part")).expect("frame")
    };
    let mut bytes = frame(&[(Some(1), "f1"), (Some(2), "f2")]);
    // A skippable frame (RFC 8878, 3.1.2) between two frames.
    bytes.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, b'j', b'u', b'n', b'k']);
    bytes.extend(frame(&[
        (Some(3), "f3"),
        (None, "f3-more"),
        (Some(4), "f4"),
    ]));
    fs::remove_file(d.join("part")).expect("part");
    fs::write(d.join(archive(5)), bytes).expect("archive");
    write_file(&d, "current", &[(Some(6), "c6")]);
    let r = run(&["-n", "all", path_arg(&d)]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert_eq!(r.last_words(), ["f1", "f2", "f3", "f3-more", "f4", "c6"]);
    let r = run(&["-n", "4", path_arg(&d)]);
    assert_eq!(r.last_words(), ["f3", "f3-more", "f4", "c6"]);
}

/// A directory of reader lines from two hosts, the kernel, bytes that are
/// not UTF-8, and a service's own output, one a second from `T + 1`.
fn matches_dir(s: &Scratch) -> std::path::PathBuf {
    let d = s.path("var/log/rill/syslog");
    write_file(
        &d,
        "current",
        &[
            (
                Some(1),
                "daemon.err sshd[150]: Failed password for root\thost=web1 pid=150 uid=0",
            ),
            (
                Some(2),
                "daemon.info sshd[15008]: Accepted key\thost=web2 pid=15008",
            ),
            (
                Some(3),
                "kern.warning kernel: usb 1-1: new\\nline\tSUBSYSTEM=usb DEVICE=c189:1",
            ),
            (
                Some(4),
                "auth.notice my\\x20su: bad \\xff bytes\\x01 \"q\" \\\\ here",
            ),
            (Some(5), "plain service output"),
        ],
    );
    d
}

#[test]
fn field_matches_are_exact_and_combine_as_journalctl_combines_them() {
    let s = Scratch::new("matches");
    let d = matches_dir(&s);
    let shown = |args: &[&str]| -> Vec<String> {
        let mut all = args.to_vec();
        all.push(path_arg(&d));
        let r = run(&all);
        assert_eq!(r.code, 0, "{args:?}: {}", r.err);
        r.last_words()
    };
    // pid=150 is not pid=15008.
    assert_eq!(shown(&["pid=150"]), ["root"]);
    assert_eq!(shown(&["pid=150", "pid=15008"]), ["root", "key"]);
    assert_eq!(shown(&["_PID=15008"]), ["key"]);
    // Different fields: all of them.
    assert_eq!(shown(&["host=web1", "-t", "sshd"]), ["root"]);
    assert_eq!(shown(&["--identifier", "my su"]), ["here"]);
    assert_eq!(shown(&["SUBSYSTEM=usb"]), ["new\\nline"]);
    assert_eq!(
        shown(&["--facility", "daemon,auth"]),
        ["root", "key", "here"]
    );
    assert_eq!(
        shown(&["--facility", "kern", "--facility", "auth"]),
        ["new\\nline", "here"]
    );
    assert_eq!(shown(&["PRIORITY=err", "-p", "info"]), ["root"]);
    // Nothing matched: said, and 1, as journalctl says it.
    for nothing in [
        &["host=web1", "-t", "kernel"][..],
        &["pid=15"],
        &["-g", "nowhere"],
    ] {
        let mut all = nothing.to_vec();
        all.push(path_arg(&d));
        let r = run(&all);
        assert_eq!((r.code, r.lines()), (1, vec![NO_ENTRIES]), "{nothing:?}");
    }
    for bad in [
        &["PRIORITY=loud"][..],
        &["--facility", "nope"],
        &["-g", "("],
    ] {
        let mut all = bad.to_vec();
        all.push(path_arg(&d));
        let r = run(&all);
        assert_eq!(r.code, 100, "{bad:?}");
    }
}

#[test]
fn the_host_is_shown_in_every_short_format() {
    let s = Scratch::new("formats");
    let d = matches_dir(&s);
    let first = |format: &str| -> String {
        let r = run(&["--utc", "-o", format, "-n", "5", path_arg(&d)]);
        assert_eq!(r.code, 0, "{format}: {}", r.err);
        r.lines()[0].to_string()
    };
    let tail = "web1 daemon.err sshd[150]: Failed password for root";
    assert_eq!(first("short"), format!("{} {tail}", utc(1, 0)));
    assert_eq!(first("short-iso-precise"), format!("{} {tail}", utc(1, 0)));
    assert_eq!(first("short-iso"), format!("2026-11-21T00:53:11Z {tail}"));
    assert_eq!(
        first("short-precise"),
        format!("Nov 21 00:53:11.000000 {tail}")
    );
    assert_eq!(first("short-unix"), format!("{}.000000 {tail}", T + 1));
    assert_eq!(first("cat"), "Failed password for root");
    let r = run(&["--utc", "-o", "verbose", "host=web1", path_arg(&d)]);
    assert_eq!(
        r.lines(),
        [
            format!("{} {tail}", utc(1, 0)).as_str(),
            "    host=web1",
            "    pid=150",
            "    uid=0"
        ]
    );
}

#[test]
fn reverse_shows_the_newest_first_and_pager_end_the_last_1000() {
    let s = Scratch::new("reverse");
    let d = matches_dir(&s);
    let r = run(&["-r", path_arg(&d)]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        r.last_words(),
        ["output", "here", "new\\nline", "key", "root"]
    );
    let r = run(&["--reverse", "-n", "2", path_arg(&d)]);
    assert_eq!(r.last_words(), ["output", "here"]);
    let r = run(&["-r", "-t", "sshd", path_arg(&d)]);
    assert_eq!(r.last_words(), ["key", "root"]);
    let r = run(&["-r", "-f", path_arg(&d)]);
    assert_eq!(r.code, 100, "{}", r.err);
    // -e: the last 1000 lines unless -n says otherwise.
    let many = s.path("many");
    let lines: Vec<(Option<u64>, String)> = (0..1005).map(|i| (Some(i), format!("n{i}"))).collect();
    let borrowed: Vec<(Option<u64>, &str)> = lines.iter().map(|(t, l)| (*t, l.as_str())).collect();
    write_file(&many, "current", &borrowed);
    let r = run(&["-e", path_arg(&many)]);
    assert_eq!((r.lines().len(), r.last_words()[0].as_str()), (1000, "n5"));
    assert_eq!(
        run(&["--pager-end", "-n", "3", path_arg(&many)])
            .lines()
            .len(),
        3
    );
    // Reversed through the file it spills to past 16 MiB.
    let big = s.path("big");
    let line = "x".repeat(200);
    let lines: Vec<(Option<u64>, String)> = (0..120_000)
        .map(|i| (Some(i / 1000), format!("{line} {i}")))
        .collect();
    let borrowed: Vec<(Option<u64>, &str)> = lines.iter().map(|(t, l)| (*t, l.as_str())).collect();
    write_file(&big, "current", &borrowed);
    let tmp = s.path("tmp");
    fs::create_dir_all(&tmp).expect("tmp");
    let r = run_with(
        &["-r", path_arg(&big)],
        b"",
        &[("TZ", "UTC"), ("TMPDIR", path_arg(&tmp))],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    let words = r.last_words();
    assert_eq!(words.len(), 120_000);
    assert!(
        words
            .iter()
            .rev()
            .enumerate()
            .all(|(i, w)| *w == i.to_string())
    );
    assert_eq!(
        fs::read_dir(&tmp).expect("tmp").count(),
        0,
        "the spill file is gone"
    );
}

#[test]
fn since_after_until_is_an_error() {
    let s = Scratch::new("since-until");
    let d = matches_dir(&s);
    let r = run(&["-S", &label(3, 0), "-U", &label(2, 0), path_arg(&d)]);
    assert_eq!(r.code, 100);
    assert!(r.err.contains("--since is after --until"), "{}", r.err);
    let r = run(&["-S", &label(3, 0), "-U", &label(3, 0), path_arg(&d)]);
    assert_eq!(
        (r.code, r.last_words()),
        (0, vec!["new\\nline".to_string()])
    );
}

/// Runs python3 on `script` with `input` on its standard input; its output.
fn python(script: &str, input: &[u8]) -> String {
    require("python3");
    let ran = run_piped("python3", &["-c", script], &[], input);
    assert_eq!(ran.code, 0, "python3: {}", ran.stderr);
    String::from_utf8(ran.stdout).expect("UTF-8")
}

/// Each JSON object's message bytes in hex, host, identifier, priority and
/// time, as a real JSON parser reads them.
const DECODE: &str = r#"
import json, sys
def show(o):
    m = o["MESSAGE"]
    b = bytes(m) if isinstance(m, list) else m.encode()
    print(b.hex(), o.get("_HOSTNAME", "-"), o.get("SYSLOG_IDENTIFIER", "-"),
          o["PRIORITY"], o["__REALTIME_TIMESTAMP"])
data = sys.stdin.buffer.read()
if data.startswith(b"\x1e"):
    for part in data.split(b"\x1e")[1:]:
        assert part.endswith(b"\n")
        show(json.loads(part))
else:
    for line in data.splitlines():
        show(json.loads(line))
"#;

/// What `DECODE` prints for `matches_dir`.
fn decoded() -> Vec<String> {
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let t = |secs: u64| (T + secs) * 1_000_000;
    vec![
        format!("{} web1 sshd 3 {}", hex(b"Failed password for root"), t(1)),
        format!("{} web2 sshd 6 {}", hex(b"Accepted key"), t(2)),
        format!("{} - kernel 4 {}", hex(b"usb 1-1: new\nline"), t(3)),
        format!(
            "{} - my su 5 {}",
            hex(b"bad \xff bytes\x01 \"q\" \\ here"),
            t(4)
        ),
        format!("{} - - 6 {}", hex(b"plain service output"), t(5)),
    ]
}

#[test]
fn json_is_every_field_with_the_message_bytes_exact() {
    let s = Scratch::new("json");
    let d = matches_dir(&s);
    for format in ["json", "json-seq"] {
        let ran = run_piped(LOG_SHOW, &["-o", format, path_arg(&d)], &[], b"");
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let out = python(DECODE, &ran.stdout);
        assert_eq!(out.lines().collect::<Vec<_>>(), decoded(), "{format}");
    }
    let r = run(&["-o", "json", "-n", "1", "-t", "kernel", path_arg(&d)]);
    assert_eq!(
        r.out,
        format!(
            "{{\"__REALTIME_TIMESTAMP\":\"{}\",\"PRIORITY\":\"4\",\"SYSLOG_FACILITY\":\"0\",\
\"SYSLOG_IDENTIFIER\":\"kernel\",\"MESSAGE\":\"usb 1-1: new\\nline\",\"SUBSYSTEM\":\"usb\",\
\"DEVICE\":\"c189:1\",\"RILL_DIRECTORY\":\"{}\"}}\n",
            (T + 3) * 1_000_000,
            d.display()
        )
    );
    // No "-- No entries --" where programs read.
    let r = run(&["-o", "json", "pid=1", path_arg(&d)]);
    assert_eq!((r.code, r.out.as_str()), (1, ""));
}

#[test]
fn export_is_what_systemd_journal_remote_takes() {
    let s = Scratch::new("export");
    let d = matches_dir(&s);
    let journal = to_journal(&s, &d);
    let back = run_piped(
        "journalctl",
        &["--file", path_arg(&journal), "-o", "json", "--no-pager"],
        &[],
        b"",
    );
    assert_eq!(back.code, 0, "{}", back.stderr);
    let out = python(DECODE, &back.stdout);
    assert_eq!(out.lines().collect::<Vec<_>>(), decoded());
    // Every field of ours, and only those (but the journal's own).
    let ours = run_piped(LOG_SHOW, &["-o", "json", path_arg(&d)], &[], b"");
    let same = python(
        r#"
import json, sys
ours, theirs = sys.stdin.read().split("\n\n")
for a, b in zip(ours.splitlines(), theirs.splitlines(), strict=True):
    a, b = json.loads(a), json.loads(b)
    for k in ("__CURSOR", "__MONOTONIC_TIMESTAMP", "_BOOT_ID", "__SEQNUM", "__SEQNUM_ID"):
        b.pop(k, None)
    assert a == b, (a, b)
print("same")
"#,
        &[&ours.stdout[..], b"\n", &back.stdout[..]].concat(),
    );
    assert_eq!(same, "same\n");
}

/// `log-show -o export DIR` made a journal file by the real
/// systemd-journal-remote; its path.
fn to_journal(s: &Scratch, d: &Path) -> std::path::PathBuf {
    require("journalctl");
    let remote = common::receivers::peers_prefix().join("systemd-journal-remote");
    let binary = remote.join("lib/systemd/systemd-journal-remote");
    assert!(
        binary.is_file(),
        "{} is not there: run `make deps` as root",
        binary.display()
    );
    let exported = run_piped(LOG_SHOW, &["-o", "export", path_arg(d)], &[], b"");
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let journal = s.path("x.journal");
    // Its library (libmicrohttpd), unpacked beside it.
    let libs = fs::read_dir(remote.join("usr/lib"))
        .expect("unpacked libraries")
        .map(|e| e.expect("entry").path())
        .find(|dir| dir.join("libmicrohttpd.so.12").exists())
        .expect("libmicrohttpd unpacked with systemd-journal-remote");
    let ran = run_piped(
        path_arg(&binary),
        &["-o", path_arg(&journal), "-"],
        &[("LD_LIBRARY_PATH", path_arg(&libs))],
        &exported.stdout,
    );
    assert_eq!(ran.code, 0, "systemd-journal-remote: {}", ran.stderr);
    journal
}

/// The event time goes to the journal as journald has it, beside the
/// stamp; journalctl then shows it, as log-show does.
#[test]
fn the_event_time_reaches_the_journal_as_source_realtime() {
    let s = Scratch::new("exporttime");
    let d = s.path("log");
    write_file(
        &d,
        "current",
        &[
            (
                Some(10),
                &format!(
                    "kern.info kernel: up\tseq=1 boot=1.000000 time={}",
                    utc(2, 250_000)
                ),
            ),
            (Some(11), "user.info app: written then"),
        ],
    );
    let journal = to_journal(&s, &d);
    let back = run_piped(
        "journalctl",
        &["--file", path_arg(&journal), "-o", "json", "--no-pager"],
        &[],
        b"",
    );
    assert_eq!(back.code, 0, "{}", back.stderr);
    let got = python(
        r#"
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    print(e["__REALTIME_TIMESTAMP"], e.get("_SOURCE_REALTIME_TIMESTAMP", "-"))
"#,
        &back.stdout,
    );
    assert_eq!(
        got,
        format!(
            "{} {}\n{} -\n",
            (T + 10) * 1_000_000,
            (T + 2) * 1_000_000 + 250_000,
            (T + 11) * 1_000_000
        )
    );
}

#[test]
fn field_shows_each_value_once() {
    let s = Scratch::new("field");
    let d = matches_dir(&s);
    let r = run(&["-F", "SYSLOG_IDENTIFIER", path_arg(&d)]);
    assert_eq!((r.code, r.lines()), (0, vec!["sshd", "kernel", "my su"]));
    assert_eq!(run(&["-F", "host", path_arg(&d)]).lines(), ["web1", "web2"]);
    assert_eq!(
        run(&["--field", "_HOSTNAME", path_arg(&d)]).lines(),
        ["web1", "web2"]
    );
    assert_eq!(
        run(&["-F", "PRIORITY", "-p", "warning", path_arg(&d)]).lines(),
        ["3", "4"]
    );
    assert_eq!(run(&["-F", "NOPE", path_arg(&d)]).out, "");
    assert_eq!(run(&["-F", "a b", path_arg(&d)]).code, 100);
    assert_eq!(run(&["-F", "host", "-o", "json", path_arg(&d)]).code, 100);
    assert_eq!(run(&["-F", "host", "--raw", path_arg(&d)]).code, 100);
    assert_eq!(run(&["-o", "cat", "--raw", path_arg(&d)]).code, 100);
}

#[test]
fn disk_usage_is_said_as_journalctl_says_it() {
    let s = Scratch::new("disk");
    let root = s.path("root");
    write_file(&root.join("a"), "current", &[(Some(1), &"x".repeat(3000))]);
    write_file(
        &root.join("b"),
        &archive(1),
        &[(Some(0), &"y".repeat(5000))],
    );
    let blocks = |dir: &Path| -> u64 {
        use std::os::unix::fs::MetadataExt;
        fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").metadata().expect("stat").blocks() * 512)
            .sum()
    };
    let total = blocks(&root.join("a")) + blocks(&root.join("b"));
    let size = format!("{}.{}K", total / 1024, total % 1024 * 10 / 1024);
    let r = run(&["--disk-usage", "--root", path_arg(&root)]);
    assert_eq!(
        (r.code, r.out.as_str()),
        (
            0,
            format!("Archived and current logs take up {size} in the file system.\n").as_str()
        )
    );
    let r = run(&["--disk-usage", "--root", path_arg(&root), "-u", "a"]);
    let a = blocks(&root.join("a"));
    assert!(
        r.out
            .contains(&format!(" {}.{}K ", a / 1024, a % 1024 * 10 / 1024)),
        "{}",
        r.out
    );
}

#[test]
fn names_are_log_directories_under_the_root() {
    let s = Scratch::new("names");
    let root = s.path("root");
    write_file(
        &root.join("sshd"),
        "current",
        &[(Some(1), "s1"), (Some(3), "s3")],
    );
    write_file(&root.join("cron"), "current", &[(Some(2), "c2")]);
    fs::create_dir_all(root.join("not-yet")).expect("empty");
    let with_root = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = env.to_vec();
        all.push(("TZ", "UTC"));
        run_with(args, b"", &all)
    };
    let root_arg = path_arg(&root);
    // Every directory under the root, by default; merged and named.
    let r = with_root(&["--root", root_arg], &[]);
    assert_eq!(
        (r.code, r.texts()),
        (
            0,
            vec!["sshd s1".into(), "cron c2".into(), "sshd s3".into()]
        )
    );
    let r = with_root(&[], &[("RILL_LOG_ROOT", root_arg)]);
    assert_eq!(r.texts().len(), 3, "{}", r.err);
    let r = with_root(&["-u", "cron"], &[("RILL_LOG_ROOT", root_arg)]);
    assert_eq!(r.texts(), ["c2"]);
    let r = with_root(&["--root", root_arg, "-u", "cron", "--unit", "sshd"], &[]);
    assert_eq!(r.texts(), ["sshd s1", "cron c2", "sshd s3"]);
    // A name that is not there: said, as a directory that is not there.
    let r = with_root(&["--root", root_arg, "-u", "nope", "-u", "cron"], &[]);
    assert_eq!(r.code, 111);
    assert!(r.err.contains("nope"), "{}", r.err);
    // The root is not a log directory: named as such, its log directories listed.
    let r = with_root(&[root_arg], &[]);
    assert_eq!(r.code, 100);
    assert!(r.err.contains("not a log directory"), "{}", r.err);
    // No root at all.
    let r = with_root(&["--root", path_arg(&s.path("none"))], &[]);
    assert_eq!(r.code, 111);
    assert!(r.err.contains("none"), "{}", r.err);
}

/// A boot marker as klog-read writes it, for a boot started at `T + secs`.
fn boot_marker(id: &str, secs: u64) -> String {
    format!(
        "kern.notice klog-read: boot {id} started\tboot_id={id} time={}",
        utc(secs, 0)
    )
}

#[test]
fn kernel_lines_show_when_the_kernel_logged_them_and_the_boot_is_marked() {
    let s = Scratch::new("eventtime");
    let (records, state, d) = (s.path("kmsg"), s.path("klog.state"), s.path("klogd"));
    fs::write(&records, b"6,0,100,-;first\n6,1,2000000,-;second\n").expect("records");
    let ran = run_piped(
        "sh",
        &[
            "-c",
            "\"$1\" --device \"$2\" --state \"$3\" | \"$4\" \"$5\"",
            "sh",
            KLOG_READ,
            path_arg(&records),
            path_arg(&state),
            CYCLOG,
            path_arg(&d),
        ],
        &[],
        b"",
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let raw = run(&["--raw", path_arg(&d)]);
    let times: Vec<String> = raw
        .lines()
        .iter()
        .map(|l| {
            let t = l.split(" time=").nth(1).expect("time=");
            t.split(' ').next().unwrap_or(t).to_string()
        })
        .collect();
    assert_eq!(times.len(), 3, "{}", raw.out);
    let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id");
    let boot = boot.trim();
    // Shown at the times klog-read gave them (here UTC, as it writes them).
    let r = run(&["--utc", path_arg(&d)]);
    assert_eq!(
        r.lines(),
        [
            format!("{} kern.notice klog-read: boot {boot} started", times[0]),
            format!("{} kern.info kernel: first", times[1]),
            format!("{} kern.info kernel: second", times[2]),
        ]
    );
    assert!(times[0] < times[1] && times[1] < times[2], "{times:?}");
    // --written-time: when they were written, after the kernel logged them.
    let w = run(&["--utc", "--written-time", path_arg(&d)]);
    let written: Vec<&str> = w
        .lines()
        .iter()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    for (written, event) in written.iter().zip(&times) {
        assert!(*written > event.as_str(), "{written} {event}");
    }
    // -o verbose: both.
    let v = run(&["--utc", "-o", "verbose", "-n", "1", path_arg(&d)]);
    assert!(v.out.starts_with(&times[2]), "{}", v.out);
    assert!(
        v.out.contains(&format!("\n    written={}\n", written[2])),
        "{}",
        v.out
    );
    // -o json: the stamp and the event time, as journald names them.
    let j = run(&["-o", "json", "-n", "1", path_arg(&d)]);
    assert!(
        j.out.contains("\"_SOURCE_REALTIME_TIMESTAMP\":\""),
        "{}",
        j.out
    );
    // The boot is known by its marker.
    let b = run(&["--utc", "--list-boots", path_arg(&d)]);
    assert_eq!(b.code, 0, "{}", b.err);
    let plain: String = boot.chars().filter(|&c| c != '-').collect();
    assert_eq!(b.lines().len(), 2, "{}", b.out);
    assert!(b.lines()[0].starts_with("IDX BOOT ID"), "{}", b.out);
    assert!(
        b.lines()[1].starts_with(&format!("  0 {plain} ")),
        "{}",
        b.out
    );
    let r = run(&["--utc", "-b", path_arg(&d)]);
    assert_eq!(r.lines().len(), 3, "{}{}", r.out, r.err);
    let r = run(&["--utc", "-b", boot, path_arg(&d)]);
    assert_eq!(r.lines().len(), 3, "{}{}", r.out, r.err);
}

/// rsyslog #4765 puts a December message received on January 1 in the
/// year after: here, the year is the one closest to when it was written.
#[test]
fn a_legacy_time_is_shown_in_the_year_closest_to_when_it_was_written() {
    let s = Scratch::new("newyear");
    let d = s.path("log");
    // 2027-01-01T00:00:00Z is T + 3,539,210 s.
    let jan_1 = 1_798_761_600 - T;
    write_file(
        &d,
        "current",
        &[
            (
                Some(jan_1 - 3),
                "user.notice app: ahead\tfmt=rfc3164 time3164=01-01T00:00:01 zone=UTC",
            ),
            (
                Some(jan_1 + 5),
                "user.notice app: behind\tfmt=rfc3164 time3164=12-31T23:59:59 zone=UTC",
            ),
            (
                Some(jan_1 + 6),
                "user.notice app: local\tfmt=rfc3164 time3164=01-01T08:59:58",
            ),
        ],
    );
    let r = run_with(&["--utc", path_arg(&d)], b"", &[("TZ", "Asia/Tokyo")]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert_eq!(
        r.lines(),
        [
            "2027-01-01T00:00:01.000000Z user.notice app: ahead",
            "2026-12-31T23:59:59.000000Z user.notice app: behind",
            // No zone: the local one (Tokyo, +09:00).
            "2026-12-31T23:59:58.000000Z user.notice app: local",
        ]
    );
    let r = run_with(&[path_arg(&d)], b"", &[("TZ", "Asia/Tokyo")]);
    assert_eq!(
        r.lines()[1],
        "2027-01-01T08:59:59.000000+09:00 user.notice app: behind"
    );
    let r = run(&["--utc", "--written-time", path_arg(&d)]);
    assert_eq!(
        r.lines()[1],
        "2027-01-01T00:00:05.000000Z user.notice app: behind"
    );
}

#[test]
fn boots_select_their_lines_in_every_directory() {
    let s = Scratch::new("boots");
    let (klog, sshd) = (s.path("root/klogd"), s.path("root/sshd"));
    let old = "0123456789abcdef0123456789abcdef";
    let new = "30e5b4fc-b4ef-4c67-a7a7-9d81ef035ad0";
    let (m_old, m_new) = (boot_marker(old, 5), boot_marker(new, 100));
    write_file(
        &klog,
        "current",
        &[
            (Some(10), m_old.as_str()),
            (Some(11), "kern.info kernel: old boot"),
            (Some(105), m_new.as_str()),
            (Some(106), "kern.info kernel: new boot"),
        ],
    );
    write_file(
        &sshd,
        "current",
        &[
            (Some(1), "before any boot"),
            (Some(20), "old 20"),
            (Some(99), "old 99"),
            (Some(100), "new 100"),
            (Some(200), "new 200"),
        ],
    );
    let words = |args: &[&str]| {
        let mut all = vec!["--utc"];
        all.extend_from_slice(args);
        let r = run(&all);
        assert_eq!(r.err, "", "{args:?}");
        r.last_words()
    };
    let root = path_arg(&s.path("root")).to_string();
    assert_eq!(
        words(&["--root", &root, "-b", "-1", path_arg(&sshd)]),
        ["20", "99"],
        "the markers found under the root"
    );
    let in_root = |args: &[&str]| {
        let mut all = vec!["--root", root.as_str()];
        all.extend_from_slice(args);
        words(&all)
    };
    assert_eq!(
        in_root(&["-b", "-1"]),
        ["started", "boot", "20", "99"],
        "the old boot from its start, in both directories"
    );
    assert_eq!(in_root(&["-b", "1"]), in_root(&["-b", "-1"]));
    assert_eq!(in_root(&["-b", old]), in_root(&["-b", "-1"]));
    assert_eq!(in_root(&["-b"]), ["100", "started", "boot", "200"]);
    assert_eq!(in_root(&["-b", "0", "-u", "sshd"]), ["100", "200"]);
    let list = run(&["--utc", "--root", &root, "--list-boots"]);
    assert_eq!(
        list.lines(),
        [
            "IDX BOOT ID                          FIRST ENTRY                 LAST ENTRY",
            &format!(" -1 {old} {} {}", utc(10, 0), utc(99, 0)),
            &format!(
                "  0 30e5b4fcb4ef4c67a7a79d81ef035ad0 {} {}",
                utc(100, 0),
                utc(200, 0)
            ),
        ]
    );
    let r = run(&["--root", &root, "-b", "-2"]);
    assert_eq!(r.code, 1);
    assert!(
        r.err.contains("no such boot; 2 boots are marked"),
        "{}",
        r.err
    );
    let r = run(&["--root", path_arg(&sshd), "-b", path_arg(&sshd)]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("no boot is marked"), "{}", r.err);
    let r = run(&["--root", path_arg(&sshd), "--list-boots", path_arg(&sshd)]);
    assert_eq!((r.code, r.out.as_str()), (1, ""));
    assert!(r.err.contains("no boot is marked"), "{}", r.err);
}

/// Through syslog-read and cyclog: an RFC 5424 message shows at its own
/// timestamp, an RFC 3164 one at its own, in this year.
#[test]
fn syslog_messages_show_the_time_their_sender_gave() {
    let s = Scratch::new("senders");
    let (sock, d) = (s.path("log.sock"), s.path("syslog"));
    let mut reader = Command::new(SYSLOG_READ)
        .args(["--unix", path_arg(&sock)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("syslog-read");
    let pipe = reader.stdout.take().expect("stdout");
    let mut writer = Command::new(CYCLOG)
        .arg(path_arg(&d))
        .stdin(pipe)
        .spawn()
        .expect("cyclog");
    assert!(wait_until(LONG, || sock.exists()), "no socket");
    // An hour ago, in UTC, as a legacy header writes it and as shown.
    let date = Command::new("date")
        .args([
            "-u",
            "-d",
            "1 hour ago",
            "+%b %e %H:%M:%S|%Y-%m-%dT%H:%M:%S.000000Z",
        ])
        .output()
        .expect("date");
    let date = String::from_utf8(date.stdout).expect("date");
    let (legacy, shown) = date.trim().split_once('|').expect("two dates");
    let sender = std::os::unix::net::UnixDatagram::unbound().expect("socket");
    for message in [
        "<13>1 2026-12-31T23:59:59.5+01:00 web1 app 7 - - full".to_string(),
        format!("<13>{legacy} app[8]: legacy"),
    ] {
        sender.send_to(message.as_bytes(), &sock).expect("send");
    }
    assert!(
        wait_until(LONG, || run(&[path_arg(&d)]).lines().len() == 2),
        "{:?}",
        run(&[path_arg(&d)]).lines()
    );
    let pid = rustix::process::Pid::from_raw(reader.id() as i32).expect("pid");
    rustix::process::kill_process(pid, Signal::TERM).expect("TERM");
    wait_child(&mut reader, LONG);
    wait_child(&mut writer, LONG);
    let r = run(&["--utc", path_arg(&d)]);
    assert_eq!(
        r.lines(),
        [
            "2026-12-31T22:59:59.500000Z web1 user.notice app[7]: full".to_string(),
            format!("{shown} user.notice app[8]: legacy"),
        ]
    );
}

/// A line of a central server's log, the `i`-th: apps, hosts, severities
/// and fields in a pattern, a few lines plain or without a stamp.
fn varied_line(i: u64) -> String {
    let text = match i % 50 {
        0 => format!(
            "local0.err app[{}]: failed {i}\thost=db1 pid={}",
            i % 7,
            i % 7
        ),
        1 => format!("plain output {i}"),
        2 if i % 200 == 2 => format!("cron.info CRON[9]: (root) CMD {i}\thost=web\\x202"),
        3 => format!("kern.warning kernel: usb {i}\tSUBSYSTEM=usb"),
        4 => format!(
            "auth.warning sshd[{}]: bad key {i}\thost=web1",
            100 + i % 300
        ),
        k => format!(
            "daemon.info nginx[{}]: GET /{i} 200 {}\thost=web{}",
            100 + k,
            "x".repeat(60),
            k % 3
        ),
    };
    match i % 997 {
        500 => format!("{text}\n"),
        _ => format!("{} {text}\n", label(i / 100, (i % 100) as u32 * 1000)),
    }
}

/// A directory of `archives` archives of 3,000 varied lines each (several
/// summary blocks each) and a `current` of 500.
fn varied_dir(d: &Path, archives: u64) {
    fs::create_dir_all(d).expect("log directory");
    let per = 3000;
    for a in 0..archives {
        let body: String = (a * per..(a + 1) * per).map(varied_line).collect();
        fs::write(d.join(archive((a + 1) * per / 100)), body).expect("archive");
    }
    let from = archives * per;
    let body: String = (from..from + 500).map(varied_line).collect();
    fs::write(d.join("current"), body).expect("current");
}

/// The queries summaries are used for, and with what else.
const SELECTING: &[&[&str]] = &[
    &["-p", "err"],
    &["-p", "warning..err", "-t", "sshd"],
    &["-t", "CRON"],
    &["host=db1"],
    &["_HOSTNAME=web 2"],
    &["host=web1", "-p", "info"],
    &["pid=3"],
    &["SUBSYSTEM=usb", "--facility", "kern"],
    &["-t", "nobody"],
    &["-p", "err", "-n", "7"],
    &["-p", "err", "-n", "25"],
    &["-t", "CRON", "-n", "20"],
    &["host=db1", "-n", "100"],
    &["-t", "CRON", "-n", "3", "--until", "2026-11-21T01:00:00Z"],
    &[
        "-p",
        "err",
        "--since",
        "2026-11-21T00:55:00Z",
        "--until",
        "2026-11-21T00:58:00Z",
    ],
    &["-p", "info", "-g", "GET /4"],
];

/// What each query shows of the directory, and of its files read as
/// standard input (which has no summary).
fn shown_both_ways(d: &Path) -> Vec<(String, String)> {
    let mut files: Vec<_> = fs::read_dir(d)
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("name"))
        .filter(|n| n.starts_with('@'))
        .collect();
    files.sort();
    files.push("current".into());
    let mut all = Vec::new();
    for f in &files {
        all.extend(fs::read(d.join(f)).expect("read"));
    }
    SELECTING
        .iter()
        .map(|query| {
            let mut args = vec!["--utc", "--no-pager"];
            args.extend_from_slice(query);
            let mut dir_args = args.clone();
            dir_args.push(path_arg(d));
            let from_dir = run(&dir_args);
            assert!(from_dir.err.is_empty(), "{query:?}: {}", from_dir.err);
            args.push("-");
            let from_stdin = run_with(&args, &all, &[("TZ", "UTC")]);
            (from_dir.out, from_stdin.out)
        })
        .collect()
}

fn assert_same_both_ways(d: &Path, when: &str) {
    for (query, (from_dir, from_stdin)) in SELECTING.iter().zip(shown_both_ways(d)) {
        assert_eq!(from_dir, from_stdin, "{when}: {query:?}");
    }
}

#[test]
fn summaries_are_made_on_first_read_and_results_are_the_same_with_them() {
    let s = Scratch::new("summaries");
    let d = s.path("log");
    varied_dir(&d, 4);
    assert_same_both_ways(&d, "no summary yet");
    let made: Vec<_> = fs::read_dir(d.join("summaries"))
        .expect("summaries made")
        .collect();
    assert_eq!(made.len(), 4, "one per archive");
    let r = run(&["--utc", "-p", "err", path_arg(&d)]);
    assert_eq!(r.lines().len(), 4 * 60 + 10, "{}", r.err);
    assert_same_both_ways(&d, "with summaries");
    // Only what is wanted is read: a summary says where the lines are.
    let all = run(&["--utc", path_arg(&d)]);
    assert_eq!(all.lines().len(), 4 * 3000 + 500);
}

/// A line of `current` for the test below: mostly info, some lines that
/// look like errors and are not reader lines (they count as info).
fn severity_line(i: u64) -> String {
    let text = match i % 5000 {
        100..=104 => format!("local0.err app[{i}]: refused {i}"),
        200 => "user.err no tag here".to_string(),
        201 => "kern.crit\tk=v: tab before the space".to_string(),
        202 => "bogus.err app: no such facility".to_string(),
        203 => "user.error app: an alias of err".to_string(),
        204 => "daemon.4 app: a number for warning".to_string(),
        205 => "plain: a service's own line".to_string(),
        206 => "mail.err: no tag but the colon".to_string(),
        207 => "auth.err sshd: \tfield=1 after the tag".to_string(),
        208 => "daemon.notice\tapp: tab first".to_string(),
        _ => format!("daemon.info app[{}]: fine {i}", i % 77),
    };
    match i % 3001 {
        1500 => format!("{text}\n"),
        _ => format!("{} {text}\n", label(i / 50, (i % 50) as u32 * 1000)),
    }
}

#[test]
fn severities_and_fields_are_decided_on_every_line_of_current_as_on_standard_input() {
    // `current` has no summary: log-show's reader tests each line's
    // severity and fields before handing it on, passing over runs of thousands of
    // lines; what it shows must be what the same lines show read whole.
    let s = Scratch::new("severity-current");
    let d = s.path("log");
    fs::create_dir_all(&d).expect("log directory");
    let archive_body: String = (0..3000).map(severity_line).collect();
    fs::write(d.join(archive(3000 / 50)), &archive_body).expect("archive");
    let current: String = (3000..23000).map(severity_line).collect();
    fs::write(d.join("current"), &current).expect("current");
    let all = format!("{archive_body}{current}");
    let mid = utc(12000 / 50, 0);
    let queries: &[&[&str]] = &[
        &["-p", "err"],
        &["-p", "info"],
        &["-p", "notice..warning"],
        &["-p", "6..7"],
        &["-p", "debug"],
        &["-p", "crit", "-r"],
        &["-p", "err", "-n", "3"],
        &["-p", "err", "--until", &mid],
        &["-p", "err", "--since", &mid],
        &["-p", "err", "-t", "app"],
        &["-p", "err", "-g", "refused 1"],
        &["-p", "err", "-o", "cat"],
        // Field matches are tested by the reader as severities are.
        &["-t", "sshd"],
        &["SYSLOG_PID=5101"],
        &["-t", "app", "-n", "4", "--until", &mid],
    ];
    for query in queries {
        for round in ["no summary yet", "with a summary"] {
            let mut args = vec!["--utc", "--no-pager"];
            args.extend_from_slice(query);
            let mut dir_args = args.clone();
            dir_args.push(path_arg(&d));
            let from_dir = run(&dir_args);
            args.push("-");
            let from_stdin = run_with(&args, all.as_bytes(), &[("TZ", "UTC")]);
            assert!(from_dir.err.is_empty(), "{query:?}: {}", from_dir.err);
            assert_eq!(from_dir.out, from_stdin.out, "{round}: {query:?}");
            assert_eq!(from_dir.code, from_stdin.code, "{round}: {query:?}");
        }
    }
    let err = run(&["--utc", "-o", "cat", "-p", "err", path_arg(&d)]);
    // In each of the 5 runs of 5,000 lines: 5 refused, the alias, and
    // `sshd: ` with a field.
    assert_eq!(err.lines().len(), 5 * 7, "{}", err.out);
    assert!(!err.out.contains("no tag here") && !err.out.contains("tab before"));
}

#[test]
fn summaries_never_hide_a_line_stale_damaged_missing_or_of_another_archive() {
    let s = Scratch::new("summaries-bad");
    let d = s.path("log");
    varied_dir(&d, 3);
    let sums = d.join("summaries");
    assert_same_both_ways(&d, "made");
    let mut names: Vec<_> = fs::read_dir(&sums)
        .expect("summaries")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3);
    let mut archives: Vec<_> = fs::read_dir(&d)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('@'))
        })
        .collect();
    archives.sort();

    // Stale: an archive given an error line its summary does not know.
    let err = format!(
        "{} local0.err late[1]: appended\thost=db9\n",
        label(29, 999_000)
    );
    let mut body = fs::read(&archives[0]).expect("read");
    body.extend_from_slice(err.as_bytes());
    fs::write(&archives[0], &body).expect("rewrite");
    let r = run(&["--utc", "-p", "err", path_arg(&d)]);
    assert!(r.out.contains("appended"), "{}", r.out);
    assert!(run(&["host=db9", path_arg(&d)]).out.contains("appended"));
    assert_same_both_ways(&d, "stale");

    // The same size, another time: rewritten, so not trusted either.
    let before = fs::read(&archives[1]).expect("read");
    let changed = String::from_utf8(before.clone()).expect("text").replacen(
        "daemon.info nginx",
        "daemon.crit nginx",
        1,
    );
    assert_eq!(changed.len(), before.len());
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(&archives[1], &changed).expect("rewrite");
    let r = run(&["--utc", "-p", "crit", path_arg(&d)]);
    assert_eq!(r.lines().len(), 1, "{}", r.out);
    assert_same_both_ways(&d, "same size, rewritten");

    // Damaged: cut, changed, emptied, not a file.
    let sum = fs::read_dir(&sums)
        .expect("summaries")
        .map(|e| e.expect("entry").path())
        .min()
        .expect("a summary");
    let good = fs::read(&sum).expect("read summary");
    let flipped =
        String::from_utf8(good.clone())
            .expect("text")
            .replacen(":severity =3", ":severity =4", 1);
    for bad in [
        &good[..good.len() / 2],
        b"",
        flipped.as_bytes(),
        b"rill-summary 2\nend 0\n",
    ] {
        fs::write(&sum, bad).expect("damage");
        assert_same_both_ways(&d, "damaged");
    }
    fs::remove_file(&sum).expect("remove");
    fs::create_dir(&sum).expect("a directory in its place");
    assert_same_both_ways(&d, "a directory");
    fs::remove_dir(&sum).expect("remove");

    // Of another archive: each archive's summary under another's name.
    assert_same_both_ways(&d, "remade");
    let texts: Vec<_> = names.iter().map(|n| fs::read(n).expect("read")).collect();
    for (i, n) in names.iter().enumerate() {
        fs::write(n, &texts[(i + 1) % texts.len()]).expect("swap");
    }
    assert_same_both_ways(&d, "swapped");

    // Missing: the directory gone, or made a file.
    fs::remove_dir_all(&sums).expect("remove");
    fs::write(&sums, "not a directory").expect("file");
    assert_same_both_ways(&d, "a file in its place");
    fs::remove_file(&sums).expect("remove");
    assert_same_both_ways(&d, "missing");
}

#[test]
fn a_window_inside_an_archive_starts_at_its_first_line_as_read_whole() {
    let s = Scratch::new("window-halving");
    let d = s.path("log");
    // Archives of 3,000 lines (about 300 KiB), halved to find a time.
    varied_dir(&d, 2);
    let mut all = Vec::new();
    let mut files: Vec<_> = fs::read_dir(&d)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort(); // `current` after the archives (`@...`)
    for f in &files {
        all.extend(fs::read(f).expect("read"));
    }
    for i in [
        0, 1, 499, 500, 501, 1234, 2999, 3000, 4321, 5999, 6000, 6499, 7000,
    ] {
        let (secs, nanos) = (i / 100, (i % 100) as u32 * 1000);
        for since in [
            label(secs, nanos),
            label(secs, nanos.saturating_sub(1)),
            label(secs, nanos + 1),
        ] {
            let until = label(secs + 7, 0);
            let args = ["--utc", "--since", &since, "--until", &until];
            let mut dir_args = args.to_vec();
            dir_args.push(path_arg(&d));
            let from_dir = run(&dir_args);
            let mut stdin_args = args.to_vec();
            stdin_args.push("-");
            let from_stdin = run_with(&stdin_args, &all, &[("TZ", "UTC")]);
            assert!(
                from_dir.out == from_stdin.out,
                "since line {i} ({since}): {} lines from the directory, {} from stdin",
                from_dir.lines().len(),
                from_stdin.lines().len()
            );
        }
    }
}
