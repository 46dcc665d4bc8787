//! Real syslog servers as test receivers: rsyslog and syslog-ng, each on
//! a private configuration, pid file and work directory, listening on an
//! ephemeral loopback port, and writing every message it parsed as one
//! flat JSON object per line (PRI, timestamp, host, app-name, procid,
//! msgid, structured data, message), for the tests to compare field by
//! field with what was sent.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use super::{kill_and_reap, require, spawn_logging, wait_child, wait_until};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Rsyslog,
    SyslogNg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    /// RELP (rsyslog's imrelp), plain and over TLS.
    Relp,
    RelpTls,
}

/// A message as the server parsed it. Keys: `pri`, `timestamp`,
/// `hostname`, `app-name`, `procid`, `msgid`, `structured-data`, `msg`.
pub type Fields = BTreeMap<String, Vec<u8>>;

/// A CA and a server certificate for 127.0.0.1 and localhost, made with
/// openssl.
pub struct Certs {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A client's certificate and key, from the same CA.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Certs {
    pub fn make(dir: &Path) -> Certs {
        require("openssl");
        fs::create_dir_all(dir).expect("certs directory");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=rill test CA",
            ],
        ]
        .concat());
        fs::write(
            dir.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .expect("san.ext");
        fs::write(
            dir.join("client.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .expect("client.ext");
        for (name, subject) in [("server", "/CN=localhost"), ("client", "/CN=rill-client")] {
            let (key, csr, pem, ext) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                if name == "server" {
                    "san.ext"
                } else {
                    "client.ext"
                },
            );
            run(&[
                &["req"][..],
                &ec,
                &["-keyout", &key, "-out", &csr, "-subj", subject],
            ]
            .concat());
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                ext,
            ]);
        }
        Certs {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }
}

/// A free loopback port (bound, then released).
pub fn free_port(transport: Transport) -> u16 {
    if transport == Transport::Udp {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        s.local_addr().expect("addr").port()
    } else {
        let s = std::net::TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        s.local_addr().expect("addr").port()
    }
}

/// Where the privately unpacked peers are (`make deps`).
pub fn peers_prefix() -> PathBuf {
    std::env::var_os("RILL_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/rill-peers"))
}

/// syslog-ng as `make deps` unpacked it, in the foreground on `conf`, its
/// persist, pid and control files named `state` and `.persist`, `.pid`,
/// `.ctl`.
pub fn syslog_ng(conf: &Path, state: &Path) -> Command {
    let root = peers_prefix().join("syslog-ng-core");
    let binary = root.join("usr/sbin/syslog-ng");
    assert!(
        binary.is_file(),
        "{} is not there: run `make deps` as root",
        binary.display()
    );
    let state_file = |ext: &str| {
        let mut name = state.as_os_str().to_owned();
        name.push(ext);
        PathBuf::from(name)
    };
    let mut c = Command::new(binary);
    c.env("LD_LIBRARY_PATH", root.join("usr/lib/syslog-ng"))
        .arg("-F")
        .arg("-f")
        .arg(conf)
        .arg(format!(
            "--module-path={}",
            root.join("usr/lib/syslog-ng/3.38").display()
        ))
        .arg("-R")
        .arg(state_file(".persist"))
        .arg("-p")
        .arg(state_file(".pid"))
        .arg("-c")
        .arg(state_file(".ctl"))
        .arg("--no-caps");
    c
}

pub struct Receiver {
    pub server: Server,
    pub transport: Transport,
    pub port: u16,
    dir: PathBuf,
    out: PathBuf,
    child: Option<Child>,
    /// Over TLS, clients must show a certificate from the CA (rsyslog).
    client_auth: bool,
}

impl Receiver {
    /// Starts a server in `dir` (created), and waits until it listens.
    pub fn start(
        server: Server,
        transport: Transport,
        dir: &Path,
        certs: Option<&Certs>,
    ) -> Receiver {
        Receiver::start_with(server, transport, dir, certs, false)
    }

