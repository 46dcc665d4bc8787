//! Sealed log directories (logseal(7)) through the real programs: a key
//! made by `cyclog --make-seal-key`, the directory written and sealed by
//! `cyclog --seal`, read by the real readers and other writers unchanged,
//! and checked by `log-show --verify` against the tamper matrix of issue 16.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::receivers::{Receiver, Server, Transport};
use common::*;
use rill::format::stamp::Stamp;
use rill::logdir::seal::{Cover, Sealed, Sealer, Span};
use rill::logdir::write::sealing::KeyFile;

/// A key made in `s`: its file and its verification line.
fn make_key(s: &Scratch, name: &str) -> (PathBuf, String) {
    let key = s.path(name);
    let ran = run_piped(CYCLOG, &["--make-seal-key", path_arg(&key)], &[], b"");
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let line = String::from_utf8(ran.stdout).expect("UTF-8");
    assert!(line.starts_with("rill-seal-verify-1:"), "{line:?}");
    (key, line.trim().to_string())
}

/// cyclog --seal KEY (and `args`) writing `lines` into `log`, to EOF.
fn seal_write(log: &Path, key: &Path, args: &[&str], lines: &[Vec<u8>]) {
    let all = [&["--seal", path_arg(key)][..], args].concat();
    cyclog_write(log, &all, lines);
}

/// log-show --verify KEY DIR...
fn verify(key: &str, dirs: &[&Path]) -> Ran {
    let mut args = vec!["--verify", key];
    args.extend(dirs.iter().map(|d| path_arg(d)));
    run_piped(LOG_SHOW, &args, &[("TZ", "UTC")], b"")
}

fn assert_intact(key: &str, log: &Path) -> String {
    let ran = verify(key, &[log]);
    let out = String::from_utf8_lossy(&ran.stdout).into_owned();
    assert_eq!(ran.code, 0, "{out}{}", ran.stderr);
    assert!(out.contains(": intact"), "{out}");
    out
}

/// Verification fails, naming a place that contains `place`.
fn assert_tampered(key: &str, log: &Path, place: &str, what: &str) -> String {
    let ran = verify(key, &[log]);
    let out = String::from_utf8_lossy(&ran.stdout).into_owned();
    assert_eq!(ran.code, 1, "{what} passed: {out}{}", ran.stderr);
    assert!(out.contains(": TAMPERED: "), "{what}: {out}");
    assert!(out.contains(place), "{what}: {place:?} not named in {out}");
    out
}

const SMALL: [&str; 4] = ["--max-file-size", "8192", "--seal-lines", "20"];

/// A directory cyclog wrote and sealed in 6 runs (so that its files hold
/// several seals each), 3 archives or more; its key and verification line.
fn sealed_log(s: &Scratch) -> (PathBuf, PathBuf, String, Vec<Vec<u8>>) {
    let (key, line) = make_key(s, "key");
    let log = s.path("log");
    let lines = numbered_lines(600);
    for part in lines.chunks(100) {
        seal_write(&log, &key, &SMALL, part);
    }
    assert!(archives(&log).len() >= 3, "{:?}", archives(&log));
    (log, key, line, lines)
}

/// The lines (LF included) of a file.
fn split_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|&c| c == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Rewrites the lines of a file.
fn edit_lines(path: &Path, edit: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let mut lines = split_lines(&fs::read(path).expect("read"));
    edit(&mut lines);
    fs::write(path, lines.concat()).expect("write");
}

fn middle_archive(log: &Path) -> (String, PathBuf) {
    let name = archives(log)[1].clone();
    let path = log.join(&name);
    (name[..25].to_string(), path)
}

#[test]
fn making_a_key_prints_the_verification_line_once_and_never_overwrites_a_key() {
    let s = Scratch::new("seal-key");
    let (key, line) = make_key(&s, "key");
    assert_eq!(mode(&key) & 0o777, 0o600);
    assert_eq!(fs::metadata(&key).expect("key").len(), 8192);
    // The verification line is not on the machine: not in the key file.
    let stored = fs::read_to_string(&key).expect("key");
    let seed = line.split(':').nth(1).expect("seed");
    assert!(!stored.contains(seed));
    let before = fs::read(&key).expect("key");
    let ran = run_piped(CYCLOG, &["--make-seal-key", path_arg(&key)], &[], b"");
    assert_eq!(ran.code, 111, "{}", ran.stderr);
    assert!(ran.stdout.is_empty());
    assert!(ran.stderr.contains("cyclog: fatal: "), "{}", ran.stderr);
    assert_eq!(fs::read(&key).expect("key"), before, "a key overwritten");
    let (_, other) = make_key(&s, "key2");
    assert_ne!(line, other);
}

