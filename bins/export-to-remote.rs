//! export-to-remote: send the new lines of log directories, as RFC 5424
//! messages, to a remote syslog server, through durable cursors.

use std::path::PathBuf;
use std::process::exit;
use std::time::Duration;

use rill::app::export_to_remote::{Exporter, Options, Target};
use rill::cli::{self, EXIT_TEMPORARY, EXIT_USAGE};
use rill::format::reader_line::{Facility, Priority, Severity};
use rill::format::syslog::build::{SD_ID, valid_sd_name};
use rill::logdir::read::follow::Follower;
use rill::net::relp::ClientConfig;
use rill::net::remote::{Scheme, Url};
use rill::net::tls;
use rill::sys::listen_fds;
use rill::sys::signals::{self, Signals};

const SYNOPSIS: &str = "export-to-remote [--to URL] [--ca FILE] [--cert FILE --key FILE] \
[--server-name NAME] [--hostname NAME] [--priority FACILITY.SEVERITY] [--sd-id ID] \
[--max-backoff DURATION] [--relp-window N] [--relp-window-bytes SIZE] CURSORS";

/// `--help`: each option of the man page, as it writes it.
const OPTIONS: &str = "--to URL  the server: udp://, tcp://, tls://, relp:// or relp+tls://HOST:PORT (else descriptor 7)
--ca FILE  with tls:// or relp+tls://: the certificates to trust
--cert FILE  with tls:// or relp+tls://: this client's certificate, with --key
--key FILE  with tls:// or relp+tls://: this client's private key, with --cert
--server-name NAME  with tls:// or relp+tls://: the name the server's certificate must have
--hostname NAME  the HOSTNAME of the messages (this host's name)
--priority FACILITY.SEVERITY  the priority of lines without one (daemon.notice)
--sd-id ID  the SD-ID of rill's fields (rill@32473)
--max-backoff DURATION  the longest wait between reconnections (60s)
--relp-window N  with relp://: messages awaiting the server's answer, at most (16384)
--relp-window-bytes SIZE  with relp://: octets of messages awaiting the server's answer, at most (4M)";

/// The descriptor a UCSPI client leaves connected to the server.
const UCSPI_FD: i32 = 7;

struct Args {
    url: Option<Url>,
    tls: tls::Options,
    hostname: Option<String>,
    priority: Priority,
    sd_id: String,
    max_backoff: Duration,
    relp: ClientConfig,
    cursors: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    use lexopt::prelude::*;
    let mut args = Args {
        url: None,
        tls: tls::Options::default(),
        hostname: None,
        priority: Priority {
            facility: Facility::DAEMON,
            severity: Severity::NOTICE,
        },
        sd_id: SD_ID.to_string(),
        max_backoff: Duration::from_secs(60),
        relp: ClientConfig::default(),
        cursors: PathBuf::new(),
    };
    let mut relp_options = false;
    let mut dirs = Vec::new();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(cli::lexopt_error)? {
        let option = cli::option_name(&arg);
        let text = |parser: &mut lexopt::Parser| cli::option_text(parser, &option);
        match arg {
            Long("to") => {
                let value = text(&mut parser)?;
                args.url = Some(Url::parse(&value).map_err(|e| format!("{option}: {e}"))?);
            }
            Long("ca") => args.tls.ca = Some(text(&mut parser)?.into()),
            Long("cert") => args.tls.cert = Some(text(&mut parser)?.into()),
            Long("key") => args.tls.key = Some(text(&mut parser)?.into()),
            Long("server-name") => args.tls.server_name = Some(text(&mut parser)?),
            Long("hostname") => args.hostname = Some(text(&mut parser)?),
            Long("priority") => {
                let value = text(&mut parser)?;
                args.priority = Priority::parse(&value).ok_or(format!(
                    "{option}: {value:?} is not FACILITY.SEVERITY (try daemon.notice, local0.info)"
                ))?;
            }
            Long("sd-id") => {
                let value = text(&mut parser)?;
                if !valid_sd_name(&value) {
                    return Err(format!(
                        "{option}: {value:?} is not an SD-ID of at most 20 characters"
                    ));
                }
                args.sd_id = value;
            }
            Long("max-backoff") => {
                let value = text(&mut parser)?;
                let d = cli::parse_duration(&value).map_err(|e| format!("{option}: {e}"))?;
                args.max_backoff = d.max(Duration::from_secs(1));
            }
            Long("relp-window") => {
                let value = text(&mut parser)?;
                args.relp.window.messages = value
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| (1..=1_000_000).contains(&n))
                    .ok_or(format!(
                        "{option}: {value:?} is not a number from 1 to 1000000"
                    ))?;
                relp_options = true;
            }
            Long("relp-window-bytes") => {
                let size = cli::size_value(&mut parser, &option)?;
                args.relp.window.bytes =
                    usize::try_from(size)
                        .ok()
                        .filter(|&n| n >= 1)
                        .ok_or(format!(
                            "{option}: at least 1 octet, at most what memory holds"
                        ))?;
                relp_options = true;
            }
            Short('h') | Long("help") => cli::help(SYNOPSIS, OPTIONS, 8),
            Long("version") => cli::version(),
            Value(dir) => dirs.push(PathBuf::from(dir)),
            _ => return Err(cli::lexopt_error(arg.unexpected())),
        }
    }
    args.cursors = match <[PathBuf; 1]>::try_from(dirs) {
        Ok([dir]) => dir,
        Err(dirs) => {
            return Err(format!(
                "one directory of cursors is required (given {})",
                dirs.len()
            ));
        }
    };
    let tls_options = args.tls.ca.is_some()
        || args.tls.cert.is_some()
        || args.tls.key.is_some()
        || args.tls.server_name.is_some();
    if tls_options && args.url.as_ref().is_none_or(|u| !u.scheme.is_tls()) {
        return Err("TLS options need --to tls://HOST:PORT or relp+tls://HOST:PORT".into());
    }
    if relp_options && args.url.as_ref().is_none_or(|u| !u.scheme.is_relp()) {
        return Err("RELP options need --to relp://HOST:PORT or relp+tls://HOST:PORT".into());
    }
    Ok(args)
}

