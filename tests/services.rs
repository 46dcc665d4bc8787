//! The services of services/, end to end under the real supervisors:
//! runsvdir, s6-svscan and daemontools' svscan, each in turn, and make run.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::receivers::{Transport, free_port};
use common::*;

/// Every service of services/src.
const SERVICES: [&str; 7] = [
    "klogd",
    "local-syslog",
    "udp-syslog",
    "export",
    "tcp-syslog",
    "tls-syslog",
    "relp-syslog",
];

/// The central receivers: down until configured, their logs split per host.
const RECEIVERS: [&str; 3] = ["tcp-syslog", "tls-syslog", "relp-syslog"];

fn top() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where cargo put the programs of this build.
fn bin_dir() -> PathBuf {
    Path::new(CYCLOG).parent().expect("bin dir").to_path_buf()
}

fn path_with_bins() -> String {
    format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        bin_dir().display()
    )
}

#[derive(Clone, Copy, Debug)]
enum Supervisor {
    Runit,
    S6,
    Daemontools,
}

impl Supervisor {
    fn scanner(self) -> &'static str {
        match self {
            Supervisor::Runit => "runsvdir",
            Supervisor::S6 => "s6-svscan",
            Supervisor::Daemontools => "svscan",
        }
    }

    fn tree(self) -> &'static str {
        match self {
            Supervisor::Runit => "runit",
            Supervisor::S6 => "s6",
            Supervisor::Daemontools => "daemontools",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Supervisor::Runit => "rn",
            Supervisor::S6 => "s6",
            Supervisor::Daemontools => "dt",
        }
    }

    /// Sends SIGALRM to a service (rotation, for a log service).
    fn alarm(self, service: &Path) {
        let status = match self {
            Supervisor::Runit => Command::new("sv").arg("alarm").arg(service).status(),
            Supervisor::S6 => Command::new("s6-svc").arg("-a").arg(service).status(),
            Supervisor::Daemontools => Command::new("svc").arg("-a").arg(service).status(),
        };
        assert!(status.expect("control tool").success());
    }
}

/// Test accounts and their group, removed afterwards.
struct Accounts {
    users: Vec<String>,
    group: String,
}

