//! What the integration tests share: scratch directories, a stand-in
//! supervisor that holds a pipe open across restarts, and a reader of log
//! directories written independently of the library's, so that a format
//! bug in the library cannot hide itself.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a test waits for what should come before it fails.
pub const LONG: Duration = Duration::from_secs(60);

pub const CYCLOG: &str = env!("CARGO_BIN_EXE_cyclog");
pub const SYSLOG_READ: &str = env!("CARGO_BIN_EXE_syslog-read");
pub const KLOG_READ: &str = env!("CARGO_BIN_EXE_klog-read");
pub const FOLLOW: &str = env!("CARGO_BIN_EXE_follow-log-directories");
pub const EXPORT: &str = env!("CARGO_BIN_EXE_export-to-remote");
pub const LOG_SHOW: &str = env!("CARGO_BIN_EXE_log-show");

/// Each program, by name and binary.
pub const PROGRAMS: [(&str, &str); 6] = [
    ("cyclog", CYCLOG),
    ("klog-read", KLOG_READ),
    ("syslog-read", SYSLOG_READ),
    ("follow-log-directories", FOLLOW),
    ("export-to-remote", EXPORT),
    ("log-show", LOG_SHOW),
];

/// A directory for one test, removed afterwards (kept if the test failed).
pub struct Scratch {
    pub root: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let root = std::env::temp_dir().join(format!("rill-test-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).expect("scratch directory");
        Scratch { root }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// A path as a program argument (the tests' paths are UTF-8).
pub fn path_arg(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Makes a FIFO at `path`, readable and writable by its owner only.
pub fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
}

/// Fails, saying why, when a peer program the test needs is missing: CI
/// installs every peer (`make deps`), so a missing one is an error.
pub fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false);
    assert!(found, "{program} is not installed: run `make deps` as root");
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Fails unless root; tests that mount file systems or change users need
/// it, and CI runs as root.
pub fn require_root() {
    assert!(
        is_root(),
        "this test needs root (CI runs the tests as root)"
    );
}

/// Waits for `done` to hold, checking every 10 ms, at most `limit`.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

/// Kills a child and reaps it, for a test that is done with it early (it
/// may have ended already: that is no error here).
pub fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts `command` with no input, its output and errors appended to the
/// file `log`.
pub fn spawn_logging(command: &mut Command, log: &Path) -> Child {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().expect("dup")))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap_or_else(|e| panic!("start {:?}: {e}", command.get_program()))
}

/// Waits for a child, at most `limit`; kills it and fails if it overstays.
pub fn wait_child(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if start.elapsed() > limit {
            kill_and_reap(child);
            panic!("process {} still running after {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a program run to its end through pipes gave.
pub struct Ran {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs `program` to its end with `input` on its standard input (fed from
/// a thread, so that a large input cannot block against its output).
pub fn run_piped(program: &str, args: &[&str], env: &[(&str, &str)], input: &[u8]) -> Ran {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait");
    feeder.join().expect("feeder");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Plays a supervisor: owns both ends of the pipe into the logger, so
/// nothing in it is lost when the logger dies, and restarts the logger.
pub struct Supervised {
    program: PathBuf,
    args: Vec<String>,
    read: OwnedFd,
    write: Option<File>,
    pub child: Option<Child>,
    pub stderr: PathBuf,
}

impl Supervised {
    pub fn new(program: &str, args: &[&str], stderr: PathBuf) -> Supervised {
        let (read, write) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
        Supervised {
            program: PathBuf::from(program),
            args: args.iter().map(|s| s.to_string()).collect(),
            read,
            write: Some(File::from(write)),
            child: None,
            stderr,
        }
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none());
        let err = File::options()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .expect("stderr file");
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::from(self.read.try_clone().expect("dup")))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn");
        let pid = child.id();
        self.child = Some(child);
        assert!(
            wait_until(Duration::from_secs(30), || blocks_term(pid)),
            "logger never became ready"
        );
    }

    pub fn input(&mut self) -> &mut File {
        self.write.as_mut().expect("input open")
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.input().write_all(bytes).expect("write to the pipe");
    }

    /// A second handle on the pipe's write end, for a producer thread.
    pub fn writer(&self) -> File {
        self.write
            .as_ref()
            .expect("input open")
            .try_clone()
            .expect("dup")
    }

    /// Whether the logger has taken everything sent (nothing left in the pipe).
    pub fn drained(&self) -> bool {
        rustix::io::ioctl_fionread(&self.read).is_ok_and(|n| n == 0)
    }

    pub fn close_input(&mut self) {
        self.write = None;
    }

    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = self.child.as_ref().expect("running").id();
        let pid = rustix::process::Pid::from_raw(pid as i32).expect("pid");
        rustix::process::kill_process(pid, signal).expect("kill");
    }

    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill -9");
        child.wait().expect("wait");
    }

    /// Waits for the logger to exit by itself.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        wait_child(&mut child, limit)
    }

    pub fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }
}

