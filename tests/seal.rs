//! A sealed log directory on disk, laid out as logseal(7) says: the real
//! cyclog writes the log, the seal core seals it file by file into `seal/`
//! (as `cyclog --seal` will), the real readers and other writers work in
//! it unchanged, and the verifier reads it back from disk.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use rill::format::stamp::Stamp;
use rill::logdir::Archive;
use rill::logdir::seal::{FileHash, Sealed, Sealer, Seed, Verdict, Verifier};

fn seed() -> Seed {
    Seed::from_bytes([0x5e; 32])
}

fn cover_of(path: &Path) -> rill::logdir::seal::Cover {
    let mut hash = FileHash::new();
    hash.update(&fs::read(path).expect("read log file"));
    hash.cover()
}

/// Seals a finished directory as its writer would have: an end seal per
/// archive, oldest first, into `seal/@STAMP`; a mid seal of `current`.
fn seal_directory(dir: &Path, seed: &Seed) {
    let seals = dir.join("seal");
    fs::create_dir_all(&seals).expect("seal directory");
    let mut sealer = Sealer::new(seed);
    let names = archives(dir);
    let stamps: Vec<Stamp> = names
        .iter()
        .map(|n| {
            Archive::from_name(n.as_bytes())
                .expect("archive name")
                .stamp
        })
        .collect();
    let first = stamps.first().copied();
    for (name, stamp) in names.iter().zip(&stamps) {
        let cover = cover_of(&dir.join(name));
        let record = sealer
            .seal(Sealed::Archive(*stamp), *stamp, first, cover)
            .expect("end seal");
        fs::write(seals.join(stamp.to_string()), record).expect("seal file");
    }
    let cover = cover_of(&dir.join("current"));
    let record = sealer
        .seal(Sealed::Current, Stamp::now(), first, cover)
        .expect("mid seal");
    fs::write(seals.join("current"), record).expect("seal/current");
}

/// Verifies a directory from its files, in the order logseal(7) gives.
fn verify_directory(dir: &Path, seed: &Seed) -> Verdict {
    let mut v = Verifier::new(seed);
    let mut seal_names: Vec<String> = fs::read_dir(dir.join("seal"))
        .expect("seal directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    // `@...` sorts before `current`, as the archives before it.
    seal_names.sort();
    for name in seal_names {
        let bytes = fs::read(dir.join("seal").join(&name)).expect("seal file");
        v.seal_file(&format!("seal/{name}"), &bytes);
    }
    for name in archives(dir) {
        let stamp = Archive::from_name(name.as_bytes()).expect("name").stamp;
        v.begin_archive(stamp);
        v.feed(&fs::read(dir.join(&name)).expect("archive"));
    }
    if let Ok(bytes) = fs::read(dir.join("current")) {
        v.begin_current();
        v.feed(&bytes);
    }
    v.finish()
}

/// A directory cyclog wrote, 3 archives or more, sealed.
fn sealed_log(s: &Scratch) -> (std::path::PathBuf, Vec<Vec<u8>>) {
    let log = s.path("log");
    let lines = numbered_lines(600);
    cyclog_write(&log, &["--max-file-size", "8192"], &lines);
    assert!(archives(&log).len() >= 3, "{:?}", archives(&log));
    seal_directory(&log, &seed());
    (log, lines)
}

#[test]
fn log_show_shows_a_sealed_directory_as_its_lines_alone() {
    let s = Scratch::new("seal-show");
    let (log, lines) = sealed_log(&s);
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
fn s6_log_and_multilog_rotate_in_a_sealed_directory_and_leave_its_seals_alone() {
    for (program, script) in [("s6-log", ["n3", "s4096"]), ("multilog", ["s4096", "n3"])] {
        require(program);
        let s = Scratch::new(program);
        let (log, _) = sealed_log(&s);
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

#[test]
fn a_sealed_directory_on_disk_verifies_and_its_tampering_is_found() {
    let s = Scratch::new("seal-verify");
    let (log, _) = sealed_log(&s);
    let n = archives(&log).len() as u64;
    match verify_directory(&log, &seed()) {
        Verdict::Intact(summary) => assert_eq!(summary.archives_checked, n),
        other => panic!("{other:?}"),
    }
    match verify_directory(&log, &Seed::from_bytes([1; 32])) {
        Verdict::Tampered(t) => assert!(t.why.contains("does not verify"), "{t}"),
        other => panic!("a wrong key passed: {other:?}"),
    }
    // One byte of the middle archive changed on disk.
    let middle = archives(&log)[1].clone();
    let path = log.join(&middle);
    let original = fs::read(&path).expect("archive");
    let mut changed = original.clone();
    changed[original.len() / 2] ^= 0x20;
    fs::write(&path, &changed).expect("tamper");
    match verify_directory(&log, &seed()) {
        Verdict::Tampered(t) => assert!(t.place.starts_with(&middle[..25]), "{t}"),
        other => panic!("a changed byte passed: {other:?}"),
    }
    // The middle archive removed.
    fs::remove_file(&path).expect("remove");
    match verify_directory(&log, &seed()) {
        Verdict::Tampered(t) => assert!(t.why.contains("missing"), "{t}"),
        other => panic!("a removed archive passed: {other:?}"),
    }
}
