//! follow-log-directories through real log directories, cursors, pipes
//! and signals.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use rustix::process::Signal;

/// follow-log-directories on `cursors`, its output through a pipe (as
/// under a supervisor) appended to `out`.
struct Follow {
    child: Child,
    copier: Option<std::thread::JoinHandle<()>>,
    out: PathBuf,
    err: PathBuf,
}

impl Follow {
    fn start(cursors: &Path, out: &Path) -> Follow {
        Follow::start_limited(cursors, out, None)
    }

    /// Started with the open files limit `soft:hard` (prlimit(1)).
    fn start_limited(cursors: &Path, out: &Path, nofile: Option<&str>) -> Follow {
        let err = out.with_extension("stderr");
        let mut command = match nofile {
            Some(limit) => {
                require("prlimit");
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={limit}")).arg(FOLLOW);
                c
            }
            None => Command::new(FOLLOW),
        };
        let mut child = command
            .arg(cursors)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                fs::File::options()
                    .create(true)
                    .append(true)
                    .open(&err)
                    .expect("err"),
            ))
            .spawn()
            .expect("spawn follow-log-directories");
        let mut pipe = child.stdout.take().expect("stdout");
        let mut file = fs::File::options()
            .create(true)
            .append(true)
            .open(out)
            .expect("out");
        let copier = std::thread::spawn(move || {
            let _ = std::io::copy(&mut pipe, &mut file);
        });
        let pid = child.id();
        assert!(wait_until(LONG, || blocks_term(pid)), "never became ready");
        Follow {
            child,
            copier: Some(copier),
            out: out.to_path_buf(),
            err,
        }
    }

    fn join(&mut self) {
        if let Some(copier) = self.copier.take() {
            copier.join().expect("copier");
        }
    }

    fn wait_lines(&self, n: usize) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        wait_until(LONG, || {
            lines = file_lines(&self.out);
            lines.len() >= n
        });
        lines
    }

    /// Waits for `n` lines out, looking every 100 ms (cheaply: counting
    /// line feeds), at most `limit`; how many there are.
    fn wait_count(&self, n: usize, limit: Duration) -> usize {
        let count = || {
            fs::read(&self.out)
                .map(|bytes| memchr_count(&bytes))
                .unwrap_or(0)
        };
        let deadline = std::time::Instant::now() + limit;
        while count() < n && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        count()
    }

    /// TERM; the exit code.
    fn stop(mut self) -> i32 {
        signal(&self.child, Signal::TERM);
        let code = wait_child(&mut self.child, LONG).code().unwrap_or(-1);
        self.join();
        code
    }

    fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
        self.join();
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }
}

/// The log directory's lines as they stand (`@stamp text`).
fn as_in_log(dir: &Path) -> Vec<Vec<u8>> {
    read_logdir(dir)
        .into_iter()
        .map(|l| {
            let mut line = format!("@{} ", l.stamp).into_bytes();
            line.extend_from_slice(&l.text);
            line
        })
        .collect()
}

#[test]
fn lines_come_out_as_in_the_log_across_rotations_and_restarts() {
    let s = Scratch::new("follow-basic");
    let log = s.path("log");
    let cursors = s.path("cursors");
    let lines = numbered_lines(3000);
    cyclog_write(&log, &["--max-file-size", "4096"], &lines[..1000]);
    cursor_dir(&cursors, "app", &log);
    let out = s.path("out");
    let f = Follow::start(&cursors, &out);
    f.wait_lines(1000);
    // More lines, rotated through many small files, while it follows.
    cyclog_write(&log, &["--max-file-size", "4096"], &lines[1000..2000]);
    f.wait_lines(2000);
    assert_eq!(f.stop(), 0);
    // Stopped cleanly: the next run starts exactly after the last line.
    cyclog_write(&log, &["--max-file-size", "4096"], &lines[2000..]);
    let f = Follow::start(&cursors, &out);
    f.wait_lines(3000);
    let err = f.stderr();
    assert_eq!(f.stop(), 0, "{err}");
    assert!(archives(&log).len() > 20, "rotations happened");
    assert_same_lines(&file_lines(&out), &as_in_log(&log), "followed");
    let last = fs::read_to_string(cursors.join("app/last")).expect("last");
    let final_stamp = read_logdir(&log).last().expect("a line").stamp.clone();
    assert!(last.starts_with(&format!("{final_stamp}\n")), "{last:?}");
}

