//! Datagram sockets for syslog: a unix socket (as `/dev/log`) that tells
//! who sent each datagram (SCM_CREDENTIALS: pid, uid, gid, which no sender
//! can forge), UDP over IPv4 and IPv6 that tells from where, and sockets
//! handed down by the supervisor. Datagrams are taken in batches with
//! recvmmsg(2), with their true length, so that a cut one is known.
//!
//! The kernel stamps each datagram with the time it arrived (CLOCK_REALTIME,
//! in nanoseconds), so that a stop can take exactly what came before it;
//! the hot path takes no control message it does not need. UDP stamps
//! with SO_TIMESTAMPING set to generate only, from when the socket is taken
//! on, and passes stamps once [`Socket::report_arrivals`] asks, at a stop.
//! A unix socket can only stamp with SO_TIMESTAMPNS, which passes a stamp
//! with every datagram (5% of the cost of receiving one): it is turned on
//! at a stop only. A datagram queued before then has no stamp, and the
//! kernel passes the time it is read instead, which is no earlier than the
//! start of the call that takes it: such a stamp means "queued before
//! stamping began", before the stop, and [`Batch::arrival`] says
//! [`QUEUED_BEFORE`]. (So does a stamp of one that arrived during the call:
//! it is taken, and the next call ends the stop.)

use std::ffi::OsStr;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use rustix::fs::{self, Mode};
use rustix::io::Errno;
use rustix::net::{self, AddressFamily, SocketAddrUnix, SocketFlags, SocketType, sockopt};

use crate::error::{Context, Error, Result, Usage};

/// The UDP port when ADDR names none.
pub const SYSLOG_PORT: u16 = 514;

/// The receive buffer asked for UDP sockets; the kernel caps it at
/// `net.core.rmem_max` unless we may force it (CAP_NET_ADMIN).
const UDP_RCVBUF: usize = 32 << 20;

/// A drained UDP socket rests before it is read again, so that datagrams
/// are taken in larger batches with fewer wakeups: far cheaper under load.
/// (UDP senders do not wait on us. A unix socket's senders do, once its
/// short queue is full, so it never rests.) The rest is what a quarter of
/// the receive buffer holds at this rate, and at most `MAX_REST`.
const REST_RATE: u64 = 1 << 30;
const MAX_REST: Duration = Duration::from_millis(2);

/// Datagrams taken by one recvmmsg(2).
const MAX_BATCH: usize = 64;

/// Under a flood that never lets a UDP socket drain, its kernel drops are
/// still counted after this many full batches.
const DROPS_EVERY: u32 = 256;

/// Room for each datagram's ancillary data: the credentials or the
/// arrival time, a security label if the socket passes one, and
/// descriptors a sender may push on us (they are closed at once).
const CONTROL: usize = 256;

/// A `--udp` ADDR: `HOST:PORT`, `[V6]:PORT`, `:PORT`, `HOST`, `[V6]` or a
/// bare IPv6 address; the port is 514 when not given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpAddr {
    /// Every local address, IPv6 and IPv4.
    Any(u16),
    At(SocketAddr),
}

