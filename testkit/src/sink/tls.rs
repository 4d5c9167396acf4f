//! The sink's STARTTLS: a fresh self-signed certificate per sink.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

pub(super) struct Tls {
    pub acceptor: TlsAcceptor,
    pub cert_pem: String,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

/// A certificate valid for the sink's host name, `localhost` and its IP address, so a client
/// that trusts [`Tls::cert_pem`] can verify it whichever name it connects by.
pub(super) fn self_signed(hostname: &str, ip: IpAddr) -> Tls {
    let names = vec![hostname.to_owned(), "localhost".to_owned(), ip.to_string()];
    let certified = rcgen::generate_simple_self_signed(names)
        .unwrap_or_else(|error| panic!("make the sink's certificate: {error}"));
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    // The provider is named rather than taken from the process default, which is ambiguous
    // (and panics) if a second provider ever enters the dependency tree.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_no_client_auth()
                .with_single_cert(vec![certified.cert.der().clone()], key)
        })
        .unwrap_or_else(|error| panic!("build the sink's TLS configuration: {error}"));
    Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        cert_pem: certified.cert.pem(),
    }
}
