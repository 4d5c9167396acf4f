//! DKIM signing (RFC 6376, RFC 8463) of mail from authenticated users and trusted networks.
//!
//! The keys are the control plane's: every key of the author's domain (the `From:` address's)
//! that is set to sign adds a signature, so an RSA and an Ed25519 key can sign side by side and a
//! new selector can take over from an old one without a gap. Without a key for the author's
//! domain, the envelope sender's domain signs if it has one; otherwise the message goes unsigned.
//! Keys are parsed once per control-plane revision, not per message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tern_common::control::{ControlPlane, ControlWatch, DkimAlgorithm, DkimKey};

use crate::{canonical, metrics};

/// The header fields signed: what a reader sees and what DMARC and threading rely on. One the
/// message lacks is signed as absent, so it cannot be added later without breaking the
/// signature; `From` is listed twice so that neither can a second `From:` (RFC 6376 8.15).
const SIGNED_FIELDS: &[&str] = &[
    "From",
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// One key, ready to sign for its domain and selector.
enum Signer {
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

/// A key's signers: relaxed/relaxed, and relaxed/simple for the bodies the library's relaxed
/// body hash gets wrong (see [`crate::canonical`]).
struct KeySigners {
    relaxed: Signer,
    simple_body: Signer,
}

/// One revision's keys, parsed.
struct Keys {
    revision: i64,
    by_domain: HashMap<String, Vec<KeySigners>>,
}

/// Signs with the live control plane's keys.
pub(crate) struct DkimSigning {
    control: ControlWatch,
    keys: Mutex<Option<Arc<Keys>>>,
}

impl std::fmt::Debug for DkimSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSigning").finish_non_exhaustive()
    }
}

impl DkimSigning {
    pub(crate) fn new(control: ControlWatch) -> Self {
        Self {
            control,
            keys: Mutex::new(None),
        }
    }

    /// `DKIM-Signature:` fields for a message made of `parts` (header fix-ups, then the
    /// client's message), in the order they go above it; empty when no key signs for the
    /// author's domain or `sender_domain`.
    pub(crate) fn sign(&self, parts: [&[u8]; 2], sender_domain: Option<&str>) -> String {
        let plane = self.control.current();
        if !plane.signs_anything() {
            return String::new();
        }
        let keys = self.keys(&plane);
        let author = parts
            .iter()
            .find_map(|part| tern_smtp::header::field(part, "From"))
            .and_then(|from| author_domain(&from));
        let Some((domain, signers)) = [author.as_deref(), sender_domain]
            .into_iter()
            .flatten()
            .find_map(|domain| keys.by_domain.get_key_value(domain))
        else {
            return String::new();
        };
        let simple_body = canonical::ends_in_blank_lines(parts[1]);
        let mut fields = String::new();
        for signers in signers {
            let signer = if simple_body {
                &signers.simple_body
            } else {
                &signers.relaxed
            };
            let (selector, signed) = match signer {
                Signer::Rsa(signer) => (&signer.template.s, signer.sign_chained(parts)),
                Signer::Ed25519(signer) => (&signer.template.s, signer.sign_chained(parts)),
            };
            match signed {
                Ok(signature) => {
                    metrics::dkim_signed("ok");
                    fields.push_str(&unfold_before_end(signature.to_header()));
                }
                Err(error) => {
                    metrics::dkim_signed("error");
                    tracing::warn!(%domain, %selector, %error, "DKIM signing failed; the message goes without this signature");
                }
            }
        }
        fields
    }

    /// The parsed keys of `plane`'s revision, parsed now if the revision is new.
    fn keys(&self, plane: &ControlPlane) -> Arc<Keys> {
        let mut cached = self
            .keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match cached.as_ref() {
            Some(keys) if keys.revision == plane.revision => Arc::clone(keys),
            _ => {
                let keys = Arc::new(parse(plane));
                *cached = Some(Arc::clone(&keys));
                keys
            }
        }
    }
}

fn parse(plane: &ControlPlane) -> Keys {
    let mut by_domain: HashMap<String, Vec<KeySigners>> = HashMap::new();
    for key in plane
        .signing_domains()
        .flat_map(|domain| plane.dkim_keys(domain))
    {
        let parsed = parse_key(key, Canonicalization::Relaxed).and_then(|relaxed| {
            Ok(KeySigners {
                relaxed,
                simple_body: parse_key(key, Canonicalization::Simple)?,
            })
        });
        match parsed {
            Ok(parsed) => by_domain
                .entry(key.domain.clone())
                .or_default()
                .push(parsed),
            Err(error) => {
                tracing::error!(domain = %key.domain, selector = %key.selector, %error, "DKIM key cannot sign; left out")
            }
        }
    }
    Keys {
        revision: plane.revision,
        by_domain,
    }
}

fn parse_key(key: &DkimKey, body: Canonicalization) -> Result<Signer, mail_auth::Error> {
    Ok(match key.algorithm {
        DkimAlgorithm::RsaSha256 => {
            let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.private_key.as_slice()));
            Signer::Rsa(
                DkimSigner::from_key(RsaKey::from_key_der(der)?)
                    .domain(key.domain.as_str())
                    .selector(key.selector.as_str())
                    .headers(SIGNED_FIELDS.iter().copied())
                    .body_canonicalization(body),
            )
        }
        DkimAlgorithm::Ed25519Sha256 => Signer::Ed25519(
            DkimSigner::from_key(Ed25519Key::from_pkcs8_maybe_unchecked_der(
                &key.private_key,
            )?)
            .domain(key.domain.as_str())
            .selector(key.selector.as_str())
            .headers(SIGNED_FIELDS.iter().copied())
            .body_canonicalization(body),
        ),
    })
}

/// The field with a line break the library may put between the `b=` value and its closing `;`
/// taken out. The signature was computed over `b=;`, and verifiers that keep the whitespace
/// after the removed value (dkimpy does) would otherwise hash `b= ;` and find it invalid.
fn unfold_before_end(field: String) -> String {
    match field.strip_suffix("\r\n\t;\r\n") {
        Some(head) => format!("{head};\r\n"),
        None => field,
    }
}

/// The domain of a `From:` field's first address, lowercase: the one in angle brackets, else
/// the bare address.
fn author_domain(from: &str) -> Option<String> {
    let address = match from.find('<') {
        Some(open) => from[open + 1..].split('>').next()?,
        None => from.split(',').next()?,
    };
    let (_, domain) = address.trim().rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.');
    (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::{author_domain, unfold_before_end};

    #[test]
    fn the_closing_semicolon_stays_on_the_value_line() {
        let folded = "DKIM-Signature: v=1; b=abc\r\n\tdef==\r\n\t;\r\n".to_owned();
        assert_eq!(
            unfold_before_end(folded),
            "DKIM-Signature: v=1; b=abc\r\n\tdef==;\r\n"
        );
        let plain = "DKIM-Signature: v=1; b=abc==;\r\n".to_owned();
        assert_eq!(unfold_before_end(plain.clone()), plain);
    }

    #[test]
    fn the_author_is_the_first_address() {
        let cases = [
            ("Alice <alice@Example.ORG>", Some("example.org")),
            ("alice@example.org", Some("example.org")),
            ("\"a@b\" <alice@example.org>", Some("example.org")),
            ("alice@example.org, bob@other.example", Some("example.org")),
            ("undisclosed", None),
            ("<>", None),
        ];
        for (from, domain) in cases {
            assert_eq!(author_domain(from).as_deref(), domain, "{from}");
        }
    }
}