impl UdpAddr {
    pub fn parse(text: &str) -> std::result::Result<UdpAddr, Usage> {
        let bad = || {
            Usage(format!(
                "{text:?} is not HOST:PORT, [IPV6]:PORT or :PORT (HOST an IP address)"
            ))
        };
        let port = |p: &str| p.parse::<u16>().map_err(|_| bad());
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(UdpAddr::At(SocketAddr::new(ip, SYSLOG_PORT)));
        }
        if let Some(v6) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            let ip = v6.parse::<Ipv6Addr>().map_err(|_| bad())?;
            return Ok(UdpAddr::At(SocketAddr::new(IpAddr::V6(ip), SYSLOG_PORT)));
        }
        let (host, p) = text.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty() {
            return Ok(UdpAddr::Any(port(p)?));
        }
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let ip = host.parse::<IpAddr>().map_err(|_| bad())?;
        if ip.is_ipv6() && !text.starts_with('[') {
            return Err(bad());
        }
        Ok(UdpAddr::At(SocketAddr::new(ip, port(p)?)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Unix,
    Udp,
}

/// A bound datagram socket.
pub struct Socket {
    fd: OwnedFd,
    kind: Kind,
    /// A unix socket stamps arrivals (since `report_arrivals`).
    stamping: bool,
    /// How it is named in messages: `unix /dev/log`, `udp [::]:514`.
    pub name: String,
    /// The kernel's count of datagrams it dropped for want of room, as
    /// last seen, and how many of those are not yet reported.
    drops: u32,
    lost: u64,
    /// Full batches taken since the drops were last counted.
    uncounted: u32,
    /// How long to leave it alone once drained.
    pub rest: Duration,
}

impl Socket {
    /// Binds a unix datagram socket at `path`, replacing a stale socket
    /// there, and gives it `mode`.
    pub fn unix(path: &Path, mode: u32) -> Result<Socket> {
        let name = path.display().to_string();
        let fail = |what: &str, e: Errno| Error::new(format!("{name}: {what}"), e.into());
        match fs::lstat(path) {
            Ok(st) if fs::FileType::from_raw_mode(st.st_mode) == fs::FileType::Socket => {
                if is_listening(path) {
                    return Err(Error::invalid(
                        name,
                        "another process is receiving on this socket",
                    ));
                }
                fs::unlink(path).map_err(|e| fail("removing the stale socket", e))?;
            }
            Ok(_) => {
                return Err(Error::invalid(
                    name,
                    "exists and is not a socket: refusing to replace it",
                ));
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(fail("stat", e)),
        }
        let addr = SocketAddrUnix::new(path).map_err(|e| fail("socket address", e))?;
        let fd = net::socket_with(
            AddressFamily::UNIX,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| fail("socket", e))?;
        net::bind(&fd, &addr).map_err(|e| fail("bind", e))?;
        fs::chmod(path, Mode::from_raw_mode(mode)).map_err(|e| fail("chmod", e))?;
        Socket::adopt(fd, Kind::Unix, format!("unix {name}"))
    }

    /// Binds a UDP socket.
    pub fn udp(addr: UdpAddr) -> Result<Socket> {
        let bind = |addr: SocketAddr| -> std::result::Result<OwnedFd, Errno> {
            let family = match addr {
                SocketAddr::V4(_) => AddressFamily::INET,
                SocketAddr::V6(_) => AddressFamily::INET6,
            };
            let fd = net::socket_with(family, SocketType::DGRAM, SocketFlags::CLOEXEC, None)?;
            if addr.is_ipv6() && addr.ip().is_unspecified() {
                // Both families on one socket, whatever the sysctl says.
                sockopt::set_ipv6_v6only(&fd, false)?;
            }
            net::bind(&fd, &addr)?;
            Ok(fd)
        };
        let (fd, addr) = match addr {
            UdpAddr::At(addr) => (bind(addr), addr),
            UdpAddr::Any(port) => {
                let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
                match bind(v6) {
                    Err(Errno::AFNOSUPPORT) => {
                        let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
                        (bind(v4), v4)
                    }
                    other => (other, v6),
                }
            }
        };
        let fd = fd.context(|| format!("udp {addr}"))?;
        Socket::adopt(fd, Kind::Udp, String::new())
    }

    /// Takes a socket handed down at `fd`: it must be a unix or UDP
    /// datagram socket.
    pub fn inherited(fd: OwnedFd) -> Result<Socket> {
        let number = fd.as_raw_fd();
        let what = || format!("descriptor {number}");
        let kind = sockopt::socket_type(&fd).context(what)?;
        let family = sockopt::socket_domain(&fd).context(what)?;
        let kind = match (kind, family) {
            (SocketType::DGRAM, AddressFamily::UNIX) => Kind::Unix,
            (SocketType::DGRAM, AddressFamily::INET | AddressFamily::INET6) => Kind::Udp,
            _ => return Err(Error::invalid(what(), "not a unix or UDP datagram socket")),
        };
        let name = match kind {
            Kind::Unix => {
                let path = net::getsockname(&fd)
                    .ok()
                    .and_then(|a| SocketAddrUnix::try_from(a).ok())
                    .and_then(|a| a.path_bytes().map(<[u8]>::to_vec))
                    .unwrap_or_default();
                format!(
                    "unix {} (fd {number})",
                    Path::new(OsStr::from_bytes(&path)).display()
                )
            }
            Kind::Udp => String::new(),
        };
        Socket::adopt(fd, kind, name)
    }

    /// Sets the socket up for receiving; names a UDP socket by its address.
    fn adopt(fd: OwnedFd, kind: Kind, name: String) -> Result<Socket> {
        let mut socket = Socket {
            fd,
            kind,
            stamping: false,
            name,
            drops: 0,
            lost: 0,
            uncounted: 0,
            rest: Duration::ZERO,
        };
        match kind {
            Kind::Unix => {
                sockopt::set_socket_passcred(&socket.fd, true)
                    .context(|| format!("{}: SO_PASSCRED", socket.name))?;
                // Off until a stop, even if a predecessor left it on.
                set_int_option(&socket.fd, libc::SO_TIMESTAMPNS, 0)
                    .context(|| format!("{}: SO_TIMESTAMPNS", socket.name))?;
            }
            Kind::Udp => {
                let local = net::getsockname(&socket.fd)
                    .ok()
                    .and_then(|a| SocketAddr::try_from(a).ok());
                if socket.name.is_empty() {
                    socket.name = match local {
                        Some(addr) => format!("udp {addr}"),
                        None => format!("udp (fd {})", socket.fd.as_raw_fd()),
                    };
                }
                if sockopt::set_socket_recv_buffer_size_force(&socket.fd, UDP_RCVBUF).is_err() {
                    let _ = sockopt::set_socket_recv_buffer_size(&socket.fd, UDP_RCVBUF);
                }
                set_int_option(&socket.fd, libc::SO_TIMESTAMPING, STAMP_UDP)
                    .context(|| format!("{}: SO_TIMESTAMPING", socket.name))?;
                socket.drops = kernel_drops(&socket.fd).unwrap_or(0);
                let quarter = socket.receive_buffer().unwrap_or(0) as u64 / 4;
                let rest = Duration::from_nanos(quarter * 1_000_000_000 / REST_RATE);
                socket.rest = rest.min(MAX_REST);
            }
        }
        Ok(socket)
    }

    /// Has the kernel pass each datagram's arrival time from now on, with
    /// the datagram; on a unix socket, stamp them from now on too.
    pub fn report_arrivals(&mut self) -> Result<()> {
        match self.kind {
            Kind::Unix => {
                set_int_option(&self.fd, libc::SO_TIMESTAMPNS, 1)
                    .context(|| format!("{}: SO_TIMESTAMPNS", self.name))?;
                self.stamping = true;
                Ok(())
            }
            Kind::Udp => set_int_option(
                &self.fd,
                libc::SO_TIMESTAMPING,
                STAMP_UDP | libc::SOF_TIMESTAMPING_SOFTWARE,
            )
            .context(|| format!("{}: SO_TIMESTAMPING", self.name)),
        }
    }

    /// The receive buffer, in bytes (as the kernel counts it: doubled).
    pub fn receive_buffer(&self) -> Option<usize> {
        sockopt::socket_recv_buffer_size(&self.fd).ok()
    }

    pub fn is_udp(&self) -> bool {
        self.kind == Kind::Udp
    }

    /// Datagrams the kernel dropped (its receive buffer was full) since
    /// the last call, as counted when the socket was last drained.
    pub fn take_lost(&mut self) -> u64 {
        std::mem::take(&mut self.lost)
    }

    /// Asks the kernel how many datagrams it dropped since the last time.
    fn count_drops(&mut self) {
        self.uncounted = 0;
        if let Some(counter) = kernel_drops(&self.fd) {
            self.lost += u64::from(counter.wrapping_sub(self.drops));
            self.drops = counter;
        }
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// What UDP sockets stamp: the software arrival time, kept with each
/// datagram but not passed until asked for.
const STAMP_UDP: libc::c_uint = libc::SOF_TIMESTAMPING_RX_SOFTWARE;

/// Sets a SOL_SOCKET option whose value is an int.
fn set_int_option(fd: &OwnedFd, option: libc::c_int, value: libc::c_uint) -> io::Result<()> {
    let value = value as libc::c_int;
    // SAFETY: the option's value is a c_int, passed with its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A time as the kernel stamps datagrams: CLOCK_REALTIME, in nanoseconds.
pub type Stamp = i64;

/// The arrival of a datagram queued on a unix socket before it stamped.
pub const QUEUED_BEFORE: Stamp = Stamp::MIN;

/// The time now, on the clock datagrams are stamped with.
pub fn stamp_now() -> Stamp {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    now.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as i64)
}

/// The first datagram waiting on a socket, as far as a stop cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// None waits.
    Empty,
    /// One waits, that arrived at this time.
    Arrived(Stamp),
    /// One waits, with no arrival time (the kernel gave none).
    Unstamped,
}

/// Whether a process is receiving on the unix datagram socket at `path`.
fn is_listening(path: &Path) -> bool {
    let Ok(addr) = SocketAddrUnix::new(path) else {
        return false;
    };
    let Ok(probe) = net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    ) else {
        return false;
    };
    net::connect(&probe, &addr).is_ok()
}

/// The kernel's count of datagrams it dropped on a socket (SO_MEMINFO).
fn kernel_drops(fd: &OwnedFd) -> Option<u32> {
    let mut info = [0u32; libc::SK_MEMINFO_DROPS as usize + 1];
    let mut len = size_of::<[u32; libc::SK_MEMINFO_DROPS as usize + 1]>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    (rc == 0 && len as usize >= size_of::<[u32; libc::SK_MEMINFO_DROPS as usize + 1]>())
        .then_some(info[libc::SK_MEMINFO_DROPS as usize])
}

/// The sender's credentials, as the kernel vouches for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// 0 when the sender is in a pid namespace we cannot see into.
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Where a datagram came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The unix socket: who sent it, when the kernel said.
    Local(Option<Credentials>),
    Udp(SocketAddr),
}

/// One datagram of a batch.
pub struct Datagram<'a> {
    /// Its bytes, at most the batch's size limit.
    pub bytes: &'a [u8],
    /// Its true length: more than `bytes.len()` when it was cut.
    pub len: usize,
    pub origin: Origin,
}

