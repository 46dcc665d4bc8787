//! cyclog through real pipes, files, signals and peers.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rustix::process::Signal;

/// Runs cyclog over `input` to EOF; returns its exit code and stderr.
fn run(args: &[&str], input: &[u8]) -> (i32, String) {
    run_with_input(CYCLOG, args, input)
}

#[test]
fn every_line_is_stamped_in_order_and_current_is_finished() {
    let s = Scratch::new("basic");
    let dir = s.path("log");
    let lines = numbered_lines(20_000);
    let (code, err) = run(&[path_arg(&dir)], &joined(&lines));
    assert_eq!(code, 0, "{err}");
    let got = read_logdir(&dir);
    assert_same_lines(&texts(&got), &lines, "log");
    assert_ordered(&dir, &got);
    assert_eq!(
        mode(&dir.join("current")),
        0o744,
        "a cleanly finished current is 0744"
    );
    assert!(dir.join("lock").exists());
}

#[test]
fn a_last_line_without_newline_is_completed() {
    let s = Scratch::new("tail");
    let dir = s.path("log");
    let (code, err) = run(&[path_arg(&dir)], b"first\nno newline at the end");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        texts(&read_logdir(&dir)),
        vec![b"first".to_vec(), b"no newline at the end".to_vec()]
    );
}

