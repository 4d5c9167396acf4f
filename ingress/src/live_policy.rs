//! The policy sessions judge by: the pod's environment settings with the control plane's policy
//! document on top ([`PolicyDocument`]: a field set there replaces the environment setting of
//! the same name). It is rebuilt when the document changes, not on other control-plane changes,
//! which would empty the DNSBL cache for nothing. A document that does not combine with this
//! pod's settings is refused here: the pod keeps the policy it had, logs why and counts it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tern_common::config::ConfigError;
use tern_common::control::{ControlWatch, PolicyDocument};
use tern_common::greylist::Greylist;
use tern_common::ratelimit::RateLimiter;

use crate::config::{PolicyArgs, PolicyConfig};
use crate::metrics;
use crate::policy::Policy;
use crate::ratelimit::RateLimits;

pub(crate) struct LivePolicy {
    /// This pod's environment settings, the base every document is laid on.
    args: PolicyArgs,
    hostname: String,
    /// Where greylisting and the rate limits keep their shared state; `None`: neither can run.
    state: Option<PgPool>,
    control: ControlWatch,
    built: Mutex<Built>,
}

/// The policy in force, the document it was built from, and the revision that was last judged.
struct Built {
    revision: i64,
    document: PolicyDocument,
    policy: Arc<Policy>,
}

impl LivePolicy {
    /// `initial`: the environment's policy, validated at start (before any port is bound).
    pub(crate) fn new(
        args: PolicyArgs,
        hostname: String,
        initial: &PolicyConfig,
        state: Option<PgPool>,
        control: ControlWatch,
    ) -> Self {
        let policy = Arc::new(Policy::new(initial, state.as_ref()));
        Self {
            args,
            hostname,
            state,
            control,
            built: Mutex::new(Built {
                revision: 0,
                document: PolicyDocument::default(),
                policy,
            }),
        }
    }

    /// Where greylisting and the rate limits keep their state, when they can run at all.
    pub(crate) fn state(&self) -> Option<&PgPool> {
        self.state.as_ref()
    }

    /// The policy for the stage about to run.
    pub(crate) fn current(&self) -> Arc<Policy> {
        let plane = self.control.current();
        let mut built = self
            .built
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Every stage of every session asks: the revision settles it unless it moved.
        if built.revision == plane.revision {
            return Arc::clone(&built.policy);
        }
        built.revision = plane.revision;
        let document = plane.policy();
        if built.document != *document {
            match self.build(document) {
                Ok(policy) => {
                    tracing::info!(revision = plane.revision, "policy document applied");
                    metrics::policy_load("applied");
                    built.policy = Arc::new(policy);
                }
                Err(error) => {
                    tracing::error!(revision = plane.revision, %error, "policy document refused; the previous policy stays");
                    metrics::policy_load("refused");
                }
            }
            // Judged once per document, not again at every stage.
            built.document = document.clone();
        }
        Arc::clone(&built.policy)
    }

    fn build(&self, document: &PolicyDocument) -> Result<Policy, ConfigError> {
        let mut args = self.args.clone();
        lay(document, &mut args);
        let config = args.validate(&self.hostname)?;
        Ok(Policy::new(&config, self.state.as_ref()))
    }
}

/// Lays the document's settings over the environment's.
fn lay(document: &PolicyDocument, args: &mut PolicyArgs) {
    if let Some(spf) = document.spf {
        args.spf = spf.to_string();
    }
    if let Some(verify) = document.dkim_verify {
        args.dkim_verify = verify;
    }
    if let Some(dmarc) = document.dmarc {
        args.dmarc = dmarc.to_string();
    }
    if let Some(sites) = &document.dnsbl_sites {
        args.dnsbl_sites = sites.join(",");
    }
    if let Some(threshold) = document.dnsbl_threshold {
        args.dnsbl_threshold = threshold;
    }
    if let Some(seconds) = document.greet_delay_seconds {
        args.greet_delay = Duration::from_secs(seconds.into());
    }
    if let Some(greylist) = document.greylist {
        args.greylist = greylist;
    }
    if let Some(seconds) = document.greylist_delay_seconds {
        args.greylist_delay = Duration::from_secs(seconds.into());
    }
    let limits = [
        (
            &document.rate_limit_connections,
            &mut args.rate_limit_connections,
        ),
        (&document.rate_limit_client, &mut args.rate_limit_client),
        (
            &document.rate_limit_recipient_domain,
            &mut args.rate_limit_recipient_domain,
        ),
        (&document.rate_limit_user, &mut args.rate_limit_user),
        (
            &document.rate_limit_sender_domain,
            &mut args.rate_limit_sender_domain,
        ),
    ];
    for (set, setting) in limits {
        if let Some(limit) = set {
            setting.clone_from(limit);
        }
    }
    let checks = [
        (document.checks_smtp, &mut args.checks_smtp),
        (document.checks_submission, &mut args.checks_submission),
        (document.checks_submissions, &mut args.checks_submissions),
    ];
    for (set, setting) in checks {
        if let Some(checks) = set {
            *setting = checks.to_string();
        }
    }
}

impl Policy {
    /// The checks `config` turns on; greylisting and the rate limits only with `state`.
    pub(crate) fn new(config: &PolicyConfig, state: Option<&PgPool>) -> Self {
        Policy {
            dnsbl: config.dnsbl.clone(),
            spf: config.spf.clone(),
            dkim: config.dkim.clone(),
            greylist: config
                .greylist
                .zip(state)
                .map(|(settings, pool)| Greylist::new(pool.clone(), settings)),
            rate_limits: state
                .filter(|_| !config.rate_limits.is_off())
                .map(|pool| RateLimits::new(RateLimiter::new(pool.clone()), config.rate_limits)),
            greet_delay: config.greet_delay,
            checks: config.checks,
        }
    }
}
