//! What the integration tests share, one of each. Here: the programs'
//! paths, scratch directories, waiting, and the checks for peers and
//! root. `process` runs the programs (through pipes, under a stand-in
//! supervisor that holds a pipe open across restarts) and reads /proc;
//! `logdir` reads log directories independently of the library, so that
//! a format bug in the library cannot hide itself, and makes cursors and
//! stamps; `lines` makes and compares lines; `receivers` runs real syslog
//! servers; `reader` runs syslog-read into a file and reads its lines;
//! `senders` runs real syslog servers as clients that forward to us.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod lines;
mod logdir;
mod process;
pub mod reader;
pub mod receivers;
pub mod senders;

// Not every test file uses every part.
#[allow(unused_imports)]
pub use lines::*;
#[allow(unused_imports)]
pub use logdir::*;
#[allow(unused_imports)]
pub use process::*;

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

/// File permission bits.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

/// A tmpfs mounted for one test, unmounted after it.
pub struct Mount {
    pub path: std::path::PathBuf,
}

impl Mount {
    pub fn tmpfs(path: &Path, size: &str) -> Mount {
        fs::create_dir_all(path).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount");
        assert!(status.success(), "mount tmpfs");
        Mount {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes to `path` until the file system is full.
pub fn fill(path: &Path) {
    let mut f = fs::File::create(path).expect("filler");
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
}
