//! A relayed message's own fields: the element of rill's SD-ID
//! (`build::SD_ID`, `[rill@32473 ...]`) that the sending rill's forwarder
//! wrote, holding the fields of its reader line (`pid` `uid` `gid` `from`
//! ...; see `build`).
//!
//! `take_element` finds that element in a message's STRUCTURED-DATA
//! (well-formed, strict RFC 5424: `grammar::strict_sd_ids`), and returns
//! its parameters, values unescaped (`\"` `\\` `\]` as the octet after the
//! backslash; a backslash before any other octet stays), with the SD
//! without it. Whether to believe them is the receiver's decision: only
//! from a peer it authenticated (syslog-read: a TLS client certificate
//! verified and allowed); from anyone else the element stays in the SD,
//! the sender's claim.

use crate::format::syslog::grammar::strict_sd_ids;

/// An element's parameters, in order: (PARAM-NAME, value unescaped).
pub type Params = Vec<(String, Vec<u8>)>;

/// The parameters of the `sd_id` element of `sd`, and `sd` without that
/// element (empty when it was the only one); `None` when `sd` is not
/// well-formed or has no such element.
pub fn take_element(sd: &[u8], sd_id: &str) -> Option<(Params, Vec<u8>)> {
    let ids = strict_sd_ids(sd)?;
    let index = ids
        .iter()
        .position(|id| &sd[id.clone()] == sd_id.as_bytes())?;
    let id = &ids[index];
    // The element runs from its `[` to the `[` of the next, or the end.
    let start = id.start - 1;
    let end = ids.get(index + 1).map_or(sd.len(), |next| next.start - 1);
    let params = params(&sd[id.end..end - 1]);
    let mut rest = sd[..start].to_vec();
    rest.extend_from_slice(&sd[end..]);
    Some((params, rest))
}

/// ` NAME="VALUE"` repeated, as `structured_data` checked them.
fn params(mut text: &[u8]) -> Params {
    let mut params = Vec::new();
    while let Some(rest) = text.strip_prefix(b" ") {
        let Some(eq) = rest.iter().position(|&b| b == b'=') else {
            break;
        };
        let name = String::from_utf8_lossy(&rest[..eq]).into_owned();
        let mut value = Vec::new();
        let mut i = eq + 2;
        while i < rest.len() && rest[i] != b'"' {
            match (rest[i], rest.get(i + 1)) {
                (b'\\', Some(&next @ (b'"' | b'\\' | b']'))) => {
                    value.push(next);
                    i += 2;
                }
                (b, _) => {
                    value.push(b);
                    i += 1;
                }
            }
        }
        params.push((name, value));
        text = rest.get(i + 1..).unwrap_or_default();
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "rill@32473";

    #[test]
    fn the_element_is_taken_out_with_its_parameters_unescaped() {
        let sd = br#"[a@1 x="1"][rill@32473 pid="12" from="10.0.0.1:514" q="a\"b\\c\]d\e"][b@2]"#;
        let (params, rest) = take_element(sd, ID).expect("found");
        assert_eq!(
            params,
            [
                ("pid".to_string(), b"12".to_vec()),
                ("from".to_string(), b"10.0.0.1:514".to_vec()),
                ("q".to_string(), br#"a"b\c]d\e"#.to_vec()),
            ]
        );
        assert_eq!(rest, br#"[a@1 x="1"][b@2]"#);
        let (params, rest) = take_element(br#"[rill@32473 uid="0"]"#, ID).expect("alone");
        assert_eq!(params, [("uid".to_string(), b"0".to_vec())]);
        assert!(rest.is_empty());
    }

    #[test]
    fn without_the_element_or_well_formed_sd_there_is_nothing_to_take() {
        assert_eq!(take_element(br#"[a@1 x="1"]"#, ID), None);
        assert_eq!(take_element(br#"[rill@32473 x="1""#, ID), None);
        assert_eq!(
            take_element(br#"[rill@32473 x="1"][rill@32473 y="2"]"#, ID),
            None
        );
        assert_eq!(take_element(b"-", ID), None);
        assert_eq!(take_element(br#"[rill-claimed@32473 x="1"]"#, ID), None);
    }
}
