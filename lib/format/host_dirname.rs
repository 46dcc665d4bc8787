//! A sender-controlled value (a host name, any field) as the name of one
//! directory: `cyclog --split-by FIELD ROOT` writes to `ROOT/<name>/`.
//!
//! # The mapping
//!
//! The value is any octets. Its directory name is:
//!
//! ```text
//! NAME    = "%empty"                         the empty value
//!         | ENCODED                          when ENCODED is at most 200 octets
//!         | PREFIX "%~" 32HEXDIG             otherwise
//! ENCODED = each octet of the value, in order:
//!             A-Z a-z 0-9 - _ :  as itself
//!             .                  as itself, except as the first octet: %2E
//!             any other octet    as %XX, two upper-case hex digits
//! PREFIX  = the longest start of ENCODED of at most 166 octets that does
//!           not cut a %XX apart
//! HEXDIG  = the first 128 bits of the SHA-256 of the value, lower-case hex
//! ```
//!
//! So `web01`, `host.example.org`, `10.0.0.7` and `2001:db8::1` are their
//! own names; `..` is `%2E.`, `a/b` is `a%2Fb`, `../../etc` is
//! `%2E.%2F..%2Fetc`, `Café` is `Caf%C3%A9`, an octet of invalid UTF-8 such
//! as 0xFF is `%FF`. Case is kept (`Web01` and `web01` are two
//! directories; ROOT must not be on a case-folding file system).
//!
//! # Why it is safe
//!
//! A name only holds `A-Z a-z 0-9 - _ : . %` and `~`: no `/`, no NUL, no
//! control or non-ASCII octet, nothing a shell or terminal reads specially
//! but `~` after `%`. It never starts with `.` (so it is never `.` or `..`
//! and never hidden) nor with `@` (rill's archive names); it is 1 to 200
//! octets (a file system allows 255).
//!
//! # Why two values never share a name
//!
//! Up to 200 octets, ENCODED is decoded back octet by octet: `%` only ever
//! starts an escape, so the value is the only one with that name. `%empty`
//! and `%~` are no escape (`m`, `~` are no hex digits), so no ENCODED name
//! is ever the empty value's name or a shortened one. Two shortened names
//! are the same only if the two values' SHA-256 agree on 128 bits: not by
//! chance, and not by a sender's design, which would need a collision of
//! SHA-256 cut to 128 bits (2^64 work for a birthday collision among the
//! names the attacker makes; reaching a given victim's name is 2^128).
//!
//! `value_of` is the inverse: the value of a name this mapping made, only
//! its readable start for a shortened one, and an error for any other name
//! (one that no value maps to, like `%41`, `%2e`, `a%`, `.x`).

use ring::digest;

/// The longest directory name made.
pub const MAX_NAME: usize = 200;
/// The name of the empty value.
pub const EMPTY_NAME: &str = "%empty";
/// A name no value maps to (`%n` is no escape and it is not `%empty`), for
/// what has no value at all: `cyclog --split-by` writes there the lines
/// without the field.
pub const NONE_NAME: &str = "%none";
/// Between a shortened name's readable start and its hash.
const HASH_MARK: &str = "%~";
/// Hex digits of the hash in a shortened name (128 bits).
const HASH_DIGITS: usize = 32;
const PREFIX_MAX: usize = MAX_NAME - HASH_MARK.len() - HASH_DIGITS;

fn is_plain(octet: u8) -> bool {
    octet.is_ascii_alphanumeric() || matches!(octet, b'-' | b'_' | b':' | b'.')
}

fn push_octet(name: &mut String, octet: u8, first: bool) {
    if is_plain(octet) && !(first && octet == b'.') {
        name.push(char::from(octet));
    } else {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        name.push('%');
        name.push(char::from(HEX[usize::from(octet >> 4)]));
        name.push(char::from(HEX[usize::from(octet & 15)]));
    }
}

/// The directory name of `value`.
pub fn dirname_of(value: &[u8]) -> String {
    if value.is_empty() {
        return EMPTY_NAME.to_string();
    }
    let mut name = String::with_capacity(value.len().min(MAX_NAME));
    for (i, &octet) in value.iter().enumerate() {
        let before = name.len();
        push_octet(&mut name, octet, i == 0);
        if name.len() > MAX_NAME {
            name.truncate(before.min(prefix_end(&name, before)));
            return shortened(name, value);
        }
    }
    name
}

