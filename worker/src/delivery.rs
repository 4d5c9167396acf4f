//! One delivery attempt, from a domain to the replies of the server that took (or refused) it.

pub mod client;
pub mod dsn;
pub mod mx;
pub mod myself;
pub mod outcome;
pub use tern_common::route;
pub mod tls;
pub mod tls_policy;

/// Why an attempt ended without a reply from a remote server for a recipient. Every variant is
/// mapped to a delivery outcome in exactly one place: [`outcome::classify`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The domain does not exist (NXDOMAIN): permanent.
    #[error("no such domain {0}")]
    NoSuchDomain(String),
    /// The domain publishes a null MX (RFC 7505): it accepts no mail, permanent.
    #[error("domain {0} accepts no mail (null MX)")]
    NullMx(String),
    /// The domain has neither MX nor address records: permanent.
    #[error("domain {0} has no mail exchanger and no address")]
    NoAddress(String),
    /// DNS failed in a way that may pass (SERVFAIL, timeout, network).
    #[error("DNS lookup for {domain} failed: {reason}")]
    DnsTemporary { domain: String, reason: String },
    /// No TCP connection to any address of the host.
    #[error("cannot connect to {host}: {reason}")]
    Connect { host: String, reason: String },
    /// An RFC 5321 4.5.3.2 timeout expired; `stage` names what was awaited (`"greeting"`, `"DATA end"`).
    #[error("timed out waiting for the {stage} reply from {host}")]
    Timeout { host: String, stage: &'static str },
    /// The connection broke or closed in the middle of a conversation.
    #[error("connection to {host} lost: {reason}")]
    ConnectionLost { host: String, reason: String },
    /// The TLS handshake failed, or a route that requires verified TLS could not have it.
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    /// The best mail exchanger of the domain is Tern itself: permanent (RFC 5321 5.1).
    #[error("mail for {0} loops back to myself")]
    MailLoop(String),
    /// The server sent something that is not SMTP.
    #[error("{host} broke the SMTP protocol: {reason}")]
    Protocol { host: String, reason: String },
}
