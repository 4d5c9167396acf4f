//! A MailDomain's DKIM key: made once into a Secret the MailDomain owns (`<name>-dkim`), read
//! from there afterwards, and handed to the control plane, which the ingress signs from. The
//! private key leaves the Secret only for the control plane; it is never logged or put in a
//! status.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client, Resource as _, ResourceExt as _};
use tern_common::control::{DkimAlgorithm, DkimKey, generate_dkim_key_pair};

use crate::crd::{self, DkimSpec, MailDomain};
use crate::error::Error;

/// A key as the Secret holds it.
pub struct StoredKey {
    pub key: DkimKey,
    /// What the DNS record's `p=` carries.
    pub public_key: Vec<u8>,
}

/// The Secret's name for `domain`'s key.
pub fn secret_name(domain: &MailDomain) -> String {
    format!("{}-dkim", domain.name_any())
}

/// A selector made on `now`: the prefix and the date (`tern-20261207`).
pub fn selector(spec: &DkimSpec, now: Timestamp) -> String {
    format!("{}-{}", spec.selector_prefix, now.strftime("%Y%m%d"))
}

fn algorithm(spec: &DkimSpec) -> DkimAlgorithm {
    match spec.algorithm {
        crd::DkimAlgorithm::RsaSha256 => DkimAlgorithm::RsaSha256,
        crd::DkimAlgorithm::Ed25519Sha256 => DkimAlgorithm::Ed25519Sha256,
    }
}

/// The domain's key from its Secret, made (and the Secret with it) when there is none yet.
pub async fn key(
    client: &Client,
    domain: &MailDomain,
    name: &str,
    spec: &DkimSpec,
) -> Result<StoredKey, Error> {
    let namespace = domain.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let secret_name = secret_name(domain);
    if let Some(secret) = secrets.get_opt(&secret_name).await? {
        return read(&secret, name).ok_or_else(|| {
            Error::Secret(format!(
                "Secret {namespace}/{secret_name} is not a DKIM key Tern made"
            ))
        });
    }
    let algorithm = algorithm(spec);
    let (private_key, public_key) = generate_dkim_key_pair(algorithm)?;
    let selector = selector(spec, Timestamp::now());
    let data = BTreeMap::from([
        (
            "selector".to_owned(),
            ByteString(selector.clone().into_bytes()),
        ),
        (
            "algorithm".to_owned(),
            ByteString(algorithm.as_str().as_bytes().to_vec()),
        ),
        (
            "private-key.der".to_owned(),
            ByteString(private_key.clone()),
        ),
        ("public-key.der".to_owned(), ByteString(public_key.clone())),
    ]);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(secret_name),
            // Deleted with its MailDomain by Kubernetes' garbage collector.
            owner_references: domain.controller_owner_ref(&()).map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    };
    secrets.create(&PostParams::default(), &secret).await?;
    Ok(StoredKey {
        key: DkimKey {
            domain: name.to_owned(),
            selector,
            algorithm,
            private_key,
        },
        public_key,
    })
}

fn read(secret: &Secret, domain: &str) -> Option<StoredKey> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| String::from_utf8(data.get(key)?.0.clone()).ok();
    Some(StoredKey {
        key: DkimKey {
            domain: domain.to_owned(),
            selector: text("selector")?,
            algorithm: text("algorithm")?.parse().ok()?,
            private_key: data.get("private-key.der")?.0.clone(),
        },
        public_key: data.get("public-key.der")?.0.clone(),
    })
}