#[test]
fn a_directory_cyclog_sealed_verifies_intact_with_every_archive_checked() {
    let s = Scratch::new("seal-intact");
    let (log, _, line, _) = sealed_log(&s);
    let out = assert_intact(&line, &log);
    let n = archives(&log).len();
    assert!(out.contains(&format!("{n} archives checked")), "{out}");
    assert!(!out.contains("not covered"), "{out}");
    // The key as a file holding the line, too.
    let file = s.path("verification");
    fs::write(&file, format!("{line}\n")).expect("write");
    assert_intact(path_arg(&file), &log);
    // Seals asked for at start, every 20 lines (by chunk), each rotation
    // and each stop; those of current asked for while one is being made
    // are made as one: at least each rotation's and each stop's.
    let records: usize = fs::read_dir(log.join("seal"))
        .expect("seal/")
        .map(|e| split_lines(&fs::read(e.expect("entry").path()).expect("read")).len())
        .sum();
    assert!(records >= 6 + archives(&log).len(), "{records} records");
}

#[test]
fn usage_errors_of_sealing() {
    let s = Scratch::new("seal-usage");
    let (key, _) = make_key(&s, "key");
    let k = path_arg(&key);
    let (a, b) = (s.path("a"), s.path("b"));
    for (args, why) in [
        (
            vec!["--seal", k, path_arg(&a), path_arg(&b)],
            "one log directory",
        ),
        (
            vec!["--seal", k, "--processor", "gzip", path_arg(&a)],
            "processor",
        ),
        (vec!["--seal-lines", "5", path_arg(&a)], "need --seal"),
        (
            vec!["--seal", k, "--split-by", "host", path_arg(&a)],
            "not with --split-by",
        ),
        (
            vec!["--seal", k, "--seal-lines", "0", path_arg(&a)],
            "at least 1",
        ),
    ] {
        let ran = run_piped(CYCLOG, &args, &[], b"");
        assert_eq!(ran.code, 100, "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.contains(why), "{args:?}: {}", ran.stderr);
    }
    // A missing key file: a temporary failure, nothing written.
    let ran = run_piped(
        CYCLOG,
        &["--seal", path_arg(&s.path("none")), path_arg(&a)],
        &[],
        b"x\n",
    );
    assert_eq!(ran.code, 111, "{}", ran.stderr);
    // A bad verification line: a usage error of log-show.
    let ran = verify("rill-seal-verify-1:00:00", &[&a]);
    assert_eq!(ran.code, 100, "{}", ran.stderr);
}

#[test]
fn log_show_shows_a_sealed_directory_as_its_lines_alone() {
    let s = Scratch::new("seal-show");
    let (log, _, _, lines) = sealed_log(&s);
    let ran = run_piped(LOG_SHOW, &["--utc", path_arg(&log)], &[("TZ", "UTC")], b"");
    assert_eq!((ran.code, ran.stderr.as_str()), (0, ""));
    let out = String::from_utf8(ran.stdout).expect("UTF-8");
    let shown: Vec<&str> = out.lines().collect();
    assert_eq!(shown.len(), lines.len(), "{out}");
    for (shown, line) in shown.iter().zip(&lines) {
        let text = String::from_utf8_lossy(line);
        assert!(shown.ends_with(text.as_ref()), "{shown:?} for {text:?}");
    }
}

#[test]
fn follow_log_directories_and_export_to_remote_send_the_lines_alone() {
    let s = Scratch::new("seal-follow");
    let (log, _, _, lines) = sealed_log(&s);
    let cursors = s.path("cursors");
    cursor_dir(&cursors, "app", &log);
    let mut child = Command::new(FOLLOW)
        .arg(&cursors)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn follow-log-directories");
    let mut pipe = child.stdout.take().expect("stdout");
    let copier = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut pipe, &mut out);
        out
    });
    let last = read_logdir(&log).last().expect("a line").stamp.clone();
    assert!(
        wait_until(LONG, || fs::read_to_string(cursors.join("app/last"))
            .is_ok_and(|l| l.starts_with(&last))),
        "follow-log-directories never reached the last line"
    );
    signal(&child, rustix::process::Signal::TERM);
    assert_eq!(wait_child(&mut child, LONG).code(), Some(0));
    let out = copier.join().expect("copier");
    let got = split_lines(&out);
    assert_eq!(got.len(), lines.len());
    assert!(!String::from_utf8_lossy(&out).contains("rill-seal"));

    // export-to-remote, through the same cursors, to rsyslog.
    let receiver = Receiver::start(Server::Rsyslog, Transport::Tcp, &s.path("server"), None);
    let cursors = s.path("cursors-export");
    cursor_dir(&cursors, "app", &log);
    let mut export = Command::new(EXPORT)
        .args(["--to", receiver.url().as_str(), "--hostname", "testhost"])
        .arg(&cursors)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn export-to-remote");
    let got = receiver.wait_for(lines.len(), LONG);
    signal(&export, rustix::process::Signal::TERM);
    wait_child(&mut export, LONG);
    receiver.settle();
    let got = receiver.received().len().max(got.len());
    assert_eq!(got, lines.len(), "export sent other than the lines");
    for fields in receiver.received() {
        let msg = fields.get("msg").cloned().unwrap_or_default();
        assert!(!String::from_utf8_lossy(&msg).contains("rill-seal"));
    }
}

