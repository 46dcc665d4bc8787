//! Address ranges for `--allow`: which senders a network input accepts.
//!
//! # The format
//!
//! ```text
//! RANGE = IPV4 ["/" 0..32]        192.0.2.0/24, 10.0.0.7 (= /32)
//!       | IPV6 ["/" 0..128]       2001:db8::/32, ::1 (= /128)
//! ```
//!
//! The prefix length is decimal without leading zeros or sign. Bits of the
//! address past the prefix must be zero (`10.0.0.1/8` is refused: it is
//! most likely a typing error, and the intended range is ambiguous).
//! Addresses are written as `std::net` parses them (no zone index, no
//! brackets).
//!
//! # Matching
//!
//! A sender matches a range when its first prefix-length bits are the
//! range's. An IPv4-mapped IPv6 sender (`::ffff:192.0.2.7`, as a dual-stack
//! socket reports an IPv4 peer) is matched as the IPv4 address it carries,
//! against the IPv4 ranges; an IPv4-mapped range (`::ffff:10.0.0.0/104`)
//! likewise is the IPv4 range `10.0.0.0/8`, so either spelling works.
//! Otherwise IPv4 ranges match only IPv4 senders and IPv6 ranges IPv6
//! senders.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// One range of addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cidr {
    V4 { network: u32, prefix: u8 },
    V6 { network: u128, prefix: u8 },
}

/// Why a range could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CidrError {
    BadAddress(String),
    BadPrefix(String),
    PrefixTooLong { prefix: u32, max: u8 },
    HostBitsSet { canonical: String },
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::BadAddress(a) => write!(f, "{a:?} is not an IPv4 or IPv6 address"),
            CidrError::BadPrefix(p) => {
                write!(f, "{p:?} is not a prefix length (a decimal number)")
            }
            CidrError::PrefixTooLong { prefix, max } => {
                write!(f, "prefix length {prefix} is above {max}")
            }
            CidrError::HostBitsSet { canonical } => write!(
                f,
                "address has bits set past the prefix length (the range is {canonical})"
            ),
        }
    }
}

impl std::error::Error for CidrError {}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl Cidr {
    /// The range of one address.
    pub fn host(address: IpAddr) -> Cidr {
        match address {
            IpAddr::V4(a) => Cidr::V4 {
                network: a.to_bits(),
                prefix: 32,
            },
            IpAddr::V6(a) => Cidr::normalized_v6(a.to_bits(), 128),
        }
    }

    /// An IPv4-mapped range of at least 96 bits is the IPv4 range.
    fn normalized_v6(network: u128, prefix: u8) -> Cidr {
        let mapped = Ipv6Addr::from_bits(network).to_ipv4_mapped();
        match mapped {
            Some(v4) if prefix >= 96 => Cidr::V4 {
                network: v4.to_bits(),
                prefix: prefix - 96,
            },
            _ => Cidr::V6 { network, prefix },
        }
    }

    /// Whether `address` is in the range.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self, canonical(address)) {
            (Cidr::V4 { network, prefix }, IpAddr::V4(a)) => {
                a.to_bits() & mask32(*prefix) == *network
            }
            (Cidr::V6 { network, prefix }, IpAddr::V6(a)) => {
                a.to_bits() & mask128(*prefix) == *network
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| CidrError::BadAddress(address.to_string()))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => parse_prefix(p, max)?,
        };
        let cidr = match address {
            IpAddr::V4(a) => Cidr::V4 {
                network: a.to_bits() & mask32(prefix),
                prefix,
            },
            IpAddr::V6(a) => Cidr::normalized_v6(a.to_bits() & mask128(prefix), prefix),
        };
        let exact = match address {
            IpAddr::V4(a) => a.to_bits() & !mask32(prefix) == 0,
            IpAddr::V6(a) => a.to_bits() & !mask128(prefix) == 0,
        };
        if !exact {
            let canonical = match address {
                IpAddr::V4(a) => format!(
                    "{}/{prefix}",
                    Ipv4Addr::from_bits(a.to_bits() & mask32(prefix))
                ),
                IpAddr::V6(a) => {
                    format!(
                        "{}/{prefix}",
                        Ipv6Addr::from_bits(a.to_bits() & mask128(prefix))
                    )
                }
            };
            return Err(CidrError::HostBitsSet { canonical });
        }
        Ok(cidr)
    }
}

fn parse_prefix(text: &str, max: u8) -> Result<u8, CidrError> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = text.len() > 1 && text.starts_with('0');
    if !digits_only || leading_zero || text.len() > 3 {
        return Err(CidrError::BadPrefix(text.to_string()));
    }
    let prefix: u32 = text
        .parse()
        .map_err(|_| CidrError::BadPrefix(text.to_string()))?;
    if prefix > u32::from(max) {
        return Err(CidrError::PrefixTooLong { prefix, max });
    }
    Ok(prefix as u8)
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cidr::V4 { network, prefix } => write!(f, "{}/{prefix}", Ipv4Addr::from_bits(network)),
            Cidr::V6 { network, prefix } => write!(f, "{}/{prefix}", Ipv6Addr::from_bits(network)),
        }
    }
}

/// The ranges of every `--allow`; empty, it allows everyone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    ranges: Vec<Cidr>,
}