/// Buffers for receiving a batch of datagrams, reused for every socket.
pub struct Batch {
    slot: usize,
    data: Vec<u8>,
    control: Vec<u64>,
    names: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    /// The unix socket's sender of each datagram of the last batch.
    credentials: Vec<Option<Credentials>>,
    /// Datagrams in the last batch, and whether they came over UDP.
    count: usize,
    udp: bool,
    /// The headers are set for a UDP socket (`true`) or a unix one, but
    /// for the first this many, which the last call may have written to.
    prepared: Option<(bool, usize)>,
    /// When the last call began, for a unix socket that stamps: a stamp
    /// from then on is the kernel's for one queued before stamping.
    called: Stamp,
}

impl Batch {
    /// Room for datagrams of up to `max_size` bytes; longer ones are cut.
    pub fn new(max_size: usize) -> Batch {
        let slot = max_size.max(1);
        let count = ((4 << 20) / slot).clamp(1, MAX_BATCH);
        // SAFETY: all-zero is a valid sockaddr_storage, iovec and mmsghdr.
        let (names, iovecs, headers) = unsafe {
            (
                vec![zeroed::<libc::sockaddr_storage>(); count],
                vec![zeroed::<libc::iovec>(); count],
                vec![zeroed::<libc::mmsghdr>(); count],
            )
        };
        Batch {
            slot,
            data: vec![0; slot * count],
            control: vec![0; CONTROL / 8 * count],
            names,
            iovecs,
            headers,
            credentials: vec![None; count],
            count: 0,
            udp: false,
            prepared: None,
            called: Stamp::MAX,
        }
    }

