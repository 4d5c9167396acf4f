//! rustls client configurations for STARTTLS, TLS 1.2 and later, with the aws-lc-rs provider.
//!
//! *Opportunistic* (Postfix `smtp_tls_security_level = may`): any certificate is accepted, since
//! most MX hosts present one that would not verify and refusing them would only push mail back
//! to plaintext. It still defeats passive eavesdropping, and handshake signatures are checked so
//! the session keys belong to whoever holds the certificate's key. *Verified*: the certificate
//! must chain to a trust anchor (webpki roots, plus any given) and name the host.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// The provider is named rather than taken from the process default, which is ambiguous (and
/// panics) as soon as a second provider enters the dependency tree.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// Accepts any certificate, checks handshake signatures.
pub fn opportunistic() -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Verifies the chain against webpki roots plus `extra_roots` and the host name.
pub fn verified(
    extra_roots: &[CertificateDer<'static>],
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for root in extra_roots {
        roots.add(root.clone())?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Every certificate in `pem`, for [`verified`]'s extra trust anchors (a test peer's self-signed
/// certificate, a private CA). No certificate at all is an error, as it is surely a mistake.
pub fn anchors_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, pem::Error> {
    let anchors = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>()?;
    if anchors.is_empty() {
        return Err(pem::Error::NoItemsFound);
    }
    Ok(anchors)
}

/// TLS parameters of an established connection, for the attempt record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1_3`, `TLSv1_2`.
    pub version: String,
    /// The IANA name, `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
}

impl TlsInfo {
    pub(crate) fn of(session: &ClientConnection) -> Self {
        let version = session
            .protocol_version()
            .map(|v| v.as_str().map_or_else(|| format!("{v:?}"), str::to_owned));
        let cipher = session.negotiated_cipher_suite().map(|s| {
            let suite = s.suite();
            suite
                .as_str()
                .map_or_else(|| format!("{suite:?}"), str::to_owned)
        });
        Self {
            version: version.unwrap_or_else(|| "unknown".to_owned()),
            cipher: cipher.unwrap_or_else(|| "unknown".to_owned()),
        }
    }
}

/// The name to verify and send as SNI. `None` when `host` is no usable DNS name or address,
/// which only verified TLS has to refuse; opportunistic TLS then names the peer's address.
pub(crate) fn server_name(host: &str) -> Option<ServerName<'static>> {
    let host = host.trim_end_matches('.');
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let literal = literal.strip_prefix("IPv6:").unwrap_or(literal);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Some(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_owned()).ok()
}

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_configurations_build_with_the_aws_lc_provider() {
        assert!(opportunistic().is_ok());
        assert!(verified(&[]).is_ok());
    }

    #[test]
    fn pem_without_a_certificate_is_refused() {
        assert!(anchors_from_pem(b"").is_err());
        assert!(anchors_from_pem(b"not pem at all").is_err());
    }

    #[test]
    fn host_names_and_address_literals_become_server_names() {
        let ip = |s: &str| {
            Some(ServerName::IpAddress(
                s.parse::<IpAddr>().expect("ip").into(),
            ))
        };
        let dns = |s: &str| ServerName::try_from(s.to_owned()).ok();
        let table = [
            ("mx.example.test", dns("mx.example.test")),
            ("mx.example.test.", dns("mx.example.test")),
            ("192.0.2.1", ip("192.0.2.1")),
            ("[192.0.2.1]", ip("192.0.2.1")),
            ("[IPv6:2001:db8::1]", ip("2001:db8::1")),
            ("2001:db8::1", ip("2001:db8::1")),
            ("not a name", None),
            ("", None),
        ];
        for (host, expected) in table {
            assert_eq!(server_name(host), expected, "{host}");
        }
    }
}
