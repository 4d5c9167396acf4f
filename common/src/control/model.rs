//! The control plane's rows as typed values, parsed once on the way in and stored as such.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use time::OffsetDateTime;

/// A value that is not one of a column's words, or not a valid entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ParseError {
    pub field: &'static str,
    pub reason: String,
}

impl ParseError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Declares an enum stored as one of a fixed set of words, with its conversions both ways.
macro_rules! words {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseError;
            fn from_str(text: &str) -> Result<Self, ParseError> {
                match text {
                    $($word => Ok($name::$variant),)+
                    _ => Err(ParseError::new($field, format!(
                        "'{text}' is not one of {}",
                        [$($word),+].join(", ")
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words!(
    /// Who wrote a row, and so who may change it.
    Owner, "owner" {
        Config => "config",
        Api => "api",
        Crd => "crd",
    }
);

words!(
    /// What Tern is for a domain.
    DomainKind, "kind" {
        Local => "local",
        Relay => "relay",
    }
);

words!(
    /// What a blocklist entry matches.
    BlockKind, "kind" {
        Ip => "ip",
        Cidr => "cidr",
        Helo => "helo",
        Sender => "sender",
        SenderDomain => "sender_domain",
        Recipient => "recipient",
        RecipientDomain => "recipient_domain",
    }
);

words!(
    /// What a matching blocklist entry does.
    BlockAction, "action" {
        Reject => "reject",
        Tempfail => "tempfail",
        Allow => "allow",
    }
);

words!(
    /// A DKIM signing key's algorithm, as the signature's `a=` tag names it.
    DkimAlgorithm, "algorithm" {
        RsaSha256 => "rsa-sha256",
        Ed25519Sha256 => "ed25519-sha256",
    }
);

/// A domain Tern accepts mail for from anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Lower-cased, without a trailing dot.
    pub name: String,
    pub kind: DomainKind,
    /// Transport syntax (`smtp:[host]:port`, `lmtp:[host]:24`); `None`: by MX.
    pub route: Option<String>,
    pub owner: Owner,
}

/// Whether `name` is dot-separated LDH labels (letters, digits, inner hyphens; 1 to 63 octets
/// each), `max` octets at most: a domain name, or a DKIM selector.
pub(super) fn ldh_labels(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl Domain {
    /// A domain name as the control plane keeps it: lower-cased, no trailing dot, LDH labels.
    pub fn normalise(name: &str) -> Result<String, ParseError> {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        if ldh_labels(&name, 253) {
            Ok(name)
        } else {
            Err(ParseError::new(
                "name",
                format!("'{name}' is not a domain name"),
            ))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedNetwork {
    pub id: i64,
    pub network: IpNet,
    pub description: String,
    pub owner: Owner,
}

/// A blocklist (or allowlist) entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEntry {
    pub id: i64,
    pub kind: BlockKind,
    pub value: String,
    pub action: BlockAction,
    pub reason: String,
    pub expires_at: Option<OffsetDateTime>,
    pub owner: Owner,
}

/// A blocklist entry to write; [`NewBlockEntry::new`] normalises and checks the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBlockEntry {
    pub kind: BlockKind,
    pub value: String,
    pub action: BlockAction,
    pub reason: String,
    pub expires_at: Option<OffsetDateTime>,
}

impl NewBlockEntry {
    pub fn new(
        kind: BlockKind,
        value: &str,
        action: BlockAction,
        reason: &str,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<Self, ParseError> {
        Ok(Self {
            kind,
            value: normalise_value(kind, value)?,
            action,
            reason: reason.trim().to_owned(),
            expires_at,
        })
    }
}

/// The stored form of a blocklist value: addresses and names lower-cased, networks canonical.
fn normalise_value(kind: BlockKind, value: &str) -> Result<String, ParseError> {
    let value = value.trim();
    let invalid = |what: &str| ParseError::new("value", format!("'{value}' is not {what}"));
    match kind {
        BlockKind::Ip => value
            .parse::<IpAddr>()
            .map(|ip| ip.to_string())
            .map_err(|_| invalid("an IP address")),
        BlockKind::Cidr => value
            .parse::<IpNet>()
            .map(|net| net.trunc().to_string())
            .map_err(|_| invalid("a CIDR network")),
        BlockKind::Helo => {
            if value.is_empty() || value.len() > 255 || value.chars().any(char::is_whitespace) {
                Err(invalid("a HELO name"))
            } else {
                Ok(value.to_ascii_lowercase())
            }
        }
        BlockKind::Sender | BlockKind::Recipient => {
            let (local, domain) = value
                .rsplit_once('@')
                .ok_or_else(|| invalid("an address"))?;
            if local.is_empty() || local.chars().any(char::is_whitespace) {
                return Err(invalid("an address"));
            }
            let domain = Domain::normalise(domain).map_err(|_| invalid("an address"))?;
            Ok(format!("{}@{domain}", local.to_lowercase()))
        }
        BlockKind::SenderDomain | BlockKind::RecipientDomain => {
            Domain::normalise(value).map_err(|_| invalid("a domain name"))
        }
    }
}

/// Delivery to `domain` is held until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    pub domain: String,
    pub until: OffsetDateTime,
    pub reason: String,
    pub owner: Owner,
}

/// A certificate served by SNI. The key is kept for the ingress only: `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    pub id: i64,
    pub name: String,
    pub chain_pem: String,
    pub key_pem: String,
    pub hostnames: Vec<String>,
    pub not_after: OffsetDateTime,
    pub owner: Owner,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("hostnames", &self.hostnames)
            .field("not_after", &self.not_after)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_unknown_words_name_the_field() {
        for kind in BlockKind::ALL {
            assert_eq!(kind.as_str().parse::<BlockKind>(), Ok(*kind));
        }
        let error = "block".parse::<BlockAction>().expect_err("unknown");
        assert_eq!(error.field, "action");
        assert!(error.reason.contains("reject, tempfail, allow"), "{error}");
    }

    #[test]
    fn values_are_normalised_once_and_bad_ones_refused() {
        let entry = |kind, value: &str| {
            NewBlockEntry::new(kind, value, BlockAction::Reject, " spam ", None).map(|e| e.value)
        };
        assert_eq!(
            entry(BlockKind::Ip, "192.0.2.1").as_deref(),
            Ok("192.0.2.1")
        );
        assert_eq!(
            entry(BlockKind::Cidr, "192.0.2.77/24").as_deref(),
            Ok("192.0.2.0/24")
        );
        assert_eq!(
            entry(BlockKind::Sender, "Bad@Spam.Example.").as_deref(),
            Ok("bad@spam.example")
        );
        assert_eq!(
            entry(BlockKind::RecipientDomain, "Example.COM").as_deref(),
            Ok("example.com")
        );
        assert_eq!(entry(BlockKind::Helo, "Friend").as_deref(), Ok("friend"));
        for (kind, bad) in [
            (BlockKind::Ip, "192.0.2.0/24"),
            (BlockKind::Cidr, "nope"),
            (BlockKind::Sender, "no-at-sign"),
            (BlockKind::SenderDomain, "-bad-.example"),
            (BlockKind::Helo, "two words"),
        ] {
            assert_eq!(entry(kind, bad).expect_err(bad).field, "value");
        }
    }

    #[test]
    fn the_key_is_never_printed() {
        let certificate = Certificate {
            id: 1,
            name: "mx".into(),
            chain_pem: "CHAIN".into(),
            key_pem: "-----BEGIN PRIVATE KEY----- secret".into(),
            hostnames: vec!["mx.example".into()],
            not_after: OffsetDateTime::UNIX_EPOCH,
            owner: Owner::Api,
        };
        let printed = format!("{certificate:?}");
        assert!(
            !printed.contains("secret") && !printed.contains("CHAIN"),
            "{printed}"
        );
    }
}