#[test]
fn empty_lines_and_odd_bytes_are_kept() {
    let s = Scratch::new("bytes");
    let dir = s.path("log");
    let input = b"\n\nnul\0byte\r\n\xff\xfe invalid utf-8\n\t tab\n";
    let (code, err) = run(&[path_arg(&dir)], input);
    assert_eq!(code, 0, "{err}");
    let expected: Vec<Vec<u8>> = input[..input.len() - 1]
        .split(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(texts(&read_logdir(&dir)), expected);
}

#[test]
fn rotation_keeps_every_line_within_the_size_and_in_order() {
    let s = Scratch::new("rotate");
    let dir = s.path("log");
    let lines = numbered_lines(30_000);
    let (code, err) = run(
        &[
            "--max-file-size",
            "8k",
            "--max-total-size",
            "1G",
            path_arg(&dir),
        ],
        &joined(&lines),
    );
    assert_eq!(code, 0, "{err}");
    let names = archives(&dir);
    assert!(
        names.len() > 200,
        "expected many rotations, got {}",
        names.len()
    );
    let longest = lines.iter().map(Vec::len).max().unwrap_or(0) as u64 + 27;
    for name in &names {
        assert!(name.ends_with(".s"), "{name}");
        let path = dir.join(name);
        // A line still arriving when the file filled may overrun it, by less than a line.
        assert!(
            fs::metadata(&path).expect("stat").len() <= 8192 + longest,
            "{name} too big"
        );
        assert_eq!(mode(&path), 0o744, "{name}");
    }
    let got = read_logdir(&dir);
    assert_same_lines(&texts(&got), &lines, "log");
    assert_ordered(&dir, &got);
}

#[test]
fn total_size_and_file_count_caps_drop_the_oldest() {
    let s = Scratch::new("caps");
    let lines = numbered_lines(20_000);
    for (cap, args) in [
        (
            "size",
            vec!["--max-file-size", "4096", "--max-total-size", "40000"],
        ),
        ("count", vec!["--max-file-size", "4096", "--max-files", "3"]),
    ] {
        let dir = s.path(cap);
        let mut all = args.clone();
        all.push(path_arg(&dir));
        let (code, err) = run(&all, &joined(&lines));
        assert_eq!(code, 0, "{err}");
        let names = archives(&dir);
        let total: u64 = names
            .iter()
            .chain(["current".to_string()].iter())
            .map(|n| fs::metadata(dir.join(n)).map_or(0, |m| m.len()))
            .sum();
        match cap {
            "size" => assert!(total <= 40000 + 4096 + 200, "{cap}: total {total}"),
            _ => assert_eq!(names.len(), 3, "{cap}: {names:?}"),
        }
        // What is left is the newest lines, all of them, in order.
        let got = texts(&read_logdir(&dir));
        assert!(!got.is_empty() && got.len() < lines.len());
        assert_same_lines(&got, &lines[lines.len() - got.len()..], cap);
    }
}

#[test]
fn long_lines_are_split_and_each_piece_stamped() {
    let s = Scratch::new("split");
    let dir = s.path("log");
    let (code, err) = run(
        &["--max-line", "10", path_arg(&dir)],
        b"0123456789abcdefghij0123\nshort\n0123456789\n",
    );
    assert_eq!(code, 0, "{err}");
    let got = read_logdir(&dir);
    let want: Vec<&[u8]> = vec![
        b"0123456789",
        b"abcdefghij",
        b"0123",
        b"short",
        b"0123456789",
    ];
    assert_eq!(
        texts(&got),
        want.iter().map(|w| w.to_vec()).collect::<Vec<_>>()
    );
    assert_ordered(&dir, &got);
}

/// Runs cyclog over `input` to EOF, at most `LONG`: a cyclog that hangs
/// fails the test (and is killed) instead of hanging it.
fn run_bounded(args: &[&str], input: &[u8], err: &Path) -> i32 {
    let mut child = Command::new(CYCLOG)
        .args(args)
        .stdin(Stdio::piped())
        .stderr(fs::File::create(err).expect("stderr file"))
        .spawn()
        .expect("spawn cyclog");
    let feeder = feed(&mut child, input);
    let status = wait_child(&mut child, LONG);
    feeder.join().expect("feeder");
    status.code().unwrap_or(-1)
}

/// The text of every line, joined as it came in (split lines rejoined).
fn all_text(lines: &[LogLine]) -> Vec<u8> {
    lines.iter().flat_map(|l| l.text.iter().copied()).collect()
}

#[test]
fn a_line_longer_than_the_file_size_is_split_at_it_and_rotation_goes_on() {
    let s = Scratch::new("longline");
    let dir = s.path("log");
    // The line limit is what fits in an empty 4096-byte file: 4069 bytes.
    let mut input = vec![b'a'; 10_000];
    input.extend_from_slice(b"\nshort\n");
    input.extend(std::iter::repeat_n(b'b', 9_000));
    let code = run_bounded(
        &["--max-file-size", "4096", path_arg(&dir)],
        &input,
        &s.path("stderr"),
    );
    let err = fs::read_to_string(s.path("stderr")).unwrap_or_default();
    assert_eq!(code, 0, "{err}");
    let got = read_logdir(&dir);
    let lens: Vec<usize> = got.iter().map(|l| l.text.len()).collect();
    assert_eq!(lens, [4069, 4069, 1862, 5, 4069, 4069, 862], "pieces");
    let mut want = vec![b'a'; 10_000];
    want.extend_from_slice(b"short");
    want.extend(std::iter::repeat_n(b'b', 9_000));
    assert!(all_text(&got) == want, "bytes lost, added or out of order");
    for name in archives(&dir) {
        let size = fs::metadata(dir.join(&name)).expect("stat").len();
        assert!(size <= 4096, "{name}: {size} bytes");
    }
    assert!(archives(&dir).len() >= 5, "{:?}", archives(&dir));
    assert_ordered(&dir, &got);
}

#[test]
fn a_17_mib_write_without_newline_is_kept_whole_at_the_default_sizes() {
    let s = Scratch::new("17mib");
    let dir = s.path("log");
    let len = (17 << 20) + 5;
    let input: Vec<u8> = (0..len).map(|i| b'a' + (i % 23) as u8).collect();
    let code = run_bounded(&[path_arg(&dir)], &input, &s.path("stderr"));
    let err = fs::read_to_string(s.path("stderr")).unwrap_or_default();
    assert_eq!(code, 0, "{err}");
    let got = read_logdir(&dir);
    assert!(
        got.iter()
            .all(|l| l.text.len() == 65536 || l.text.len() == 5),
        "not split at the default 64 KiB"
    );
    assert!(all_text(&got) == input, "bytes lost, added or out of order");
    assert!(!archives(&dir).is_empty(), "never rotated");
    assert_ordered(&dir, &got);
}

/// The pipe delivers a line up to exactly the line limit, then the rest:
/// the line is split there (its LF written before the rest), the rotation
/// it calls for happens, and TERM stops cyclog at once, with exit 0.
#[test]
fn a_line_arriving_exactly_at_the_limit_then_more_is_split_and_term_stops() {
    let s = Scratch::new("atlimit");
    let dir = s.path("log");
    let mut sup = Supervised::new(
        CYCLOG,
        &["--max-file-size", "4096", path_arg(&dir)],
        s.path("stderr"),
    );
    sup.start();
    sup.send(&[b'a'; 4069]);
    let current = dir.join("current");
    let written = || fs::metadata(&current).is_ok_and(|m| m.len() == 4095);
    assert!(wait_until(LONG, || sup.drained() && written()));
    sup.send(b"bbb\nccc");
    assert!(
        wait_until(LONG, || sup.drained() && archives(&dir).len() == 1),
        "no rotation after the split line: {}",
        sup.stderr_text()
    );
    sup.signal(Signal::TERM);
    assert_eq!(sup.wait(LONG).code(), Some(0), "{}", sup.stderr_text());
    let got = read_logdir(&dir);
    assert_eq!(
        texts(&got),
        vec![vec![b'a'; 4069], b"bbb".to_vec(), b"ccc".to_vec()]
    );
    assert_ordered(&dir, &got);
}

#[test]
fn every_directory_gets_every_byte() {
    let s = Scratch::new("multi");
    let (a, b) = (s.path("a"), s.path("b"));
    let lines = numbered_lines(5_000);
    let (code, err) = run(
        &["--max-file-size", "16k", path_arg(&a), path_arg(&b)],
        &joined(&lines),
    );
    assert_eq!(code, 0, "{err}");
    assert_same_lines(&texts(&read_logdir(&a)), &lines, "a");
    assert_same_lines(&texts(&read_logdir(&b)), &lines, "b");
}

#[test]
fn stop_signals_and_alarm_lose_nothing() {
    let s = Scratch::new("signals");
    let dir = s.path("log");
    let mut sup = Supervised::new(CYCLOG, &[path_arg(&dir)], s.path("stderr"));
    let lines = numbered_lines(4_000);
    let mut sent = 0;
    for signal in [
        Signal::TERM,
        Signal::INT,
        Signal::HUP,
        Signal::ALARM,
        Signal::TERM,
    ] {
        sup.start();
        for _ in 0..5 {
            sup.send(&joined(&lines[sent..sent + 100]));
            sent += 100;
        }
        // Half a line: a stop completes it, the rest comes as the next line.
        sup.send(b"half a ");
        sup.signal(signal);
        if signal == Signal::ALARM {
            assert!(
                wait_until(LONG, || !archives(&dir).is_empty()),
                "no rotation on SIGALRM"
            );
            sup.send(b"line\n");
            sup.signal(Signal::TERM);
        }
        let status = sup.wait(LONG);
        assert_eq!(status.code(), Some(0), "{signal:?}: {}", sup.stderr_text());
        assert_eq!(mode(&dir.join("current")), 0o744);
    }
    sup.start();
    sup.close_input();
    assert_eq!(sup.wait(LONG).code(), Some(0));
    let got = texts(&read_logdir(&dir));
    let mut want = Vec::new();
    for (i, chunk) in lines[..sent].chunks(500).enumerate() {
        want.extend_from_slice(chunk);
        // On a stop the open line is completed; after ALRM it was finished by "line".
        want.push(if i == 3 {
            b"half a line".to_vec()
        } else {
            b"half a ".to_vec()
        });
    }
    assert_same_lines(&got, &want, "log");
    assert_ordered(&dir, &read_logdir(&dir));
}

/// Runs cyclog under strace, which sends it `signal` at the first poll(2)
/// of its life: the Rust runtime's check of descriptors 0 to 2, before
/// `main`. The same instant every time, however loaded the machine.
fn run_signalled_at_start(signal: &str, args: &[&str], input: &[u8]) -> (Option<i32>, String) {
    let ran = run_piped(
        "strace",
        &[
            &["-qq", "-o", "/dev/null", "-e", "trace=poll"],
            &["-e", &format!("inject=poll:signal={signal}:when=1"), CYCLOG][..],
            args,
        ]
        .concat(),
        &[],
        input,
    );
    let code = (ran.code != -1).then_some(ran.code);
    (code, ran.stderr)
}

#[test]
fn a_signal_before_main_waits_for_cyclog_instead_of_killing_it() {
    require("strace");
    let s = Scratch::new("early");
    // ALRM: a rotation asked for with nothing to rotate; the run goes on.
    let dir = s.path("alrm");
    let (code, err) = run_signalled_at_start("SIGALRM", &[path_arg(&dir)], b"one\ntwo\n");
    assert_eq!(code, Some(0), "killed by an early SIGALRM: {err}");
    assert_eq!(
        texts(&read_logdir(&dir)),
        [b"one".to_vec(), b"two".to_vec()]
    );
    // TERM: a clean stop, writing what the pipe held.
    for signal in ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"] {
        let dir = s.path(signal);
        let (code, err) = run_signalled_at_start(signal, &[path_arg(&dir)], b"held\n");
        assert_eq!(code, Some(0), "{signal} before main: {err}");
        assert_eq!(mode(&dir.join("current")), 0o744, "{signal}");
    }
}