    /// The most datagrams one `receive` takes.
    pub fn capacity(&self) -> usize {
        self.headers.len()
    }

    /// Takes the datagrams waiting on `socket`, at most `capacity()`,
    /// without blocking; returns how many. Fewer than `capacity()` means
    /// the socket had no more for now.
    pub fn receive(&mut self, socket: &mut Socket) -> io::Result<usize> {
        self.count = 0;
        self.udp = socket.kind == Kind::Udp;
        let n = self.headers.len();
        let unset = match self.prepared {
            Some((udp, written)) if udp == self.udp => written,
            _ => n,
        };
        // Set once, the rest as the last call left it: a call that takes
        // a few datagrams does not pay for setting all of them again.
        self.prepared = None;
        for i in 0..unset {
            self.iovecs[i] = libc::iovec {
                iov_base: self.data[i * self.slot..].as_mut_ptr().cast(),
                iov_len: self.slot,
            };
            let h = &mut self.headers[i].msg_hdr;
            if self.udp {
                h.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
                h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            } else {
                h.msg_name = std::ptr::null_mut();
                h.msg_namelen = 0;
            }
            h.msg_iov = &mut self.iovecs[i];
            h.msg_iovlen = 1;
            h.msg_control = self.control[i * CONTROL / 8..].as_mut_ptr().cast();
            h.msg_controllen = CONTROL as _;
            h.msg_flags = 0;
            self.headers[i].msg_len = 0;
        }
        let flags = libc::MSG_DONTWAIT | libc::MSG_TRUNC | libc::MSG_CMSG_CLOEXEC;
        self.called = called(socket);
        loop {
            // SAFETY: every header points into buffers owned by `self`, of
            // the lengths given, which outlive the call.
            let got = unsafe {
                libc::recvmmsg(
                    socket.fd.as_raw_fd(),
                    self.headers.as_mut_ptr(),
                    n as libc::c_uint,
                    flags,
                    std::ptr::null_mut(),
                )
            };
            if got >= 0 {
                self.count = got as usize;
                break;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => break,
                _ => return Err(e),
            }
        }
        // And the one after the last taken, in case the kernel began it.
        self.prepared = Some((self.udp, (self.count + 1).min(n)));
        if !self.udp {
            for i in 0..self.count {
                self.credentials[i] = self.take_control(i);
            }
        }
        if self.udp {
            // Drained (with none left, or fewer than asked for): the time
            // to see whether the kernel dropped any. A flood that never
            // lets it drain is looked at now and then too.
            socket.uncounted += 1;
            if self.count < n || socket.uncounted >= DROPS_EVERY {
                socket.count_drops();
            }
        }
        Ok(self.count)
    }

