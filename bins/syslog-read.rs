//! syslog-read: receive syslog datagrams (a unix socket such as /dev/log,
//! UDP, or sockets handed down), write one line per message to stdout.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::exit;
use std::time::Duration;

use rill::app::syslog_read::stream::{self, Listener, Streams};
use rill::app::syslog_read::{Collector, Settings};
use rill::cli::{self, EXIT_TEMPORARY, EXIT_USAGE};
use rill::net::cidr::{AllowList, Cidr};
use rill::net::datagram::{Socket, UdpAddr};
use rill::net::rate_limit::{By, Rate};
use rill::net::tls;
use rill::sys::signals::{self, Signals};
use rill::sys::single_threaded::SingleThreaded;
use rill::sys::stdout::Output;
use rill::sys::{listen_fds, privilege};

const SYNOPSIS: &str = "syslog-read [--unix PATH]... [--udp ADDR]... [--tcp ADDR:PORT]... \
[--stream] [--tls ADDR:PORT]... [--relp ADDR:PORT]... [--relp-tls ADDR:PORT]... [--cert FILE --key FILE] [--client-ca FILE] \
[--allow-name NAME]... [--allow CIDR]... [--max-connections N] [--idle-timeout DURATION] \
[--mode OCTAL] [-U] [--max-size SIZE] [--shed-after DURATION] \
[--rate-limit N/DURATION[,BURST]] [--rate-limit-by pid|uid] [--own-pipe]";

/// `--help`: each option of the man page, as it writes it.
const OPTIONS: &str = "--unix PATH  receive on a unix datagram socket at PATH (repeatable)
--udp ADDR  receive UDP on ADDR, HOST:PORT or [IPV6]:PORT (repeatable)
--tcp ADDR:PORT  receive syslog over TCP, RFC 6587 framings (repeatable; :PORT for all)
--stream  receive one connection on stdin (UCSPI: tcpserver; peer from $TCPREMOTEIP)
--tls ADDR:PORT  receive syslog over TLS, RFC 5425 (repeatable; needs --cert, --key)
--relp ADDR:PORT  be a RELP server, as rsyslog's imrelp (repeatable)
--relp-tls ADDR:PORT  RELP over TLS (repeatable; needs --cert, --key)
--cert FILE  the server's certificate chain, PEM
--key FILE  the server's private key, PEM
--client-ca FILE  require client certificates from these CAs, PEM
--allow-name NAME  admit only client certificates naming NAME (repeatable)
--allow CIDR  take UDP, TCP, TLS and RELP only from senders in CIDR (repeatable)
--max-connections N  at most N stream connections at once (256)
--idle-timeout DURATION  close a connection silent for DURATION (1h)
--mode OCTAL  the mode of the --unix sockets (0666)
-U  drop root after opening, to $UID and $GID
--max-size SIZE  the largest message kept whole, datagram or stream (64k)
--shed-after DURATION  drop what waits longer than DURATION on a blocked output
--rate-limit N/DURATION[,BURST]  drop each sender's messages past N per DURATION (off)
--rate-limit-by pid|uid  who is a sender on a unix socket (pid)
--own-pipe  no other process writes to the stdout pipe: write it in large pieces";

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
    tcp: Vec<SocketAddr>,
    tls: Vec<SocketAddr>,
    relp: Vec<SocketAddr>,
    relp_tls: Vec<SocketAddr>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    allow_names: Vec<String>,
    stream: bool,
    allow: AllowList,
    max_connections: usize,
    idle_timeout: Duration,
    own_pipe: bool,
}

impl Args {
    /// Whether it listens for connections.
    fn listens(&self) -> bool {
        !(self.tcp.is_empty()
            && self.tls.is_empty()
            && self.relp.is_empty()
            && self.relp_tls.is_empty())
    }
}