#[test]
fn s6_log_and_multilog_rotate_in_a_sealed_directory_and_leave_its_seals_alone() {
    for (program, script) in [("s6-log", ["n3", "s4096"]), ("multilog", ["s4096", "n3"])] {
        require(program);
        let s = Scratch::new(program);
        let (log, _, _, _) = sealed_log(&s);
        let seal_files = |log: &Path| -> Vec<(String, Vec<u8>)> {
            let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(log.join("seal"))
                .expect("seal directory")
                .map(|e| {
                    let e = e.expect("entry");
                    let bytes = fs::read(e.path()).expect("seal file");
                    (e.file_name().to_string_lossy().into_owned(), bytes)
                })
                .collect();
            files.sort();
            files
        };
        let before = seal_files(&log);
        let args = [&script[..], &[path_arg(&log)]].concat();
        let (code, err) = run_with_input(program, &args, &joined(&numbered_lines(800)));
        assert_eq!(code, 0, "{program}: {err}");
        // It rotated and applied its cap to the archives, not to seal/.
        assert!(archives(&log).len() <= 3, "{program}: {:?}", archives(&log));
        assert_eq!(seal_files(&log), before, "{program} touched seal/");
    }
}

// The tamper matrix of issue 16, each on a fresh sealed directory.

#[test]
fn editing_one_byte_of_a_line_is_found_and_named() {
    let s = Scratch::new("seal-byte");
    let (log, _, line, _) = sealed_log(&s);
    let (name, path) = middle_archive(&log);
    let mut bytes = fs::read(&path).expect("archive");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    fs::write(&path, &bytes).expect("tamper");
    let out = assert_tampered(&line, &log, &name, "a changed byte");
    assert!(out.contains("lines "), "{out}");
}

#[test]
fn deleting_inserting_or_reordering_a_line_is_found() {
    type Edit = fn(&mut Vec<Vec<u8>>);
    let edits: [(&str, Edit); 3] = [
        ("a deleted line", |l| {
            l.remove(l.len() / 2);
        }),
        ("an inserted line", |l| {
            let copy = l[3].clone();
            l.insert(l.len() / 2, copy);
        }),
        ("two lines reordered", |l| {
            let at = l.len() / 2;
            l.swap(at, at + 1);
        }),
    ];
    for (what, edit) in edits {
        let s = Scratch::new("seal-lines");
        let (log, _, line, _) = sealed_log(&s);
        let (name, path) = middle_archive(&log);
        edit_lines(&path, edit);
        assert_tampered(&line, &log, &name, what);
        // The same in current, below its last seal.
        let s = Scratch::new("seal-lines-current");
        let (log, _, line, _) = sealed_log(&s);
        edit_lines(&log.join("current"), edit);
        assert_tampered(&line, &log, "current", what);
    }
}

#[test]
fn truncating_current_below_its_last_seal_is_found() {
    let s = Scratch::new("seal-truncate");
    let (log, _, line, _) = sealed_log(&s);
    let current = log.join("current");
    let size = fs::metadata(&current).expect("current").len();
    assert!(size > 0);
    fs::OpenOptions::new()
        .write(true)
        .open(&current)
        .expect("open")
        .set_len(size / 2)
        .expect("truncate");
    let out = assert_tampered(&line, &log, "current", "a truncated current");
    assert!(out.contains("truncated"), "{out}");
}

#[test]
fn deleting_a_middle_archive_is_found_with_or_without_its_seals() {
    let s = Scratch::new("seal-middle");
    let (log, _, line, _) = sealed_log(&s);
    let (name, path) = middle_archive(&log);
    fs::remove_file(&path).expect("remove");
    let out = assert_tampered(&line, &log, &name, "a deleted archive");
    assert!(out.contains("missing"), "{out}");
    fs::remove_file(log.join("seal").join(&name)).expect("remove its seals");
    assert_tampered(&line, &log, "seal", "a deleted archive and its seals");
}