/// This host's name, as HOSTNAME.
fn hostname() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy().into_owned();
    if name.is_empty() { "-".into() } else { name }
}

rill::block_signals_before_main!(&signals::STOP);

fn main() {
    cli::set_program("export-to-remote");
    let args = parse_args().unwrap_or_else(|e| cli::usage(&e, SYNOPSIS));
    // Before any descriptor of ours is made, so that 7 is the inherited one.
    let target = match &args.url {
        Some(url) => Target::Url(url.clone()),
        None => Target::Inherited(listen_fds::inherited(UCSPI_FD).unwrap_or_else(|| {
            cli::usage("no --to URL, and no descriptor 7 to write to", SYNOPSIS)
        })),
    };
    let signals = Signals::block(&signals::STOP)
        .unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &e.to_string()));
    if let Some(url) = &args.url
        && url.scheme == Scheme::RelpTls
        && args.tls.cert.is_none()
    {
        cli::warn(
            "relp+tls:// without --cert and --key: rsyslog's imrelp refuses a client without a certificate",
        );
    }
    let tls = match &args.url {
        Some(url) if url.scheme.is_tls() => Some(
            tls::client_config(&args.tls)
                .unwrap_or_else(|e| cli::fatal(EXIT_USAGE, &e.to_string())),
        ),
        _ => None,
    };
    let options = Options {
        relp: args.relp,
        tls,
        server_name: args.tls.server_name,
        hostname: args.hostname.unwrap_or_else(hostname).into_bytes(),
        priority: args.priority,
        sd_id: args.sd_id,
        min_backoff: Duration::from_millis(250),
        max_backoff: args.max_backoff,
    };
    let mut follower = Follower::open(&args.cursors)
        .unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &e.to_string()));
    let mut exporter = Exporter::new(&mut follower, target, options)
        .unwrap_or_else(|e| cli::fatal(EXIT_TEMPORARY, &e.to_string()));
    exit(exporter.run(&signals));
}