/// The values on the `key` line of /proc/PID/status (`Uid` gives four),
/// none if the process or the line is not there.
pub fn proc_status(pid: u32, key: &str) -> Vec<String> {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|values| values.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// Whether a process has blocked SIGTERM (our programs do so first, to take
/// signals through a signalfd): after that a signal cannot kill it early.
pub fn blocks_term(pid: u32) -> bool {
    proc_status(pid, "SigBlk")
        .first()
        .and_then(|mask| u64::from_str_radix(mask, 16).ok())
        .is_some_and(|mask| mask & (1 << (15 - 1)) != 0)
}

/// Compares lines, and on a difference says where, briefly.
pub fn assert_same_lines(got: &[Vec<u8>], want: &[Vec<u8>], what: &str) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(g, w)| g != w)
        .unwrap_or(got.len().min(want.len()));
    let show = |v: &[Vec<u8>]| {
        v.get(first)
            .map(|l| String::from_utf8_lossy(l).into_owned())
    };
    panic!(
        "{what}: {} lines, {} expected; first difference at line {first}: got {:?}, expected {:?}",
        got.len(),
        want.len(),
        show(got),
        show(want)
    );
}

/// One line of a log directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// The file it is in: an archive name or `current`.
    pub file: String,
    /// The 24 hex digits of its stamp.
    pub stamp: String,
    pub text: Vec<u8>,
}

pub fn is_archive_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 27
        && b[0] == b'@'
        && b[1..25]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        && b[25] == b'.'
        && (b[26] == b's' || b[26] == b'u')
}

/// Archive names of a directory, oldest first.
pub fn archives(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read log directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| is_archive_name(n))
        .collect();
    names.sort();
    names
}

/// Every line of a log directory, archives first, then `current`; fails on
/// anything that is not a stamped line ending in LF. For a directory no
/// writer is using.
pub fn read_logdir(dir: &Path) -> Vec<LogLine> {
    read_logdir_once(dir, false).expect("a log file vanished while the directory was read")
}

/// The same, while a writer may be rotating it and writing `current`: an
/// archive renamed `.u` to `.s`, or `current` rotated, under the reader
/// makes it start again; a last line still being written is left out.
pub fn read_logdir_live(dir: &Path) -> Vec<LogLine> {
    for _ in 0..100 {
        if let Some(lines) = read_logdir_once(dir, true) {
            return lines;
        }
    }
    panic!("{}: could not read a consistent directory", dir.display());
}

fn read_logdir_once(dir: &Path, live: bool) -> Option<Vec<LogLine>> {
    let mut files = archives(dir);
    if dir.join("current").exists() {
        files.push("current".to_string());
    }
    let mut lines = Vec::new();
    for file in files {
        let mut bytes = match fs::read(dir.join(&file)) {
            Ok(bytes) => bytes,
            Err(e) if live && e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("{file}: {e}"),
        };
        if bytes.is_empty() {
            continue;
        }
        if live && file == "current" && bytes.last() != Some(&b'\n') {
            let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            bytes.truncate(keep);
            if bytes.is_empty() {
                continue;
            }
        }
        assert_eq!(bytes.last(), Some(&b'\n'), "{file} does not end with LF");
        for line in bytes[..bytes.len() - 1].split(|&b| b == b'\n') {
            assert!(
                line.len() >= 26,
                "{file}: short line {:?}",
                String::from_utf8_lossy(line)
            );
            let stamp = std::str::from_utf8(&line[1..25]).expect("stamp is ASCII");
            assert!(
                line[0] == b'@'
                    && line[25] == b' '
                    && stamp
                        .bytes()
                        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
                "{file}: not a stamped line: {:?}",
                String::from_utf8_lossy(line)
            );
            lines.push(LogLine {
                file: file.clone(),
                stamp: stamp.to_string(),
                text: line[26..].to_vec(),
            });
        }
    }
    Some(lines)
}