#[test]
fn archives_the_cap_deleted_verify_as_a_sealed_truncation_and_deleting_more_is_found() {
    let s = Scratch::new("seal-cap");
    let (key, line) = make_key(&s, "key");
    let log = s.path("log");
    let lines = numbered_lines(1200);
    let args = [&SMALL[..], &["--max-files", "3"]].concat();
    for part in lines.chunks(200) {
        seal_write(&log, &key, &args, part);
    }
    assert_eq!(archives(&log).len(), 3, "the cap deleted the oldest");
    let seals = fs::read_dir(log.join("seal")).expect("seal/").count();
    assert_eq!(seals, 4, "seal files of the 3 archives and of current");
    let out = assert_intact(&line, &log);
    assert!(out.contains("3 archives checked"), "{out}");
    // The oldest kept one deleted by hand, not by the cap: found.
    let oldest = archives(&log)[0].clone();
    fs::remove_file(log.join(&oldest)).expect("remove");
    assert_tampered(
        &line,
        &log,
        &oldest[..25],
        "the oldest kept archive deleted",
    );
    // With its seals too: the last seal still says it was kept.
    fs::remove_file(log.join("seal").join(&oldest[..25])).expect("remove");
    assert_tampered(
        &line,
        &log,
        "seal",
        "the oldest kept archive and its seals deleted",
    );
}

#[test]
fn an_archive_replayed_from_another_sealed_directory_or_from_this_one_is_found() {
    let s = Scratch::new("seal-replay");
    let (log, _, line, _) = sealed_log(&s);
    let other = Scratch::new("seal-replay-other");
    let (other_log, _, _, _) = sealed_log(&other);
    let (name, path) = middle_archive(&log);
    // Another directory's archive and its seal file, under this one's name.
    let (other_name, other_path) = middle_archive(&other_log);
    fs::copy(&other_path, &path).expect("copy archive");
    fs::copy(
        other_log.join("seal").join(&other_name),
        log.join("seal").join(&name),
    )
    .expect("copy seals");
    assert_tampered(&line, &log, "seal/", "a replayed archive and seals");
    // This directory's first archive over its second.
    let s = Scratch::new("seal-replay-self");
    let (log, _, line, _) = sealed_log(&s);
    let (name, path) = middle_archive(&log);
    fs::copy(log.join(&archives(&log)[0]), &path).expect("copy");
    assert_tampered(&line, &log, &name, "an archive replayed within");
}

#[test]
fn resealing_after_a_truncation_with_the_key_taken_later_is_found() {
    let s = Scratch::new("seal-reseal");
    let (log, key, line, _) = sealed_log(&s);
    // Three more runs without a rotation: three to six more records in
    // seal/current (a start's seal and a stop's may be made as one).
    for part in numbered_lines(30).chunks(10) {
        seal_write(&log, &key, &["--max-file-size", "1M"], part);
    }
    let records = split_lines(&fs::read(log.join("seal/current")).expect("read"));
    assert!(records.len() >= 3, "{} records", records.len());
    // The attacker has the machine: the key file as it is now (later than
    // every seal made), and root. Cut current back and the seal records of
    // current after the first.
    let current = log.join("current");
    let size = fs::metadata(&current).expect("current").len();
    edit_lines(&current, |l| l.truncate(l.len() / 2));
    assert!(fs::metadata(&current).expect("current").len() < size);
    let seal_current = log.join("seal/current");
    edit_lines(&seal_current, |l| l.truncate(1));
    let kept = fs::read(&seal_current).expect("seal/current");
    // cyclog will not seal over it with that key.
    let ran = run_piped(
        CYCLOG,
        &["--seal", path_arg(&key), path_arg(&log)],
        &[],
        b"more\n",
    );
    assert_eq!(ran.code, 111, "cyclog resealed: {}", ran.stderr);
    assert!(ran.stderr.contains("past the seal"), "{}", ran.stderr);
    assert_eq!(fs::read(&seal_current).expect("seal/current"), kept);
    // Sealing by hand with the library and the taken key: the seal's
    // number shows the gap, and it cannot claim an earlier one.
    let (_, keys) = KeyFile::open(&key).expect("the taken key");
    let mut sealer = Sealer::resume(keys, None).expect("sealer");
    let mut span = Span::new(&sealer.span_key(), Cover::START);
    span.update(&fs::read(&current).expect("current"));
    let first = archives(&log)
        .first()
        .map(|n| Stamp::parse_label(&n.as_bytes()[..25]).expect("stamp"));
    let record = sealer
        .seal(Sealed::Current, Stamp::now(), first, span.finish())
        .expect("forged seal");
    let mut records = kept.clone();
    records.extend_from_slice(&record);
    fs::write(&seal_current, &records).expect("write");
    let out = assert_tampered(&line, &log, "seal/current", "a reseal with a later key");
    assert!(out.contains("missing or out of order"), "{out}");
    // Without the honest records before it, the chain breaks instead.
    fs::write(&seal_current, &record).expect("write");
    assert_tampered(
        &line,
        &log,
        "seal/current",
        "a lone reseal with a later key",
    );
}