/// The supervisor's pipe outlives the logger: kill -9 at any moment, then
/// restart, and the log ends up with every line exactly once.
#[test]
fn kill_9_torture_loses_and_repeats_nothing() {
    const KILLS: usize = 300;
    let s = Scratch::new("torture");
    let dir = s.path("log");
    let mut sup = Supervised::new(
        CYCLOG,
        &["--max-file-size", "16k", path_arg(&dir)],
        s.path("stderr"),
    );
    let lines = numbered_lines(200_000);
    let kills = kill_9_while_feeding(&mut sup, joined(&lines), KILLS, (700, 9000), 12345);
    assert_eq!(sup.wait(LONG).code(), Some(0), "{}", sup.stderr_text());
    assert!(kills >= 100, "only {kills} kills happened");
    let got = read_logdir(&dir);
    assert_eq!(
        got.len(),
        lines.len(),
        "after {kills} kills: lost or repeated lines"
    );
    assert_same_lines(&texts(&got), &lines, &format!("after {kills} kills"));
    assert_ordered(&dir, &got);
}

/// Runs cyclog on `input` (a pipe's read end) under strace, killed (-9) as
/// it makes its first splice(2): the call that takes a written chunk out of
/// the pipe never runs. So a kill lands, every time, in the window between
/// writing a chunk and consuming it.
fn run_killed_at_consume(args: &[&str], input: &std::os::fd::OwnedFd, err: &Path) {
    let mut child = Command::new("strace")
        .args(["-qq", "-o", "/dev/null"])
        .args(["-e", "trace=splice"])
        .args(["-e", "inject=splice:error=EIO:signal=SIGKILL:when=1"])
        .arg(CYCLOG)
        .args(args)
        .stdin(Stdio::from(input.try_clone().expect("dup")))
        .stderr(
            fs::File::options()
                .create(true)
                .append(true)
                .open(err)
                .expect("stderr file"),
        )
        .spawn()
        .expect("spawn strace");
    let status = wait_child(&mut child, LONG);
    assert!(!status.success(), "cyclog was not killed at its consume");
}

/// The chunk a killed writer left written but not consumed is skipped by
/// the next one, and stays skipped if that one is killed too before it
/// consumed it: after its recovery, and after the rotation the chunk asked
/// for, `cyclog.state` must still say so.
#[test]
fn a_chunk_written_twice_over_two_kills_is_in_the_log_once() {
    require("strace");
    let s = Scratch::new("twokills");
    let dir = s.path("log");
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
    let mut write = fs::File::from(write);
    let lines = numbered_lines(400);
    write.write_all(&joined(&lines)).expect("fill the pipe");
    let args = ["--max-file-size", "4096", path_arg(&dir)];
    let err = s.path("stderr");
    // The first writes a chunk that fills current, and dies before consuming it.
    run_killed_at_consume(&args, &read, &err);
    // The second finds it written, so skips it, rotates, and dies too.
    run_killed_at_consume(&args, &read, &err);
    drop(write);
    let mut last = Command::new(CYCLOG)
        .args(args)
        .stdin(Stdio::from(read))
        .stderr(
            fs::File::options()
                .append(true)
                .open(&err)
                .expect("stderr file"),
        )
        .spawn()
        .expect("spawn cyclog");
    let status = wait_child(&mut last, LONG);
    let err = fs::read_to_string(&err).unwrap_or_default();
    assert!(status.success(), "{err}");
    let got = read_logdir(&dir);
    assert_same_lines(&texts(&got), &lines, "after two kills before a consume");
    assert_ordered(&dir, &got);
}

