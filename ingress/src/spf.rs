//! SPF (RFC 7208) at MAIL for port 25 strangers: the HELO identity, then the MAIL FROM identity
//! (the HELO's alone for the null sender), checked through the program's DNS resolver. The
//! result is recorded for the message's `Authentication-Results:` header, and in `reject` mode a
//! `fail` refuses the sender (`550 5.7.23`) and a temporary error defers it (`451 4.7.24`, RFC
//! 7372). `permerror` (a broken record) and `softfail` never refuse: too many real domains
//! publish them, as policyd-spf's defaults also say.

use std::net::IpAddr;
use std::time::Duration;

use mail_auth::spf::verify::SpfParameters;
use mail_auth::{MessageAuthenticator, SpfOutput, SpfResult};
use tern_common::dns::Resolver;
use tern_smtp::{Refusal, Reply};

use crate::metrics;

pub use tern_common::control::SpfMode;

/// The SPF checker: its mode, our host name (the `r` macro), and DNS.
pub struct SpfCheck {
    mode: SpfMode,
    hostname: String,
    authenticator: MessageAuthenticator,
    /// The whole check's time: past it, the answer is `temperror` (a dead resolver would
    /// otherwise hold the session through every retry of every lookup).
    deadline: Duration,
}

impl std::fmt::Debug for SpfCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpfCheck")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// The outcome for one sender: the `Authentication-Results:` method text, and the reply that
/// refuses the sender when the mode says so.
pub(crate) struct SpfVerdict {
    pub(crate) result: String,
    pub(crate) refusal: Option<Reply>,
    /// The whole answer, for DMARC at the end of data.
    pub(crate) output: SpfOutput,
}

impl SpfCheck {
    /// `None` when the mode is off.
    pub fn new(
        mode: SpfMode,
        hostname: &str,
        resolver: &Resolver,
        deadline: Duration,
    ) -> Option<Self> {
        (mode != SpfMode::Off).then(|| Self {
            mode,
            hostname: hostname.to_owned(),
            authenticator: MessageAuthenticator(resolver.hickory().clone()),
            deadline,
        })
    }

    pub(crate) async fn check(&self, client: IpAddr, helo: &str, sender: &str) -> SpfVerdict {
        let params = SpfParameters::verify(client, helo, &self.hostname, sender);
        let output = match tokio::time::timeout(
            self.deadline,
            self.authenticator.verify_spf(params),
        )
        .await
        {
            Ok(output) => output,
            Err(_) => {
                let domain = sender.rsplit_once('@').map_or(helo, |(_, domain)| domain);
                SpfOutput::new(domain.to_lowercase()).with_result(SpfResult::TempError)
            }
        };
        let result = output.result();
        let label = label(result);
        metrics::spf_result(label);
        // RFC 8601 2.7.2: the identity checked, `smtp.mailfrom` (or `smtp.helo` for `<>`).
        let identity = match sender {
            "" => format!("smtp.helo={helo}"),
            _ => format!("smtp.mailfrom={sender}"),
        };
        let record = format!("spf={label} {identity}");
        let refusal = match (self.mode, result) {
            (SpfMode::Reject, SpfResult::Fail) => {
                tracing::info!(client = %client, from = sender, domain = output.domain(), "SPF fail");
                Some(
                    Reply::new(
                        550,
                        "5.7.23",
                        format!(
                            "<{sender}>: SPF check failed for {} (client [{client}] is not allowed to send for it)",
                            output.domain()
                        ),
                    )
                    .because(Refusal::SpfFail),
                )
            }
            (SpfMode::Reject, SpfResult::TempError) => Some(
                Reply::new(
                    451,
                    "4.7.24",
                    format!(
                        "SPF record of {} could not be checked now, try again later",
                        output.domain()
                    ),
                )
                .because(Refusal::SpfTempError),
            ),
            _ => None,
        };
        SpfVerdict {
            result: record,
            refusal,
            output,
        }
    }
}

/// RFC 7208's result names, as `Authentication-Results:` writes them.
pub(crate) fn label(result: SpfResult) -> &'static str {
    match result {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}