#[test]
fn kill_9_repeats_only_lines_after_the_saved_cursor() {
    let s = Scratch::new("follow-kill");
    let log = s.path("log");
    let cursors = s.path("cursors");
    cyclog_write(&log, &["--max-file-size", "64k"], &numbered_lines(200_000));
    cursor_dir(&cursors, "app", &log);
    let want = as_in_log(&log);
    let out = s.path("out");
    // Where the next run must start: just after the saved cursor.
    let mut resume = 0;
    for round in 0..4 {
        let before = file_lines(&out).len();
        let f = Follow::start(&cursors, &out);
        if round < 3 {
            f.wait_lines(before + 20_000);
            f.kill9();
        } else {
            wait_until(LONG, || {
                let mut distinct = file_lines(&out);
                distinct.sort();
                distinct.dedup();
                distinct.len() >= want.len()
            });
            assert_eq!(f.stop(), 0);
        }
        let got = file_lines(&out);
        if resume < want.len() {
            assert_same_lines(
                &got[before..before + 1],
                &want[resume..resume + 1],
                "resumed",
            );
        }
        // No `last` yet (killed before the first save): from the start.
        let last = fs::read(cursors.join("app/last")).unwrap_or_default();
        resume = want
            .iter()
            .position(|l| last.get(..24) == Some(&l[1..25]))
            .map_or(0, |i| i + 1);
        assert!(resume <= want.len());
    }
    assert_eq!(
        resume,
        want.len(),
        "the final cursor is after the last line"
    );
    let _ = check_resends(&file_lines(&out), &want);
}

#[test]
fn lines_sharing_a_stamp_are_never_skipped() {
    let s = Scratch::new("follow-same");
    let log = s.path("log");
    fs::create_dir_all(&log).expect("log");
    // Another writer (multilog) may give several lines one stamp.
    let first: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|t| stamped(5, 0, t))
        .chain([stamped(6, 0, "d"), stamped(7, 0, "e")])
        .collect();
    fs::write(log.join("current"), first.join("\n") + "\n").expect("current");
    let cursors = s.path("cursors");
    cursor_dir(&cursors, "app", &log);
    let out = s.path("out");
    let f = Follow::start(&cursors, &out);
    f.wait_lines(5);
    assert_eq!(f.stop(), 0);
    // More lines with the stamp of the last one, then after it.
    let more = [stamped(7, 0, "f"), stamped(7, 0, "g"), stamped(8, 0, "h")];
    let mut all = first.clone();
    all.extend(more.iter().cloned());
    fs::write(log.join("current"), all.join("\n") + "\n").expect("current");
    let f = Follow::start(&cursors, &out);
    let got = f.wait_lines(8);
    assert_eq!(f.stop(), 0);
    let want: Vec<Vec<u8>> = all.iter().map(|l| l.clone().into_bytes()).collect();
    assert_same_lines(&got, &want, "every line once");
    let last = fs::read_to_string(cursors.join("app/last")).expect("last");
    assert!(
        last.contains(" 1 mid"),
        "after the 1st line of its stamp: {last:?}"
    );
}

#[test]
fn a_nosh_cursor_works_unchanged_and_stays_readable_by_nosh() {
    let s = Scratch::new("follow-nosh");
    let log = s.path("log");
    fs::create_dir_all(&log).expect("log");
    let lines: Vec<String> = (1..=6).map(|i| stamped(i, 0, &format!("l{i}"))).collect();
    // nosh skips every line stamped at or before `last`: lines 1 to 3.
    fs::write(log.join("current"), lines.join("\n") + "\n").expect("current");
    let cursors = s.path("cursors");
    let dir = cursor_dir(&cursors, "svc", &log);
    fs::write(dir.join("last"), format!("{}\n", &lines[2][1..25])).expect("last");
    fs::create_dir_all(cursors.join(".hidden")).expect("hidden");
    let out = s.path("out");
    let f = Follow::start(&cursors, &out);
    let got = f.wait_lines(3);
    assert_eq!(f.stop(), 0);
    let want: Vec<Vec<u8>> = lines[3..].iter().map(|l| l.clone().into_bytes()).collect();
    assert_same_lines(&got, &want, "after nosh's position");
    // What nosh reads: 24 hex digits and a LF, first.
    let last = fs::read(dir.join("last")).expect("last");
    assert_eq!(&last[..25], format!("{}\n", &lines[5][1..25]).as_bytes());
    assert!(
        !cursors.join(".hidden/last").exists(),
        "dot directories are no cursors"
    );
}

