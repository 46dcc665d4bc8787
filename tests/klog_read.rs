//! klog-read through real FIFOs, pipes, signals, and the kernel's own
//! /dev/kmsg.

mod common;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use common::*;
use rill::format::reader_line::Record;
use rustix::process::Signal;

/// klog-read running, its stdout gathered by a thread.
struct Running {
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
    stderr: std::path::PathBuf,
}

struct Finished {
    code: Option<i32>,
    lines: Vec<String>,
    stderr: String,
}

impl Running {
    fn start(command: &mut Command, s: &Scratch) -> Running {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let stderr = s.path(&format!("stderr-{}", COUNT.fetch_add(1, Ordering::SeqCst)));
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn klog-read");
        let mut stdout = child.stdout.take().expect("stdout");
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&out);
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
        Running {
            child,
            out,
            reader: Some(reader),
            stderr,
        }
    }

    fn lines(&self) -> Vec<String> {
        lines_of(&self.out.lock().expect("lock"))
    }

    fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until the output has a line containing each of `texts`.
    fn wait_for(&self, texts: &[&str]) -> Vec<String> {
        let found = wait_until(LONG, || {
            let lines = self.lines();
            texts.iter().all(|t| lines.iter().any(|l| l.contains(t)))
        });
        assert!(
            found,
            "{texts:?} not all found; stderr: {}",
            self.stderr_text()
        );
        self.lines()
    }

    fn ready(&self) {
        assert!(
            wait_until(LONG, || blocks_term(self.child.id())),
            "klog-read never became ready: {}",
            self.stderr_text()
        );
    }

    fn signal(&self, signal: Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, signal).expect("kill");
    }

    fn stop(self) -> Finished {
        self.ready();
        self.signal(Signal::TERM);
        self.finish()
    }

    fn finish(mut self) -> Finished {
        let status = wait_child(&mut self.child, LONG);
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stdout reader");
        }
        let lines = self.lines();
        let stderr = self.stderr_text();
        assert_all_parse(&lines);
        let lines = lines.iter().map(|l| without_event_time(l)).collect();
        Finished {
            code: status.code(),
            lines,
            stderr,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

fn lines_of(bytes: &[u8]) -> Vec<String> {
    let whole = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => &bytes[..i],
        None => return Vec::new(),
    };
    whole
        .split(|&b| b == b'\n')
        .map(|l| String::from_utf8(l.to_vec()).expect("lines are UTF-8"))
        .collect()
}

/// Every line is a reader line, and a kernel one (facility kern, not
/// ours) is the kernel's.
fn assert_all_parse(lines: &[String]) {
    for line in lines {
        let record = Record::parse(line.as_bytes())
            .unwrap_or_else(|e| panic!("not a reader line ({e}): {line:?}"));
        if record.priority.facility.name() == "kern" && record.app != b"klog-read" {
            assert_eq!(record.app, b"kernel", "{line}");
        }
    }
}

/// When this boot started by the real-time clock, as klog-read takes it.
fn booted() -> f64 {
    use rustix::time::{ClockId, clock_gettime};
    let secs = |t: rustix::time::Timespec| t.tv_sec as f64 + t.tv_nsec as f64 / 1e9;
    secs(clock_gettime(ClockId::Realtime)) - secs(clock_gettime(ClockId::Monotonic))
}