#[test]
fn removing_the_seal_records_is_found() {
    let s = Scratch::new("seal-removed");
    let (log, _, line, _) = sealed_log(&s);
    fs::remove_dir_all(log.join("seal")).expect("remove seal/");
    let out = assert_tampered(&line, &log, "seal", "seals removed");
    assert!(out.contains("no seal record"), "{out}");
    // Emptied rather than removed: the same.
    fs::create_dir(log.join("seal")).expect("mkdir");
    fs::write(log.join("seal/current"), b"").expect("write");
    assert_tampered(&line, &log, "seal", "seals emptied");
}

#[test]
fn a_wrong_key_or_a_directory_never_sealed_fails() {
    let s = Scratch::new("seal-wrong");
    let (log, _, _, lines) = sealed_log(&s);
    let (_, wrong) = make_key(&s, "other-key");
    let out = assert_tampered(&wrong, &log, "seal/", "a wrong key");
    assert!(out.contains("does not verify"), "{out}");
    let plain = s.path("plain");
    cyclog_write(&plain, &["--max-file-size", "8192"], &lines);
    let out = assert_tampered(&wrong, &plain, "seal", "a directory never sealed");
    assert!(out.contains("never sealed"), "{out}");
    // Several directories: each gets its line; the worst decides.
    let ran = verify(&wrong, &[&log, &plain]);
    assert_eq!(ran.code, 1);
    assert_eq!(String::from_utf8_lossy(&ran.stdout).lines().count(), 2);
}

#[test]
fn another_directorys_key_is_refused_by_the_writer() {
    let s = Scratch::new("seal-key-mixup");
    let (log, _, _, _) = sealed_log(&s);
    let (fresh, _) = make_key(&s, "fresh");
    let ran = run_piped(
        CYCLOG,
        &["--seal", path_arg(&fresh), path_arg(&log)],
        &[],
        b"x\n",
    );
    assert_eq!(ran.code, 111, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("not this directory's key"),
        "{}",
        ran.stderr
    );
    // And a used key on a directory never sealed.
    let used_scratch = Scratch::new("seal-key-used");
    let (_, used, _, _) = sealed_log(&used_scratch);
    let ran = run_piped(
        CYCLOG,
        &["--seal", path_arg(&used), path_arg(&s.path("new"))],
        &[],
        b"x\n",
    );
    assert_eq!(ran.code, 111, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("another directory's key"),
        "{}",
        ran.stderr
    );
}

#[test]
fn lines_after_the_last_seal_of_a_killed_writer_are_reported_unsealed_not_tampered() {
    let s = Scratch::new("seal-tail");
    let (key, line) = make_key(&s, "key");
    let log = s.path("log");
    let args = [
        "--seal",
        path_arg(&key),
        "--seal-every",
        "1h",
        "--seal-lines",
        "1000000",
        path_arg(&log),
    ];
    let mut sup = Supervised::new(CYCLOG, &args, s.path("stderr"));
    sup.start();
    sup.send(&joined(&numbered_lines(50)));
    let current = log.join("current");
    assert!(wait_until(LONG, || fs::read(&current).is_ok_and(|b| b
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        == 50)));
    assert!(wait_until(LONG, || sup.drained()));
    sup.kill9();
    let out = assert_intact(&line, &log);
    assert!(out.contains("50 lines"), "{out}");
    assert!(out.contains("written after the last seal"), "{out}");
    // The next start seals them: nothing left unsealed after a clean stop.
    seal_write(&log, &key, &[], &numbered_lines(10));
    let out = assert_intact(&line, &log);
    assert!(!out.contains("after the last seal"), "{out}");
}

