//! DMARC (RFC 7489) at the end of data: the RFC 5322.From domain's policy, applied to the SPF
//! result from MAIL and the DKIM results of the message, both aligned with that domain. The
//! result is recorded in `Authentication-Results:`; what happens to a failing message is this
//! mode's to say, within what the domain asks for.

use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::{AuthenticatedMessage, DkimOutput, DmarcResult, MessageAuthenticator, SpfOutput};
use tern_smtp::{Refusal, Reply};

use crate::metrics;

pub use tern_common::control::DmarcMode;

/// DMARC's word on one message.
pub(crate) struct DmarcVerdict {
    /// The `Authentication-Results:` method (`dmarc=fail (p=reject) header.from=…`).
    pub(crate) method: String,
    pub(crate) refusal: Option<Reply>,
    /// The text of the header that marks a quarantined message.
    pub(crate) quarantine: Option<String>,
}

pub(crate) async fn evaluate(
    authenticator: &MessageAuthenticator,
    mode: DmarcMode,
    message: &AuthenticatedMessage<'_>,
    dkim: &[DkimOutput<'_>],
    spf: &SpfOutput,
) -> DmarcVerdict {
    let mail_from_domain = spf.domain().to_owned();
    let output = authenticator
        .verify_dmarc(DmarcParameters::new(message, dkim, &mail_from_domain, spf))
        .await;
    let result = label(&output.result());
    let policy = match output.policy() {
        Policy::Reject => "reject",
        Policy::Quarantine => "quarantine",
        Policy::None | Policy::Unspecified => "none",
    };
    metrics::dmarc_result(result);
    let domain = output.domain().to_owned();
    let method = format!("dmarc={result} (p={policy}) header.from={domain}");
    let failed = result == "fail";
    let refusal = (failed && mode == DmarcMode::Reject && policy == "reject").then(|| {
        tracing::info!(domain = %domain, "message refused by the DMARC policy of its From domain");
        Reply::new(
            550,
            "5.7.1",
            format!("Message rejected: it fails the DMARC policy of {domain}"),
        )
        .because(Refusal::DmarcReject)
    });
    let quarantine = (failed
        && refusal.is_none()
        && matches!(mode, DmarcMode::Quarantine | DmarcMode::Reject)
        && policy != "none")
        .then(|| format!("DMARC p={policy} of {domain} failed"));
    DmarcVerdict {
        method,
        refusal,
        quarantine,
    }
}

fn label(result: &DmarcResult) -> &'static str {
    match result {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    }
}
