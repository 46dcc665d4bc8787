//! Every program, hit by a stop signal as it starts: the signal waits until
//! the program reads it, instead of killing it before it could.

mod common;

use common::*;

/// strace sends TERM at the first poll(2) of the program's life, the Rust
/// runtime's check of descriptors 0 to 2 before `main`; a bad option then
/// ends the run. A program that blocks TERM from its first instruction ends
/// with its usage exit (100), one that does not is killed by the signal.
#[test]
fn every_program_holds_a_stop_signal_that_comes_before_main() {
    require("strace");
    for (name, program) in PROGRAMS {
        for signal in ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"] {
            let inject = format!("inject=poll:signal={signal}:when=1");
            let args = [
                "-qq",
                "-o",
                "/dev/null",
                "-e",
                "trace=poll",
                "-e",
                &inject,
                program,
                "--no-such-option",
            ];
            let ran = run_piped("strace", &args, &[], b"");
            assert_eq!(
                ran.code, 100,
                "{name} and {signal} before main: {}",
                ran.stderr
            );
        }
    }
}

/// The one wait before klog-read takes its signals: opening a FIFO that no
/// one writes to yet. TERM still ends it there, as it would end any program
/// that has nothing to lose yet.
#[test]
fn klog_read_waiting_for_a_fifo_writer_still_stops_on_term() {
    let s = Scratch::new("fifo-wait");
    let fifo = s.path("fifo");
    mkfifo(&fifo);
    let mut child = std::process::Command::new(KLOG_READ)
        .arg("--device")
        .arg(&fifo)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn klog-read");
    // In open(2), waiting for a writer (the kernel's wait_for_partner).
    let wchan = format!("/proc/{}/wchan", child.id());
    let waiting = || std::fs::read_to_string(&wchan).is_ok_and(|w| w == "wait_for_partner");
    assert!(
        wait_until(LONG, waiting),
        "klog-read never waited for a writer"
    );
    signal(&child, rustix::process::Signal::TERM);
    let status = wait_child(&mut child, LONG);
    assert!(!status.success(), "{status:?}");
}