#[test]
fn an_honest_sealed_directory_verifies_after_100_kill_9s() {
    const KILLS: usize = 120;
    let s = Scratch::new("seal-kills");
    let (key, line) = make_key(&s, "key");
    let dir = s.path("log");
    let args = [
        "--seal",
        path_arg(&key),
        "--seal-lines",
        "500",
        "--max-file-size",
        "64k",
        "--max-files",
        "20",
        path_arg(&dir),
    ];
    let mut sup = Supervised::new(CYCLOG, &args, s.path("stderr"));
    let lines = numbered_lines(200_000);
    let kills = kill_9_while_feeding(&mut sup, joined(&lines), KILLS, (700, 9000), 777);
    assert_eq!(sup.wait(LONG).code(), Some(0), "{}", sup.stderr_text());
    assert!(kills >= 100, "only {kills} kills happened");
    let out = assert_intact(&line, &dir);
    // Sealing took nothing from cyclog's own guarantees.
    let got = read_logdir(&dir);
    assert_same_lines(
        &texts(&got)[..],
        &lines[lines.len() - got.len()..],
        "after the kills",
    );
    // And it went on sealing after each: the last seal is the stop's.
    assert!(!out.contains("after the last seal"), "{out}");
    assert!(out.contains("20 archives checked"), "{out}");
}

#[test]
fn seals_come_by_lines_and_by_time_while_the_writer_runs() {
    let s = Scratch::new("seal-cadence");
    let (key, line) = make_key(&s, "key");
    let log = s.path("log");
    let records = |log: &Path| {
        fs::read(log.join("seal/current"))
            .map(|b| split_lines(&b).len())
            .unwrap_or(0)
    };
    // By lines: 10 lines each time, a seal after each batch.
    let args = [
        "--seal",
        path_arg(&key),
        "--seal-lines",
        "10",
        "--seal-every",
        "1h",
    ];
    let all = [&args[..], &[path_arg(&log)]].concat();
    let mut sup = Supervised::new(CYCLOG, &all, s.path("stderr"));
    sup.start();
    // The start seal first: seals asked for while one waits are made as one.
    assert!(wait_until(LONG, || records(&log) >= 1), "no start seal");
    let lines = numbered_lines(50);
    for (n, batch) in lines.chunks(10).enumerate() {
        sup.send(&joined(batch));
        // The start seal, then one per batch.
        assert!(
            wait_until(LONG, || records(&log) > n + 1),
            "no seal after batch {n}: {} records",
            records(&log)
        );
    }
    sup.signal(rustix::process::Signal::TERM);
    assert_eq!(sup.wait(LONG).code(), Some(0), "{}", sup.stderr_text());
    assert_intact(&line, &log);
    // By time: a line, then a seal within the second asked.
    let args = ["--seal", path_arg(&key), "--seal-every", "1s"];
    let all = [&args[..], &[path_arg(&log)]].concat();
    let first_run = records(&log);
    let mut sup = Supervised::new(CYCLOG, &all, s.path("stderr2"));
    sup.start();
    // This writer's start seal (the first run's records are still there).
    assert!(wait_until(LONG, || records(&log) > first_run));
    let before = records(&log);
    sup.send(b"one line\n");
    assert!(
        wait_until(LONG, || records(&log) > before),
        "no seal by time"
    );
    let out = assert_intact(&line, &log);
    assert!(!out.contains("after the last seal"), "{out}");
    sup.signal(rustix::process::Signal::TERM);
    assert_eq!(sup.wait(LONG).code(), Some(0), "{}", sup.stderr_text());
}

/// Lines as cyclog stores them, stamped from `after` on, one nanosecond
/// apart: (the file's bytes, the stamp of its last line).
fn stamped(texts: &[Vec<u8>], after: Stamp) -> (Vec<u8>, Stamp) {
    let mut stamp = after;
    let mut bytes = Vec::new();
    for text in texts {
        stamp = stamp.succ();
        bytes.extend_from_slice(&stamp.label());
        bytes.push(b' ');
        bytes.extend_from_slice(text);
        bytes.push(b'\n');
    }
    (bytes, stamp)
}

/// What a writer killed with two rotations waiting for their end seals
/// leaves: `current` (all of it sealed by the stop's mid seal) renamed to
/// an archive, a second archive holding `second`, and a new `current`
/// holding `third`; seal/ untouched. The two archives' names.
fn cut_two_rotations(log: &Path, second: &[Vec<u8>], third: &[Vec<u8>]) -> (String, String) {
    let now = Stamp::now();
    let first = format!("{}.s", now);
    fs::rename(log.join("current"), log.join(&first)).expect("rename current");
    let (bytes, last) = stamped(second, now);
    let second_name = format!("{}.s", last.succ());
    fs::write(log.join(&second_name), bytes).expect("write");
    let (bytes, _) = stamped(third, last.succ());
    fs::write(log.join("current"), bytes).expect("write");
    (first, second_name)
}