#[test]
fn cursors_added_while_running_are_followed() {
    let s = Scratch::new("follow-new");
    let cursors = s.path("cursors");
    fs::create_dir_all(&cursors).expect("cursors");
    let out = s.path("out");
    let f = Follow::start(&cursors, &out);
    let mut want = Vec::new();
    for name in ["one", "two"] {
        let log = s.path(name);
        cyclog_write(&log, &[], &[format!("from {name}").into_bytes()]);
        // Made elsewhere, then moved in whole, as a careful admin does.
        let staging = s.path(&format!("staging-{name}"));
        cursor_dir(&staging, name, &log);
        fs::rename(staging.join(name), cursors.join(name)).expect("move in");
        want.extend(as_in_log(&log));
        f.wait_lines(want.len());
    }
    let err = f.stderr();
    assert_eq!(f.stop(), 0);
    let mut got = file_lines(&out);
    got.sort();
    want.sort();
    assert_eq!(got, want, "{err}");
}

#[test]
fn lost_lines_are_said_and_following_goes_on_from_the_oldest_left() {
    let s = Scratch::new("follow-lost");
    let log = s.path("log");
    fs::create_dir_all(&log).expect("log");
    let archive = |n: u64| {
        log.join(format!(
            "@{:016x}{:08x}.s",
            (1u64 << 62) + 1_700_000_000 + n,
            0
        ))
    };
    fs::write(
        archive(4),
        [
            stamped(1, 0, "a1"),
            stamped(2, 0, "a2"),
            stamped(3, 0, "a3"),
        ]
        .join("\n")
            + "\n",
    )
    .expect("archive");
    fs::write(
        archive(8),
        [stamped(5, 0, "b5"), stamped(6, 0, "b6")].join("\n") + "\n",
    )
    .expect("archive");
    fs::write(log.join("current"), stamped(9, 0, "c9") + "\n").expect("current");
    let cursors = s.path("cursors");
    let dir = cursor_dir(&cursors, "app", &log);
    // The cursor stood inside the first archive ...
    let mark = stamped(1, 0, "");
    fs::write(
        dir.join("last"),
        format!("{0}\nrill after {0} 1 mid\n", &mark[1..25]),
    )
    .expect("last");
    // ... which the size cap then deleted.
    fs::remove_file(archive(4)).expect("delete");
    let out = s.path("out");
    let f = Follow::start(&cursors, &out);
    let got = f.wait_lines(3);
    let err = f.stderr();
    assert_eq!(f.stop(), 0);
    let texts: Vec<&[u8]> = got.iter().map(|l| &l[26..]).collect();
    assert_eq!(texts, [&b"b5"[..], b"b6", b"c9"]);
    assert!(err.contains("lines lost"), "{err}");
}

#[test]
fn a_cursor_in_use_by_another_follower_is_left_alone() {
    let s = Scratch::new("follow-busy");
    let log = s.path("log");
    cyclog_write(&log, &[], &numbered_lines(10));
    let cursors = s.path("cursors");
    cursor_dir(&cursors, "app", &log);
    let first = Follow::start(&cursors, &s.path("out1"));
    first.wait_lines(10);
    let second = Follow::start(&cursors, &s.path("out2"));
    assert!(
        wait_until(LONG, || second.stderr().contains("in use")),
        "{}",
        second.stderr()
    );
    assert_eq!(second.stop(), 0);
    assert_eq!(first.stop(), 0);
    assert!(file_lines(&s.path("out2")).is_empty());
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [&[][..], &["a", "b"], &["--bogus", "x"]] {
        let out = Command::new(FOLLOW).args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(100), "{args:?}");
    }
    let out = Command::new(FOLLOW)
        .arg("/nonexistent/cursors")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(111));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("follow-log-directories: fatal: "));
}

/// The lines of the file `name` of a log directory, `@stamp text` (plain text only).
fn stamped_lines(dir: &Path, name: &str) -> Vec<Vec<u8>> {
    file_lines(&dir.join(name))
}