/// `2026-12-01T03:00:00.123456Z` as Unix seconds.
fn unix_of(time: &str) -> f64 {
    let out = Command::new("date")
        .args(["-u", "-d", time, "+%s.%N"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("date -d {time}"))
}

/// The line without its `time=`, once checked: a record with a `boot=`
/// time has it, at the boot's start plus that time (within a few seconds:
/// only a step of the clock moves the boot's start), and so has a boot
/// marker, at the boot's start.
fn without_event_time(line: &str) -> String {
    let time = field(line, "time");
    let offset = match (field(line, "boot"), field(line, "boot_id")) {
        (Some(boot), _) => boot.parse::<f64>().expect("boot="),
        (None, Some(_)) => 0.0,
        (None, None) => {
            assert_eq!(time, None, "{line}");
            return line.to_string();
        }
    };
    let time = time.unwrap_or_else(|| panic!("no time=: {line}"));
    assert!(
        time.len() == 27 && time.ends_with('Z'),
        "not UTC to the microsecond: {line}"
    );
    let off = unix_of(time) - (booted() + offset);
    assert!(off.abs() < 5.0, "time= {off} s off: {line}");
    line.replace(&format!(" time={time}"), "")
}

fn klog_read(args: &[&str]) -> Command {
    let mut command = Command::new(KLOG_READ);
    command.args(args);
    command
}

/// The FIFO's write end, once a reader has opened it.
fn open_writer(fifo: &Path, running: &Running) -> File {
    let mut writer = None;
    let opened = wait_until(LONG, || {
        writer = File::options()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
            .ok();
        writer.is_some()
    });
    assert!(opened, "no reader on the FIFO: {}", running.stderr_text());
    let writer = writer.expect("opened");
    let fd = rustix::fs::fcntl_getfl(&writer).expect("getfl");
    rustix::fs::fcntl_setfl(&writer, fd - rustix::fs::OFlags::NONBLOCK).expect("setfl");
    writer
}

/// klog-read, started by `command` given the path of a new FIFO, and the
/// FIFO's write end once klog-read has opened it.
fn on_fifo(s: &Scratch, command: impl FnOnce(&str) -> Command) -> (Running, File) {
    let fifo = s.path("fifo");
    if !fifo.exists() {
        mkfifo(&fifo);
    }
    let running = Running::start(&mut command(path_arg(&fifo)), s);
    let writer = open_writer(&fifo, &running);
    (running, writer)
}

/// Runs klog-read on a FIFO holding `input`, to the FIFO's end.
fn through_fifo(s: &Scratch, extra: &[&str], input: &[u8]) -> Finished {
    let (running, mut writer) =
        on_fifo(s, |fifo| klog_read(&[&["--device", fifo], extra].concat()));
    writer.write_all(input).expect("write to the FIFO");
    drop(writer);
    running.finish()
}

fn records(seqs: impl IntoIterator<Item = u64>) -> Vec<u8> {
    seqs.into_iter()
        .flat_map(|n| format!("6,{n},{n}000000,-;record {n}\n").into_bytes())
        .collect()
}

fn record_lines(seqs: impl IntoIterator<Item = u64>) -> Vec<String> {
    seqs.into_iter()
        .map(|n| format!("kern.info kernel: record {n}\tseq={n} boot={n}.000000"))
        .collect()
}

/// klog-read's boot marker, without its `time=` (checked apart).
fn boot_marker(boot: &str) -> String {
    format!("kern.notice klog-read: boot {boot} started\tboot_id={boot}")
}

fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .expect("boot id")
        .trim()
        .to_string()
}

#[test]
fn records_of_a_fifo_become_reader_lines() {
    let s = Scratch::new("fifo");
    let input: &[u8] = b"6,1,100,-;usb 1-1: new device\n SUBSYSTEM=usb\n DEVICE=+usb:1-1\n\
        12,2,2000000,-;rilltest: from user space\n\
        4,3,3000001,c,caller=T42;caf\\xc3\\xa9\\x09tab \\x5cx41 \\x1b[31m\n\
        30,4,4000000,-;systemd[1]: daemon facility\n\
        6,9,9000000,-;after a gap\n\
        garbage line\n\
        <6>[    1.500000] from /proc/kmsg\n";
    let done = through_fifo(&s, &[], input);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(
        done.lines,
        vec![
            "kern.info kernel: usb 1-1: new device\tseq=1 boot=0.000100 SUBSYSTEM=usb DEVICE=+usb:1-1",
            "user.warning -: rilltest: from user space\tseq=2 boot=2.000000",
            "kern.warning kernel: café\\ttab \\\\x41 \\x1b[31m\tseq=3 boot=3.000001 flags=c caller=T42",
            "daemon.info -: systemd[1]: daemon facility\tseq=4 boot=4.000000",
            "kern.warning klog-read: 4 records lost (seq 5-8)\tlost=4 first=5 last=8",
            "kern.info kernel: after a gap\tseq=9 boot=9.000000",
            "kern.warning klog-read: garbage line\tmalformed=no-semicolon",
            "kern.info kernel: from /proc/kmsg\tboot=1.500000",
        ]
    );
    assert_eq!(done.stderr, "");
}

#[test]
fn a_stop_writes_everything_read_even_a_line_cut_short() {
    let s = Scratch::new("stop");
    let (running, mut writer) = on_fifo(&s, |fifo| klog_read(&["--device", fifo]));
    writer
        .write_all(b"6,1,0,-;whole\n6,2,0,-;cut sh")
        .expect("write");
    running.wait_for(&["whole"]);
    let done = running.stop();
    drop(writer);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(
        done.lines,
        vec![
            "kern.info kernel: whole\tseq=1 boot=0.000000",
            "kern.info kernel: cut sh\tseq=2 boot=0.000000",
        ]
    );
}