#[test]
fn rotations_cut_before_their_end_seals_verify_as_unsealed_and_the_restart_seals_them() {
    let s = Scratch::new("seal-cut-rotations");
    let (log, key, line, lines) = sealed_log(&s);
    let more = numbered_lines(8);
    let (first, second) = cut_two_rotations(&log, &more[..5], &more[5..]);
    // Before a restart: the oldest holds what the mid seals cover, the
    // rest is written after the last seal. Not tampering.
    let out = assert_intact(&line, &log);
    assert!(out.contains("but 8 lines"), "{out}");
    assert!(out.contains("written after the last seal"), "{out}");
    assert!(
        out.contains("2 newer archives rotated before their end seal"),
        "{out}"
    );
    // The restart makes their end seals, in order, then seals what comes.
    let last = numbered_lines(3);
    seal_write(&log, &key, &SMALL, &last);
    let out = assert_intact(&line, &log);
    assert!(!out.contains("after the last seal"), "{out}");
    assert!(!out.contains("rotated before"), "{out}");
    for name in [&first, &second] {
        assert!(
            log.join("seal").join(&name[..25]).exists(),
            "{name} unsealed"
        );
    }
    let all = [&lines[..], &more[..], &last[..]].concat();
    assert_same_lines(&texts(&read_logdir(&log)), &all, "after the restart");
}

#[test]
fn an_archive_put_where_a_rotation_was_cut_must_hold_what_the_mid_seals_cover() {
    // Sealed lines of current moved into an archive with one byte changed.
    let s = Scratch::new("seal-cut-edited");
    let (log, _, line, _) = sealed_log(&s);
    let (first, _) = cut_two_rotations(&log, &numbered_lines(2), &numbered_lines(1));
    let path = log.join(&first);
    let mut bytes = fs::read(&path).expect("archive");
    bytes[40] ^= 0x01;
    fs::write(&path, &bytes).expect("tamper");
    assert_tampered(&line, &log, &first[..25], "an edited cut rotation");
    // Another archive put in that slot, current left as it was: the mid
    // seals name current's bytes, which it does not hold.
    let s = Scratch::new("seal-cut-inserted");
    let (log, _, line, _) = sealed_log(&s);
    let (bytes, last) = stamped(&numbered_lines(30), Stamp::now());
    let name = format!("{}.s", last.succ());
    fs::write(log.join(&name), bytes).expect("write");
    assert_tampered(
        &line,
        &log,
        &name[..25],
        "an archive inserted after the seals",
    );
    // Shorter than what they cover: cut.
    let s = Scratch::new("seal-cut-short");
    let (log, _, line, _) = sealed_log(&s);
    let (first, _) = cut_two_rotations(&log, &numbered_lines(2), &numbered_lines(1));
    edit_lines(&log.join(&first), |l| l.truncate(l.len() - 1));
    let out = assert_tampered(&line, &log, &first[..25], "a cut rotation truncated");
    assert!(out.contains("truncated"), "{out}");
}

/// The archives newer than the newest seal file: rotated, their end seals
/// not yet made (an end record in seal/current counts as made).
fn unsealed_archives(log: &Path) -> usize {
    let mut newest = fs::read_dir(log.join("seal"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('@'))
                .max()
        })
        .ok()
        .flatten();
    if let Ok(records) = fs::read(log.join("seal/current")) {
        for record in split_lines(&records) {
            let fields: Vec<&[u8]> = record.split(|&c| c == b' ').collect();
            if fields.len() > 4 && fields[2] == b"end" {
                newest = Some(String::from_utf8_lossy(fields[4]).into_owned());
            }
        }
    }
    archives(log)
        .iter()
        .filter(|a| newest.as_ref().is_none_or(|n| a[..25] > n[..]))
        .count()
}

