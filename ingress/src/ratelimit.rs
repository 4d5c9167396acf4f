//! Cluster-wide rate limits at MAIL (per authenticated user, per sender domain) and at RCPT
//! (per client network, per recipient domain), and the one place their answers become replies.
//! Over a limit the client hears `451 4.7.1`, never a 5xx: a limit says "not now". A database
//! that cannot answer defers too (`451 4.3.0`): a limit exists to protect, so it never lets
//! mail through unchecked.

use std::net::IpAddr;
use std::time::Duration;

use tern_common::checks::{Check, Checks};
use tern_common::greylist::client_network;
use tern_common::ratelimit::{Limit, Rate, RateLimiter};
use tern_smtp::{Domain, ForwardPath, Refusal, Reply, ReversePath};
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// Which limits are set; each `None` is off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// New connections per client network (/24 or /64), for port 25 strangers.
    pub connections: Option<Limit>,
    /// Recipients per client network (/24 or /64), for port 25 strangers.
    pub client: Option<Limit>,
    /// Recipients per recipient domain, for port 25 strangers.
    pub recipient_domain: Option<Limit>,
    /// Messages per authenticated user.
    pub user: Option<Limit>,
    /// Messages per sender domain, from anyone outside the trusted networks.
    pub sender_domain: Option<Limit>,
}

impl RateLimitSettings {
    pub fn is_off(&self) -> bool {
        *self == Self::default()
    }
}

/// The limits and the shared limiter they count in.
#[derive(Debug, Clone)]
pub struct RateLimits {
    limiter: RateLimiter,
    settings: RateLimitSettings,
}

impl RateLimits {
    pub fn new(limiter: RateLimiter, settings: RateLimitSettings) -> Self {
        Self { limiter, settings }
    }

    /// The limits set, for troubleshooting.
    pub(crate) fn describe(&self) -> String {
        let s = self.settings;
        let set: Vec<String> = [
            ("connections", s.connections),
            ("client", s.client),
            ("recipient_domain", s.recipient_domain),
            ("user", s.user),
            ("sender_domain", s.sender_domain),
        ]
        .into_iter()
        .filter_map(|(name, limit)| limit.map(|limit| format!("{name} {limit}")))
        .collect();
        format!("limits set: {} (a dry run counts nothing)", set.join(", "))
    }

    /// A new connection from a stranger at `client`: the reply is a `421`, since the session
    /// ends with it.
    pub(crate) async fn at_connect(&self, client: IpAddr) -> Option<Reply> {
        let limit = self.settings.connections?;
        let network = client_network(client);
        let reply = self
            .count("connections", format!("connections:{network}"), limit)
            .await?;
        Some(Reply { code: 421, ..reply })
    }

    /// One message from `login` (when authenticated) with envelope sender `from`.
    pub(crate) async fn at_mail(
        &self,
        login: Option<&str>,
        from: &ReversePath,
        trusted: bool,
    ) -> Option<Reply> {
        if let (Some(limit), Some(login)) = (self.settings.user, login)
            && let Some(reply) = self.count("user", format!("user:{login}"), limit).await
        {
            return Some(reply);
        }
        if let (Some(limit), ReversePath::Mailbox(mailbox), false) =
            (self.settings.sender_domain, from, trusted)
        {
            let domain = domain_key(&mailbox.domain);
            return self
                .count("sender_domain", format!("sender_domain:{domain}"), limit)
                .await;
        }
        None
    }

    /// One recipient `to` from a stranger at `client`, counted by the limits its listener
    /// runs (`checks`).
    pub(crate) async fn at_rcpt(
        &self,
        client: IpAddr,
        to: &ForwardPath,
        checks: Checks,
    ) -> Option<Reply> {
        if let Some(limit) = self
            .settings
            .client
            .filter(|_| checks.contains(Check::ClientRate))
        {
            let network = client_network(client);
            if let Some(reply) = self
                .count("client", format!("client:{network}"), limit)
                .await
            {
                return Some(reply);
            }
        }
        let recipient_domain = self
            .settings
            .recipient_domain
            .filter(|_| checks.contains(Check::RecipientDomainRate));
        if let (Some(limit), ForwardPath::Mailbox(mailbox)) = (recipient_domain, to) {
            let domain = domain_key(&mailbox.domain);
            return self
                .count(
                    "recipient_domain",
                    format!("recipient_domain:{domain}"),
                    limit,
                )
                .await;
        }
        None
    }

    async fn count(&self, what: &'static str, key: String, limit: Limit) -> Option<Reply> {
        let (result, reply) = match self.limiter.check(&key, limit).await {
            Ok(Rate::Allowed) => ("allowed", None),
            Ok(Rate::Limited { retry_after }) => {
                tracing::info!(limit = what, %key, rate = %limit, retry_after = retry_after.as_secs(), "rate limit reached");
                let reply = Reply::new(
                    451,
                    "4.7.1",
                    format!(
                        "Rate limit exceeded ({what}), try again in {} seconds",
                        retry_after.as_secs().max(1)
                    ),
                );
                ("limited", Some(reply.because(Refusal::RateLimited)))
            }
            Err(error) => {
                tracing::warn!(limit = what, %error, "rate limit not reachable; deferred");
                ("error", Some(Reply::policy_unavailable()))
            }
        };
        metrics::rate_limit_result(what, result);
        reply
    }
}

/// Deletes keys whose limits have fully recovered, every minute, so the table holds only the
/// senders that are busy now.
pub(crate) async fn expire(limiter: RateLimiter, stop: CancellationToken) {
    const EVERY: Duration = Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        while let Ok(1000) = limiter.expire(1000).await {}
    }
}

fn domain_key(domain: &Domain) -> String {
    match domain {
        Domain::Name(name) => name.to_lowercase(),
        Domain::Literal(literal) => format!("[{literal}]"),
    }
}