/// The archives of `dir` whose content begins with `magic`.
fn archives_starting_with(dir: &Path, magic: &[u8]) -> usize {
    archives(dir)
        .iter()
        .filter(|a| fs::read(dir.join(a)).is_ok_and(|b| b.starts_with(magic)))
        .count()
}

#[test]
fn a_follower_lagging_behind_compressing_rotations_gets_every_line_once_in_order() {
    require("gzip");
    require("zstd");
    for (processor, magic) in [
        ("gzip", &[0x1f, 0x8b][..]),
        ("zstd -q -c", &[0x28, 0xb5, 0x2f, 0xfd][..]),
    ] {
        let s = Scratch::new("follow-compressed");
        let log = s.path("log");
        let cursors = s.path("cursors");
        let args = ["--max-file-size", "4096", "--processor", processor];
        let lines = numbered_lines(3000);
        // All in `current` (no rotation yet, however loaded the machine).
        cyclog_write(&log, &[], &lines[..600]);
        // The cursor in the middle of `current`, before the follower ever
        // ran (as nosh writes it): after the line in its middle.
        let current = stamped_lines(&log, "current");
        let mid = &current[current.len() / 2];
        let first = lines
            .iter()
            .position(|l| mid.ends_with(l))
            .expect("a line of the log")
            + 1;
        cursor_dir(&cursors, "app", &log);
        fs::write(cursors.join("app/last"), format!("{}\n", s_of(mid))).expect("last");
        // That current is rotated and compressed, then more after it.
        for part in lines[600..2400].chunks(600) {
            cyclog_write(&log, &args, part);
        }
        // Every archive compressed, the one the cursor is in among them.
        let all = archives(&log).len();
        assert!(
            all >= 2 && archives_starting_with(&log, magic) == all,
            "{processor}: {:?}",
            archives(&log)
        );
        let out = s.path("out");
        let f = Follow::start(&cursors, &out);
        f.wait_lines(2400 - first);
        let err = f.stderr();
        assert_eq!(f.stop(), 0, "{err}");
        // Stopped at the end of `current`, which is compressed in turn.
        for part in lines[2400..].chunks(300) {
            cyclog_write(&log, &args, part);
        }
        let f = Follow::start(&cursors, &out);
        f.wait_lines(3000 - first);
        let err = f.stderr();
        assert_eq!(f.stop(), 0, "{err}");
        assert!(!err.contains("warning"), "{processor}: {err}");
        let got: Vec<Vec<u8>> = file_lines(&out)
            .into_iter()
            .map(|l| l.get(26..).unwrap_or_default().to_vec())
            .collect();
        assert_same_lines(&got, &lines[first..], processor);
    }
}

/// The 24 hex digits of a stamped line's stamp.
fn s_of(line: &[u8]) -> String {
    String::from_utf8_lossy(&line[1..25]).into_owned()
}

/// `count` log directories under `logs`, each with one line, and a cursor
/// for each under `cursors`; the lines, as followed.
fn many_cursors(s: &Scratch, count: usize) -> (PathBuf, Vec<Vec<u8>>) {
    let cursors = s.path("cursors");
    fs::create_dir_all(&cursors).expect("cursors");
    let mut want = Vec::new();
    for i in 0..count {
        let log = s.path(&format!("logs/{i:05}"));
        fs::create_dir_all(&log).expect("log");
        let line = stamped(i as u64, 0, &format!("idle {i}"));
        fs::write(log.join("current"), format!("{line}\n")).expect("current");
        cursor_dir(&cursors, &format!("{i:05}"), &log);
        want.push(line.into_bytes());
    }
    (cursors, want)
}

fn memchr_count(bytes: &[u8]) -> usize {
    bytes.split(|&b| b == b'\n').count().saturating_sub(1)
}

fn sorted(mut lines: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    lines.sort();
    lines
}

fn append(log: &Path, line: &str) {
    use std::io::Write;
    let mut f = fs::File::options()
        .append(true)
        .open(log.join("current"))
        .expect("current");
    f.write_all(format!("{line}\n").as_bytes()).expect("append");
}