#[test]
fn the_end_of_a_fifo_alone_ends_the_run() {
    let s = Scratch::new("eof");
    let (running, mut writer) = on_fifo(&s, |fifo| klog_read(&["--device", fifo]));
    writer.write_all(&records(1..=2)).expect("write");
    // Written out while the writer is still there: the end comes alone.
    running.wait_for(&["record 2"]);
    drop(writer);
    let done = running.finish();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(done.lines, record_lines(1..=2));
}

#[test]
fn the_state_skips_what_was_written_in_this_boot_only() {
    let s = Scratch::new("state");
    let state = s.path("klog.state");
    let args = ["--state", path_arg(&state)];
    let boot = boot_id();

    let done = through_fifo(&s, &args, &records(10..=14));
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let mut want = vec![
        boot_marker(&boot),
        "kern.warning klog-read: 10 records lost (seq 0-9)\tlost=10 first=0 last=9".to_string(),
    ];
    want.extend(record_lines(10..=14));
    assert_eq!(done.lines, want, "a first run in a boot starts at seq 0");
    assert_eq!(
        fs::read_to_string(&state).expect("state"),
        format!("klog-read boot={boot} seq=14\n")
    );

    let done = through_fifo(&s, &args, &records(10..=19));
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(done.lines, record_lines(15..=19), "nothing twice");
    assert!(
        done.stderr.contains("going on after seq 14"),
        "{}",
        done.stderr
    );

    let done = through_fifo(&s, &args, &records(25..=26));
    let mut want = vec![
        "kern.warning klog-read: 5 records lost (seq 20-24)\tlost=5 first=20 last=24".to_string(),
    ];
    want.extend(record_lines(25..=26));
    assert_eq!(done.lines, want, "what was overwritten in between is said");

    // Another boot: everything is new.
    fs::write(&state, "klog-read boot=another-boot seq=100\n").expect("state");
    let done = through_fifo(&s, &args, &records(0..=2));
    let mut want = vec![boot_marker(&boot)];
    want.extend(record_lines(0..=2));
    assert_eq!(done.lines, want, "a new boot is marked");
    assert_eq!(
        fs::read_to_string(&state).expect("state"),
        format!("klog-read boot={boot} seq=2\n")
    );
}

/// A state file that cannot be read must not make klog-read write the whole
/// ring buffer again behind the reader's back: it fails (111), writing
/// nothing and leaving the file as it was, until told to start afresh.
#[test]
fn an_unreadable_state_is_fatal_unless_fresh_is_given() {
    let s = Scratch::new("badstate");
    let state = s.path("klog.state");
    let args = ["--state", path_arg(&state)];
    let boot = boot_id();
    for damage in ["damaged", "a directory"] {
        if damage == "damaged" {
            fs::write(&state, "klog-read boot=").expect("state");
        } else {
            fs::remove_file(&state).expect("rm");
            fs::create_dir(&state).expect("mkdir");
        }
        let done = Running::start(
            &mut klog_read(&[&args[..], &["--device", "/dev/null"]].concat()),
            &s,
        )
        .finish();
        assert_eq!(done.code, Some(111), "{damage}: {}", done.stderr);
        assert!(done.lines.is_empty(), "{damage}: {:?}", done.lines);
        assert!(
            done.stderr.contains("unable to read the state file")
                && done.stderr.contains(path_arg(&state))
                && done.stderr.contains("--fresh"),
            "{damage}: {}",
            done.stderr
        );
    }
    assert!(state.is_dir(), "left as it was");
    fs::remove_dir(&state).expect("rmdir");
    fs::write(&state, "klog-read boot=").expect("state");

    let done = through_fifo(&s, &[&args[..], &["--fresh"]].concat(), &records(0..=1));
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let mut want = vec![boot_marker(&boot)];
    want.extend(record_lines(0..=1));
    assert_eq!(done.lines, want, "afresh: everything");
    assert_eq!(
        fs::read_to_string(&state).expect("state"),
        format!("klog-read boot={boot} seq=1\n"),
        "the state is kept from there"
    );
    assert!(!s.path("klog.state.new").exists());

    let done = Running::start(&mut klog_read(&["--fresh"]), &s).finish();
    assert_eq!(done.code, Some(100), "{}", done.stderr);
    assert!(done.stderr.contains("--fresh: only with --state"));
}

