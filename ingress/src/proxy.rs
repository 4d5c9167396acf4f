//! PROXY protocol on the ingress listeners: who may send the header, and reading it off a fresh
//! connection before the SMTP session (and, on the implicit-TLS listener, the handshake) starts.
//!
//! The header is read in exactly the pieces the parser asks for, so no byte of the SMTP session
//! behind it is consumed: a client that pipelines EHLO in the same segment finds it waiting on the
//! socket for the session.
//!
//! Connection limits: the per-IP limit is about the client, not the load balancer, so on a
//! listener that requires PROXY the limits are taken after the header has named the client.
//! Connections still waiting for their header are not counted; they come only from the trusted
//! load-balancer networks and last at most the header timeout.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use tern_common::config::{ConfigError, parse_networks, split_list};
use tern_smtp::proxy::{self, Parse, ProxyError, V2_MAX_PAYLOAD};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use crate::config::var;
use crate::metrics;
use tern_common::checks::ListenerKind;

/// Which listeners require a PROXY header and from whom it is believed.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    /// Listeners where every connection must start with a header.
    pub listeners: Vec<ListenerKind>,
    /// The load balancers: only connections from these networks are served on those listeners.
    pub trusted_networks: Vec<IpNet>,
    /// A header not complete in this time closes the connection.
    pub header_timeout: Duration,
}

impl ProxyConfig {
    /// The three settings as written in the environment. A listener named but not bound is
    /// accepted: the setting can be shared by deployments that bind different listeners.
    pub fn parse(
        listeners: &str,
        trusted_networks: &str,
        header_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        const LISTENERS: &str = var::PROXY_PROTOCOL;
        const NETWORKS: &str = var::PROXY_TRUSTED_NETWORKS;
        let kinds = [
            ListenerKind::Smtp,
            ListenerKind::Submission,
            ListenerKind::Submissions,
        ];
        let mut required = Vec::new();
        for label in split_list(listeners) {
            let Some(kind) = kinds.into_iter().find(|kind| kind.label() == label) else {
                return Err(ConfigError::new(
                    LISTENERS,
                    format!("'{label}' is not one of smtp, submission, submissions"),
                ));
            };
            if !required.contains(&kind) {
                required.push(kind);
            }
        }
        let networks = parse_networks(NETWORKS, trusted_networks)?;
        if !required.is_empty() && networks.is_empty() {
            return Err(ConfigError::new(
                NETWORKS,
                format!("required because {LISTENERS} names listeners that need a PROXY header"),
            ));
        }
        if header_timeout.is_zero() {
            return Err(ConfigError::new(
                var::PROXY_HEADER_TIMEOUT,
                "must be greater than zero",
            ));
        }
        Ok(Self {
            listeners: required,
            trusted_networks: networks,
            header_timeout,
        })
    }

    pub fn required_on(&self, kind: ListenerKind) -> bool {
        self.listeners.contains(&kind)
    }

    pub fn trusts(&self, balancer: IpAddr) -> bool {
        let balancer = balancer.to_canonical();
        self.trusted_networks
            .iter()
            .any(|net| net.contains(&balancer))
    }
}

/// Why a connection on a PROXY listener was closed before its session started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyRefusal {
    #[error("connection from outside the trusted load-balancer networks")]
    Untrusted,
    #[error(transparent)]
    Invalid(#[from] ProxyError),
    #[error("no complete PROXY header within the timeout")]
    Timeout,
    #[error("closed before the PROXY header was complete")]
    Closed,
    #[error("shutting down")]
    ShuttingDown,
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
}

impl ProxyRefusal {
    pub(crate) fn metric_label(&self) -> &'static str {
        match self {
            ProxyRefusal::Untrusted => "untrusted",
            ProxyRefusal::Invalid(error) => error.metric_label(),
            ProxyRefusal::Timeout => "timeout",
            ProxyRefusal::Closed => "closed",
            ProxyRefusal::ShuttingDown => "shutting_down",
            ProxyRefusal::Io(_) => "io",
        }
    }

    /// Counts and logs the refusal; the caller then drops the connection without a word, since
    /// whatever sits on the other end is not known to speak SMTP yet.
    pub(crate) fn record(&self, kind: ListenerKind, balancer: SocketAddr) {
        metrics::proxy_refused(kind, self.metric_label());
        tracing::info!(peer = %balancer.ip(), listener = kind.label(), reason = %self, "connection closed before SMTP: PROXY protocol");
    }
}

/// Reads the header from a trusted balancer and returns the client it names, or the balancer
/// itself when the header carries no address (v1 `UNKNOWN`, v2 `LOCAL`, UNSPEC, UNIX).
pub(crate) async fn read_client<S: AsyncRead + Unpin>(
    stream: &mut S,
    balancer: SocketAddr,
    timeout: Duration,
    shutdown: &CancellationToken,
) -> Result<SocketAddr, ProxyRefusal> {
    let read = tokio::time::timeout(timeout, read_header(stream));
    let header = tokio::select! {
        _ = shutdown.cancelled() => return Err(ProxyRefusal::ShuttingDown),
        header = read => header.map_err(|_| ProxyRefusal::Timeout)??,
    };
    Ok(header
        .addresses
        .map(|addresses| {
            let source = addresses.source;
            SocketAddr::new(source.ip().to_canonical(), source.port())
        })
        .unwrap_or(balancer))
}

async fn read_header<S: AsyncRead + Unpin>(stream: &mut S) -> Result<proxy::Header, ProxyRefusal> {
    // The parser refuses anything longer before asking for it; this is only the allocation cap.
    const MAX_HEADER: usize = 16 + V2_MAX_PAYLOAD;
    let mut buffer = Vec::with_capacity(proxy::V1_MAX_LEN);
    loop {
        let need = match proxy::parse(&buffer) {
            Parse::Header(header) => return Ok(header),
            Parse::Invalid(error) => return Err(error.into()),
            Parse::NeedMore(need) => need,
        };
        let start = buffer.len();
        if start + need > MAX_HEADER {
            return Err(ProxyError::TooLong.into());
        }
        buffer.resize(start + need, 0);
        // Partial reads are fine: whatever arrived is still part of the header.
        let n = stream.read(&mut buffer[start..]).await?;
        if n == 0 {
            return Err(ProxyRefusal::Closed);
        }
        buffer.truncate(start + n);
    }
}

#[cfg(test)]
mod tests;