impl AllowList {
    pub fn add(&mut self, range: Cidr) {
        if !self.ranges.contains(&range) {
            self.ranges.push(range);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `address` may send: no ranges given, or one contains it.
    pub fn allows(&self, address: IpAddr) -> bool {
        self.ranges.is_empty() || self.ranges.iter().any(|r| r.contains(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::rand::Rng;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn an_ipv4_range_holds_the_addresses_under_its_prefix() {
        let r = cidr("192.0.2.0/24");
        assert!(r.contains(ip("192.0.2.0")));
        assert!(r.contains(ip("192.0.2.255")));
        assert!(!r.contains(ip("192.0.3.0")));
        assert!(!r.contains(ip("192.0.1.255")));
    }

    #[test]
    fn an_ipv6_range_holds_the_addresses_under_its_prefix() {
        let r = cidr("2001:db8::/32");
        assert!(r.contains(ip("2001:db8:ffff::1")));
        assert!(!r.contains(ip("2001:db9::1")));
        assert!(!r.contains(ip("192.0.2.1")));
    }

    #[test]
    fn a_bare_address_is_a_range_of_one() {
        assert_eq!(cidr("10.0.0.7"), cidr("10.0.0.7/32"));
        assert_eq!(cidr("::1"), cidr("::1/128"));
        assert!(cidr("10.0.0.7").contains(ip("10.0.0.7")));
        assert!(!cidr("10.0.0.7").contains(ip("10.0.0.8")));
        assert!(cidr("::1").contains(ip("::1")));
    }

    #[test]
    fn prefix_zero_holds_every_address_of_its_family() {
        assert!(cidr("0.0.0.0/0").contains(ip("255.255.255.255")));
        assert!(cidr("0.0.0.0/0").contains(ip("::ffff:1.2.3.4")));
        assert!(!cidr("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(cidr("::/0").contains(ip("2001:db8::1")));
    }

    #[test]
    fn an_ipv4_mapped_sender_matches_ipv4_ranges() {
        assert!(cidr("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        assert!(!cidr("10.0.0.0/8").contains(ip("::ffff:11.1.2.3")));
    }

    #[test]
    fn an_ipv4_mapped_range_is_the_ipv4_range() {
        assert_eq!(cidr("::ffff:10.0.0.0/104"), cidr("10.0.0.0/8"));
        assert!(cidr("::ffff:10.0.0.0/104").contains(ip("10.9.9.9")));
        assert_eq!(cidr("::ffff:10.0.0.7"), cidr("10.0.0.7"));
    }

    #[test]
    fn bad_ranges_are_refused_with_what_is_wrong() {
        for (text, want) in [
            ("", "is not an IPv4 or IPv6 address"),
            ("10.0.0", "is not an IPv4 or IPv6 address"),
            ("host.example.org", "is not an IPv4 or IPv6 address"),
            ("[::1]", "is not an IPv4 or IPv6 address"),
            ("fe80::1%eth0", "is not an IPv4 or IPv6 address"),
            ("10.0.0.0/", "is not a prefix length"),
            ("10.0.0.0/+8", "is not a prefix length"),
            ("10.0.0.0/08", "is not a prefix length"),
            ("10.0.0.0/8/8", "is not a prefix length"),
            ("10.0.0.0/ 8", "is not a prefix length"),
            ("10.0.0.0/99999999999999999999", "is not a prefix length"),
            ("10.0.0.0/33", "prefix length 33 is above 32"),
            ("::/129", "prefix length 129 is above 128"),
            ("10.0.0.1/8", "the range is 10.0.0.0/8"),
            ("2001:db8::1/32", "the range is 2001:db8::/32"),
        ] {
            let e = text.parse::<Cidr>().expect_err(text).to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_range_prints_as_it_parses() {
        for text in [
            "10.0.0.0/8",
            "192.0.2.7/32",
            "2001:db8::/32",
            "::1/128",
            "0.0.0.0/0",
        ] {
            assert_eq!(cidr(text).to_string(), text);
            assert_eq!(cidr(&cidr(text).to_string()), cidr(text));
        }
    }

    #[test]
    fn an_empty_allow_list_allows_everyone_and_a_list_only_its_ranges() {
        let mut list = AllowList::default();
        assert!(list.allows(ip("203.0.113.9")));
        list.add(cidr("10.0.0.0/8"));
        list.add(cidr("2001:db8::/32"));
        assert!(list.allows(ip("10.2.3.4")));
        assert!(list.allows(ip("::ffff:10.2.3.4")));
        assert!(list.allows(ip("2001:db8::5")));
        assert!(!list.allows(ip("203.0.113.9")));
        assert!(!list.allows(ip("::1")));
    }

    #[test]
    fn random_text_never_panics() {
        let mut rng = Rng::new(0x000c_1d12);
        let alphabet = b"0123456789abcdef:./% f[]-+";
        for _ in 0..20_000 {
            let len = rng.below(45);
            let text: String = (0..len)
                .map(|_| char::from(alphabet[rng.below(alphabet.len())]))
                .collect();
            if let Ok(r) = text.parse::<Cidr>() {
                assert_eq!(r.to_string().parse::<Cidr>(), Ok(r), "{text}");
            }
        }
    }
}
