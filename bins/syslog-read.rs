//! syslog-read: receive syslog datagrams (a unix socket such as /dev/log,
//! UDP, or sockets handed down), write one line per message to stdout.

use std::path::PathBuf;
use std::process::exit;
use std::time::Duration;

use rill::app::syslog_read::{Collector, Settings};
use rill::cli::{self, EXIT_TEMPORARY, EXIT_USAGE};
use rill::net::datagram::{Socket, UdpAddr};
use rill::net::rate_limit::{By, Rate};
use rill::sys::signals::{self, Signals};
use rill::sys::single_threaded::SingleThreaded;
use rill::sys::stdout::Output;
use rill::sys::{listen_fds, privilege};

const SYNOPSIS: &str = "syslog-read [--unix PATH]... [--udp ADDR]... [--mode OCTAL] [-U] \
[--max-size SIZE] [--shed-after DURATION] [--rate-limit N/DURATION[,BURST]] \
[--rate-limit-by pid|uid]";

/// `--help`: each option of the man page, as it writes it.
const OPTIONS: &str = "--unix PATH  receive on a unix datagram socket at PATH (repeatable)
--udp ADDR  receive UDP on ADDR, HOST:PORT or [IPV6]:PORT (repeatable)
--mode OCTAL  the mode of the --unix sockets (0666)
-U  drop root after opening, to $UID and $GID
--max-size SIZE  the largest message kept whole (64k)
--shed-after DURATION  drop what waits longer than DURATION on a blocked output
--rate-limit N/DURATION[,BURST]  drop each sender's messages past N per DURATION (off)
--rate-limit-by pid|uid  who is a sender on a unix socket (pid)";

/// The largest `--max-size`: more than any datagram the kernel passes.
const MAX_SIZE_LIMIT: u64 = 16 << 20;

struct Args {
    unix: Vec<PathBuf>,
    udp: Vec<UdpAddr>,
    mode: u32,
    drop_privileges: bool,
    max_size: usize,
    shed_after: Option<Duration>,
    rate_limit: Option<Rate>,
    rate_limit_by: Option<By>,
}

