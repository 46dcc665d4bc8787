//! The TLS client configuration (RFC 5425): the CAs that may vouch for the
//! server, and the client's own certificate and key, if it has one. Built
//! on rustls with the ring provider; TLS 1.2 and 1.3.

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
