//! TLS (RFC 5425), built on rustls with the ring provider; TLS 1.2 and
//! 1.3. The client configuration: the CAs that may vouch for the server,
//! and the client's own certificate and key, if it has one. The server
//! configuration: its certificate and key, and the CAs that must vouch for
//! a client's certificate when one is required; and the names a client's
//! certificate carries, to check them against an allow-list.
//!
//! # A certificate's names
//!
//! As rsyslog's `permittedPeer` matches them: the DNS names of its
//! subjectAltName extension; when it has none, the commonName attributes
//! of its subject. Both from the DER of the certificate (RFC 5280):
//!
//! ```text
//! Certificate    = SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
//! tbsCertificate = SEQUENCE { [0] version OPTIONAL, serialNumber, signature,
//!                             issuer, validity, subject, subjectPublicKeyInfo,
//!                             [1] [2] OPTIONAL, [3] extensions OPTIONAL }
//! subject        = SEQUENCE OF SET OF SEQUENCE { OID, value }   CN: 2.5.4.3
//! extension      = SEQUENCE { OID, critical BOOLEAN OPTIONAL, OCTET STRING }
//! subjectAltName = 2.5.29.17: SEQUENCE OF GeneralName, dNSName = [2] IA5String
//! ```
//!
//! A certificate that cannot be read so has no names (and is allowed by
//! no name).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

/// The distribution's bundle of CAs, used when none is named.
pub const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// PEM file of the CAs that may vouch for the server.
    pub ca: Option<PathBuf>,
    /// PEM file of the client's certificate chain, and of its key.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name the server's certificate must carry, if not the URL's host.
    pub server_name: Option<String>,
}