impl Drop for Accounts {
    fn drop(&mut self) {
        for user in &self.users {
            let _ = Command::new("userdel")
                .arg(user)
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("groupdel")
            .arg(&self.group)
            .stderr(Stdio::null())
            .status();
    }
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().expect("id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("uid")
}

/// The services' source with this test's settings: accounts, paths, port.
fn test_source(s: &Scratch, sup: Supervisor, udp_port: u16) -> (PathBuf, Accounts) {
    let src = s.path("src");
    let status = Command::new("cp")
        .arg("-R")
        .arg(top().join("services/src"))
        .arg(&src)
        .status();
    assert!(status.expect("cp").success());
    let t = sup.tag();
    let mut users = Vec::new();
    for service in SERVICES {
        let env = src.join(service).join("env");
        let set =
            |key: &str, value: String| fs::write(env.join(key), value + "\n").expect("setting");
        let reader = match service {
            "klogd" => format!("rt-{t}-klogd"),
            "export" => format!("rt-{t}-export"),
            "udp-syslog" => format!("rt-{t}-udp-syslogd"),
            "local-syslog" => format!("rt-{t}-syslogd"),
            receiver => format!("rt-{t}-{}", receiver.replace("-syslog", "d")),
        };
        let logger = format!("rt-{t}-{service}-log");
        set("READER_USER", reader.clone());
        set("LOG_USER", logger.clone());
        set(
            "LOG_DIR",
            s.path(&format!("log/{service}")).display().to_string(),
        );
        let split = if RECEIVERS.contains(&service) {
            "--split-by host "
        } else {
            ""
        };
        set(
            "CYCLOG_OPTIONS",
            format!("{split}--max-file-size 64k --max-total-size 1M"),
        );
        match service {
            "klogd" => set(
                "STATE_FILE",
                s.path("state/klogd/state").display().to_string(),
            ),
            "local-syslog" => set("SOCKET", s.path("dev-log").display().to_string()),
            "udp-syslog" => set("ADDRESS", format!("127.0.0.1:{udp_port}")),
            "export" => set("CURSORS", s.path("cursors").display().to_string()),
            _ => set("ADDRESS", "127.0.0.1:0".into()),
        }
        for user in [reader, logger] {
            if !users.contains(&user) {
                users.push(user);
            }
        }
    }
    let accounts = Accounts {
        users,
        group: format!("rt-{t}-log"),
    };
    (src, accounts)
}

fn setup(src: &Path, group: &str) {
    for _ in 0..2 {
        // Twice: it must be safe to run again.
        let out = Command::new(top().join("services/setup"))
            .arg(src)
            .env("LOG_GROUP", group)
            .output()
            .expect("setup");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Processes whose command line mentions `needle`: (pid, uid, command).
fn processes_with(needle: &str) -> Vec<(u32, u32, String)> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !cmd.contains(needle) {
            continue;
        }
        if proc_status(pid, "State").iter().any(|s| s.contains('Z')) {
            continue;
        }
        let uid = proc_status(pid, "Uid")
            .get(1)
            .and_then(|u| u.parse().ok())
            .unwrap_or(u32::MAX);
        found.push((pid, uid, cmd.trim().to_string()));
    }
    found
}

fn messages(dir: &Path, tag: &str) -> Vec<String> {
    if !dir.join("current").exists() {
        return Vec::new();
    }
    read_logdir_live(dir)
        .iter()
        .map(|l| String::from_utf8_lossy(&l.text).into_owned())
        .filter(|t| t.contains(tag))
        .collect()
}

fn send(socket: &UnixDatagram, path: &Path, text: &str) {
    socket
        .send_to(format!("<13>rilltest: {text}").as_bytes(), path)
        .expect("send to the syslog socket");
}

/// Runs a supervisor on a tree made from services/, and checks the services.
fn supervised(sup: Supervisor) {
    require_root();
    for tool in [sup.scanner(), "logger", "useradd"] {
        require(tool);
    }
    let s = Scratch::new(sup.tree());
    let port = free_port(Transport::Udp);
    let (src, accounts) = test_source(&s, sup, port);
    setup(&src, &accounts.group);
    let out = s.path("generated");
    let status = Command::new(top().join("services/generate"))
        .arg(&src)
        .arg(&out)
        .arg(sup.tree())
        .status();
    assert!(status.expect("generate").success());
    let tree = out.join(sup.tree());
    // export needs a remote server, the receivers their settings: they
    // ship down, and stay down here.
    for service in ["export"].iter().chain(&RECEIVERS) {
        assert!(tree.join(service).join("down").exists(), "{service}");
    }
    let mut scanner = Command::new(sup.scanner())
        .arg(&tree)
        .env_clear()
        .env("PATH", path_with_bins())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("supervisor");
    let guard = Stopper {
        sup,
        tree: tree.clone(),
        scanner: Some(&mut scanner),
    };

    let socket_path = s.path("dev-log");
    let local = s.path("log/local-syslog");
    assert!(
        wait_until(LONG, || socket_path.exists()),
        "syslog-read never made its socket"
    );
    let sender = UnixDatagram::unbound().expect("socket");
    send(&sender, &socket_path, "first");
    assert!(
        wait_until(LONG, || messages(&local, "first").len() == 1),
        "first message not logged"
    );
    // UDP datagrams sent before the reader binds are lost: wait for it.
    assert!(
        wait_until(LONG, || std::net::UdpSocket::bind(("127.0.0.1", port))
            .is_err()),
        "the UDP reader never bound its port"
    );
    let out = Command::new("logger")
        .args(["-d", "-n", "127.0.0.1", "-P", &port.to_string(), "over udp"])
        .status();
    assert!(out.expect("logger").success());
    assert!(wait_until(LONG, || messages(
        &s.path("log/udp-syslog"),
        "over udp"
    )
    .len()
        == 1));

    // Each program runs as its own account, not root.
    let socket_text = socket_path.display().to_string();
    let reader = processes_with(&format!("--unix {socket_text}"));
    assert_eq!(reader.len(), 1, "{reader:?}");
    assert_eq!(
        reader[0].1,
        uid_of(&format!("rt-{}-syslogd", sup.tag())),
        "syslog-read's owner"
    );
    let udp_reader = processes_with(&format!("--udp 127.0.0.1:{port}"));
    assert_eq!(udp_reader.len(), 1, "{udp_reader:?}");
    assert_eq!(
        udp_reader[0].1,
        uid_of(&format!("rt-{}-udp-syslogd", sup.tag())),
        "the UDP syslog-read's owner: not the local one's"
    );
    let log_text = local.display().to_string();
    let loggers: Vec<_> = processes_with(&log_text)
        .into_iter()
        .filter(|p| p.2.starts_with("cyclog"))
        .collect();
    assert_eq!(loggers.len(), 1, "{loggers:?}");
    assert_eq!(
        loggers[0].1,
        uid_of(&format!("rt-{}-local-syslog-log", sup.tag())),
        "cyclog's owner"
    );
    if Path::new("/dev/kmsg").exists() {
        let klog = processes_with("klog-read");
        let klog: Vec<_> = klog
            .iter()
            .filter(|p| p.2.contains(&s.path("state").display().to_string()))
            .collect();
        assert_eq!(klog.len(), 1, "{klog:?}");
        assert_eq!(
            klog[0].1,
            uid_of(&format!("rt-{}-klogd", sup.tag())),
            "klog-read's owner"
        );
    }

    // The log service killed while messages flow: the supervisor keeps the
    // pipe, the new cyclog takes up where the old one stopped.
    let flow = {
        let path = socket_path.clone();
        std::thread::spawn(move || {
            let sender = UnixDatagram::unbound().expect("socket");
            for i in 0..3000 {
                send(&sender, &path, &format!("flow {i:05}"));
                if i % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    for (pid, _, _) in &loggers {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    flow.join().expect("sender");
    assert!(
        wait_until(LONG, || messages(&local, "flow ").len() >= 3000),
        "only {} of 3000 messages after killing cyclog",
        messages(&local, "flow ").len()
    );
    let flowed = messages(&local, "flow ");
    let expected: Vec<String> = (0..3000).map(|i| format!("flow {i:05}")).collect();
    let got: Vec<String> = flowed
        .iter()
        .map(|t| {
            t.rsplit(": ")
                .next()
                .unwrap_or("")
                .split('\t')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(got, expected, "lost, repeated or reordered");

    // The reader killed: it comes back, and messages flow again.
    for (pid, _, _) in processes_with(&format!("--unix {socket_text}")) {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    assert!(
        wait_until(LONG, || {
            send_quietly(&socket_path, "after restart");
            !messages(&local, "after restart").is_empty()
        }),
        "syslog-read did not come back"
    );

    // The receivers' log services run all the same, splitting per host
    // into the directory they made.
    for service in RECEIVERS {
        let root = s.path(&format!("log/{service}"));
        let root_text = root.display().to_string();
        assert!(
            wait_until(LONG, || processes_with(&root_text)
                .iter()
                .any(|p| p.2.starts_with("cyclog --split-by host"))),
            "{service}: no cyclog --split-by host: {:?}",
            processes_with(&root_text)
        );
    }

    // Rotation on the supervisor's alarm.
    let before = archives(&local).len();
    sup.alarm(&tree.join("local-syslog/log"));
    assert!(
        wait_until(LONG, || archives(&local).len() > before),
        "no rotation on alarm"
    );

    drop(guard);
    let left = processes_with(&tree.display().to_string());
    let left: Vec<_> = left
        .into_iter()
        .chain(processes_with(&s.root.display().to_string()))
        .collect();
    assert!(left.is_empty(), "processes left: {left:?}");
    drop(accounts);
}

fn send_quietly(path: &Path, text: &str) {
    if let Ok(sender) = UnixDatagram::unbound() {
        let _ = sender.send_to(format!("<13>rilltest: {text}").as_bytes(), path);
    }
    std::thread::sleep(Duration::from_millis(100));
}

/// Stops a supervision tree the lossless way: the services, then their
/// logs, then the scanner (after taking the services out of its sight).
struct Stopper<'a> {
    sup: Supervisor,
    tree: PathBuf,
    scanner: Option<&'a mut Child>,
}

impl Drop for Stopper<'_> {
    fn drop(&mut self) {
        let Some(scanner) = self.scanner.take() else {
            return;
        };
        let services = SERVICES;
        let run = |tool: &str, args: &[&str]| {
            let _ = Command::new(tool)
                .args(args)
                .current_dir(&self.tree)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        let logs: Vec<String> = services.iter().map(|s| format!("{s}/log")).collect();
        match self.sup {
            Supervisor::S6 => {
                for s in services {
                    run("s6-svc", &["-wd", "-T", "10000", "-d", s]);
                }
                for l in &logs {
                    run("s6-svc", &["-wd", "-T", "10000", "-d", l]);
                }
                run("s6-svscanctl", &["-t", "."]);
            }
            Supervisor::Runit => {
                let mut args = vec!["-w", "10", "down"];
                args.extend(services);
                run("sv", &args);
                let mut args = vec!["-w", "10", "down"];
                args.extend(logs.iter().map(String::as_str));
                run("sv", &args);
                let retired = retire(&self.tree, &services);
                let mut args = vec!["-w", "10", "exit"];
                args.extend(services);
                let _ = Command::new("sv")
                    .args(&args)
                    .current_dir(&retired)
                    .stdout(Stdio::null())
                    .status();
                reaped(scanner.id());
                let _ = Command::new("kill")
                    .args(["-HUP", &scanner.id().to_string()])
                    .status();
            }
            Supervisor::Daemontools => {
                let mut args = vec!["-d"];
                args.extend(services);
                run("svc", &args);
                wait_until(LONG, || {
                    services.iter().all(|s| !svstat_up(&self.tree.join(s)))
                });
                let mut args = vec!["-d"];
                args.extend(logs.iter().map(String::as_str));
                run("svc", &args);
                wait_until(LONG, || logs.iter().all(|l| !svstat_up(&self.tree.join(l))));
                let retired = retire(&self.tree, &services);
                let mut args = vec!["-x"];
                args.extend(services);
                args.extend(logs.iter().map(String::as_str));
                let _ = Command::new("svc")
                    .args(&args)
                    .current_dir(&retired)
                    .status();
                reaped(scanner.id());
                let _ = scanner.kill();
            }
        }
        wait_child(scanner, LONG);
    }
}

fn svstat_up(service: &Path) -> bool {
    Command::new("svstat")
        .arg(service)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(": up "))
        .unwrap_or(false)
}

/// Moves services out of the scanned directory: runsvdir and svscan would
/// start their supervisors again.
fn retire(tree: &Path, services: &[&str]) -> PathBuf {
    let retired = tree.with_extension("stopped");
    fs::create_dir_all(&retired).expect("mkdir");
    for s in services {
        let _ = fs::rename(tree.join(s), retired.join(s));
    }
    retired
}

/// Waits until the scanner has reaped its children.
fn reaped(pid: u32) {
    wait_until(LONG, || {
        let children = Command::new("pgrep")
            .args(["-P", &pid.to_string()])
            .output();
        children.map(|o| o.stdout.is_empty()).unwrap_or(true)
    });
}

#[test]
fn under_runsvdir() {
    supervised(Supervisor::Runit);
}

#[test]
fn under_s6_svscan() {
    supervised(Supervisor::S6);
}

#[test]
fn under_daemontools_svscan() {
    supervised(Supervisor::Daemontools);
}

/// The definitions in services/ are what services/generate makes of
/// services/src: nobody edited one supervisor's copy by hand.
#[test]
fn the_definitions_come_from_one_source() {
    let s = Scratch::new("generate");
    let status = Command::new(top().join("services/generate"))
        .arg(top().join("services/src"))
        .arg(s.path("out"))
        .status();
    assert!(status.expect("generate").success());
    for tree in ["runit", "s6", "daemontools", "nosh"] {
        let out = Command::new("diff")
            .args(["-r", "--no-dereference"])
            .arg(s.path(&format!("out/{tree}")))
            .arg(top().join("services").join(tree))
            .output()
            .expect("diff");
        assert!(
            out.status.success(),
            "services/{tree} differs from services/generate's:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for script in ["generate", "setup", "run-here"] {
        let status = Command::new("sh")
            .arg("-n")
            .arg(top().join("services").join(script))
            .status();
        assert!(status.expect("sh").success(), "{script}");
    }
}

/// syslog-read(8): the local and the UDP reader each run as their own user,
/// so that a flood from the network cannot touch local logging; so does
/// every other reader.
#[test]
fn each_service_reads_as_its_own_user() {
    let src = top().join("services/src");
    let mut readers: Vec<(String, String)> = Vec::new();
    for entry in fs::read_dir(&src).expect("services/src") {
        let service = entry.expect("entry").path();
        let user = fs::read_to_string(service.join("env/READER_USER")).expect("READER_USER");
        let name = service
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        readers.push((user.trim().to_string(), name));
    }
    readers.sort();
    for pair in readers.windows(2) {
        assert_ne!(
            pair[0].0, pair[1].0,
            "{} and {} share a user",
            pair[0].1, pair[1].1
        );
    }
}

/// What README says: make install, copy a supervisor's services, edit their
/// env/, run the installed setup on the copies. It reads what was edited,
/// leaves the other services of the directory alone, and says exactly
/// what it needs when something is missing.
#[test]
fn the_installed_setup_reads_the_edited_copies() {
    require_root();
    require("useradd");
    let s = Scratch::new("setup-copies");
    // make install's services, as the Makefile copies them.
    let installed = s.path("share/rill/services");
    fs::create_dir_all(&installed).expect("share");
    for what in ["src", "runit", "generate", "setup"] {
        let status = Command::new("cp")
            .arg("-RP")
            .arg(top().join("services").join(what))
            .arg(&installed)
            .status();
        assert!(status.expect("cp").success());
    }
    // cp -R .../runit/* /etc/sv/, beside a service of someone else's.
    let sv = s.path("etc/sv");
    fs::create_dir_all(sv.join("getty-5")).expect("other service");
    fs::write(sv.join("getty-5/run"), "#!/bin/sh\n").expect("run");
    for entry in fs::read_dir(installed.join("runit")).expect("runit") {
        let status = Command::new("cp")
            .arg("-R")
            .arg(entry.expect("entry").path())
            .arg(&sv)
            .status();
        assert!(status.expect("cp").success());
    }
    let mut users = Vec::new();
    let set = |service: &str, key: &str, value: &str| {
        fs::write(sv.join(service).join("env").join(key), format!("{value}\n")).expect("edit")
    };
    for service in SERVICES {
        let short = &service[..3];
        let (reader, logger) = (format!("rt-cp-{short}"), format!("rt-cp-{short}-log"));
        set(service, "READER_USER", &reader);
        set(service, "LOG_USER", &logger);
        set(
            service,
            "LOG_DIR",
            &s.path(&format!("log/{service}")).display().to_string(),
        );
        users.extend([reader, logger]);
    }
    set(
        "klogd",
        "STATE_FILE",
        &s.path("state/klogd/state").display().to_string(),
    );
    set(
        "export",
        "CURSORS",
        &s.path("cursors").display().to_string(),
    );
    let accounts = Accounts {
        users,
        group: "rt-cp-log".into(),
    };
    let setup = |args: &[&Path]| {
        Command::new(installed.join("setup"))
            .args(args)
            .env("LOG_GROUP", &accounts.group)
            .output()
            .expect("setup")
    };
    for _ in 0..2 {
        let out = setup(&[&sv]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.is_empty(), "{out:?}");
    }
    for service in SERVICES {
        let dir = s.path(&format!("log/{service}"));
        let owner = rustix::fs::stat(&dir).expect("log directory").st_uid;
        assert_eq!(
            owner,
            uid_of(&format!("rt-cp-{}-log", &service[..3])),
            "{service}"
        );
        if RECEIVERS.contains(&service) {
            // Split per host: no one directory to forward.
            assert!(!s.path(&format!("cursors/{service}")).exists(), "{service}");
        } else if service != "export" {
            let link = fs::read_link(s.path(&format!("cursors/{service}/main"))).expect("cursor");
            assert_eq!(link, dir, "{service}'s cursor");
        }
    }
    assert!(s.path("state/klogd").is_dir());
    assert!(
        !s.path("cursors/getty-5").exists(),
        "someone else's service"
    );
    let groups = Command::new("id")
        .args(["-gn", "rt-cp-exp"])
        .output()
        .expect("id");
    assert_eq!(String::from_utf8_lossy(&groups.stdout).trim(), "rt-cp-log");

    // nosh's bundles: the log bundle's link follows the edited LOG_DIR.
    let nosh = s.path("var/local/sv");
    fs::create_dir_all(&nosh).expect("nosh dir");
    let status = Command::new("cp")
        .arg("-RP")
        .arg(top().join("services/nosh/."))
        .arg(&nosh)
        .status();
    assert!(status.expect("cp").success());
    for service in SERVICES {
        let env = nosh.join(service).join("service/env");
        for key in [
            "READER_USER",
            "LOG_USER",
            "LOG_DIR",
            "STATE_FILE",
            "CURSORS",
        ] {
            if let Ok(value) = fs::read_to_string(sv.join(service).join("env").join(key)) {
                fs::write(env.join(key), value).expect("edit");
            }
        }
    }
    let out = setup(&[&nosh]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        fs::read_link(nosh.join("cyclog@klogd/main")).expect("link"),
        s.path("log/klogd")
    );

    // A setting left out, or a directory with no service: said, exit 100.
    fs::remove_file(sv.join("udp-syslog/env/LOG_USER")).expect("rm");
    let out = setup(&[&sv]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(100), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: missing",
            sv.join("udp-syslog/env/LOG_USER").display()
        )),
        "{stderr}"
    );
    let out = setup(&[&sv.join("getty-5")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(100), "{stderr}");
    assert!(stderr.contains("no service in it"), "{stderr}");
}

/// make run: started, fed with logger, its log found and forwarded over
/// RELP to the second rill, stopped with SIGINT, no process left.
#[test]
fn make_run_runs_the_pipeline_and_stops_on_ctrl_c() {
    require("s6-svscan");
    require("logger");
    let s = Scratch::new("makerun");
    let run = s.path("run");
    let mut child = Command::new(top().join("services/run-here"))
        .env("RILL_BIN", bin_dir())
        .env("RILL_RUN", &run)
        .env("RILL_RELP_PORT", free_port(Transport::Tcp).to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("run-here");
    let socket = run.join("dev-log");
    assert!(wait_until(LONG, || socket.exists()), "no socket");
    let status = Command::new("logger")
        .arg("-u")
        .arg(&socket)
        .arg("hello from make run")
        .status();
    assert!(status.expect("logger").success());
    let log = run.join("log/local-syslog");
    assert!(
        wait_until(LONG, || messages(&log, "hello from make run").len() == 1),
        "message not logged"
    );
    // The export service sent it to relp-syslog, which keeps it under
    // this machine's host name.
    let forwarded = || {
        fs::read_dir(run.join("log/relp-syslog"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|host| messages(&host.path(), "hello from make run").len() == 1)
    };
    let relayed = wait_until(LONG, forwarded);
    let hints = read_hints(child.stdout.as_mut().expect("stdout"));
    // Checked after the stop, so that a failure leaves no pipeline running.
    let hints_worked = std::panic::catch_unwind(|| run_hints_as_printed(&hints));
    // Ctrl-C: SIGINT to the foreground process group.
    let pgid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process_group(pgid, rustix::process::Signal::INT).expect("SIGINT");
    let status = wait_child(&mut child, LONG);
    let shown = hints_worked.unwrap_or_else(|e| std::panic::resume_unwind(e));
    assert!(
        shown.contains("hello from the local socket"),
        "{hints:?}\n{shown}"
    );
    assert!(status.success(), "make run exited {status:?}");
    assert!(relayed, "not forwarded to relp-syslog");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().expect("stdout"), &mut out).expect("read");
    assert!(out.contains("stopped"), "{out}");
    let left = processes_with(&run.display().to_string());
    assert!(left.is_empty(), "processes left: {left:?}");
    let _ = std::io::stdout().flush();
}

/// The commands make run prints, up to the line that ends them.
fn read_hints(out: &mut impl std::io::Read) -> Vec<String> {
    let mut reader = std::io::BufReader::new(out);
    let mut hints = Vec::new();
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut reader, &mut line).expect("read") > 0 {
        if line.starts_with("Ctrl-C stops everything") {
            break;
        }
        if let Some(command) = line.strip_prefix("  ") {
            hints.push(command.trim_end().to_string());
        }
        line.clear();
    }
    hints
}

/// Runs the local logger hint and the first log-show hint exactly as
/// printed, from another directory, with a PATH holding no rill program,
/// as a user would paste them; what log-show showed.
fn run_hints_as_printed(hints: &[String]) -> String {
    let find = |start: &str| {
        hints
            .iter()
            .find(|h| h.contains(start) && !h.contains(" -f "))
            .unwrap_or_else(|| panic!("no {start} hint in {hints:?}"))
    };
    let pasted = |command: &str| {
        Command::new("sh")
            .args(["-c", command])
            .current_dir("/")
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .output()
            .expect("sh")
    };
    let logger = pasted(find("logger -u"));
    assert!(logger.status.success(), "{logger:?}");
    let mut shown = String::new();
    assert!(
        wait_until(LONG, || {
            let out = pasted(find("log-show "));
            assert!(out.status.success(), "{:?}: {out:?}", find("log-show "));
            shown = String::from_utf8_lossy(&out.stdout).into_owned();
            shown.contains("hello from the local socket")
        }),
        "the hint's message never shown: {shown}"
    );
    shown
}

use std::os::unix::process::CommandExt;