#[test]
fn ten_thousand_cursors_with_a_trickle_on_a_few_deliver_every_line_once() {
    let s = Scratch::new("follow-10k");
    let (cursors, mut want) = many_cursors(&s, 10_000);
    let out = s.path("out");
    // The soft limit as most systems set it; the hard one as they allow.
    let f = Follow::start_limited(&cursors, &out, Some("1024:16384"));
    // Generous: a debug build on a loaded machine takes a while for 10,000.
    let got = f.wait_count(want.len(), Duration::from_secs(300));
    assert_eq!(got, want.len(), "every cursor attached: {}", f.stderr());
    // A trickle on five of them, while the others stay quiet.
    let busy = [7usize, 2_500, 5_000, 7_500, 9_999];
    for n in 0..20u64 {
        for &i in &busy {
            let line = stamped(20_000 + n, i as u32, &format!("trickle {i} {n}"));
            append(&s.path(&format!("logs/{i:05}")), &line);
            want.push(line.into_bytes());
        }
        let got = f.wait_count(want.len(), LONG);
        assert_eq!(got, want.len(), "round {n}: {}", f.stderr());
    }
    let err = f.stderr();
    assert_eq!(f.stop(), 0, "{err}");
    assert!(sorted(file_lines(&out)) == sorted(want), "each line once");
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn the_soft_open_files_limit_is_raised_so_that_two_thousand_cursors_attach_at_once() {
    let s = Scratch::new("follow-2k");
    let (cursors, want) = many_cursors(&s, 2_000);
    let out = s.path("out");
    let f = Follow::start_limited(&cursors, &out, Some("1024:4096"));
    f.wait_count(want.len(), Duration::from_secs(300));
    let got = file_lines(&out);
    let err = f.stderr();
    assert_eq!(f.stop(), 0, "{err}");
    assert_eq!(
        got.len(),
        want.len(),
        "every cursor attached at once: {err}"
    );
    assert!(sorted(got) == sorted(want), "each line once: {err}");
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn out_of_descriptors_is_said_once_and_the_cursors_attached_are_followed() {
    let s = Scratch::new("follow-starved");
    let (cursors, want) = many_cursors(&s, 2_000);
    let out = s.path("out");
    // The hard limit too low: some cursors must wait.
    let f = Follow::start_limited(&cursors, &out, Some("1024:1024"));
    assert!(
        f.wait_count(900, Duration::from_secs(300)) >= 900,
        "{}",
        f.stderr()
    );
    assert!(
        wait_until(LONG, || f.stderr().contains("ulimit -n")),
        "{}",
        f.stderr()
    );
    // Long enough for several retries (the first after half a second).
    std::thread::sleep(Duration::from_secs(3));
    let err = f.stderr();
    assert_eq!(f.stop(), 0, "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    let got = file_lines(&out);
    assert!(got.len() < want.len(), "some cursors waited");
    let mut distinct = got.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), got.len(), "each line once");
}

/// The resident memory and open descriptors of a process.
fn rss_and_fds(pid: u32) -> (u64, usize) {
    let kib = proc_status(pid, "VmRSS")
        .first()
        .and_then(|v| v.parse::<u64>().ok())
        .expect("VmRSS");
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .count();
    (kib, fds)
}

#[test]
fn an_idle_cursor_costs_one_descriptor_and_at_most_4_kib() {
    let measure = |count: usize| {
        let s = Scratch::new(&format!("follow-rss-{count}"));
        let (cursors, want) = many_cursors(&s, count);
        let out = s.path("out");
        let f = Follow::start(&cursors, &out);
        assert_eq!(
            f.wait_count(want.len(), Duration::from_secs(300)),
            want.len()
        );
        // Every line out, and the cursors saved: all idle now.
        let saved = |i: usize| cursors.join(format!("{i:05}/last")).exists();
        assert!(wait_until(LONG, || (0..count).all(saved)));
        let measured = rss_and_fds(f.child.id());
        assert_eq!(f.stop(), 0);
        measured
    };
    let (rss_1, fds_1) = measure(1);
    let (rss_k, fds_k) = measure(1_001);
    let per_cursor = (rss_k.saturating_sub(rss_1)) * 1024 / 1_000;
    assert!(
        per_cursor <= 4096 + 1024,
        "{per_cursor} bytes per idle cursor ({rss_1} KiB at 1, {rss_k} KiB at 1001)"
    );
    assert!(
        fds_k - fds_1 <= 1_000,
        "{fds_1} descriptors at 1 cursor, {fds_k} at 1001"
    );
}