#[test]
fn a_second_writer_is_refused_at_once() {
    let s = Scratch::new("lock");
    let dir = s.path("log");
    let mut first = Supervised::new(CYCLOG, &[path_arg(&dir)], s.path("stderr"));
    first.start();
    assert!(wait_until(LONG, || dir.join("current").exists()));
    let start = std::time::Instant::now();
    let (code, err) = run(&[path_arg(&dir)], b"second\n");
    assert_eq!(code, 111, "{err}");
    assert!(
        err.contains("cyclog: fatal:") && err.contains("locked"),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    first.close_input();
    assert_eq!(first.wait(LONG).code(), Some(0));
}

#[test]
fn bad_arguments_and_unusable_directories() {
    let s = Scratch::new("args");
    let ok = s.path("fresh");
    for args in [
        vec![],
        vec!["--no-such-option", path_arg(&ok)],
        vec!["--max-file-size", "lots", path_arg(&ok)],
        vec!["--max-files", "0", path_arg(&ok)],
        vec!["--rotate-every", "soon", path_arg(&ok)],
        vec!["--max-line", "0", path_arg(&ok)],
    ] {
        let (code, err) = run(&args, b"");
        assert_eq!(code, 100, "{args:?}: {err}");
        assert!(err.starts_with("cyclog: fatal: "), "{err}");
        assert!(err.contains("usage: cyclog"), "{err}");
    }
    fs::write(s.path("plain-file"), b"x").expect("write");
    let (code, err) = run(&[path_arg(&ok), path_arg(&s.path("plain-file"))], b"x\n");
    assert_eq!(code, 111, "{err}");
    assert!(err.contains("not a directory"), "{err}");
    // Nothing half-created: the first directory was not made either.
    let (code, err) = run(
        &[path_arg(&ok), path_arg(&s.path("missing/parent/log"))],
        b"x\n",
    );
    assert_eq!(code, 111, "{err}");
    assert!(!ok.exists(), "the first directory was left behind");
    let (code, err) = run(&[path_arg(&ok), path_arg(&ok)], b"x\n");
    assert_eq!(code, 100, "{err}");
}

/// Runs cyclog in `cwd` (relative directory names land there) over `input`.
fn run_in(cwd: &Path, args: &[&str], input: &[u8]) -> (i32, String) {
    let mut child = Command::new(CYCLOG)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cyclog");
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(input);
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), err)
}

/// A multilog or s6-log command line that cannot be read one way only is
/// refused, naming the word and how to write it, and makes no directory:
/// a bare word that is no action (a script's directory starts with . or /),
/// a script without a directory, what cyclog does not support.
#[test]
fn script_words_that_could_be_directories_are_refused_saying_how_to_write_them() {
    let s = Scratch::new("script");
    let cwd = s.path("cwd");
    fs::create_dir(&cwd).expect("mkdir");
    for (script, says) in [
        (vec!["t", "s1000000", "n5", "main"], "./main"),
        (vec!["=./status", "d"], "./d"),
        (vec!["s6log", "T", "./main"], "./s6log"),
        (vec!["t"], "./t"),
        (vec!["n5", "s4096"], "./n5"),
        (vec!["-*", "+*fatal*", "main"], "./main"),
        (vec!["+fatal", "./main"], "--dialect"),
        (vec!["e", "T", "./main"], "--dialect"),
        (vec!["1", "./main"], "not supported"),
        (vec!["pfoo:", "./main"], "not supported"),
        (vec!["!gzip", "T", "./main"], "?PROCESSOR"),
    ] {
        let (code, err) = run_in(&cwd, &script, b"line\n");
        assert_eq!(code, 100, "{script:?}: {err}");
        assert!(err.starts_with("cyclog: fatal: "), "{script:?}: {err}");
        assert!(err.contains(says), "{script:?} does not say {says}: {err}");
        let made: Vec<_> = fs::read_dir(&cwd).expect("read cwd").collect();
        assert!(made.is_empty(), "{script:?} made {made:?}");
    }
    // Names like those, but no action of either, are directories; and so is
    // any name written with ./ in front.
    let names = [
        "log", "main", "s1x", "test", "n", "ssh", "./t", "./s100", "./=x",
    ];
    let (code, err) = run_in(&cwd, &names, b"line\n");
    assert_eq!(code, 0, "{err}");
    for name in names {
        assert_eq!(
            texts(&read_logdir(&cwd.join(name))),
            [b"line".to_vec()],
            "{name}"
        );
    }
}

#[test]
fn stamps_read_as_now_by_s6_tai64nlocal() {
    require("s6-tai64nlocal");
    let s = Scratch::new("tai");
    let dir = s.path("log");
    let before = tai_now_hex();
    let (code, err) = run(&[path_arg(&dir)], b"what time is it\n");
    assert_eq!(code, 0, "{err}");
    let got = read_logdir(&dir);
    assert!(
        before <= got[0].stamp && got[0].stamp <= tai_now_hex(),
        "stamp is not true TAI of now"
    );
    let out = Command::new("s6-tai64nlocal")
        .env("TZ", "UTC")
        .stdin(fs::File::open(dir.join("current")).expect("current"))
        .output()
        .expect("s6-tai64nlocal");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let shown = unix_of_local(&text[..19]).expect("s6-tai64nlocal output");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!(
        (now - shown).abs() <= 1,
        "s6-tai64nlocal shows {text:?}, {}s from now",
        now - shown
    );
    assert!(text.ends_with(" what time is it\n"), "{text}");
}

/// Seconds since 1970 of "YYYY-MM-DD HH:MM:SS" in UTC.
fn unix_of_local(s: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    // Days from civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hh * 3600 + mm * 60 + ss)
}

