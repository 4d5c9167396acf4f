//! The policy engine: one asynchronous call per SMTP stage (connect, MAIL, RCPT, end of data),
//! each running that stage's checks in order and answering with the reply that refuses (which
//! names its reason, for the logs and `/metrics`) or nothing. Which checks apply depends on who the
//! client is ([`Standing`]): reputation checks are for strangers only.
//!
//! The control plane's blocklist and the relay decision stay with the connection, which owns
//! the allowlisting they can grant; the greeting delay is the connection's too, being I/O.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

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
    /// The port 25 role's silence before the greeting, to catch early talkers (zero: none).
    pub(crate) greet_delay: Duration,
}

/// Who the client is, as the checks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Standing {
    /// A port 25 client outside the trusted networks, not authenticated, not allowlisted.
    pub(crate) stranger: bool,
    /// In a trusted network (the settings' or the control plane's).
    pub(crate) trusted: bool,
}

impl Policy {
    /// Before the greeting: the connection rate, then the DNS blocklists.
    pub(crate) async fn at_connect(&self, who: Standing, client: IpAddr) -> Option<Reply> {
        if !who.stranger {
            return None;
        }
        if let Some(limits) = &self.rate_limits
            && let Some(reply) = limits.at_connect(client).await
        {
            return Some(reply);
        }
        match &self.dnsbl {
            Some(lists) => dnsbl::at_connect(lists, client).await,
            None => None,
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
        let spf = self.spf.as_ref().filter(|_| who.stranger)?;
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
        match &self.dkim {
            Some(dkim) if who.stranger => dkim.check(message, findings).await,
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
        if !who.stranger {
            return None;
        }
        if let Some(list) = &self.greylist {
            let sender = match sender {
                ReversePath::Mailbox(mailbox) => mailbox.to_string(),
                ReversePath::Null => String::new(),
            };
            if let Some(reply) = greylist::at_rcpt(list, client, &sender, &to.to_string()).await {
                return Some(reply);
            }
        }
        match &self.rate_limits {
            Some(limits) => limits.at_rcpt(client, to).await,
            None => None,
        }
    }
}