#[test]
fn a_descriptor_handed_down_with_listen_fds_is_read() {
    let s = Scratch::new("listen");
    // As nosh's fifo-listen hands it down: open on fd 3, LISTEN_FDS=1.
    let (running, mut writer) = on_fifo(&s, |fifo| {
        let mut command = Command::new("sh");
        command
            .args(["-c", "exec \"$0\" 3<\"$1\"", KLOG_READ, fifo])
            .env("LISTEN_FDS", "1")
            .env_remove("LISTEN_PID");
        command
    });
    writer.write_all(&records(1..=3)).expect("write");
    drop(writer);
    let done = running.finish();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(done.lines, record_lines(1..=3));
}

#[test]
fn usage_and_open_errors() {
    let s = Scratch::new("usage");
    for (args, code, says) in [
        (&["--bogus"][..], 100, "--bogus: unknown option"),
        (&["extra"][..], 100, "unexpected argument"),
        (&["--device"][..], 100, "--device"),
        (
            &["--device", "/nonexistent/kmsg"][..],
            111,
            "/nonexistent/kmsg",
        ),
    ] {
        let done = Running::start(&mut klog_read(args), &s).finish();
        assert_eq!(done.code, Some(code), "{args:?}: {}", done.stderr);
        assert!(done.stderr.contains(says), "{args:?}: {}", done.stderr);
        assert!(done.lines.is_empty());
    }
    let done = Running::start(
        klog_read(&["-U", "--device", "/dev/null"])
            .env_remove("UID")
            .env_remove("GID"),
        &s,
    )
    .finish();
    assert_eq!(done.code, Some(100), "{}", done.stderr);
    assert!(done.stderr.contains("$UID is not set"), "{}", done.stderr);
}

// The kernel's own log, as root.

/// A marker no other test or run writes.
fn marker(what: &str) -> String {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    format!(
        "rilltest-{}-{}-{nanos}-{what}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::SeqCst)
    )
}

/// Logs `text` through /dev/kmsg, opened anew each time (the kernel rate
/// limits writes per open file), with a final LF: without one the kernel
/// holds the record open for a continuation, and no reader sees it until
/// the next record comes.
fn kmsg_write(text: &[u8]) {
    let mut kmsg = File::options()
        .write(true)
        .open("/dev/kmsg")
        .expect("open /dev/kmsg");
    kmsg.write_all(&[text, b"\n"].concat())
        .expect("write /dev/kmsg");
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (_, fields) = line.split_once('\t')?;
    fields
        .split(' ')
        .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
}

fn seqs(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| field(l, "seq")?.parse().ok())
        .collect()
}

fn line_with<'a>(lines: &'a [String], text: &str) -> &'a str {
    let found: Vec<&String> = lines.iter().filter(|l| l.contains(text)).collect();
    assert_eq!(found.len(), 1, "{text} once: {found:?}");
    found[0]
}

#[test]
fn kernel_records_are_read_with_their_priority() {
    require_root();
    let s = Scratch::new("kmsg");
    let before = marker("before");
    kmsg_write(format!("<4>{before}: written before the start").as_bytes());
    let running = Running::start(&mut klog_read(&[]), &s);
    running.ready();
    let daemon = marker("daemon");
    let bytes = marker("bytes");
    kmsg_write(format!("<28>{daemon}: daemon facility").as_bytes());
    kmsg_write(format!("<6>{bytes}: caf\u{e9} \x01 \\x41").as_bytes());
    running.wait_for(&[&before, &daemon, &bytes]);
    let done = running.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);

    // Written from user space without a facility: the kernel makes it user.
    let line = line_with(&done.lines, &before);
    assert!(
        line.starts_with(&format!(
            "user.warning -: {before}: written before the start\tseq="
        )),
        "{line}"
    );
    let line = line_with(&done.lines, &daemon);
    assert!(
        line.starts_with(&format!(
            "daemon.warning -: {daemon}: daemon facility\tseq="
        )),
        "{line}"
    );
    // The kernel's \xHH escaping is undone, ours applied.
    let line = line_with(&done.lines, &bytes);
    assert!(
        line.starts_with(&format!("user.info -: {bytes}: café \\x01 \\\\x41\tseq=")),
        "{line}"
    );
    let boot = field(line, "boot").expect("boot=");
    let (secs, micros) = boot.split_once('.').expect("seconds.micros");
    assert!(secs.parse::<u64>().is_ok() && micros.len() == 6, "{boot}");
    let seqs = seqs(&done.lines);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "sequence increases");
}

