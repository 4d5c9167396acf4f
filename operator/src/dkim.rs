//! A MailDomain's DKIM keys, kept in one Secret the MailDomain owns (`<name>-dkim`): each key's
//! pair under `<selector>.private-key.der` and `<selector>.public-key.der`, and where each
//! stands in the rotation in the annotation `tern.dev/dkim-keys`. One Secret, so that a switch
//! of signing is one write, guarded by the Secret's resourceVersion. The private keys leave the
//! Secret only for the control plane; they are never logged or put in a status.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Resource as _, ResourceExt as _};
use tern_common::control::{
    DkimAlgorithm, DkimKey, dkim_dns_name, dkim_dns_txt, generate_dkim_key_pair,
};

use crate::crd::{self, MailDomain};
use crate::error::Error;
use crate::rotation::{KeyState, Phase};

/// The annotation that holds the rotation's state.
pub const KEYS_ANNOTATION: &str = "tern.dev/dkim-keys";

/// The Secret's name for `domain`'s keys.
pub fn secret_name(domain: &MailDomain) -> String {
    format!("{}-dkim", domain.name_any())
}

/// A domain's keys as its Secret holds them.
#[derive(Default)]
pub struct Keyring {
    pub states: Vec<KeyState>,
    pairs: BTreeMap<String, Pair>,
    /// The Secret's, to write it back only over what was read; `None`: there is no Secret yet.
    resource_version: Option<String>,
}

struct Pair {
    private_key: Vec<u8>,
    /// What the DNS record's `p=` carries.
    public_key: Vec<u8>,
}

/// One key as the control plane takes it.
pub struct StoredKey {
    pub key: DkimKey,
    pub public_key: Vec<u8>,
    pub signing: bool,
}

pub fn algorithm(algorithm: crd::DkimAlgorithm) -> DkimAlgorithm {
    match algorithm {
        crd::DkimAlgorithm::RsaSha256 => DkimAlgorithm::RsaSha256,
        crd::DkimAlgorithm::Ed25519Sha256 => DkimAlgorithm::Ed25519Sha256,
    }
}

impl Keyring {
    /// The keys of `domain` (its MailDomain), none when its Secret does not exist yet.
    pub async fn load(secrets: &Api<Secret>, domain: &MailDomain) -> Result<Self, Error> {
        let name = secret_name(domain);
        match secrets.get_opt(&name).await? {
            None => Ok(Self::default()),
            Some(secret) => Self::read(&secret).ok_or_else(|| {
                Error::Secret(format!(
                    "Secret {}/{name} is not a DKIM keyring Tern made",
                    secret.namespace().unwrap_or_default()
                ))
            }),
        }
    }

    fn read(secret: &Secret) -> Option<Self> {
        let states: Vec<KeyState> =
            serde_json::from_str(secret.annotations().get(KEYS_ANNOTATION)?).ok()?;
        let data = secret.data.as_ref()?;
        let mut pairs = BTreeMap::new();
        for state in &states {
            let field =
                |what: &str| Some(data.get(&format!("{}.{what}", state.selector))?.0.clone());
            let pair = Pair {
                private_key: field("private-key.der")?,
                public_key: field("public-key.der")?,
            };
            pairs.insert(state.selector.clone(), pair);
        }
        Some(Self {
            states,
            pairs,
            resource_version: secret.resource_version(),
        })
    }

    /// Stores `states` when they differ from what was read: a pair is made for each new
    /// selector, and a removed selector's pair is dropped. Two writers at once: the second
    /// gets a conflict and reconciles again.
    pub async fn store(
        mut self,
        secrets: &Api<Secret>,
        domain: &MailDomain,
        states: Vec<KeyState>,
    ) -> Result<Self, Error> {
        if self.resource_version.is_some() && states == self.states {
            return Ok(self);
        }
        self.pairs
            .retain(|selector, _| states.iter().any(|state| &state.selector == selector));
        for state in &states {
            if !self.pairs.contains_key(&state.selector) {
                let (private_key, public_key) = generate_dkim_key_pair(algorithm(state.algorithm))?;
                self.pairs.insert(
                    state.selector.clone(),
                    Pair {
                        private_key,
                        public_key,
                    },
                );
            }
        }
        let mut data = BTreeMap::new();
        for (selector, pair) in &self.pairs {
            let mut put = |what: &str, bytes: &[u8]| {
                data.insert(format!("{selector}.{what}"), ByteString(bytes.to_vec()));
            };
            put("private-key.der", &pair.private_key);
            put("public-key.der", &pair.public_key);
        }
        let annotation = serde_json::to_string(&states)
            .map_err(|error| Error::Secret(format!("the DKIM keys' state: {error}")))?;
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(secret_name(domain)),
                annotations: Some(BTreeMap::from([(KEYS_ANNOTATION.to_owned(), annotation)])),
                // Deleted with its MailDomain by Kubernetes' garbage collector.
                owner_references: domain.controller_owner_ref(&()).map(|owner| vec![owner]),
                resource_version: self.resource_version.clone(),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_owned()),
            data: Some(data),
            ..Secret::default()
        };
        let written = match &self.resource_version {
            None => secrets.create(&PostParams::default(), &secret).await?,
            Some(_) => {
                secrets
                    .replace(&secret_name(domain), &PostParams::default(), &secret)
                    .await?
            }
        };
        self.resource_version = written.resource_version();
        self.states = states;
        Ok(self)
    }

    /// Every key for the control plane, for `domain` (the normalised name), the signing one
    /// first so that a switch never leaves the domain without a signer.
    pub fn keys(&self, domain: &str) -> Vec<StoredKey> {
        let mut keys: Vec<StoredKey> = self
            .states
            .iter()
            .filter_map(|state| {
                let pair = self.pairs.get(&state.selector)?;
                Some(StoredKey {
                    key: DkimKey {
                        domain: domain.to_owned(),
                        selector: state.selector.clone(),
                        algorithm: algorithm(state.algorithm),
                        private_key: pair.private_key.clone(),
                    },
                    public_key: pair.public_key.clone(),
                    signing: state.phase == Phase::Active,
                })
            })
            .collect();
        keys.sort_by_key(|key| !key.signing);
        keys
    }
}

impl StoredKey {
    /// The TXT record that publishes this key: its name and text.
    pub fn dns_record(&self) -> (String, String) {
        (
            dkim_dns_name(&self.key.domain, &self.key.selector),
            dkim_dns_txt(self.key.algorithm, &self.public_key),
        )
    }
}