/// A stream input's `ADDR:PORT`: as `--udp` takes it, the port required.
fn stream_addr(text: &str) -> Result<SocketAddr, String> {
    let has_port = text.parse::<IpAddr>().is_err() && !text.ends_with(']');
    let addr = UdpAddr::parse(text)
        .ok()
        .filter(|_| has_port)
        .ok_or(format!(
            "{text:?} is not HOST:PORT, [IPV6]:PORT or :PORT (HOST an IP address)"
        ))?;
    Ok(match addr {
        UdpAddr::Any(port) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        UdpAddr::At(addr) => addr,
    })
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
        tcp: Vec::new(),
        tls: Vec::new(),
        relp: Vec::new(),
        relp_tls: Vec::new(),
        cert: None,
        key: None,
        client_ca: None,
        allow_names: Vec::new(),
        stream: false,
        allow: AllowList::default(),
        max_connections: 256,
        idle_timeout: Duration::from_secs(3600),
        own_pipe: false,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(cli::lexopt_error)? {
        let option = cli::option_name(&arg);
        match arg {
            Long("unix") => args.unix.push(cli::option_path(&mut parser, &option)?),
            Long("own-pipe") => args.own_pipe = true,
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
            Long("tcp" | "tls" | "relp" | "relp-tls") => {
                let text = cli::option_text(&mut parser, &option)?;
                let addr = stream_addr(&text).map_err(|e| format!("{option}: {e}"))?;
                match option.as_str() {
                    "--tcp" => args.tcp.push(addr),
                    "--tls" => args.tls.push(addr),
                    "--relp" => args.relp.push(addr),
                    _ => args.relp_tls.push(addr),
                }
            }
            Long("cert") => args.cert = Some(cli::option_path(&mut parser, &option)?),
            Long("key") => args.key = Some(cli::option_path(&mut parser, &option)?),
            Long("client-ca") => args.client_ca = Some(cli::option_path(&mut parser, &option)?),
            Long("allow-name") => {
                let name = cli::option_text(&mut parser, &option)?;
                if name.is_empty() {
                    return Err(format!("{option}: a name cannot be empty"));
                }
                args.allow_names.push(name);
            }
            Long("stream") => args.stream = true,
            Long("allow") => {
                let text = cli::option_text(&mut parser, &option)?;
                let range: Cidr = text.parse().map_err(|e| format!("{option}: {e}"))?;
                args.allow.add(range);
            }
            Long("max-connections") => {
                let text = cli::option_text(&mut parser, &option)?;
                args.max_connections = text
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or(format!("{option}: {text:?} is not a number of 1 or more"))?;
            }
            Long("idle-timeout") => {
                let text = cli::option_text(&mut parser, &option)?;
                args.idle_timeout = cli::parse_duration(&text)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or(format!(
                        "{option}: {text:?} is not a duration above 0 (try 1h, 90s)"
                    ))?;
            }
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
    if args.stream && args.listens() {
        return Err("--stream: the connection on stdin is the only input; \
             no --tcp, --tls, --relp or --relp-tls with it"
            .to_string());
    }
    let tls_inputs = !args.tls.is_empty() || !args.relp_tls.is_empty();
    if tls_inputs && (args.cert.is_none() || args.key.is_none()) {
        return Err("--tls, --relp-tls: the server needs --cert FILE and --key FILE".to_string());
    }
    if !tls_inputs && (args.cert.is_some() || args.key.is_some() || args.client_ca.is_some()) {
        return Err(
            "--cert, --key, --client-ca: there is no --tls or --relp-tls to use them".to_string(),
        );
    }
    if !args.allow_names.is_empty() && args.client_ca.is_none() {
        return Err(
            "--allow-name: names are checked in client certificates, which only --client-ca \
             requires"
                .to_string(),
        );
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
        if args.stream || args.listens() {
            return Vec::new();
        }
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

/// The stream inputs: listening sockets, or the connection on stdin.
fn open_streams(args: &Args) -> Streams {
    let settings = stream::Settings {
        max_message: args.max_size,
        max_connections: args.max_connections,
        idle_timeout: args.idle_timeout,
        allow: args.allow.clone(),
    };
    let fail = |e: rill::error::Error| -> ! {
        remove_sockets(&args.unix);
        cli::fatal(EXIT_TEMPORARY, &e.to_string())
    };
    let tls = |addr, kind, relp| {
        let options = tls::ServerOptions {
            cert: args.cert.clone().unwrap_or_default(),
            key: args.key.clone().unwrap_or_default(),
            client_ca: args.client_ca.clone(),
        };
        let config = tls::server_config(&options).unwrap_or_else(|e| fail(e));
        let tls = stream::Tls {
            config,
            verifies_clients: args.client_ca.is_some(),
            allow_names: args.allow_names.clone(),
        };
        Listener::bind(addr, kind, Some(tls), relp)
    };
    let tcp = args
        .tcp
        .iter()
        .map(|&a| Listener::bind(a, "tcp", None, false));
    let relp = args
        .relp
        .iter()
        .map(|&a| Listener::bind(a, "relp", None, true));
    let listeners = tcp
        .chain(relp)
        .chain(args.tls.iter().map(|&a| tls(a, "tls", false)))
        .chain(args.relp_tls.iter().map(|&a| tls(a, "relp-tls", true)))
        .map(|listener| listener.unwrap_or_else(|e| fail(e)))
        .collect();
    let mut streams = Streams::new(listeners, settings);
    if args.stream {
        streams.add_stdin(ucspi_peer());
    }
    streams
}

/// The peer of the connection on stdin, as a UCSPI server says it
/// (`TCPREMOTEIP`, `TCPREMOTEPORT`), or as the socket says it.
fn ucspi_peer() -> Option<SocketAddr> {
    let ip = std::env::var("TCPREMOTEIP")
        .ok()
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    let port = std::env::var("TCPREMOTEPORT")
        .ok()
        .and_then(|p| p.parse::<u16>().ok());
    match (ip, port) {
        (Some(ip), Some(port)) => Some(SocketAddr::new(ip, port)),
        _ => rustix::net::getpeername(rustix::stdio::stdin())
            .ok()
            .flatten()
            .and_then(|a| SocketAddr::try_from(a).ok()),
    }
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
    let streams = open_streams(&args);
    for listener in streams.listeners() {
        cli::info(&format!("receiving on {}", listener.name));
    }
    for socket in &sockets {
        let buffer = match socket.receive_buffer() {
            // The kernel reports twice what was set, for its overhead.
            Some(size) if socket.is_udp() => format!(" (receive buffer {} KiB)", size >> 11),
            _ => String::new(),
        };
        cli::info(&format!("receiving on {}{buffer}", socket.name));
    }
    // Before dropping root: reopening stdout goes through /proc/self.
    let output = match args.own_pipe {
        true => Output::own_stdout(),
        false => Output::stdout(),
    };
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
        allow: args.allow,
    };
    exit(Collector::new(sockets, streams, output, settings).run(&signals));
}