pub fn texts(lines: &[LogLine]) -> Vec<Vec<u8>> {
    lines.iter().map(|l| l.text.clone()).collect()
}

/// Stamps strictly increase from line to line, and every archive's name is
/// after each of its lines and before every line of the next file.
pub fn assert_ordered(dir: &Path, lines: &[LogLine]) {
    for pair in lines.windows(2) {
        assert!(
            pair[0].stamp < pair[1].stamp,
            "stamps do not increase: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
    for line in lines {
        if line.file != "current" {
            let name_stamp = &line.file[1..25];
            assert!(
                line.stamp.as_str() < name_stamp,
                "{} holds a line stamped after it",
                line.file
            );
        }
    }
    let names = archives(dir);
    for (i, name) in names.iter().enumerate() {
        let next_file = names
            .get(i + 1)
            .cloned()
            .unwrap_or_else(|| "current".into());
        if let Some(first) = lines.iter().find(|l| l.file == next_file) {
            assert!(
                &name[1..25] < first.stamp.as_str(),
                "{next_file} has a line before {name}"
            );
        }
    }
}

/// `count` distinct lines, some long, none empty.
pub fn numbered_lines(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| format!("line {i:08} {}", "x".repeat(i % 97)).into_bytes())
        .collect()
}

pub fn joined(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

/// The current time as TAI64N hex digits, true TAI (UTC + 37 s).
pub fn tai_now_hex() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    format!(
        "{:016x}{:08x}",
        (1u64 << 62) + now.as_secs() + 37,
        now.subsec_nanos()
    )
}

/// File permission bits.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

pub mod receivers;

/// Runs `program` over `input` to EOF; its exit code and stderr.
pub fn run_with_input(program: &str, args: &[&str], input: &[u8]) -> (i32, String) {
    let ran = run_piped(program, args, &[], input);
    (ran.code, ran.stderr)
}

/// Writes `lines` into the log directory `dir` with cyclog (`args` first),
/// to EOF.
pub fn cyclog_write(dir: &Path, args: &[&str], lines: &[Vec<u8>]) {
    let all = [args, &[path_arg(dir)]].concat();
    let (code, err) = run_with_input(CYCLOG, &all, &joined(lines));
    assert_eq!(code, 0, "cyclog: {err}");
}

/// Makes the cursor directory `cursors/name`, its `main` a symbolic link
/// to `logdir`, as for nosh.
pub fn cursor_dir(cursors: &Path, name: &str, logdir: &Path) -> PathBuf {
    let dir = cursors.join(name);
    fs::create_dir_all(&dir).expect("cursor directory");
    std::os::unix::fs::symlink(logdir, dir.join("main")).expect("main symlink");
    dir
}

/// A stamped line as a log directory holds it (without LF), for TAI64N
/// seconds `secs` past 2^62 + 1.7e9 and `nanos`.
pub fn stamped(secs: u64, nanos: u32, text: &str) -> String {
    format!(
        "@{:016x}{nanos:08x} {text}",
        (1u64 << 62) + 1_700_000_000 + secs
    )
}

/// Sends a signal to a child.
pub fn signal(child: &Child, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, signal).expect("kill");
}

/// The lines of a file, without their LFs.
pub fn file_lines(path: &Path) -> Vec<Vec<u8>> {
    let bytes = fs::read(path).unwrap_or_default();
    let mut lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    if lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    lines
}

/// `got` is `want` in order, except that it may go back to an earlier line
/// and repeat from there (a restart after kill -9, from the saved cursor):
/// nothing lost, nothing new out of order. Returns how many lines came
/// again.
pub fn check_resends(got: &[Vec<u8>], want: &[Vec<u8>]) -> usize {
    let index: std::collections::HashMap<&[u8], usize> = want
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_slice(), i))
        .collect();
    let mut next = 0;
    let mut repeated = 0;
    for line in got {
        let i = *index
            .get(line.as_slice())
            .unwrap_or_else(|| panic!("not in the log: {}", String::from_utf8_lossy(line)));
        assert!(i <= next, "line {i} came before line {next}: lost");
        if i < next {
            repeated += 1;
        }
        next = next.max(i + 1);
    }
    assert_eq!(next, want.len(), "lines missing at the end");
    repeated
}