#[test]
fn two_rotations_waiting_for_their_end_seals_at_a_kill_9_verify_and_are_sealed_on_restart() {
    const KILLS: usize = 60;
    let s = Scratch::new("seal-kill-rotations");
    let (key, line) = make_key(&s, "key");
    let dir = s.path("log");
    let args = [
        "--seal",
        path_arg(&key),
        "--seal-lines",
        "40",
        "--max-file-size",
        "4096",
        "--max-files",
        "40",
        path_arg(&dir),
    ];
    let mut sup = Supervised::new(CYCLOG, &args, s.path("stderr"));
    let lines = numbered_lines(40_000);
    let payload = joined(&lines);
    let mut writer = sup.writer();
    // Paced by the kills, so that the input lasts for all of them.
    let killed = Arc::new(AtomicUsize::new(0));
    let paced_by = Arc::clone(&killed);
    let producer = std::thread::spawn(move || {
        let slice = payload.len() / KILLS + 1;
        for (n, piece) in payload.chunks(3000).enumerate() {
            while n * 3000 > (paced_by.load(Ordering::SeqCst) + 2).saturating_mul(slice) {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            writer.write_all(piece).expect("write");
        }
    });
    let (mut kills, mut two_waiting) = (0, 0);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    while kills < KILLS && !producer.is_finished() {
        sup.start();
        if kills == 0 {
            // Killed before its first seal, a new directory holds no seal
            // record: never sealed, rightly not verified. Wait for seal 0.
            let seals = dir.join("seal/current");
            assert!(
                wait_until(LONG, || fs::read(&seals).is_ok_and(|b| b.ends_with(b"\n"))),
                "no first seal"
            );
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(std::time::Duration::from_micros(2_000 + rng % 20_000));
        sup.kill9();
        kills += 1;
        killed.store(kills, Ordering::SeqCst);
        let waiting = unsealed_archives(&dir);
        two_waiting += usize::from(waiting >= 2);
        // Verified as the kill left it, before any restart: never tampered.
        let ran = verify(&line, &[&dir]);
        let out = String::from_utf8_lossy(&ran.stdout).into_owned();
        assert_eq!(
            ran.code, 0,
            "kill {kills}, {waiting} waiting: {out}{}",
            ran.stderr
        );
        if waiting > 0 {
            assert!(out.contains("rotated before"), "kill {kills}: {out}");
        }
    }
    killed.store(usize::MAX - 2, Ordering::SeqCst);
    sup.start();
    producer.join().expect("producer");
    sup.close_input();
    assert_eq!(sup.wait(LONG).code(), Some(0), "{}", sup.stderr_text());
    assert!(kills >= KILLS * 2 / 3, "only {kills} kills");
    eprintln!("{kills} kills, {two_waiting} with two rotations waiting for their end seals");
    assert!(
        two_waiting > 0,
        "no kill found two rotations waiting for their end seals in {kills} kills"
    );
    let out = assert_intact(&line, &dir);
    assert!(!out.contains("after the last seal"), "{out}");
    assert!(!out.contains("rotated before"), "{out}");
    let got = read_logdir(&dir);
    assert_same_lines(
        &texts(&got)[..],
        &lines[lines.len() - got.len()..],
        "after the kills",
    );
}

/// A small tmpfs filled up under a sealed writer, the key file on it too:
/// the input waits, and once space returns everything goes out: every line
/// once, the directory intact to its last line. (Whether a seal record
/// itself meets the full disk depends on where its page ends: the sealing
/// thread's retries are not forced here.)
#[test]
fn a_full_disk_holds_the_seals_too_and_they_all_go_out_when_space_returns() {
    require_root();
    let s = Scratch::new("seal-full");
    let mnt = Mount::tmpfs(&s.path("mnt"), "8m");
    let key = mnt.path.join("key");
    let ran = run_piped(CYCLOG, &["--make-seal-key", path_arg(&key)], &[], b"");
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let line = String::from_utf8(ran.stdout)
        .expect("UTF-8")
        .trim()
        .to_string();
    let dir = mnt.path.join("log");
    let args = [
        "--seal",
        path_arg(&key),
        "--seal-lines",
        "50",
        "--max-file-size",
        "256k",
        path_arg(&dir),
    ];
    let mut sup = Supervised::new(CYCLOG, &args, s.path("stderr"));
    sup.start();
    // The first seal of a new key is made before any line: then the disk fills.
    let seal_current = dir.join("seal/current");
    assert!(wait_until(LONG, || fs::read(&seal_current)
        .is_ok_and(|b| !b.is_empty())));
    let filler = mnt.path.join("filler");
    fill(&filler);
    // Room for a few hundred lines and seals, which then meet the full disk.
    let size = fs::metadata(&filler).expect("filler").len();
    fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .expect("filler")
        .set_len(size - 64 * 1024)
        .expect("truncate");
    let lines = numbered_lines(40_000);
    let producer = feed_a_full_disk(&sup, joined(&lines));
    fs::remove_file(&filler).expect("free space");
    producer.join().expect("producer");
    sup.close_input();
    assert_eq!(sup.wait(LONG).code(), Some(0), "{}", sup.stderr_text());
    let out = assert_intact(&line, &dir);
    assert!(!out.contains("after the last seal"), "{out}");
    assert_same_lines(&texts(&read_logdir(&dir)), &lines, "after the full disk");
}
