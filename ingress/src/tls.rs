//! TLS for the listeners: STARTTLS on 25/587 (RFC 3207), implicit TLS on 465 (RFC 8314).
//!
//! rustls with the aws-lc-rs provider chosen explicitly (never a process default), TLS 1.2 and
//! 1.3 only, and only that provider's default suites: all AEAD with forward secrecy. TLS 1.0/1.1
//! clients fail the handshake.

pub mod certificates;
mod stored;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use tern_common::control::ControlWatch;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use certificates::{CertificateError, CertificateResolver, CertificateSet, CertificateSource};

/// What `Received:` and the logs say about an encrypted session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TlsInfo {
    pub(crate) version: &'static str,
    pub(crate) cipher: &'static str,
}

/// Why a handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    #[error("TLS handshake timed out")]
    Timeout,
    #[error("TLS handshake failed: {0}")]
    Failed(#[source] std::io::Error),
}

impl HandshakeError {
    pub(crate) fn metric_label(&self) -> &'static str {
        match self {
            HandshakeError::Timeout => "timeout",
            HandshakeError::Failed(_) => "failed",
        }
    }
}

/// The validated TLS side of the ingress: certificates loaded, server config built.
pub struct TlsServer {
    acceptor: TlsAcceptor,
    resolver: Arc<CertificateResolver>,
    provider: Arc<CryptoProvider>,
    sources: Vec<CertificateSource>,
    reload_interval: Duration,
    handshake_timeout: Duration,
}

impl fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServer")
            .field("sources", &self.sources)
            .field("reload_interval", &self.reload_interval)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsServer {
    /// Loads the certificates (the first pair is the default) and builds the server config.
    pub fn new(
        sources: Vec<CertificateSource>,
        reload_interval: Duration,
        handshake_timeout: Duration,
    ) -> Result<Self, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let set = CertificateSet::load(&sources, &provider)?;
        let resolver = Arc::new(CertificateResolver::new(set));
        let config = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&resolver) as _);
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            resolver,
            provider,
            sources,
            reload_interval,
            handshake_timeout,
        })
    }

    /// Server side of the handshake, bounded in time.
    pub(crate) async fn accept(
        &self,
        stream: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, TlsInfo), HandshakeError> {
        let handshake = self.acceptor.accept(stream);
        let stream = tokio::time::timeout(self.handshake_timeout, handshake)
            .await
            .map_err(|_| HandshakeError::Timeout)?
            .map_err(HandshakeError::Failed)?;
        let info = info(stream.get_ref().1);
        Ok((stream, info))
    }

    /// Until `stop`: reloads changed certificate files (see [`certificates`]) and serves the
    /// control plane's certificates as `control` has them (see `stored`).
    pub(crate) async fn watch_certificates(
        self: Arc<Self>,
        control: ControlWatch,
        stop: CancellationToken,
    ) {
        let files = certificates::watch(
            Arc::clone(&self.resolver),
            self.sources.clone(),
            Arc::clone(&self.provider),
            self.reload_interval,
            stop.clone(),
        );
        let stored = stored::watch(
            Arc::clone(&self.resolver),
            control,
            Arc::clone(&self.provider),
            stop,
        );
        tokio::join!(files, stored);
    }
}

fn info(connection: &rustls::ServerConnection) -> TlsInfo {
    let version = match connection.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "TLS",
    };
    let cipher = connection
        .negotiated_cipher_suite()
        .and_then(|suite| suite.suite().as_str())
        .unwrap_or("unknown");
    TlsInfo { version, cipher }
}