    /// As `start`; `client_auth`: a TLS client must show a certificate.
    pub fn start_with(
        server: Server,
        transport: Transport,
        dir: &Path,
        certs: Option<&Certs>,
        client_auth: bool,
    ) -> Receiver {
        fs::create_dir_all(dir).expect("receiver directory");
        let mut r = Receiver {
            server,
            transport,
            port: free_port(transport),
            dir: dir.to_path_buf(),
            out: dir.join("received.json"),
            child: None,
            client_auth,
        };
        r.configure(certs);
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        let scheme = match self.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Relp => "relp",
            Transport::RelpTls => "relp+tls",
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn configure(&self, certs: Option<&Certs>) {
        let out = self.out.display();
        let port = self.port;
        let text = match self.server {
            Server::Rsyslog => {
                let fields = [
                    "pri",
                    "timestamp",
                    "hostname",
                    "app-name",
                    "procid",
                    "msgid",
                    "structured-data",
                    "msg",
                ]
                .iter()
                .map(|f| {
                    let date = if *f == "timestamp" {
                        " dateFormat=\"rfc3339\""
                    } else {
                        ""
                    };
                    format!("property(name=\"{f}\"{date} format=\"jsonf\")")
                })
                .collect::<Vec<_>>()
                .join(" constant(value=\",\") ");
                let (module, tls) = match (self.transport, certs) {
                    (Transport::Udp, _) => ("imudp".to_string(), String::new()),
                    (Transport::Tcp, _) => ("imtcp".to_string(), String::new()),
                    (Transport::Tls, Some(c)) => (
                        format!(
                            "imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"{}",
                            if self.client_auth {
                                "x509/certvalid"
                            } else {
                                "anon"
                            }
                        ),
                        format!(
                            "global(DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\")\n",
                            c.ca.display(),
                            c.cert.display(),
                            c.key.display()
                        ),
                    ),
                    (Transport::Relp, _) => ("imrelp".to_string(), String::new()),
                    // imrelp with a certificate asks for the client's too.
                    (Transport::RelpTls, Some(_)) => ("imrelp".to_string(), String::new()),
                    (Transport::Tls | Transport::RelpTls, None) => {
                        panic!("TLS needs certificates")
                    }
                };
                let input = match self.transport {
                    Transport::Udp => "imudp".to_string(),
                    Transport::Relp => "imrelp".to_string(),
                    Transport::RelpTls => match certs {
                        Some(c) => format!(
                            "imrelp\" tls=\"on\" tls.authMode=\"certvalid\" tls.cacert=\"{}\" tls.mycert=\"{}\" tls.myprivkey=\"{}",
                            c.ca.display(),
                            c.cert.display(),
                            c.key.display()
                        ),
                        None => panic!("TLS needs certificates"),
                    },
                    _ => "imtcp".to_string(),
                };
                format!(
                    "global(workDirectory=\"{dir}\" parser.escapeControlCharactersOnReceive=\"off\")\n\
                     {tls}module(load=\"{module}\")\n\
                     template(name=\"j\" type=\"list\") {{ constant(value=\"{{\") {fields} constant(value=\"}}\\n\") }}\n\
                     ruleset(name=\"r\" queue.type=\"direct\") {{ action(type=\"omfile\" file=\"{out}\" template=\"j\") }}\n\
                     input(type=\"{input}\" port=\"{port}\" address=\"127.0.0.1\" ruleset=\"r\")\n",
                    dir = self.dir.display(),
                )
            }
            Server::SyslogNg => {
                let transport = match self.transport {
                    Transport::Udp => "udp",
                    Transport::Tcp => "tcp",
                    Transport::Tls => "tls",
                    Transport::Relp | Transport::RelpTls => panic!("syslog-ng speaks no RELP"),
                };
                let tls = match (self.transport, certs) {
                    (Transport::Tls, Some(c)) => format!(
                        " tls(key-file(\"{}\") cert-file(\"{}\") peer-verify(optional-untrusted))",
                        c.key.display(),
                        c.cert.display()
                    ),
                    (Transport::Tls, None) => panic!("TLS needs certificates"),
                    _ => String::new(),
                };
                format!(
                    "@version: 3.38\n\
                     options {{ stats_freq(0); keep_hostname(yes); use_dns(no); dns_cache(no); chain_hostnames(no); \
                     frac_digits(6); keep_timestamp(yes); log_msg_size(65536); }};\n\
                     source s {{ syslog(ip(\"127.0.0.1\") port({port}) transport(\"{transport}\"){tls}); }};\n\
                     destination d {{ file(\"{out}\" template(\"$(format-json --scope none pri=$PRI \
                     timestamp=$S_ISODATE hostname=$HOST app-name=$PROGRAM procid=$PID msgid=$MSGID \
                     structured-data=$SDATA msg=$MSG)\\n\")); }};\n\
                     log {{ source(s); destination(d); }};\n"
                )
            }
        };
        fs::write(self.dir.join("server.conf"), text).expect("server configuration");
    }

    /// Starts the server (again), and waits until it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let conf = self.dir.join("server.conf");
        let mut command = match self.server {
            Server::Rsyslog => {
                require("rsyslogd");
                let mut c = Command::new("rsyslogd");
                c.arg("-n")
                    .arg("-f")
                    .arg(&conf)
                    .arg("-i")
                    .arg(self.dir.join("server.pid"));
                c
            }
            Server::SyslogNg => syslog_ng(&conf, &self.dir.join("server")),
        };
        let child = spawn_logging(&mut command, &self.dir.join("server.stderr"));
        let pid = child.id();
        self.child = Some(child);
        let (port, udp) = (self.port, self.transport == Transport::Udp);
        assert!(
            wait_until(Duration::from_secs(20), || listening(pid, port, udp)),
            "{:?} never listened on {port}: {}",
            self.server,
            fs::read_to_string(self.dir.join("server.stderr")).unwrap_or_default()
        );
    }