/// The configuration, or what is wrong with the files.
pub fn client_config(options: &Options) -> Result<Arc<rustls::ClientConfig>> {
    let ca = options
        .ca
        .clone()
        .unwrap_or_else(|| PathBuf::from(SYSTEM_CAS));
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(&ca)? {
        roots
            .add(cert)
            .map_err(|e| Error::invalid(format!("trust {}", ca.display()), e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid("TLS", e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&options.cert, &options.key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = certificates(cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                Error::invalid(
                    format!("read {}", key.display()),
                    format!("no private key: {e}"),
                )
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::invalid(format!("use {}", cert.display()), e.to_string()))?
        }
        _ => return Err(Error::invalid("TLS", "--cert and --key go together")),
    };
    Ok(Arc::new(config))
}

/// What a TLS server needs.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// PEM file of the server's certificate chain, and of its key.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// PEM file of the CAs that must vouch for each client's certificate;
    /// without it, clients show none.
    pub client_ca: Option<PathBuf>,
}

/// The server configuration, or what is wrong with the files.
pub fn server_config(options: &ServerOptions) -> Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid("TLS", e.to_string()))?;
    let builder = match &options.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(ca)? {
                roots.add(cert).map_err(|e| {
                    Error::invalid(format!("trust {}", ca.display()), e.to_string())
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| Error::invalid(format!("use {}", ca.display()), e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let chain = certificates(&options.cert)?;
    let key = PrivateKeyDer::from_pem_file(&options.key).map_err(|e| {
        Error::invalid(
            format!("read {}", options.key.display()),
            format!("no private key: {e}"),
        )
    })?;
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| Error::invalid(format!("use {}", options.cert.display()), e.to_string()))?;
    // No TLS 1.3 session tickets: a syslog client reads nothing, and one
    // that closes with our tickets unread resets the connection, which
    // throws away what it sent last and we had not read yet.
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// The names of a certificate (see the module's documentation).
pub fn certificate_names(der: &[u8]) -> Vec<String> {
    names_of(der).unwrap_or_default()
}

/// Whether a certificate names one of `allowed` (ASCII case ignored, as
/// DNS names are compared).
pub fn certificate_names_one_of(der: &[u8], allowed: &[String]) -> bool {
    certificate_names(der)
        .iter()
        .any(|name| allowed.iter().any(|a| a.eq_ignore_ascii_case(name)))
}

/// One DER element: its tag, its contents, and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed element's contents.
fn elements(mut der: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (tag, contents, rest) = element(der)?;
        der = rest;
        Some((tag, contents))
    })
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
/// 2.5.4.3, commonName.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// 2.5.29.17, subjectAltName.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

fn names_of(der: &[u8]) -> Option<Vec<String>> {
    let (SEQUENCE, cert, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(cert)? else {
        return None;
    };
    let mut fields = elements(tbs).peekable();
    // The version, if there, is [0].
    if fields.peek().is_some_and(|&(tag, _)| tag == 0xa0) {
        fields.next();
    }
    // serialNumber, signature, issuer, validity; then subject.
    let (_, subject) = fields.nth(4)?;
    let mut dns = Vec::new();
    for (tag, contents) in fields {
        if tag != 0xa3 {
            continue;
        }
        let (SEQUENCE, extensions, _) = element(contents)? else {
            return None;
        };
        for (_, extension) in elements(extensions) {
            let mut parts = elements(extension);
            if parts.next() != Some((OID, SUBJECT_ALT_NAME)) {
                continue;
            }
            let Some((OCTET_STRING, value)) = parts.find(|&(tag, _)| tag == OCTET_STRING) else {
                continue;
            };
            let (SEQUENCE, names, _) = element(value)? else {
                return None;
            };
            for (tag, name) in elements(names) {
                // dNSName, [2] IMPLICIT IA5String.
                if tag == 0x82 {
                    dns.push(String::from_utf8_lossy(name).into_owned());
                }
            }
        }
    }
    if !dns.is_empty() {
        return Some(dns);
    }
    let mut common = Vec::new();
    for (tag, rdn) in elements(subject) {
        if tag != SET {
            continue;
        }
        for (_, attribute) in elements(rdn) {
            let mut parts = elements(attribute);
            if parts.next() == Some((OID, COMMON_NAME))
                && let Some((_, value)) = parts.next()
            {
                common.push(String::from_utf8_lossy(value).into_owned());
            }
        }
    }
    Some(common)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let what = || format!("read {}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::invalid(what(), e.to_string()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::invalid(what(), e.to_string()))?;
    if certs.is_empty() {
        return Err(Error::invalid(what(), "no certificate in it"));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Certificates made by openssl (DER, hex): CN=rill-client and no
    /// subjectAltName; and O=x, CN=ignored with subjectAltName DNS:a.example,
    /// IP:127.0.0.1, DNS:B.example.
    const CN_ONLY: &str = "3082018130820127a003020102021447c4bdf8c501b95a8dcfb0d50ea5bd912471a950300a06082a8648ce3d04030230163114301206035504030c0b72696c6c2d636c69656e74301e170d3236313230313034313432395a170d3236313230333034313432395a30163114301206035504030c0b72696c6c2d636c69656e743059301306072a8648ce3d020106082a8648ce3d030107034200049ac473a31075d69f25417c4ff6d4fa00707e5ed09135a7cd8ccc32a140c25c5ab612eac149121b91caa101d821272d3308970dacf4db485abef5f0bffef1f179a3533051301d0603551d0e04160414c6c277e5a12bff5b62cd4a04c01ea0a63b0878b7301f0603551d23041830168014c6c277e5a12bff5b62cd4a04c01ea0a63b0878b7300f0603551d130101ff040530030101ff300a06082a8648ce3d0403020348003045022100883d64139ce19b1fed286c005e89bb022c7afcc6fc5f7588106b22c68e50575a02200ccc7c279cb77b4d5c0a526af942d4852c1dbc87dfbaed2413ef0be281c134ee";
    const WITH_SAN: &str = "308201b83082015ea003020102021425c1981aea449aa9feb98eaa2cd1030897edcca4300a06082a8648ce3d040302301e310a3008060355040a0c01783110300e06035504030c0769676e6f726564301e170d3236313230313034313432395a170d3236313230333034313432395a301e310a3008060355040a0c01783110300e06035504030c0769676e6f7265643059301306072a8648ce3d020106082a8648ce3d03010703420004c32ea8dd0abe6c5e4bdedeb6d9a1de125ae739041003adbdf3a1724345bf69fc932066f4c6c79fa5f57b7ef3e76433cd6931f6ec197f9ebf7d3736d373417b17a37a3078301d0603551d0e041604143cf45647969d0354494e3f2195f2748cac3091ff301f0603551d230418301680143cf45647969d0354494e3f2195f2748cac3091ff300f0603551d130101ff040530030101ff30250603551d11041e301c8209612e6578616d706c6587047f0000018209422e6578616d706c65300a06082a8648ce3d04030203480030450220649067f26e3328c4369df55fb43a890a9a75872fd963a7d5e5293f4de437847e022100b557811f5077a2e8efc2cdb000ceab3b15a5ead5804263a3ee65388cd5658fa1";

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len() / 2)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn a_certificate_without_alternative_names_is_named_by_its_common_name() {
        assert_eq!(certificate_names(&hex(CN_ONLY)), ["rill-client"]);
        assert!(certificate_names_one_of(
            &hex(CN_ONLY),
            &["RILL-client".to_string()]
        ));
        assert!(!certificate_names_one_of(
            &hex(CN_ONLY),
            &["rill".to_string()]
        ));
    }

    #[test]
    fn a_certificate_with_alternative_names_is_named_by_their_dns_names_alone() {
        assert_eq!(
            certificate_names(&hex(WITH_SAN)),
            ["a.example", "B.example"]
        );
        assert!(certificate_names_one_of(
            &hex(WITH_SAN),
            &["x".to_string(), "b.example".to_string()]
        ));
        assert!(!certificate_names_one_of(
            &hex(WITH_SAN),
            &["ignored".to_string(), "127.0.0.1".to_string()]
        ));
    }

    #[test]
    fn bytes_that_are_no_certificate_have_no_names_and_never_panic() {
        let whole = hex(WITH_SAN);
        for cut in 0..whole.len() {
            let _ = certificate_names(&whole[..cut]);
        }
        let mut flipped = whole.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = certificate_names(&flipped);
            flipped[i] ^= 0xff;
        }
        assert!(certificate_names(b"").is_empty());
        assert!(certificate_names(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_empty());
    }
}