#[test]
fn a_clock_behind_the_last_stamp_still_gives_increasing_stamps() {
    let s = Scratch::new("future");
    let dir = s.path("log");
    fs::create_dir(&dir).expect("mkdir");
    // A directory last written by a clock far ahead (the year 2100).
    let future = "@4000000f48657000000000";
    fs::write(
        dir.join(format!("{future}10.s")),
        format!("{future}00 old archive line\n"),
    )
    .expect("archive");
    fs::write(dir.join("current"), format!("{future}20 from the future\n")).expect("current");
    fs::set_permissions(dir.join("current"), fs::Permissions::from_mode(0o744)).expect("chmod");
    let (code, err) = run(
        &["--max-file-size", "4096", path_arg(&dir)],
        &joined(&numbered_lines(500)),
    );
    assert_eq!(code, 0, "{err}");
    let got = read_logdir(&dir);
    assert_eq!(got.len(), 502);
    assert_ordered(&dir, &got);
}

#[test]
fn rotate_every_makes_timed_archives_and_no_empty_ones() {
    let s = Scratch::new("every");
    let dir = s.path("log");
    let mut sup = Supervised::new(
        CYCLOG,
        &["--rotate-every", "1s", path_arg(&dir)],
        s.path("stderr"),
    );
    sup.start();
    sup.send(b"one\n");
    // Started means signals held, from before main: the directory may not
    // be made yet.
    assert!(wait_until(LONG, || dir.join("current").exists()));
    assert!(
        wait_until(LONG, || archives(&dir).len() == 1),
        "no timed rotation"
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(archives(&dir).len(), 1, "an empty current was rotated");
    sup.send(b"two\n");
    assert!(wait_until(LONG, || archives(&dir).len() == 2));
    sup.close_input();
    assert_eq!(sup.wait(LONG).code(), Some(0));
    assert_eq!(
        texts(&read_logdir(&dir)),
        vec![b"one".to_vec(), b"two".to_vec()]
    );
}

#[test]
fn a_processor_turns_each_finished_file_into_its_archive() {
    require("gzip");
    let s = Scratch::new("processor");
    let dir = s.path("log");
    // The state passes from run to run on fds 4 and 5, as with multilog.
    let script = "gzip -c && { read n <&4 || n=0; echo $((n + 1)) >&5; }";
    let lines = numbered_lines(3_000);
    let args = [
        "--max-file-size",
        "16k",
        "--processor",
        script,
        path_arg(&dir),
    ];
    let mut sup = Supervised::new(CYCLOG, &args, s.path("stderr"));
    sup.start();
    for part in lines.chunks(300) {
        sup.send(&joined(part));
        let settled =
            || sup.drained() && !dir.join("previous").exists() && !dir.join("processed").exists();
        assert!(wait_until(LONG, settled), "{}", sup.stderr_text());
    }
    sup.close_input();
    assert_eq!(sup.wait(LONG).code(), Some(0), "{}", sup.stderr_text());
    let names = archives(&dir);
    assert!(names.len() >= 5, "{names:?}");
    let mut got = Vec::new();
    for name in &names {
        let out = Command::new("gzip")
            .args(["-dc"])
            .arg(dir.join(name))
            .output()
            .expect("gzip");
        assert!(out.status.success(), "{name} is not gzip");
        got.extend_from_slice(&out.stdout);
    }
    got.extend_from_slice(&fs::read(dir.join("current")).expect("current"));
    let got: Vec<Vec<u8>> = got
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l[26..].to_vec())
        .collect();
    assert_same_lines(&got, &lines, "log");
    let runs: usize = fs::read_to_string(dir.join("state"))
        .expect("state")
        .trim()
        .parse()
        .expect("number");
    assert_eq!(runs, names.len());
    assert!(!dir.join("previous").exists() && !dir.join("processed").exists());
}

#[test]
fn a_failing_processor_never_loses_the_original() {
    let s = Scratch::new("badproc");
    let dir = s.path("log");
    let lines = numbered_lines(2_000);
    let mut sup = Supervised::new(
        CYCLOG,
        &[
            "--max-file-size",
            "8k",
            "--processor",
            "cat >/dev/null; exit 3",
            path_arg(&dir),
        ],
        s.path("stderr"),
    );
    sup.start();
    sup.send(&joined(&lines));
    assert!(
        wait_until(LONG, || sup.stderr_text().contains("trying again")),
        "{}",
        sup.stderr_text()
    );
    sup.close_input();
    assert_eq!(sup.wait(LONG).code(), Some(0));
    assert!(dir.join("previous").exists());
    // Without the processor, the next writer archives `previous` as it is.
    let (code, err) = run(&[path_arg(&dir)], b"");
    assert_eq!(code, 0, "{err}");
    assert!(!dir.join("previous").exists());
    assert_same_lines(&texts(&read_logdir(&dir)), &lines, "log");
    assert_ordered(&dir, &read_logdir(&dir));
}

#[test]
fn an_unfinished_foreign_current_cut_mid_line_is_kept_as_u() {
    let s = Scratch::new("foreign");
    let dir = s.path("log");
    fs::create_dir(&dir).expect("mkdir");
    let stamp = tai_now_hex();
    fs::write(
        dir.join("current"),
        format!("@{stamp} whole line\n@{stamp} cut sho"),
    )
    .expect("current");
    fs::set_permissions(dir.join("current"), fs::Permissions::from_mode(0o644)).expect("chmod");
    let (code, err) = run(&[path_arg(&dir)], b"next\n");
    assert_eq!(code, 0, "{err}");
    let names = archives(&dir);
    assert_eq!(names.len(), 1);
    assert!(names[0].ends_with(".u"), "{names:?}");
    assert!(
        fs::read(dir.join(&names[0]))
            .expect("archive")
            .ends_with(b"cut sho")
    );
    assert_eq!(
        fs::read(dir.join("current")).expect("current")[26..],
        b"next\n"[..]
    );
}

