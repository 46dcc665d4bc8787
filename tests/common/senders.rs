//! Real syslog servers as test *clients*: rsyslog and syslog-ng, each on a
//! private configuration, pid file and work directory, taking messages on
//! an LF-framed TCP input on an ephemeral loopback port and forwarding
//! them with the action or destination under test (omfwd, omrelp,
//! syslog(), network()) to the receiver under test.

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use super::receivers::{Certs, Transport, free_port, syslog_ng};
use super::{kill_and_reap, require, spawn_logging, wait_until};

/// A forwarding server, with the TCP port of its input.
pub struct Forwarder {
    pub input_port: u16,
    dir: PathBuf,
    child: Option<Child>,
    command: Command,
}

/// What the forwarders send to: RFC 5424, octet-counted or LF-framed,
/// over TCP, TLS or RELP (plain or TLS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    TcpOctetCounted,
    TcpLf,
    Tls,
    Relp,
    RelpTls,
}

impl Forwarder {
    /// rsyslog forwarding to 127.0.0.1:`port` `via`, showing the client
    /// certificate of `certs` over TLS (and checking the server's).
    pub fn rsyslog(dir: &Path, port: u16, via: Via, certs: Option<&Certs>) -> Forwarder {
        require("rsyslogd");
        fs::create_dir_all(dir).expect("rsyslog directory");
        let input_port = free_port(Transport::Tcp);
        let certs = || certs.expect("TLS needs certificates");
        let template = "template=\"RSYSLOG_SyslogProtocol23Format\"";
        // Retried for ever, in order: a receiver that restarts loses nothing.
        let retry = "action.resumeRetryCount=\"-1\" action.resumeInterval=\"1\"";
        let (global, modules, action) = match via {
            Via::TcpOctetCounted | Via::TcpLf => (
                String::new(),
                "",
                format!(
                    "type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" protocol=\"tcp\" \
                     TCP_Framing=\"{}\" {template} {retry}",
                    if via == Via::TcpLf {
                        "traditional"
                    } else {
                        "octet-counted"
                    }
                ),
            ),
            Via::Tls => {
                let c = certs();
                (
                    format!(
                        " DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" \
                         DefaultNetstreamDriverKeyFile=\"{}\"",
                        c.ca.display(),
                        c.client_cert.display(),
                        c.client_key.display()
                    ),
                    "",
                    format!(
                        "type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" protocol=\"tcp\" \
                         StreamDriver=\"gtls\" StreamDriverMode=\"1\" \
                         StreamDriverAuthMode=\"x509/name\" StreamDriverPermittedPeers=\"localhost\" \
                         {template} {retry}"
                    ),
                )
            }
            Via::Relp => (
                String::new(),
                "module(load=\"omrelp\")\n",
                format!("type=\"omrelp\" target=\"127.0.0.1\" port=\"{port}\" {template} {retry}"),
            ),
            Via::RelpTls => {
                let c = certs();
                (
                    String::new(),
                    "module(load=\"omrelp\")\n",
                    format!(
                        "type=\"omrelp\" target=\"127.0.0.1\" port=\"{port}\" tls=\"on\" \
                         tls.caCert=\"{}\" tls.myCert=\"{}\" tls.myPrivKey=\"{}\" \
                         tls.authMode=\"name\" tls.permittedPeer=[\"localhost\"] {template} {retry}",
                        c.ca.display(),
                        c.client_cert.display(),
                        c.client_key.display()
                    ),
                )
            }
        };
        let conf = format!(
            "global(workDirectory=\"{dir}\"{global})\n\
             module(load=\"imtcp\")\n{modules}\
             ruleset(name=\"r\") {{ action({action}) }}\n\
             input(type=\"imtcp\" port=\"{input_port}\" address=\"127.0.0.1\" ruleset=\"r\")\n",
            dir = dir.display()
        );
        let conf_path = dir.join("rsyslog.conf");
        fs::write(&conf_path, conf).expect("rsyslog configuration");
        let mut command = Command::new("rsyslogd");
        command
            .arg("-n")
            .arg("-f")
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"));
        Forwarder::start(dir, input_port, command)
    }

    /// syslog-ng forwarding to 127.0.0.1:`port` with its `syslog()`
    /// destination (RFC 5424, octet-counted) over TCP or TLS, or its
    /// `network()` destination (RFC 3164, LF-framed) over TCP.
    pub fn syslog_ng(dir: &Path, port: u16, via: Via, certs: Option<&Certs>) -> Forwarder {
        fs::create_dir_all(dir).expect("syslog-ng directory");
        let input_port = free_port(Transport::Tcp);
        let destination = match via {
            Via::TcpOctetCounted => {
                format!("syslog(\"127.0.0.1\" port({port}) transport(\"tcp\"))")
            }
            Via::TcpLf => format!("network(\"127.0.0.1\" port({port}) transport(\"tcp\"))"),
            Via::Tls => {
                let c = certs.expect("TLS needs certificates");
                format!(
                    "syslog(\"127.0.0.1\" port({port}) transport(\"tls\") tls(ca-file(\"{}\") \
                     key-file(\"{}\") cert-file(\"{}\") peer-verify(required-trusted)))",
                    c.ca.display(),
                    c.client_key.display(),
                    c.client_cert.display()
                )
            }
            Via::Relp | Via::RelpTls => panic!("syslog-ng speaks no RELP"),
        };
        let conf = format!(
            "@version: 3.38\n\
             options {{ stats_freq(0); keep_hostname(yes); use_dns(no); dns_cache(no); \
             chain_hostnames(no); frac_digits(6); keep_timestamp(yes); log_msg_size(65536); \
             time_reopen(1); }};\n\
             source s {{ network(ip(\"127.0.0.1\") port({input_port}) transport(\"tcp\") flags(syslog-protocol)); }};\n\
             destination d {{ {destination}; }};\n\
             log {{ source(s); destination(d); }};\n"
        );
        let conf_path = dir.join("syslog-ng.conf");
        fs::write(&conf_path, conf).expect("syslog-ng configuration");
        let command = syslog_ng(&conf_path, &dir.join("syslog-ng"));
        Forwarder::start(dir, input_port, command)
    }

    fn start(dir: &Path, input_port: u16, command: Command) -> Forwarder {
        let mut f = Forwarder {
            input_port,
            dir: dir.to_path_buf(),
            child: None,
            command,
        };
        f.child = Some(spawn_logging(&mut f.command, &dir.join("stderr")));
        f
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// Sends each of `messages` (without LF) to its input, LF-framed.
    pub fn send(&self, messages: &[String]) {
        let mut input = None;
        let connected = wait_until(Duration::from_secs(30), || {
            input = TcpStream::connect(("127.0.0.1", self.input_port)).ok();
            input.is_some()
        });
        assert!(connected, "the forwarder never listened: {}", self.stderr());
        let mut input = input.expect("connected");
        let mut all = Vec::new();
        for m in messages {
            all.extend_from_slice(m.as_bytes());
            all.push(b'\n');
        }
        input.write_all(&all).expect("send to the forwarder");
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }
}