#[test]
fn a_restart_with_state_repeats_nothing() {
    require_root();
    let s = Scratch::new("restart");
    let state = s.path("state");
    let args = ["--state", path_arg(&state)];

    let first = marker("first");
    kmsg_write(format!("<5>{first}").as_bytes());
    let running = Running::start(&mut klog_read(&args), &s);
    running.wait_for(&[&first]);
    let one = running.stop();
    assert_eq!(one.code, Some(0), "{}", one.stderr);

    let second = marker("second");
    kmsg_write(format!("<5>{second}").as_bytes());
    let running = Running::start(&mut klog_read(&args), &s);
    running.wait_for(&[&second]);
    let two = running.stop();
    assert_eq!(two.code, Some(0), "{}", two.stderr);

    assert!(!two.lines.iter().any(|l| l.contains(&first)), "repeated");
    let (seqs_one, seqs_two) = (seqs(&one.lines), seqs(&two.lines));
    let last_one = *seqs_one.last().expect("records");
    assert!(
        seqs_two.iter().all(|&seq| seq > last_one),
        "the second run wrote again what the first did"
    );
    // Nothing between the two runs is missing either (or it is said).
    let lost: u64 = two
        .lines
        .iter()
        .filter_map(|l| field(l, "lost")?.parse::<u64>().ok())
        .sum();
    assert_eq!(
        seqs_two.len() as u64 + lost,
        seqs_two.last().expect("records") - last_one
    );
    let saved = fs::read_to_string(&state).expect("state");
    assert_eq!(
        saved,
        format!(
            "klog-read boot={} seq={}\n",
            boot_id(),
            seqs_two.last().expect("records")
        )
    );
}

#[test]
fn minus_u_drops_root_after_opening_the_kernel_log() {
    require_root();
    let s = Scratch::new("drop");
    let dir = s.path("state-dir");
    fs::create_dir(&dir).expect("mkdir");
    rustix::fs::chown(
        &dir,
        Some(rustix::fs::Uid::from_raw(65534)),
        Some(rustix::fs::Gid::from_raw(65534)),
    )
    .expect("chown");
    let state = dir.join("state");
    let running = Running::start(
        klog_read(&["-U", "--state", path_arg(&state)])
            .env("UID", "65534")
            .env("GID", "65534")
            .env_remove("GIDLIST"),
        &s,
    );
    // Ready only means the signals are held, from before main on; -U comes
    // after the kernel log is open.
    let pid = running.child.id();
    let dropped = || {
        proc_status(pid, "Uid")
            .first()
            .is_some_and(|uid| uid == "65534")
    };
    assert!(wait_until(LONG, dropped), "root never dropped");
    assert_eq!(proc_status(pid, "Uid"), ["65534"; 4]);
    assert_eq!(proc_status(pid, "Gid"), ["65534"; 4]);
    assert_eq!(proc_status(pid, "Groups"), ["65534"]);
    let after = marker("after-drop");
    kmsg_write(format!("<6>{after}").as_bytes());
    running.wait_for(&[&after]);
    let done = running.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let saved = fs::read_to_string(&state).expect("state written as 65534");
    let saved_seq = saved
        .trim_end()
        .rsplit_once(" seq=")
        .map(|(_, n)| n.to_string());
    let seq = field(line_with(&done.lines, &after), "seq").expect("seq");
    assert!(
        saved_seq.and_then(|n| n.parse::<u64>().ok()) >= seq.parse::<u64>().ok(),
        "{saved}"
    );
}

#[test]
fn the_proc_kmsg_fallback_format_is_read() {
    require_root();
    let s = Scratch::new("proc");
    let text = marker("proc");
    kmsg_write(format!("<6>{text}: via /proc/kmsg").as_bytes());
    // /proc/kmsg gives each record once, to whoever reads first; the
    // marker is after anything read before.
    let running = Running::start(&mut klog_read(&["--device", "/proc/kmsg"]), &s);
    running.wait_for(&[&text]);
    let done = running.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let line = line_with(&done.lines, &text);
    assert!(
        line.starts_with(&format!("user.info -: {text}: via /proc/kmsg\tboot=")),
        "{line}"
    );
    assert_eq!(
        field(line, "seq"),
        None,
        "/proc/kmsg has no sequence numbers"
    );
}