/// multilog's directories are taken over, and it takes over ours.
#[test]
fn directories_are_shared_with_multilog_both_ways() {
    require("multilog");
    let s = Scratch::new("multilog");
    let dir = s.path("log");
    let lines = numbered_lines(3_000);
    let mut multilog = Command::new("multilog")
        .args(["t", "s4096", "n1000"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .spawn()
        .expect("multilog");
    multilog
        .stdin
        .take()
        .expect("stdin")
        .write_all(&joined(&lines[..1000]))
        .expect("feed");
    assert!(wait_child(&mut multilog, LONG).success());
    let (code, err) = run(
        &["--max-file-size", "4096", path_arg(&dir)],
        &joined(&lines[1000..2000]),
    );
    assert_eq!(code, 0, "{err}");
    let got = read_logdir(&dir);
    assert_same_lines(&texts(&got), &lines[..2000], "cyclog after multilog");
    // multilog may stamp two lines alike (it counts microseconds); ours all
    // come after its, each after the one before.
    for pair in got[999..].windows(2) {
        assert!(pair[0].stamp < pair[1].stamp, "{pair:?}");
    }
    let mut multilog = Command::new("multilog")
        .args(["t", "s4096", "n1000"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .spawn()
        .expect("multilog");
    multilog
        .stdin
        .take()
        .expect("stdin")
        .write_all(&joined(&lines[2000..]))
        .expect("feed");
    assert!(wait_child(&mut multilog, LONG).success());
    // multilog stamps with daemontools' TAI + 10 s, 27 s behind true TAI: the
    // archives it makes just after ours sort before them. Every line is
    // still there once, and multilog's own lines are in order.
    let got = texts(&read_logdir(&dir));
    let (mut sorted, mut want) = (got.clone(), lines.clone());
    sorted.sort();
    want.sort();
    assert_same_lines(&sorted, &want, "all lines, once each");
    let theirs: Vec<Vec<u8>> = got
        .iter()
        .filter(|l| lines[2000..].contains(l))
        .cloned()
        .collect();
    assert_same_lines(&theirs, &lines[2000..], "multilog after cyclog");

    // While multilog holds the directory, cyclog is refused.
    let mut holder = Command::new("multilog")
        .arg("t")
        .arg(&dir)
        .stdin(Stdio::piped())
        .spawn()
        .expect("multilog");
    // /proc/locks: "1: FLOCK  ADVISORY  WRITE <pid> <maj>:<min>:<inode> 0 EOF".
    let inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(dir.join("lock")).expect("lock"));
    let holds_lock = || {
        fs::read_to_string("/proc/locks").is_ok_and(|locks| {
            locks.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(1) == Some(&"FLOCK")
                    && f.get(4) == Some(&holder.id().to_string().as_str())
                    && f.get(5).and_then(|d| d.rsplit(':').next()) == Some(&inode.to_string())
            })
        })
    };
    assert!(wait_until(LONG, holds_lock), "multilog never took the lock");
    let (code, err) = run(&[path_arg(&dir)], b"");
    assert_eq!(code, 111, "{err}");
    drop(holder.stdin.take());
    assert!(wait_child(&mut holder, LONG).success());
}

#[test]
fn directories_are_shared_with_s6_log_both_ways() {
    require("s6-log");
    let s = Scratch::new("s6log");
    let dir = s.path("log");
    let lines = numbered_lines(3_000);
    let s6 = |part: &[Vec<u8>]| {
        let mut child = Command::new("s6-log")
            .args(["-b", "t", "s4096", "n1000"])
            .arg(&dir)
            .stdin(Stdio::piped())
            .spawn()
            .expect("s6-log");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&joined(part))
            .expect("feed");
        assert!(wait_child(&mut child, LONG).success());
    };
    s6(&lines[..1000]);
    let (code, err) = run(
        &["--max-file-size", "4096", path_arg(&dir)],
        &joined(&lines[1000..2000]),
    );
    assert_eq!(code, 0, "{err}");
    s6(&lines[2000..]);
    let got = read_logdir(&dir);
    assert_same_lines(&texts(&got), &lines, "log");
    // s6-log writes true TAI as we do: the stamps increase across all three.
    assert_ordered(&dir, &got);
}

/// A small tmpfs filled up: cyclog blocks its input, says so once, and
/// carries on by itself when space returns, with nothing lost.
#[test]
fn a_full_disk_blocks_then_recovers_with_nothing_lost() {
    require_root();
    let s = Scratch::new("full");
    // Room for every line once the filler is gone.
    let mnt = Mount::tmpfs(&s.path("mnt"), "8m");
    let dir = mnt.path.join("log");
    let filler = mnt.path.join("filler");
    fill(&filler);
    let mut sup = Supervised::new(CYCLOG, &[path_arg(&dir)], s.path("stderr"));
    sup.start();
    let lines = numbered_lines(40_000);
    let producer = feed_a_full_disk(&sup, joined(&lines));
    assert_eq!(
        sup.stderr_text().matches("No space left").count(),
        1,
        "said more than once: {}",
        sup.stderr_text()
    );
    // A restart while the disk is full (svc -t): the stop is prompt, and
    // what was not written stays in the pipe for the next cyclog.
    sup.signal(Signal::TERM);
    let code = sup.wait(Duration::from_secs(10)).code();
    assert!(
        matches!(code, Some(0) | Some(111)),
        "{code:?}: {}",
        sup.stderr_text()
    );
    sup.start();
    // Space returns only once the new cyclog has met the full disk too: it
    // must then carry on by itself (on a loaded machine it may not have
    // tried a write before the filler went, and had nothing to report).
    let full_again = || sup.stderr_text().matches("No space left").count() == 2;
    assert!(wait_until(LONG, full_again), "{}", sup.stderr_text());
    fs::remove_file(&filler).expect("free space");
    producer.join().expect("producer");
    sup.close_input();
    assert_eq!(sup.wait(LONG).code(), Some(0), "{}", sup.stderr_text());
    assert!(
        sup.stderr_text().contains("writing again"),
        "{}",
        sup.stderr_text()
    );
    let got = read_logdir(&dir);
    assert_same_lines(&texts(&got), &lines, "log");
    assert_ordered(&dir, &got);
}

