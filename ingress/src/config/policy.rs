//! The policy checks' settings: DNS blocklists, the greeting delay, the pipelining and HELO
//! checks, greylisting and the cluster-wide rate limits (docs/policy.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tern_common::checks::{Checks, ListenerChecks};
use tern_common::config::{ConfigError, parse_domains, parse_duration};
use tern_common::dns::Resolver;
use tern_common::dnsbl::{self, Dnsbl};
use tern_common::greylist::GreylistSettings;
use tern_common::ratelimit::Limit;

use super::var;
use crate::dkim::DkimCheck;
use crate::dmarc::DmarcMode;
use crate::ratelimit::RateLimitSettings;
use crate::spf::{SpfCheck, SpfMode};

#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// The name server (`address:port`) for the policy checks' DNS (SPF, DKIM); unset: the
    /// system's.
    #[arg(long, env = var::NAMESERVER)]
    pub nameserver: Option<SocketAddr>,
    /// How long SPF, and each of DKIM, ARC and DMARC, may wait for DNS; past it the result is
    /// `temperror` (SPF in reject mode defers, nothing is refused for good).
    #[arg(long, env = var::POLICY_DNS_TIMEOUT, default_value = "10s", value_parser = parse_duration)]
    pub policy_dns_timeout: Duration,
    /// SPF at MAIL for strangers (on the listeners whose checks name it): `off`, `record` (in
    /// `Authentication-Results:`) or `reject` (also refuse `fail` with 550 5.7.23 and defer
    /// `temperror` with 451 4.7.24).
    #[arg(long, env = var::SPF, default_value = "off")]
    pub spf: String,
    /// Verify strangers' DKIM signatures at the end of data and record the results in
    /// `Authentication-Results:` (nothing is refused for them).
    #[arg(
        long,
        env = var::DKIM_VERIFY,
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub dkim_verify: bool,
    /// DMARC at the end of data for strangers (on the listeners whose checks name it): `off`,
    /// `record`, `quarantine` (mark failing mail of `p=quarantine`/`p=reject` domains with
    /// `X-Tern-Quarantine:`) or `reject` (refuse failing mail of `p=reject` domains, 550 5.7.1).
    /// On, it turns on DKIM verification and, when SPF is off, SPF in record mode: DMARC needs
    /// both.
    #[arg(long, env = var::DMARC, default_value = "off")]
    pub dmarc: String,
    /// Forwarders (mailing lists, forwarding services) whose ARC seal Tern trusts, by the seal's
    /// `d=` domain, comma separated: mail that fails DMARC but arrives with a valid ARC chain
    /// last sealed by one of them, whose own results said `dmarc=pass`, is neither refused nor
    /// marked (RFC 7489 6.7's `trusted_forwarder` override).
    #[arg(long, env = var::ARC_TRUSTED_SEALERS, default_value = "")]
    pub arc_trusted_sealers: String,
    /// DNS blocklists and allowlists asked about every client of the port 25 role, in
    /// postscreen's form `zone[=filter][*weight]`, comma separated; an allowlist (DNSWL) has a
    /// negative weight. Empty: none are asked.
    #[arg(long, env = var::DNSBL_SITES, default_value = "")]
    pub dnsbl_sites: String,
    /// A client whose listings weigh this much or more is refused before the greeting.
    #[arg(long, env = var::DNSBL_THRESHOLD, default_value_t = 1, allow_hyphen_values = true)]
    pub dnsbl_threshold: i32,
    /// How long the greeting waits for the lists; one that has not answered counts nothing.
    #[arg(long, env = var::DNSBL_TIMEOUT, default_value = "2s", value_parser = parse_duration)]
    pub dnsbl_timeout: Duration,
    /// How long a client's complete report is reused (0: not cached).
    #[arg(long, env = var::DNSBL_CACHE_TTL, default_value = "60s", value_parser = parse_duration)]
    pub dnsbl_cache_ttl: Duration,
    /// The name server (`address:port`) to send DNSBL queries to; unset: the system's. Most
    /// lists refuse queries that come through public resolvers.
    #[arg(long, env = var::DNSBL_NAMESERVER)]
    pub dnsbl_nameserver: Option<SocketAddr>,
    /// Close sessions that send commands or content ahead of a reply they had to wait for
    /// (RFC 2920; Postfix's `smtpd_forbid_unauth_pipelining`), with `554 5.5.0`.
    #[arg(
        long,
        env = var::FORBID_UNAUTH_PIPELINING,
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub forbid_unauth_pipelining: bool,
    /// Refuse HELO/EHLO names that are neither a domain name nor an address literal (`501
    /// 5.5.2`).
    #[arg(
        long,
        env = var::REJECT_INVALID_HELO,
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub reject_invalid_helo: bool,
    /// How long the port 25 role stays silent before its greeting; a client that talks in that
    /// time is refused as an early talker (postscreen's pregreet test). 0: greet at once.
    #[arg(long, env = var::GREET_DELAY, default_value = "0s", value_parser = parse_duration)]
    pub greet_delay: Duration,
    /// Greylist recipients of the port 25 role (postgrey's triplets, shared by every pod
    /// through PostgreSQL): a new triplet gets `451 4.7.1` until its delay is over.
    #[arg(
        long,
        env = var::GREYLIST,
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub greylist: bool,
    /// How long a new triplet is deferred.
    #[arg(long, env = var::GREYLIST_DELAY, default_value = "5m", value_parser = parse_duration)]
    pub greylist_delay: Duration,
    /// How long after its first attempt a triplet may come back and pass.
    #[arg(long, env = var::GREYLIST_RETRY_WINDOW, default_value = "2d", value_parser = parse_duration)]
    pub greylist_retry_window: Duration,
    /// A triplet not seen for this long is forgotten.
    #[arg(long, env = var::GREYLIST_MAX_AGE, default_value = "35d", value_parser = parse_duration)]
    pub greylist_max_age: Duration,
    /// Passed triplets after which a client network is not greylisted any more (0: never).
    #[arg(long, env = var::GREYLIST_AUTO_ALLOW_CLIENTS, default_value_t = 5)]
    pub greylist_auto_allow_clients: u32,
    /// New connections per client network (/24, /64) from strangers (on the listeners whose
    /// checks name it), cluster-wide, as `COUNT/PERIOD` (`60/1m`). Empty: no limit.
    #[arg(long, env = var::RATE_LIMIT_CONNECTIONS, default_value = "")]
    pub rate_limit_connections: String,
    /// Recipients per client network (/24, /64) from strangers (on the listeners whose checks
    /// name it), cluster-wide, as `COUNT/PERIOD` (`200/1h`). Empty: no limit.
    #[arg(long, env = var::RATE_LIMIT_CLIENT, default_value = "")]
    pub rate_limit_client: String,
    /// Recipients per recipient domain from strangers (on the listeners whose checks name it).
    /// Empty: no limit.
    #[arg(long, env = var::RATE_LIMIT_RECIPIENT_DOMAIN, default_value = "")]
    pub rate_limit_recipient_domain: String,
    /// Messages per authenticated user. Empty: no limit.
    #[arg(long, env = var::RATE_LIMIT_USER, default_value = "")]
    pub rate_limit_user: String,
    /// Messages per sender domain from clients outside the trusted networks. Empty: no limit.
    #[arg(long, env = var::RATE_LIMIT_SENDER_DOMAIN, default_value = "")]
    pub rate_limit_sender_domain: String,
    /// The reputation checks port 25 runs on strangers, comma separated (`dnsbl`,
    /// `greet_delay`, `connection_rate`, `spf`, `greylist`, `client_rate`,
    /// `recipient_domain_rate`, `dkim`, `dmarc`), or `all`, or `none`. Each still has to be
    /// turned on by its own setting.
    #[arg(long, env = var::CHECKS_SMTP, default_value = "all")]
    pub checks_smtp: String,
    /// The same for the submission listener (587), where strangers can only connect and try to
    /// authenticate: `dnsbl`, `greet_delay` and `connection_rate` are the ones that can apply.
    #[arg(long, env = var::CHECKS_SUBMISSION, default_value = "none")]
    pub checks_submission: String,
    /// The same for the implicit-TLS submission listener (465).
    #[arg(long, env = var::CHECKS_SUBMISSIONS, default_value = "none")]
    pub checks_submissions: String,
}