fn parse_args() -> Result<Args, String> {
    use lexopt::prelude::*;
    let mut args = Args {
        unix: Vec::new(),
        udp: Vec::new(),
        mode: 0o666,
        drop_privileges: false,
        max_size: 64 << 10,
        shed_after: None,
        rate_limit: None,
        rate_limit_by: None,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(cli::lexopt_error)? {
        let option = cli::option_name(&arg);
        match arg {
            Long("unix") => args.unix.push(cli::option_path(&mut parser, &option)?),
            Long("udp") => {
                let text = cli::option_text(&mut parser, &option)?;
                args.udp
                    .push(UdpAddr::parse(&text).map_err(|e| format!("{option}: {e}"))?);
            }
            Long("mode") => {
                let text = cli::option_text(&mut parser, &option)?;
                let digits = text.strip_prefix("0o").unwrap_or(&text);
                args.mode = u32::from_str_radix(digits, 8)
                    .ok()
                    .filter(|&m| m <= 0o7777)
                    .ok_or(format!(
                        "{option}: {text:?} is not an octal mode (try 0666, 0620)"
                    ))?;
            }
            Short('U') => args.drop_privileges = true,
            Long("max-size") => {
                let size = cli::size_value(&mut parser, &option)?;
                if !(1..=MAX_SIZE_LIMIT).contains(&size) {
                    return Err(format!(
                        "{option}: {size} is out of range: from 1 to {MAX_SIZE_LIMIT} (16M)"
                    ));
                }
                args.max_size = size as usize;
            }
            Long("shed-after") => {
                let text = cli::option_text(&mut parser, &option)?;
                args.shed_after =
                    Some(cli::parse_duration(&text).map_err(|e| format!("{option}: {e}"))?);
            }
            Long("rate-limit") => {
                let text = cli::option_text(&mut parser, &option)?;
                args.rate_limit = Some(text.parse().map_err(|e| format!("{option}: {e}"))?);
            }
            Long("rate-limit-by") => {
                let text = cli::option_text(&mut parser, &option)?;
                args.rate_limit_by = Some(text.parse().map_err(|e| format!("{option}: {e}"))?);
            }
            Short('h') | Long("help") => cli::help(SYNOPSIS, OPTIONS, 8),
            Long("version") => cli::version(),
            _ => return Err(cli::lexopt_error(arg.unexpected())),
        }
    }
    if args.rate_limit_by.is_some() && args.rate_limit.is_none() {
        return Err("--rate-limit-by: there is no --rate-limit to apply it to".to_string());
    }
    Ok(args)
}

const HOW_TO_GIVE_SOCKETS: &str = "give --unix PATH (e.g. --unix /dev/log) or --udp ADDR, \
or hand down datagram sockets (LISTEN_FDS, or descriptor 3)";

/// The sockets named on the command line, or else those handed down:
/// LISTEN_FDS (systemd, nosh), or fd 3 alone (UCSPI-style chain loaders).
fn open_sockets(args: &Args, single: &SingleThreaded) -> Vec<Socket> {
    let fail = |e: rill::error::Error| cli::fatal(EXIT_TEMPORARY, &e.to_string());
    if args.unix.is_empty() && args.udp.is_empty() {
        let listen_fds = listen_fds::take(single);
        let handed_down = !listen_fds.is_empty();
        let fds = if handed_down {
            listen_fds
        } else {
            listen_fds::fd3().into_iter().collect()
        };
        if fds.is_empty() {
            cli::usage(&format!("no socket: {HOW_TO_GIVE_SOCKETS}"), SYNOPSIS);
        }
        return fds
            .into_iter()
            .map(|fd| {
                Socket::inherited(fd).unwrap_or_else(|e| {
                    let text = if handed_down {
                        format!("a socket passed with LISTEN_FDS: {e}")
                    } else {
                        let why = e.io();
                        format!(
                            "no socket: no --unix or --udp, no LISTEN_FDS, and descriptor 3 \
                             is open but not a datagram socket ({why}); {HOW_TO_GIVE_SOCKETS}"
                        )
                    };
                    cli::usage(&text, SYNOPSIS)
                })
            })
            .collect();
    }
    let unix = args
        .unix
        .iter()
        .map(|path| Socket::unix(path, args.mode).unwrap_or_else(fail));
    let udp = args
        .udp
        .iter()
        .map(|&addr| Socket::udp(addr).unwrap_or_else(fail));
    unix.chain(udp).collect()
}

/// Removes the socket files this run made, when it gives up before
/// receiving on them: no one should mistake them for a live reader.
fn remove_sockets(paths: &[PathBuf]) {
    for path in paths {
        let _ = std::fs::remove_file(path);
    }
}

rill::block_signals_before_main!(&signals::STOP);

fn main() {
    // SAFETY: first thing in main; no thread is started in this program.
    let single = unsafe { SingleThreaded::promise() };
    cli::set_program("syslog-read");
    let args = parse_args().unwrap_or_else(|e| cli::usage(&e, SYNOPSIS));
    // Checked before any socket is made, so that a failure leaves none.
    let target = args
        .drop_privileges
        .then(privilege::target_from_env)
        .transpose()
        .unwrap_or_else(|e| cli::fatal(EXIT_USAGE, &e.to_string()));
    // SIGPIPE stays ignored (Rust's default): a vanished reader is an EPIPE.
    let signals = Signals::block(&signals::STOP)
        .unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &e.to_string()));
    let sockets = open_sockets(&args, &single);
    for socket in &sockets {
        let buffer = match socket.receive_buffer() {
            // The kernel reports twice what was set, for its overhead.
            Some(size) if socket.is_udp() => format!(" (receive buffer {} KiB)", size >> 11),
            _ => String::new(),
        };
        cli::info(&format!("receiving on {}{buffer}", socket.name));
    }
    // Before dropping root: reopening stdout goes through /proc/self.
    let output = Output::stdout();
    if let Some(target) = &target
        && let Err(e) = privilege::drop_to(target)
    {
        remove_sockets(&args.unix);
        cli::fatal(EXIT_TEMPORARY, &e.to_string());
    }
    let settings = Settings {
        shed_after: args.shed_after,
        max_size: args.max_size,
        rate_limit: args
            .rate_limit
            .map(|rate| (rate, args.rate_limit_by.unwrap_or(By::Pid))),
    };
    exit(Collector::new(sockets, output, settings).run(&signals));
}