#[test]
fn delete_when_full_makes_room_from_the_oldest_archives() {
    require_root();
    let s = Scratch::new("room");
    let mnt = Mount::tmpfs(&s.path("mnt"), "256k");
    let dir = mnt.path.join("log");
    let lines = numbered_lines(8_000);
    let (code, err) = run(
        &[
            "--max-file-size",
            "16k",
            "--delete-when-full",
            path_arg(&dir),
        ],
        &joined(&lines),
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("disk full: deleted @"), "{err}");
    let got = texts(&read_logdir(&dir));
    assert!(got.len() < lines.len());
    assert_same_lines(
        &got,
        &lines[lines.len() - got.len()..],
        "not the newest lines, whole",
    );
}

// ---------------------------------------------------------------------------
// The log directory's own files (item cyclog-dir): symbolic links are never
// followed, and rotation costs the same however many archives are kept.
// ---------------------------------------------------------------------------

/// An outside file that a planted symbolic link points to, and what it held.
struct Victim {
    path: std::path::PathBuf,
    text: &'static [u8],
}

impl Victim {
    fn new(s: &Scratch, name: &str) -> Victim {
        let path = s.path(name);
        let text = b"outside the log directory\n";
        fs::write(&path, text).expect("victim");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        Victim { path, text }
    }

    fn assert_untouched(&self, what: &str) {
        assert_eq!(
            fs::read(&self.path).expect("victim"),
            self.text,
            "{what}: the file outside was written"
        );
        assert_eq!(
            mode(&self.path),
            0o600,
            "{what}: the file outside was chmod'ed"
        );
    }
}

#[test]
fn symbolic_links_in_the_log_directory_are_refused_never_followed() {
    let s = Scratch::new("symlinks");
    for file in ["current", "cyclog.state", "lock", "previous", "processed"] {
        let victim = Victim::new(&s, &format!("victim-{file}"));
        let dir = s.path(&format!("log-{file}"));
        fs::create_dir(&dir).expect("log directory");
        std::os::unix::fs::symlink(&victim.path, dir.join(file)).expect("symlink");
        let (code, err) = run(
            &["--max-file-size", "4096", path_arg(&dir)],
            &joined(&numbered_lines(500)),
        );
        assert_eq!(code, 111, "{file}: {err}");
        assert!(
            err.starts_with("cyclog: fatal: ")
                && err.contains(&format!(
                    "/{file}: it is a symbolic link, refusing to follow it"
                )),
            "{file}: {err}"
        );
        victim.assert_untouched(file);
        // Nothing was renamed into an archive either (an archive that is a
        // link would hand the outside file to every reader).
        assert!(archives(&dir).is_empty(), "{file}: {:?}", archives(&dir));
        assert!(
            fs::symlink_metadata(dir.join(file))
                .expect("the link stays")
                .file_type()
                .is_symlink(),
            "{file}"
        );
    }
}

