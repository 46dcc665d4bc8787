//! syslog-read as the tests run it: writing its lines into a file, read as
//! it goes, its stderr into another; and the pieces of its lines the
//! tests look at.

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use rill::format::reader_line::Record;

use super::{LONG, SYSLOG_READ, Scratch, kill_and_reap, signal, wait_child, wait_until};

/// A syslog-read writing its lines into a file, which is read as it goes.
pub struct Reader {
    pub child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Reader {
    pub fn start(scratch: &Scratch, args: &[&str]) -> Reader {
        Reader::spawn(scratch, Command::new(SYSLOG_READ).args(args))
    }

    /// Starts `command` (a syslog-read), its stdout and stderr into files
    /// of `scratch`, and waits until it says it receives.
    pub fn spawn(scratch: &Scratch, command: &mut Command) -> Reader {
        let (out, err) = (scratch.path("out"), scratch.path("err"));
        let child = command
            .stdin(Stdio::null())
            .stdout(File::create(&out).expect("out"))
            .stderr(File::create(&err).expect("err"))
            .spawn()
            .expect("spawn syslog-read");
        let reader = Reader { child, out, err };
        let ready = wait_until(LONG, || reader.stderr().contains("receiving on"));
        assert!(ready, "not ready: {}", reader.stderr());
        reader
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The lines written so far, whole: a read while syslog-read writes
    /// may end inside a line, which is left for the next.
    pub fn lines(&self) -> Vec<String> {
        let bytes = fs::read(&self.out).expect("output");
        let whole = bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |end| end + 1);
        let text = std::str::from_utf8(&bytes[..whole]).expect("lines are UTF-8");
        text.lines().map(str::to_string).collect()
    }

    /// Waits until at least `n` lines are written; the lines.
    pub fn wait_lines(&self, n: usize) -> Vec<String> {
        let done = wait_until(LONG, || self.lines().len() >= n);
        assert!(
            done,
            "{} lines of {n}: {}",
            self.lines().len(),
            self.stderr()
        );
        self.lines()
    }

    /// The port of its `n`th socket of `proto` (`udp`, `tcp`), as it
    /// said on stderr.
    pub fn port(&self, proto: &str, n: usize) -> u16 {
        self.stderr()
            .split(&format!("receiving on {proto} "))
            .nth(n + 1)
            .and_then(|rest| rest.split([' ', '\n']).next())
            .and_then(|addr| addr.rsplit(':').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("a {proto} port on stderr: {}", self.stderr()))
    }

    /// The port of its UDP socket, as it said on stderr.
    pub fn udp_port(&self) -> u16 {
        self.port("udp", 0)
    }

    /// TERM, a clean exit, and every line written.
    pub fn stop(mut self) -> Vec<String> {
        signal(&self.child, rustix::process::Signal::TERM);
        let status = wait_child(&mut self.child, LONG);
        assert_eq!(status.code(), Some(0), "{}", self.stderr());
        self.lines()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

pub fn parse(line: &str) -> Record {
    Record::parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

pub fn message(line: &str) -> String {
    String::from_utf8_lossy(&parse(line).message).into_owned()
}

/// The rate limit's notices: (text, dropped) in order.
pub fn suppressed(lines: &[String]) -> Vec<(String, u64)> {
    lines
        .iter()
        .map(|l| parse(l))
        .filter(|r| r.field("cause") == Some(b"rate-limit".as_slice()))
        .map(|r| {
            let dropped = r.field("dropped").expect("dropped");
            let dropped = std::str::from_utf8(dropped).expect("digits");
            (
                String::from_utf8_lossy(&r.message).into_owned(),
                dropped.parse().expect("a count"),
            )
        })
        .collect()
}

/// What got through of the messages `text N`, in order.
pub fn numbers(lines: &[String], text: &str) -> Vec<usize> {
    let prefix = format!("{text} ");
    lines
        .iter()
        .map(|l| message(l))
        .filter_map(|m| m.strip_prefix(&prefix).and_then(|n| n.parse().ok()))
        .collect()
}