    /// Looks at the first datagram waiting on `socket`, without taking it
    /// and without blocking. Clears the last batch.
    pub fn peek(&mut self, socket: &Socket) -> io::Result<Head> {
        self.count = 0;
        self.prepared = None;
        let h = &mut self.headers[0].msg_hdr;
        // Zero bytes of room: only its ancillary data is wanted.
        self.iovecs[0] = libc::iovec {
            iov_base: self.data.as_mut_ptr().cast(),
            iov_len: 0,
        };
        h.msg_name = std::ptr::null_mut();
        h.msg_namelen = 0;
        h.msg_iov = &mut self.iovecs[0];
        h.msg_iovlen = 1;
        h.msg_control = self.control.as_mut_ptr().cast();
        h.msg_controllen = CONTROL as _;
        h.msg_flags = 0;
        let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT | libc::MSG_TRUNC | libc::MSG_CMSG_CLOEXEC;
        self.called = called(socket);
        loop {
            // SAFETY: the header points into buffers owned by `self`, of the
            // lengths given, which outlive the call.
            let got = unsafe { libc::recvmsg(socket.fd.as_raw_fd(), h, flags) };
            if got >= 0 {
                break;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Ok(Head::Empty),
                _ => return Err(e),
            }
        }
        // A peek at a unix datagram installs the descriptors it carries too.
        self.take_control(0);
        Ok(match self.arrival(0) {
            Some(at) => Head::Arrived(at),
            None => Head::Unstamped,
        })
    }

