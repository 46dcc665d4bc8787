//! Running the programs under test: to their end through pipes, under a
//! stand-in supervisor that holds the pipe open across restarts, or in the
//! background with their output in a file; and what /proc says of them.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::wait_until;

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

/// Writes `input` into a child's standard input, then closes it, from a
/// thread, so that a large input cannot block against the child's output.
pub fn feed(child: &mut Child, input: &[u8]) -> JoinHandle<()> {
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    })
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
    let feeder = feed(&mut child, input);
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

/// Whether a SIGTERM sent to a process that blocks it has been taken (read
/// from its signalfd): a second one sent before that would merge with it.
pub fn term_taken(pid: u32) -> bool {
    proc_status(pid, "ShdPnd")
        .first()
        .and_then(|mask| u64::from_str_radix(mask, 16).ok())
        .is_some_and(|mask| mask & (1 << (15 - 1)) == 0)
}

/// Starts `program` with its stdout and stderr the same pipe, as a run
/// script's `exec 2>&1` makes them; the child, and the pipe's read end.
/// Close-on-exec, so that no child of another test holds the write end.
pub fn spawn_into_one_pipe(program: &str, args: &[&str]) -> (Child, OwnedFd) {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
    let write = File::from(write);
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(write.try_clone().expect("dup"))
        .stderr(write)
        .spawn()
        .expect("spawn");
    (child, read)
}

/// Runs `program` over `input` to EOF; its exit code and stderr.
pub fn run_with_input(program: &str, args: &[&str], input: &[u8]) -> (i32, String) {
    let ran = run_piped(program, args, &[], input);
    (ran.code, ran.stderr)
}

/// Sends a signal to a child.
pub fn signal(child: &Child, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, signal).expect("kill");
}

/// Feeds `payload` to the logger `sup` runs, in irregular writes of
/// `write` bytes and up to `spread` more (so that chunks end inside lines
/// too), killing it (-9) and restarting it at random moments up to `kills`
/// times. The input is paced by the kills, not by the clock: on a fast
/// machine the whole input would otherwise fit in the 1 MiB pipe and be
/// written long before enough kills had happened. Returns with the logger
/// running and its input closed, and how many kills there were.
pub fn kill_9_while_feeding(
    sup: &mut Supervised,
    payload: Vec<u8>,
    kills: usize,
    (write, spread): (usize, usize),
    seed: u64,
) -> usize {
    let mut writer = sup.writer();
    let killed = Arc::new(AtomicUsize::new(0));
    let paced_by = Arc::clone(&killed);
    let producer = std::thread::spawn(move || {
        let slice = payload.len() / kills + 1;
        let (mut at, mut n) = (0, 1);
        while at < payload.len() {
            while at > (paced_by.load(Ordering::SeqCst) + 2).saturating_mul(slice) {
                std::thread::sleep(Duration::from_micros(200));
            }
            let end = (at + write + (n * 7919) % spread).min(payload.len());
            writer.write_all(&payload[at..end]).expect("write");
            at = end;
            n += 1;
            if n % 4 == 0 {
                std::thread::sleep(Duration::from_micros(300));
            }
        }
    });
    let mut rng = seed;
    let mut done = 0;
    while !producer.is_finished() && done < kills {
        sup.start();
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_micros(500 + (rng >> 33) % 15_000));
        sup.kill9();
        done += 1;
        killed.store(done, Ordering::SeqCst);
    }
    killed.store(usize::MAX - 2, Ordering::SeqCst);
    // A logger must be running while the producer finishes, or it blocks.
    sup.start();
    producer.join().expect("producer");
    sup.close_input();
    done
}

/// Writes `payload` (more than the pipe and a chunk hold) to the logger
/// `sup` runs on a full disk, from a thread: returns it once the logger has
/// said the disk is full, checking that the writes are held back.
pub fn feed_a_full_disk(sup: &Supervised, payload: Vec<u8>) -> JoinHandle<()> {
    assert!(payload.len() > 2 << 20);
    let mut writer = sup.writer();
    let producer = std::thread::spawn(move || writer.write_all(&payload).expect("write"));
    assert!(
        wait_until(super::LONG, || sup.stderr_text().contains("No space left")),
        "{}",
        sup.stderr_text()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !producer.is_finished(),
        "input was not held back while the disk was full"
    );
    producer
}
