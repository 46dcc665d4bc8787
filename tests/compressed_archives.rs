//! export-to-remote through archives a processor compressed: an exporter
//! left behind while its log directory rotates through `gzip` sends every
//! line once, in order, to a real rsyslog.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::receivers::*;
use common::*;
use rustix::process::Signal;

const EXPORT: &str = env!("CARGO_BIN_EXE_export-to-remote");
const LONG: Duration = Duration::from_secs(60);

struct Export(Child);

impl Export {
    fn start(receiver: &Receiver, cursors: &Path, err: &Path) -> Export {
        let child = Command::new(EXPORT)
            .args(["--to", &receiver.url(), "--hostname", "testhost"])
            .arg(cursors)
            .stdin(Stdio::null())
            .stderr(Stdio::from(
                fs::File::options()
                    .create(true)
                    .append(true)
                    .open(err)
                    .expect("stderr"),
            ))
            .spawn()
            .expect("spawn export-to-remote");
        let pid = child.id();
        assert!(wait_until(LONG, || blocks_term(pid)), "never became ready");
        Export(child)
    }

    fn stop(mut self) -> i32 {
        signal(&self.0, Signal::TERM);
        wait_child(&mut self.0, LONG).code().unwrap_or(-1)
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_exporter_lagging_behind_gzip_rotations_sends_every_line_once_in_order() {
    require("gzip");
    let s = Scratch::new("export-gzip");
    let receiver = Receiver::start(Server::Rsyslog, Transport::Tcp, &s.path("server"), None);
    let log = s.path("log");
    let cursors = s.path("cursors");
    let args = ["--max-file-size", "8192", "--processor", "gzip"];
    let lines = numbered_lines(4000);
    // All in `current` (no rotation yet, however loaded the machine).
    cyclog_write(&log, &[], &lines[..1000]);
    // The cursor inside `current`, after its middle line.
    let current = file_lines(&log.join("current"));
    let mid = &current[current.len() / 2];
    let first = lines.iter().position(|l| mid.ends_with(l)).expect("a line") + 1;
    cursor_dir(&cursors, "app", &log);
    fs::write(
        cursors.join("app/last"),
        format!("{}\n", String::from_utf8_lossy(&mid[1..25])),
    )
    .expect("last");
    // Left behind: that current and several after it rotated and gzipped.
    for part in lines[1000..3000].chunks(500) {
        cyclog_write(&log, &args, part);
    }
    let gzipped = || {
        archives(&log)
            .iter()
            .filter(|a| fs::read(log.join(a)).is_ok_and(|b| b.starts_with(&[0x1f, 0x8b])))
            .count()
    };
    // Every archive gzip'd, the one the cursor is in among them.
    let all = archives(&log).len();
    assert!(all >= 2 && gzipped() == all, "{:?}", archives(&log));
    let err = s.path("export.stderr");
    let e = Export::start(&receiver, &cursors, &err);
    wait_until(LONG, || receiver.count() >= 3000 - first);
    assert_eq!(e.stop(), 0);
    // Stopped at the end of `current`; it and more are gzipped meanwhile.
    for part in lines[3000..].chunks(250) {
        cyclog_write(&log, &args, part);
    }
    let e = Export::start(&receiver, &cursors, &err);
    wait_until(LONG, || receiver.count() >= 4000 - first);
    assert_eq!(e.stop(), 0);
    receiver.settle();
    let err = fs::read_to_string(&err).unwrap_or_default();
    assert!(!err.contains("warning"), "{err}");
    let got: Vec<Vec<u8>> = receiver
        .received()
        .iter()
        .map(|f| f.get("msg").cloned().unwrap_or_default())
        .collect();
    assert_same_lines(&got, &lines[first..], "sent");
}