    /// Stops the server (TERM), waiting for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            wait_child(&mut child, Duration::from_secs(20));
        }
    }

    /// Kills the server (SIGKILL), waiting for it to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            wait_child(&mut child, Duration::from_secs(20));
        }
    }

    /// Every message received so far: the complete lines of the output (the
    /// server may be writing the last one as we read).
    pub fn received(&self) -> Vec<Fields> {
        let bytes = fs::read(&self.out).unwrap_or_default();
        let complete = bytes.len() - bytes.iter().rev().take_while(|&&b| b != b'\n').count();
        bytes[..complete]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                parse_flat_json(l)
                    .unwrap_or_else(|| panic!("bad JSON: {}", String::from_utf8_lossy(l)))
            })
            .collect()
    }

    /// How many messages are in, without parsing them.
    pub fn count(&self) -> usize {
        fs::read(&self.out).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
    }

    /// Waits until the count stops growing for a while.
    pub fn settle(&self) -> usize {
        let mut last = usize::MAX;
        let mut still = 0;
        wait_until(Duration::from_secs(60), || {
            let n = self.count();
            still = if n == last { still + 1 } else { 0 };
            last = n;
            still >= 30
        });
        last
    }

    /// Waits until at least `n` messages are in; all received.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Fields> {
        wait_until(limit, || self.count() >= n);
        self.received()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }
}

/// Whether process `pid` listens on 127.0.0.1:`port`: a socket of its own
/// (a client's socket may have the same local port).
fn listening(pid: u32, port: u16, udp: bool) -> bool {
    let table = if udp {
        "/proc/net/udp"
    } else {
        "/proc/net/tcp"
    };
    let want = format!("0100007F:{port:04X}");
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let ours: Vec<String> = fds
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .collect();
    fs::read_to_string(table).is_ok_and(|t| {
        t.lines().skip(1).any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.get(1) == Some(&want.as_str())
                && (udp || cols.get(3) == Some(&"0A"))
                && cols
                    .get(9)
                    .is_some_and(|inode| ours.contains(&format!("socket:[{inode}]")))
        })
    })
}

/// `{"key":"value",...}` with string values only; values as bytes
/// (servers pass invalid UTF-8 through).
pub fn parse_flat_json(line: &[u8]) -> Option<Fields> {
    let mut fields = Fields::new();
    let mut i = 0;
    let expect =
        |i: &mut usize, b: u8| -> Option<()> { (line.get(*i) == Some(&b)).then(|| *i += 1) };
    expect(&mut i, b'{')?;
    if line.get(i) == Some(&b'}') {
        return Some(fields);
    }
    loop {
        let key = json_string(line, &mut i)?;
        expect(&mut i, b':')?;
        let value = json_string(line, &mut i)?;
        fields.insert(String::from_utf8(key).ok()?, value);
        match line.get(i)? {
            b',' => i += 1,
            b'}' => return Some(fields),
            _ => return None,
        }
    }
}

fn json_string(line: &[u8], i: &mut usize) -> Option<Vec<u8>> {
    if line.get(*i) != Some(&b'"') {
        return None;
    }
    *i += 1;
    let mut out = Vec::new();
    loop {
        let b = *line.get(*i)?;
        *i += 1;
        match b {
            b'"' => return Some(out),
            b'\\' => {
                let e = *line.get(*i)?;
                *i += 1;
                match e {
                    b'"' | b'\\' | b'/' => out.push(e),
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let hex = std::str::from_utf8(line.get(*i..*i + 4)?).ok()?;
                        *i += 4;
                        let mut code = u32::from_str_radix(hex, 16).ok()?;
                        if (0xd800..0xdc00).contains(&code) && line.get(*i..*i + 2) == Some(b"\\u")
                        {
                            let low = std::str::from_utf8(line.get(*i + 2..*i + 6)?).ok()?;
                            let low = u32::from_str_radix(low, 16).ok()?;
                            *i += 6;
                            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                        }
                        let c = char::from_u32(code)?;
                        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    _ => return None,
                }
            }
            b => out.push(b),
        }
    }
}