    /// When the `i`th datagram of the last batch arrived, if the kernel
    /// said: SCM_TIMESTAMPNS, or the first (software) time of
    /// SCM_TIMESTAMPING, which is zero when there is none; `QUEUED_BEFORE`
    /// for one queued on a unix socket before it stamped.
    pub fn arrival(&self, i: usize) -> Option<Stamp> {
        const SIZE: usize = size_of::<libc::timespec>();
        self.cmsgs(i).find_map(|(kind, d)| {
            let stamped = kind == libc::SCM_TIMESTAMPNS || kind == libc::SCM_TIMESTAMPING;
            if !stamped || d.len() < SIZE {
                return None;
            }
            // SAFETY: SIZE bytes are there; read unaligned.
            let t: libc::timespec = unsafe { std::ptr::read_unaligned(d.as_ptr().cast()) };
            let at = (t.tv_sec as i64)
                .saturating_mul(1_000_000_000)
                .saturating_add(t.tv_nsec as i64);
            let at = if at >= self.called { QUEUED_BEFORE } else { at };
            (at != 0).then_some(at)
        })
    }

    /// The `i`th datagram of the last batch.
    pub fn get(&self, i: usize) -> Datagram<'_> {
        let header = &self.headers[i];
        let len = header.msg_len as usize;
        let bytes = &self.data[i * self.slot..i * self.slot + len.min(self.slot)];
        let origin = if self.udp {
            Origin::Udp(sockaddr(&self.names[i]).unwrap_or(SocketAddr::V4(
                std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            )))
        } else {
            Origin::Local(self.credentials[i])
        };
        Datagram { bytes, len, origin }
    }

    fn cmsgs(&self, i: usize) -> impl Iterator<Item = (libc::c_int, &[u8])> + '_ {
        let h = &self.headers[i].msg_hdr;
        let control = &self.control[i * CONTROL / 8..(i + 1) * CONTROL / 8];
        // SAFETY: u64s viewed as the bytes the kernel wrote into them.
        let control: &[u8] =
            unsafe { std::slice::from_raw_parts(control.as_ptr().cast(), CONTROL) };
        #[allow(clippy::unnecessary_cast)] // not usize with every libc
        let used = (h.msg_controllen as usize).min(CONTROL);
        Cmsgs {
            buf: &control[..used],
        }
    }

    /// The credentials of the `i`th datagram when they are all its control
    /// data, as they nearly always are: one SCM_CREDENTIALS, read in
    /// place of a walk over the control messages.
    #[inline]
    #[allow(clippy::unnecessary_cast)] // not usize with every libc
    fn credentials_alone(&self, i: usize) -> Option<Credentials> {
        const HEADER: usize = size_of::<libc::cmsghdr>();
        const LEN: usize = HEADER + size_of::<libc::ucred>();
        const SPACE: usize = LEN.div_ceil(size_of::<usize>()) * size_of::<usize>();
        let used = self.headers[i].msg_hdr.msg_controllen as usize;
        if used != SPACE {
            return None;
        }
        let control = &self.control[i * CONTROL / 8..][..SPACE / 8];
        // SAFETY: the slice is SPACE initialized bytes (the buffer began
        // zeroed), room for a cmsghdr and a ucred after it, which are
        // plain integers that any bytes are valid for.
        let (header, ucred): (libc::cmsghdr, libc::ucred) = unsafe {
            let at = control.as_ptr().cast::<u8>();
            (
                std::ptr::read_unaligned(at.cast()),
                std::ptr::read_unaligned(at.add(HEADER).cast()),
            )
        };
        let alone = header.cmsg_len as usize == LEN
            && header.cmsg_level == libc::SOL_SOCKET
            && header.cmsg_type == libc::SCM_CREDENTIALS;
        alone.then_some(Credentials {
            pid: ucred.pid as u32,
            uid: ucred.uid,
            gid: ucred.gid,
        })
    }

    /// The credentials that came with the `i`th datagram of a unix
    /// socket; closes the descriptors a sender passed with it. One pass
    /// over its control messages.
    fn take_control(&self, i: usize) -> Option<Credentials> {
        if let Some(credentials) = self.credentials_alone(i) {
            return Some(credentials);
        }
        let mut credentials = None;
        for (kind, d) in self.cmsgs(i) {
            match kind {
                libc::SCM_CREDENTIALS if d.len() >= 12 => {
                    credentials = Some(Credentials {
                        pid: u32::from_ne_bytes([d[0], d[1], d[2], d[3]]),
                        uid: u32::from_ne_bytes([d[4], d[5], d[6], d[7]]),
                        gid: u32::from_ne_bytes([d[8], d[9], d[10], d[11]]),
                    })
                }
                libc::SCM_RIGHTS => {
                    for fd in d.chunks_exact(4) {
                        let fd = i32::from_ne_bytes([fd[0], fd[1], fd[2], fd[3]]);
                        // SAFETY: the kernel just installed this descriptor
                        // for us; nothing else refers to it.
                        unsafe { libc::close(fd) };
                    }
                }
                _ => {}
            }
        }
        credentials
    }
}