/// Where the readable start of a shortened name ends: at most
/// `PREFIX_MAX` octets, at an octet boundary of the value. `whole` is the
/// length of `name` made of whole octets.
fn prefix_end(name: &str, whole: usize) -> usize {
    let mut end = whole.min(PREFIX_MAX);
    // An escape is 3 octets: back off if `end` falls inside one.
    let bytes = name.as_bytes();
    for back in 1..=2 {
        if end >= back && bytes[end - back] == b'%' {
            end -= back;
            break;
        }
    }
    end
}

fn shortened(mut prefix: String, value: &[u8]) -> String {
    let hash = digest::digest(&digest::SHA256, value);
    prefix.push_str(HASH_MARK);
    for octet in &hash.as_ref()[..HASH_DIGITS / 2] {
        prefix.push_str(&format!("{octet:02x}"));
    }
    prefix
}

/// What a directory name says of the value it was made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// The whole value.
    Whole(Vec<u8>),
    /// A value too long to be its name: its start only.
    Start(Vec<u8>),
}

/// A name that `dirname_of` makes from no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotADirname(pub String);

impl std::fmt::Display for NotADirname {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not the directory name of any value", self.0)
    }
}

impl std::error::Error for NotADirname {}

/// The value `name` was made from (its start, for a shortened name).
pub fn value_of(name: &str) -> Result<Value, NotADirname> {
    let refuse = || NotADirname(name.to_string());
    if name == EMPTY_NAME {
        return Ok(Value::Whole(Vec::new()));
    }
    let (encoded, hash) = match name.find(HASH_MARK) {
        Some(at) => (&name[..at], Some(&name[at + HASH_MARK.len()..])),
        None => (name, None),
    };
    let value = decode(encoded).ok_or_else(refuse)?;
    match hash {
        None if !value.is_empty() && dirname_of(&value) == name => Ok(Value::Whole(value)),
        Some(hex) if is_hash(hex) && prefix_end(encoded, encoded.len()) == encoded.len() => {
            // The name is canonical if its start is what a long value with
            // this start gets: the encoding of the value, cut at the limit.
            let canonical = encoded.len() + 3 > PREFIX_MAX && dirname_of(&value) == encoded;
            if canonical && !value.is_empty() {
                Ok(Value::Start(value))
            } else {
                Err(refuse())
            }
        }
        _ => Err(refuse()),
    }
}

