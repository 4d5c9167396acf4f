//! Certificates from the control plane (`/v1/certificates`, the operator), served by SNI beside
//! the mounted files. They follow the pod's snapshot: when it is swapped and its certificates
//! differ, the set is rebuilt off the async threads and replaced whole. A row that cannot be
//! served (the API checks each one, so this means a hand-edited row) is left out and logged;
//! the others still serve.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tern_common::control::{Certificate, ControlWatch};
use tokio_util::sync::CancellationToken;

use super::certificates::{CertificateResolver, StoredCertificates};

fn fingerprint(certificates: &[Certificate]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for certificate in certificates {
        certificate.id.hash(&mut hasher);
        certificate.chain_pem.hash(&mut hasher);
        certificate.key_pem.hash(&mut hasher);
    }
    hasher.finish()
}

fn certified_key(
    certificate: &Certificate,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_slice_iter(certificate.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("chain: {error}"))?;
    if chain.is_empty() {
        return Err("no certificate in the chain".into());
    }
    let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes())
        .map_err(|error| format!("key: {error}"))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|error| error.to_string())
}

/// Builds what `certificates` serves, in their order (by id: the oldest first).
pub(crate) fn build(certificates: &[Certificate], provider: &CryptoProvider) -> StoredCertificates {
    let keys = certificates
        .iter()
        .filter_map(|certificate| match certified_key(certificate, provider) {
            Ok(key) => Some(Arc::new(key)),
            Err(error) => {
                tracing::error!(certificate = %certificate.name, %error, "stored certificate cannot be served; left out");
                None
            }
        })
        .collect();
    StoredCertificates {
        keys,
        fingerprint: fingerprint(certificates),
    }
}

/// Keeps the resolver's stored certificates equal to the snapshot's until `stop`.
pub(crate) async fn watch(
    resolver: Arc<CertificateResolver>,
    mut control: ControlWatch,
    provider: Arc<CryptoProvider>,
    stop: CancellationToken,
) {
    loop {
        let plane = control.current();
        if fingerprint(plane.certificates()) != resolver.stored().fingerprint {
            let provider = Arc::clone(&provider);
            let built =
                tokio::task::spawn_blocking(move || build(plane.certificates(), &provider)).await;
            match built {
                Ok(stored) => {
                    tracing::info!(
                        certificates = stored.keys.len(),
                        "stored TLS certificates in use"
                    );
                    resolver.replace_stored(stored);
                }
                Err(error) => tracing::error!(%error, "stored certificate task failed"),
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = control.changed() => {}
        }
    }
}