#[test]
fn a_dangling_current_link_creates_nothing_outside() {
    let s = Scratch::new("dangling");
    let dir = s.path("log");
    fs::create_dir(&dir).expect("log directory");
    let outside = s.path("would-be-created");
    std::os::unix::fs::symlink(&outside, dir.join("current")).expect("symlink");
    let (code, err) = run(&[path_arg(&dir)], b"line\n");
    assert_eq!(code, 111, "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert!(!outside.exists(), "created a file through the link");
}

#[test]
fn a_current_that_is_not_a_regular_file_is_refused() {
    let s = Scratch::new("fifo");
    let dir = s.path("log");
    fs::create_dir(&dir).expect("log directory");
    mkfifo(&dir.join("current"));
    // Writing into a pipe nobody reads would block for ever: bounded here.
    let mut child = Command::new(CYCLOG)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let feeder = feed(&mut child, &joined(&numbered_lines(100_000)));
    let status = wait_child(&mut child, LONG);
    feeder.join().expect("feeder");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    assert_eq!(status.code(), Some(111), "{err}");
    assert!(err.contains("/current: it is not a regular file"), "{err}");
}

#[test]
fn the_processor_files_are_never_followed_as_links() {
    let s = Scratch::new("procfiles");
    let dir = s.path("log");
    fs::create_dir(&dir).expect("log directory");
    let victim = Victim::new(&s, "victim-state");
    std::os::unix::fs::symlink(&victim.path, dir.join("state")).expect("symlink");
    // Copies its state through: a followed link would leak the outside file.
    let script = "cat && cat <&4 >&5";
    let args = [
        "--max-file-size",
        "4096",
        "--processor",
        script,
        path_arg(&dir),
    ];
    let mut sup = Supervised::new(CYCLOG, &args, s.path("stderr"));
    sup.start();
    sup.send(&joined(&numbered_lines(200)));
    let refused = || sup.stderr_text().contains("/state: it is a symbolic link");
    assert!(wait_until(LONG, refused), "{}", sup.stderr_text());
    sup.signal(Signal::TERM);
    assert_eq!(sup.wait(LONG).code(), Some(0), "{}", sup.stderr_text());
    victim.assert_untouched("state");
    assert!(dir.join("previous").exists(), "the original was lost");
    assert!(
        fs::symlink_metadata(dir.join("state"))
            .expect("state")
            .file_type()
            .is_symlink(),
        "state was replaced by what the processor copied from outside"
    );
}
/// Stat and directory-read calls made by one cyclog run (its threads too),
/// counted by strace.
fn stat_calls(args: &[&str], input: &[u8], scratch: &Scratch, tag: &str) -> u64 {
    require("strace");
    let summary = scratch.path(&format!("strace-{tag}"));
    let summary_arg = path_arg(&summary);
    let all = [
        &[
            "-f",
            "-qq",
            "-c",
            "-o",
            summary_arg,
            "-e",
            "trace=/stat|getdents",
            CYCLOG,
        ][..],
        args,
    ]
    .concat();
    let (code, err) = run_with_input("strace", &all, input);
    assert_eq!(code, 0, "{tag}: {err}");
    let text = fs::read_to_string(&summary).expect("strace summary");
    // Rows: % time, seconds, usecs/call, calls, [errors,] syscall.
    text.lines()
        .filter_map(|row| {
            let words: Vec<&str> = row.split_whitespace().collect();
            let name = words.last()?;
            if *name == "total" || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            words.get(3)?.parse::<u64>().ok()
        })
        .sum()
}

/// Makes `count` small old archives in a new log directory `dir`.
fn plant_archives(dir: &Path, count: u64) {
    fs::create_dir_all(dir).expect("log directory");
    for i in 0..count {
        // Stamps of 1970 (TAI64 label 4000000000000000 + i): older than any
        // line written now.
        let stamp = format!("@{:016x}{:08x}", 0x4000_0000_0000_0000u64 + i, 0);
        let line = format!("{stamp} planted archive {i}\n");
        let path = dir.join(format!("{stamp}.s"));
        fs::write(&path, line).expect("archive");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o744)).expect("chmod");
    }
}

#[test]
fn rotation_does_not_look_at_every_archive_kept() {
    let s = Scratch::new("rotcost");
    const KEPT: u64 = 2_000;
    let lines = numbered_lines(4_000);
    let input = joined(&lines);
    let mut calls = Vec::new();
    for (tag, planted) in [("few", 0), ("many", KEPT)] {
        let dir = s.path(&format!("log-{tag}"));
        plant_archives(&dir, planted);
        // Keep them all, and then one more each rotation: the count cap
        // deletes the oldest at every rotation of the "many" run.
        let keep = (planted + 1).to_string();
        let args = [
            "--max-file-size",
            "4096",
            "--max-total-size",
            "1G",
            "--max-files",
            &keep,
            path_arg(&dir),
        ];
        calls.push(stat_calls(&args, &input, &s, tag));
        let names = archives(&dir);
        match tag {
            "few" => assert!(names.len() == 1, "{names:?}"),
            _ => {
                assert_eq!(names.len() as u64, KEPT + 1);
                // The oldest went, exactly as many as rotations were made.
                assert!(!names.iter().any(|n| n.contains("planted")));
                let first_kept = fs::read_to_string(dir.join(&names[0])).expect("archive");
                assert!(!first_kept.contains("planted archive 0\n"), "{first_kept}");
            }
        }
    }
    let got = texts(&read_logdir(&s.path("log-many")));
    assert_same_lines(&got[got.len() - lines.len()..], &lines, "many");
    // About 100 rotations: looking at each archive at each would be 200,000
    // calls. Listing them once at start is allowed.
    let (few, many) = (calls[0], calls[1]);
    assert!(
        many <= few + KEPT + 100,
        "rotation cost grows with the archives kept: {few} stat and directory \
         calls with none kept, {many} with {KEPT}"
    );
}

#[test]
fn archives_removed_by_hand_are_noticed_and_the_count_cap_still_holds() {
    let s = Scratch::new("byhand");
    let dir = s.path("log");
    let args = [
        "--max-file-size",
        "4096",
        "--max-files",
        "5",
        path_arg(&dir),
    ];
    let mut sup = Supervised::new(CYCLOG, &args, s.path("stderr"));
    sup.start();
    let lines = numbered_lines(2_000);
    let (first, rest) = lines.split_at(600);
    sup.send(&joined(first));
    // Started means signals held, from before main: the directory may not
    // be made yet.
    assert!(wait_until(LONG, || dir.join("current").exists()));
    assert!(
        wait_until(LONG, || {
            let names = archives(&dir);
            // Finished (`.s`): the syncer renames no more of them.
            sup.drained() && names.len() == 5 && names.iter().all(|n| n.ends_with(".s"))
        }),
        "{:?} {}",
        archives(&dir),
        sup.stderr_text()
    );
    // The oldest three go behind cyclog's back, then a newer one as well.
    let names = archives(&dir);
    for name in names[..3].iter().chain(&names[4..]) {
        // Gone already only if cyclog rotated once more and deleted it.
        let _ = fs::remove_file(dir.join(name));
    }
    sup.send(&joined(rest));
    sup.close_input();
    assert_eq!(sup.wait(LONG).code(), Some(0), "{}", sup.stderr_text());
    assert_eq!(archives(&dir).len(), 5, "{:?}", archives(&dir));
    let got = texts(&read_logdir(&dir));
    assert_same_lines(&got, &lines[lines.len() - got.len()..], "newest lines");
    assert!(
        !sup.stderr_text().contains("warning"),
        "{}",
        sup.stderr_text()
    );
}
