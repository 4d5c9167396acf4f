//! Certificates from PEM files: several at once, chosen by SNI, reloaded when the files change.
//!
//! Kubernetes updates a mounted Secret by swapping a `..data` symlink, which inotify on the
//! file path does not reliably report; so the files are re-read on an interval and compared
//! by content. A broken replacement keeps the certificates in use and is reported once per
//! change, and sessions already encrypted are never touched.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// One certificate chain and its private key, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSource {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {error}")]
    Pem {
        path: PathBuf,
        error: rustls_pki_types::pem::Error,
    },
    #[error("{key} does not fit {cert}: {error}")]
    Key {
        cert: PathBuf,
        key: PathBuf,
        error: rustls::Error,
    },
}

/// The loaded certificates; the first is the default.
#[derive(Debug)]
pub struct CertificateSet {
    keys: Vec<Arc<CertifiedKey>>,
    /// Content hash of every file, to notice changes.
    fingerprint: u64,
}

impl CertificateSet {
    /// Reads and checks every pair (the key must match its certificate).
    pub fn load(
        sources: &[CertificateSource],
        provider: &CryptoProvider,
    ) -> Result<Self, CertificateError> {
        let mut hasher = DefaultHasher::new();
        let mut keys = Vec::with_capacity(sources.len());
        for source in sources {
            let cert_pem = read(&source.cert)?;
            let key_pem = read(&source.key)?;
            cert_pem.hash(&mut hasher);
            key_pem.hash(&mut hasher);
            keys.push(Arc::new(certified_key(
                source, &cert_pem, &key_pem, provider,
            )?));
        }
        Ok(Self {
            keys,
            fingerprint: hasher.finish(),
        })
    }
}

fn valid_for(key: &CertifiedKey, name: &ServerName<'_>) -> bool {
    key.cert.first().is_some_and(|der| {
        webpki::EndEntityCert::try_from(der)
            .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(name).is_ok())
    })
}

fn read(path: &Path) -> Result<Vec<u8>, CertificateError> {
    std::fs::read(path).map_err(|error| CertificateError::Read {
        path: path.to_owned(),
        error,
    })
}

fn certified_key(
    source: &CertificateSource,
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, CertificateError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| CertificateError::Pem {
            path: source.cert.clone(),
            error,
        })?;
    if chain.is_empty() {
        return Err(CertificateError::NoCertificate {
            path: source.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|error| CertificateError::Pem {
        path: source.key.clone(),
        error,
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|error| CertificateError::Key {
        cert: source.cert.clone(),
        key: source.key.clone(),
        error,
    })
}

/// The certificate valid for `server_name` (exact or one-label wildcard, as a client verifies
/// it); without SNI or without a match, the first one. The files come before the database, so
/// a mounted certificate wins when both name a host, and the first file is the default.
fn choose(keys: &[&Arc<CertifiedKey>], server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
    let default = keys.first().map(|key| Arc::clone(key));
    if keys.len() < 2 {
        return default;
    }
    let Some(name) = server_name.and_then(|n| ServerName::try_from(n.to_owned()).ok()) else {
        return default;
    };
    keys.iter()
        .find(|key| valid_for(key, &name))
        .map(|key| Arc::clone(key))
        .or(default)
}

/// Hands rustls the current certificates: the files ([`watch`] replaces them) and those of the
/// control plane ([`super::stored::watch`] replaces them).
#[derive(Debug)]
pub struct CertificateResolver {
    current: RwLock<Arc<CertificateSet>>,
    stored: RwLock<Arc<StoredCertificates>>,
}

/// The control plane's certificates, as the ingress serves them.
#[derive(Debug, Default)]
pub struct StoredCertificates {
    pub(super) keys: Vec<Arc<CertifiedKey>>,
    /// Content hash of every row, to notice changes.
    pub(super) fingerprint: u64,
}

impl CertificateResolver {
    pub fn new(set: CertificateSet) -> Self {
        Self {
            current: RwLock::new(Arc::new(set)),
            stored: RwLock::new(Arc::default()),
        }
    }

    pub(super) fn stored(&self) -> Arc<StoredCertificates> {
        Arc::clone(&self.stored.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub(super) fn replace_stored(&self, stored: StoredCertificates) {
        *self.stored.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(stored);
    }

    fn current(&self) -> Arc<CertificateSet> {
        // A poisoned lock still holds a complete set: it is only ever replaced whole.
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn replace(&self, set: CertificateSet) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
    }
}

impl ResolvesServerCert for CertificateResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let files = self.current();
        let stored = self.stored();
        let keys: Vec<&Arc<CertifiedKey>> = files.keys.iter().chain(&stored.keys).collect();
        choose(&keys, client_hello.server_name())
    }
}

/// Re-reads the files every `interval` until `stop`, swapping in a changed set once it loads.
pub async fn watch(
    resolver: Arc<CertificateResolver>,
    sources: Vec<CertificateSource>,
    provider: Arc<CryptoProvider>,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut failed_fingerprint = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let sources = sources.clone();
        let provider = Arc::clone(&provider);
        let loaded =
            tokio::task::spawn_blocking(move || CertificateSet::load(&sources, &provider)).await;
        let in_use = resolver.current().fingerprint;
        match loaded {
            Ok(Ok(set)) if set.fingerprint == in_use => failed_fingerprint = None,
            Ok(Ok(set)) => {
                tracing::info!(certificates = set.keys.len(), "TLS certificates reloaded");
                ::metrics::counter!(metrics::TLS_RELOADS_TOTAL, "result" => "ok").increment(1);
                resolver.replace(set);
                failed_fingerprint = None;
            }
            Ok(Err(error)) => {
                // Half-written files are normal for a moment; report each broken state once.
                let state = format!("{error}");
                if failed_fingerprint.as_ref() != Some(&state) {
                    tracing::error!(%error, "TLS certificates changed but cannot be loaded; keeping the ones in use");
                    ::metrics::counter!(metrics::TLS_RELOADS_TOTAL, "result" => "error")
                        .increment(1);
                    failed_fingerprint = Some(state);
                }
            }
            Err(error) => tracing::error!(%error, "certificate reload task failed"),
        }
    }
}
