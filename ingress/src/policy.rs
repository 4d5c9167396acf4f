//! The policy engine: one asynchronous call per SMTP stage (connect, MAIL, RCPT, end of data),
//! each running that stage's checks in order and answering with the reply that refuses (which
//! names its reason, for the logs and `/metrics`) or nothing. Which checks apply depends on who the
//! client is ([`Standing`]): reputation checks are for strangers only, and each listener role
//! runs the ones its [`Checks`] set names.
//!
//! The control plane's blocklist and the relay decision stay with the connection, which owns
//! the allowlisting they can grant; the greeting delay is the connection's too, being I/O.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tern_common::checks::{Check, Checks, ListenerChecks, ListenerKind};
use tern_common::dnsbl::Dnsbl;
use tern_common::greylist::Greylist;
use tern_smtp::{ForwardPath, Reply, ReversePath};

use crate::dkim::DkimCheck;
use crate::findings::Findings;
use crate::ratelimit::RateLimits;
use crate::spf::SpfCheck;
use crate::{dnsbl, greylist};

/// The checks one ingress runs; each `None` is off.
#[derive(Debug, Default)]
pub(crate) struct Policy {
    pub(crate) dnsbl: Option<Arc<Dnsbl>>,
    pub(crate) greylist: Option<Greylist>,
    pub(crate) rate_limits: Option<RateLimits>,
    pub(crate) spf: Option<Arc<SpfCheck>>,
    pub(crate) dkim: Option<Arc<DkimCheck>>,
    /// The silence before the greeting, to catch early talkers (zero: none).
    pub(crate) greet_delay: Duration,
    /// Which checks each listener runs on strangers.
    pub(crate) checks: ListenerChecks,
}

/// Who the client is, as the checks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Standing {
    /// The listener the client came in on.
    pub(crate) listener: ListenerKind,
    /// Outside the trusted networks, not authenticated, not allowlisted.
    pub(crate) stranger: bool,
    /// In a trusted network (the settings' or the control plane's).
    pub(crate) trusted: bool,
}

impl Policy {
    /// The checks this client is asked: its listener's, when it is a stranger; none otherwise.
    pub(crate) fn checks_for(&self, who: Standing) -> Checks {
        if who.stranger {
            self.checks.of(who.listener)
        } else {
            Checks::NONE
        }
    }

    /// Whether `check` is asked about this client.
    pub(crate) fn applies(&self, who: Standing, check: Check) -> bool {
        self.checks_for(who).contains(check)
    }

    /// The greeting delay this client waits out (zero: none).
    pub(crate) fn greet_delay_for(&self, who: Standing) -> Duration {
        if self.applies(who, Check::GreetDelay) {
            self.greet_delay
        } else {
            Duration::ZERO
        }
    }

    /// Before the greeting: the connection rate, then the DNS blocklists.
    pub(crate) async fn at_connect(&self, who: Standing, client: IpAddr) -> Option<Reply> {
        if let Some(limits) = &self.rate_limits
            && self.applies(who, Check::ConnectionRate)
            && let Some(reply) = limits.at_connect(client).await
        {
            return Some(reply);
        }
        match &self.dnsbl {
            Some(lists) if self.applies(who, Check::Dnsbl) => {
                dnsbl::at_connect(lists, client).await
            }
            _ => None,
        }
    }

    /// A sender the control plane let through: the user's and the sender domain's rates, then
    /// SPF, whose answer goes into `findings`.
    pub(crate) async fn at_mail(
        &self,
        who: Standing,
        client: IpAddr,
        helo: &str,
        login: Option<&str>,
        from: &ReversePath,
        findings: &mut Findings,
    ) -> Option<Reply> {
        if let Some(limits) = &self.rate_limits
            && let Some(reply) = limits.at_mail(login, from, who.trusted).await
        {
            return Some(reply);
        }
        let spf = self
            .spf
            .as_ref()
            .filter(|_| self.applies(who, Check::Spf))?;
        let sender = match from {
            ReversePath::Null => String::new(),
            ReversePath::Mailbox(mailbox) => mailbox.to_string(),
        };
        let checked = spf.check(client, helo, &sender).await;
        findings.methods.push(checked.result);
        findings.spf = Some(checked.output);
        checked.refusal
    }

    /// The message, before it is committed: DKIM and DMARC, adding to `findings`; the refusal
    /// a `p=reject` domain asks for, when Tern is set to honour it.
    pub(crate) async fn at_data(
        &self,
        who: Standing,
        message: &[u8],
        findings: &mut Findings,
    ) -> Option<Reply> {
        let dmarc = self.applies(who, Check::Dmarc);
        match &self.dkim {
            // DMARC judges DKIM's results: asking it means verifying too.
            Some(dkim) if dmarc || self.applies(who, Check::Dkim) => {
                dkim.check(message, dmarc, findings).await
            }
            _ => None,
        }
    }

    /// A recipient in one of our domains, from a stranger: greylisting, then the client's and
    /// the recipient domain's rates (only recipients that passed greylisting count).
    pub(crate) async fn at_rcpt(
        &self,
        who: Standing,
        client: IpAddr,
        sender: &ReversePath,
        to: &ForwardPath,
    ) -> Option<Reply> {
        if let Some(list) = &self.greylist
            && self.applies(who, Check::Greylist)
        {
            let sender = match sender {
                ReversePath::Mailbox(mailbox) => mailbox.to_string(),
                ReversePath::Null => String::new(),
            };
            if let Some(reply) = greylist::at_rcpt(list, client, &sender, &to.to_string()).await {
                return Some(reply);
            }
        }
        match &self.rate_limits {
            Some(limits) => limits.at_rcpt(client, to, self.checks_for(who)).await,
            None => None,
        }
    }
}