fn is_hash(hex: &str) -> bool {
    hex.len() == HASH_DIGITS && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `%XX` escapes decoded; `None` on anything `dirname_of` never writes.
fn decode(encoded: &str) -> Option<Vec<u8>> {
    let bytes = encoded.as_bytes();
    let mut value = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')) {
                return None;
            }
            value.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if is_plain(bytes[i]) {
            value.push(bytes[i]);
            i += 1;
        } else {
            return None;
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::rand::Rng;
    use std::collections::HashMap;

    fn assert_safe(name: &str) {
        assert!(!name.is_empty() && name.len() <= MAX_NAME, "{name:?}");
        assert!(!name.starts_with('.') && !name.starts_with('@'), "{name:?}");
        assert!(name != "." && name != "..");
        assert!(
            name.bytes().all(|b| is_plain(b) || b == b'%' || b == b'~'),
            "{name:?}"
        );
    }

    #[test]
    fn typical_host_names_are_their_own_names() {
        for host in [
            "web01",
            "host.example.org",
            "10.0.0.7",
            "2001:db8::1",
            "::ffff:10.0.0.7",
            "WEB-01_a",
        ] {
            assert_eq!(dirname_of(host.as_bytes()), host);
            assert_eq!(value_of(host), Ok(Value::Whole(host.as_bytes().to_vec())));
        }
    }

    #[test]
    fn names_that_would_leave_or_hide_in_root_are_escaped() {
        for (value, name) in [
            (&b"."[..], "%2E"),
            (b"..", "%2E."),
            (b"../../etc", "%2E.%2F..%2Fetc"),
            (b"a/b", "a%2Fb"),
            (b"/", "%2F"),
            (b".hidden", "%2Ehidden"),
            (b"@4000000000000000", "%404000000000000000"),
            (b"a@b", "a%40b"),
            (b"a%2Fb", "a%252Fb"),
            (b"x\0y", "x%00y"),
            (b"tab\there", "tab%09here"),
            (b"new\nline", "new%0Aline"),
            (b"sp ace", "sp%20ace"),
            (b"~", "%7E"),
            (b"%empty", "%25empty"),
        ] {
            assert_eq!(dirname_of(value), name);
            assert_safe(name);
            assert_eq!(value_of(name), Ok(Value::Whole(value.to_vec())));
        }
    }

    #[test]
    fn the_name_for_no_value_is_made_from_no_value() {
        assert_safe(NONE_NAME);
        assert!(value_of(NONE_NAME).is_err());
        assert_ne!(NONE_NAME, EMPTY_NAME);
        for value in [&b"%none"[..], b"none", b"%", b""] {
            assert_ne!(dirname_of(value), NONE_NAME);
        }
    }

    #[test]
    fn the_empty_value_has_its_own_name() {
        assert_eq!(dirname_of(b""), "%empty");
        assert_eq!(value_of("%empty"), Ok(Value::Whole(Vec::new())));
    }

    #[test]
    fn non_ascii_and_invalid_utf8_are_escaped_octet_by_octet() {
        assert_eq!(dirname_of("Café".as_bytes()), "Caf%C3%A9");
        assert_eq!(dirname_of(b"\xff\xfe"), "%FF%FE");
        assert_eq!(value_of("%FF%FE"), Ok(Value::Whole(b"\xff\xfe".to_vec())));
    }

    #[test]
    fn a_long_value_keeps_a_readable_start_and_a_hash() {
        let long = vec![b'a'; 10 * 1024];
        let name = dirname_of(&long);
        assert_safe(&name);
        assert_eq!(name.len(), MAX_NAME);
        assert!(name.starts_with(&"a".repeat(PREFIX_MAX)));
        assert!(name[PREFIX_MAX..].starts_with("%~"));
        assert_eq!(value_of(&name), Ok(Value::Start(vec![b'a'; PREFIX_MAX])));
        let mut other = long.clone();
        other[9000] = b'b';
        assert_ne!(dirname_of(&other), name);
    }

    #[test]
    fn a_value_of_exactly_the_limit_is_its_own_name_and_one_more_is_shortened() {
        let at = vec![b'x'; MAX_NAME];
        assert_eq!(dirname_of(&at), "x".repeat(MAX_NAME));
        let over = vec![b'x'; MAX_NAME + 1];
        assert!(dirname_of(&over).contains("%~"));
    }

    #[test]
    fn a_shortened_name_never_cuts_an_escape() {
        for pad in 0..4 {
            let mut v = vec![b'a'; pad];
            v.extend_from_slice(&[b'/'; 200]);
            let name = dirname_of(&v);
            assert_safe(&name);
            let start = &name[..name.find("%~").expect("shortened")];
            assert!(decode(start).is_some(), "{name}");
            assert!(matches!(value_of(&name), Ok(Value::Start(_))), "{name}");
        }
    }

    #[test]
    fn names_no_value_maps_to_are_refused() {
        for name in [
            "",
            ".",
            "..",
            ".x",
            "@x",
            "a/b",
            "%41",
            "%2e",
            "%",
            "a%",
            "a%4",
            "%GG",
            "%2Fx%~",
            "a%~00",
            "%empty2",
            "a b",
            "%00%~0123456789abcdef0123456789abcdef",
        ] {
            assert!(value_of(name).is_err(), "{name:?}");
        }
        // A hash after a start too short to have been cut.
        let fake = format!("abc%~{}", "0".repeat(32));
        assert!(value_of(&fake).is_err());
    }

    #[test]
    fn random_values_are_safe_distinct_and_round_trip() {
        let mut rng = Rng::new(0xd1_2e55);
        let alphabet = b"aA0.-_:/%@~ \0\xff";
        let mut seen: HashMap<String, Vec<u8>> = HashMap::new();
        for i in 0..50_000 {
            let len = match i % 10 {
                0 => 150 + (rng.next() % 120) as usize,
                _ => (rng.next() % 12) as usize,
            };
            let value: Vec<u8> = (0..len)
                .map(|_| {
                    let r = rng.next();
                    if r.is_multiple_of(5) {
                        (r >> 8) as u8
                    } else {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    }
                })
                .collect();
            let name = dirname_of(&value);
            assert_safe(&name);
            match value_of(&name).expect("a made name decodes") {
                Value::Whole(v) => assert_eq!(v, value),
                Value::Start(s) => assert!(value.starts_with(&s) && s.len() < value.len()),
            }
            if let Some(other) = seen.insert(name.clone(), value.clone()) {
                assert_eq!(other, value, "two values share {name:?}");
            }
        }
    }

    #[test]
    fn random_names_never_panic_and_decode_only_to_their_own_value() {
        let mut rng = Rng::new(7);
        let alphabet = b"aF0.%~2E-@/";
        for _ in 0..50_000 {
            let len = (rng.next() % 16) as usize;
            let name: String = (0..len)
                .map(|_| char::from(alphabet[rng.next() as usize % alphabet.len()]))
                .collect();
            if let Ok(Value::Whole(v)) = value_of(&name) {
                assert_eq!(dirname_of(&v), name);
            }
        }
    }
}