/// The start of a call on `socket`, for `Batch::called`: only a unix socket
/// that stamps needs it.
fn called(socket: &Socket) -> Stamp {
    if socket.stamping {
        stamp_now()
    } else {
        Stamp::MAX
    }
}

/// SOL_SOCKET control messages in a buffer the kernel filled:
/// (type, data).
struct Cmsgs<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for Cmsgs<'a> {
    type Item = (libc::c_int, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        const HEADER: usize = size_of::<libc::cmsghdr>();
        const ALIGN: usize = size_of::<usize>();
        loop {
            if self.buf.len() < HEADER {
                return None;
            }
            // SAFETY: HEADER bytes are there; read unaligned.
            let header: libc::cmsghdr =
                unsafe { std::ptr::read_unaligned(self.buf.as_ptr().cast()) };
            let len = header.cmsg_len as usize;
            if len < HEADER || len > self.buf.len() {
                return None;
            }
            let data = &self.buf[HEADER..len];
            let next = len.div_ceil(ALIGN) * ALIGN;
            self.buf = self.buf.get(next..).unwrap_or_default();
            if header.cmsg_level == libc::SOL_SOCKET {
                return Some((header.cmsg_type, data));
            }
        }
    }
}

fn sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))),
                u16::from_be(sin.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_addresses() {
        let at = |s: &str| UdpAddr::At(s.parse().unwrap());
        assert_eq!(UdpAddr::parse(":514"), Ok(UdpAddr::Any(514)));
        assert_eq!(UdpAddr::parse(":0"), Ok(UdpAddr::Any(0)));
        assert_eq!(UdpAddr::parse("127.0.0.1:5140"), Ok(at("127.0.0.1:5140")));
        assert_eq!(UdpAddr::parse("127.0.0.1"), Ok(at("127.0.0.1:514")));
        assert_eq!(UdpAddr::parse("[::1]:5140"), Ok(at("[::1]:5140")));
        assert_eq!(UdpAddr::parse("[::1]"), Ok(at("[::1]:514")));
        assert_eq!(UdpAddr::parse("::1"), Ok(at("[::1]:514")));
        assert_eq!(UdpAddr::parse("[::]:9"), Ok(at("[::]:9")));
        for bad in [
            "",
            ":",
            "localhost:514",
            "1.2.3.4:",
            ":99999",
            "::1:514x",
            "[::1:514",
            "1.2.3.4:x",
        ] {
            assert!(UdpAddr::parse(bad).is_err(), "{bad}");
        }
    }
}