/// Validated policy settings.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// SPF at MAIL; `None` when off.
    pub spf: Option<Arc<SpfCheck>>,
    /// DKIM verification at the end of data; `None` when off.
    pub dkim: Option<Arc<DkimCheck>>,
    /// DNS blocklists for the port 25 role; `None` when no sites are configured.
    pub dnsbl: Option<Arc<Dnsbl>>,
    /// The port 25 role's silence before the greeting (zero: none).
    pub greet_delay: Duration,
    /// Greylisting on the port 25 role; `None` when off.
    pub greylist: Option<GreylistSettings>,
    /// The cluster-wide rate limits that are set.
    pub rate_limits: RateLimitSettings,
    /// Which of the checks above each listener runs on strangers.
    pub checks: ListenerChecks,
}

impl PolicyArgs {
    /// `hostname`: ours, for the checks that name it (SPF's `r` macro).
    pub fn validate(&self, hostname: &str) -> Result<PolicyConfig, ConfigError> {
        if self.policy_dns_timeout.is_zero() {
            return Err(ConfigError::new(
                var::POLICY_DNS_TIMEOUT,
                "must be greater than zero",
            ));
        }
        let dmarc: DmarcMode = self
            .dmarc
            .parse()
            .map_err(|reason: String| ConfigError::new(var::DMARC, reason))?;
        let spf_mode: SpfMode = self
            .spf
            .parse()
            .map_err(|reason: String| ConfigError::new(var::SPF, reason))?;
        // DMARC judges SPF's and DKIM's results: it needs both to run.
        let (spf_mode, dkim_verify) = match (dmarc, spf_mode) {
            (DmarcMode::Off, mode) => (mode, self.dkim_verify),
            (_, SpfMode::Off) => (SpfMode::Record, true),
            (_, mode) => (mode, true),
        };
        let trusted_sealers = parse_domains(var::ARC_TRUSTED_SEALERS, &self.arc_trusted_sealers)?;
        let resolver = match (spf_mode, dkim_verify) {
            (SpfMode::Off, false) => None,
            _ => Some(
                Resolver::new(self.nameserver)
                    .map_err(|e| ConfigError::new(var::NAMESERVER, e.to_string()))?,
            ),
        };
        let spf = resolver
            .as_ref()
            .and_then(|resolver| {
                SpfCheck::new(spf_mode, hostname, resolver, self.policy_dns_timeout)
            })
            .map(Arc::new);
        let dkim = resolver.as_ref().filter(|_| dkim_verify).map(|resolver| {
            Arc::new(DkimCheck::new(
                resolver,
                dmarc,
                self.policy_dns_timeout,
                trusted_sealers.clone(),
            ))
        });
        Ok(PolicyConfig {
            spf,
            dkim,
            dnsbl: self.dnsbl()?,
            greet_delay: self.greet_delay,
            greylist: self.greylist()?,
            rate_limits: RateLimitSettings {
                connections: limit(var::RATE_LIMIT_CONNECTIONS, &self.rate_limit_connections)?,
                client: limit(var::RATE_LIMIT_CLIENT, &self.rate_limit_client)?,
                recipient_domain: limit(
                    var::RATE_LIMIT_RECIPIENT_DOMAIN,
                    &self.rate_limit_recipient_domain,
                )?,
                user: limit(var::RATE_LIMIT_USER, &self.rate_limit_user)?,
                sender_domain: limit(
                    var::RATE_LIMIT_SENDER_DOMAIN,
                    &self.rate_limit_sender_domain,
                )?,
            },
            checks: ListenerChecks {
                smtp: checks(var::CHECKS_SMTP, &self.checks_smtp)?,
                submission: checks(var::CHECKS_SUBMISSION, &self.checks_submission)?,
                submissions: checks(var::CHECKS_SUBMISSIONS, &self.checks_submissions)?,
            },
        })
    }

    fn greylist(&self) -> Result<Option<GreylistSettings>, ConfigError> {
        if !self.greylist {
            return Ok(None);
        }
        if self.greylist_retry_window <= self.greylist_delay {
            return Err(ConfigError::new(
                var::GREYLIST_RETRY_WINDOW,
                format!(
                    "must be longer than {}, or no triplet could ever pass",
                    var::GREYLIST_DELAY
                ),
            ));
        }
        if self.greylist_max_age < self.greylist_retry_window {
            return Err(ConfigError::new(
                var::GREYLIST_MAX_AGE,
                format!("must be at least {}", var::GREYLIST_RETRY_WINDOW),
            ));
        }
        Ok(Some(GreylistSettings {
            delay: self.greylist_delay,
            retry_window: self.greylist_retry_window,
            max_age: self.greylist_max_age,
            auto_allow_clients: self.greylist_auto_allow_clients,
        }))
    }

    fn dnsbl(&self) -> Result<Option<Arc<Dnsbl>>, ConfigError> {
        let sites = dnsbl::parse_sites(&self.dnsbl_sites)
            .map_err(|e| ConfigError::new(var::DNSBL_SITES, e))?;
        if sites.is_empty() {
            return Ok(None);
        }
        if self.dnsbl_threshold < 1 {
            return Err(ConfigError::new(
                var::DNSBL_THRESHOLD,
                "must be at least 1 (a lower one refuses clients no list names)",
            ));
        }
        if self.dnsbl_timeout.is_zero() {
            return Err(ConfigError::new(
                var::DNSBL_TIMEOUT,
                "must be greater than zero",
            ));
        }
        let resolver = Resolver::new(self.dnsbl_nameserver)
            .map_err(|e| ConfigError::new(var::DNSBL_NAMESERVER, e.to_string()))?;
        Ok(Some(Arc::new(Dnsbl::new(
            sites,
            self.dnsbl_threshold,
            self.dnsbl_timeout,
            self.dnsbl_cache_ttl,
            resolver,
        ))))
    }
}

/// An optional `COUNT/PERIOD` setting.
fn checks(setting: &'static str, text: &str) -> Result<Checks, ConfigError> {
    text.parse()
        .map_err(|reason: String| ConfigError::new(setting, reason))
}

fn limit(setting: &'static str, text: &str) -> Result<Option<Limit>, ConfigError> {
    match text.trim() {
        "" => Ok(None),
        text => text
            .parse()
            .map(Some)
            .map_err(|reason: String| ConfigError::new(setting, reason)),
    }
}
