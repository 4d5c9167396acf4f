//! The end-of-data checks for port 25 strangers: DKIM verification (RFC 6376), every signature
//! of the message checked through the program's DNS resolver and its result recorded in the
//! message's `Authentication-Results:` (RFC 8601: `dkim=pass header.d=… header.s=…`), then
//! the ARC chain of custody when there is one (RFC 8617), then DMARC over those results and
//! SPF's from MAIL. DKIM refuses nothing by itself: a bad signature is the same as none (RFC
//! 6376 6.1), and what a domain wants done about it is DMARC's to say.

use std::time::Duration;

use mail_auth::arc::ArcError;
use mail_auth::dkim::{Canonicalization, DkimError};
use mail_auth::{
    ArcOutput, AuthenticatedMessage, DkimOutput, DkimResult, Error, MessageAuthenticator,
};
use tern_common::dns::Resolver;
use tern_smtp::Reply;

use crate::canonical;
use crate::dmarc::{self, DmarcMode};
use crate::findings::Findings;
use crate::metrics;

/// The verifier, its DNS, and what DMARC is to do.
pub struct DkimCheck {
    authenticator: MessageAuthenticator,
    dmarc: DmarcMode,
    /// Each of DKIM, ARC and DMARC gets this long; past it the result is `temperror` and nothing
    /// is refused for it.
    deadline: Duration,
    /// Forwarders whose ARC seal may override a DMARC failure, by `d=` domain (lowercase).
    trusted_sealers: Vec<String>,
}

impl std::fmt::Debug for DkimCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimCheck").finish_non_exhaustive()
    }
}

impl DkimCheck {
    pub fn new(
        resolver: &Resolver,
        dmarc: DmarcMode,
        deadline: Duration,
        trusted_sealers: Vec<String>,
    ) -> Self {
        Self {
            authenticator: MessageAuthenticator(resolver.hickory().clone()),
            dmarc,
            deadline,
            trusted_sealers: trusted_sealers
                .into_iter()
                .map(|domain| domain.to_ascii_lowercase())
                .collect(),
        }
    }

    /// Verifies `message`'s signatures and, when DMARC is on, asked for (`dmarc`) and SPF ran
    /// at MAIL, evaluates the From domain's policy; adds what they found to `findings` and
    /// returns the refusal DMARC asks for, if any.
    pub(crate) async fn check(
        &self,
        message: &[u8],
        dmarc: bool,
        findings: &mut Findings,
    ) -> Option<Reply> {
        let dmarc = if dmarc { self.dmarc } else { DmarcMode::Off };
        let Some(parsed) = AuthenticatedMessage::parse(message) else {
            metrics::dkim_result("none");
            findings
                .methods
                .push("dkim=none (not a parsable message)".to_owned());
            return None;
        };
        // See crate::canonical: the library's relaxed body hash is wrong for bodies ending in
        // whitespace-only lines, so such a message's relaxed signatures are checked on a copy
        // without them.
        let trimmed = canonical::without_trailing_blank_lines(message);
        let trimmed = trimmed.as_deref().and_then(AuthenticatedMessage::parse);
        let verified = async {
            let outputs = self.authenticator.verify_dkim(&parsed).await;
            match &trimmed {
                Some(trimmed) => {
                    let again = self.authenticator.verify_dkim(trimmed).await;
                    relaxed_rechecked(outputs, again)
                }
                None => outputs,
            }
        };
        let Ok(outputs) = tokio::time::timeout(self.deadline, verified).await else {
            metrics::dkim_result("temperror");
            findings
                .methods
                .push("dkim=temperror (no DNS answer in time)".to_owned());
            // DMARC without DKIM's results could only misjudge: it is not asked.
            if dmarc != DmarcMode::Off {
                findings
                    .methods
                    .push("dmarc=temperror (DKIM could not be checked)".to_owned());
            }
            return None;
        };
        if outputs.is_empty() {
            metrics::dkim_result("none");
            findings.methods.push("dkim=none".to_owned());
        }
        for output in &outputs {
            let result = label(output.result());
            metrics::dkim_result(result);
            findings.methods.push(match output.signature() {
                Some(signature) => format!(
                    "dkim={result} header.d={} header.s={}",
                    signature.d, signature.s
                ),
                None => format!("dkim={result}"),
            });
        }
        // RFC 8617: a chain of custody from the forwarders before us, recorded when there is
        // one (a mailing list's or forwarder's seal); a trusted forwarder's may override DMARC.
        let verified_arc = async {
            let first = self.authenticator.verify_arc(&parsed).await;
            match &trimmed {
                // Only the last seal's body hash is checked: the same defect, the same cure.
                Some(trimmed) if relaxed_body_mismatch(&first) => {
                    let again = self.authenticator.verify_arc(trimmed).await;
                    if matches!(again.result(), DkimResult::Pass) {
                        again
                    } else {
                        first
                    }
                }
                _ => first,
            }
        };
        let arc = tokio::time::timeout(self.deadline, verified_arc).await;
        if let Ok(arc) = &arc
            && !matches!(arc.result(), DkimResult::None)
        {
            // RFC 8617 knows only pass, fail and none: a chain that does not validate fails.
            let result = match arc.result() {
                DkimResult::Pass => "pass",
                _ => "fail",
            };
            metrics::arc_result(result);
            findings.methods.push(format!("arc={result}"));
        }
        let spf = findings.spf.as_ref().filter(|_| dmarc != DmarcMode::Off)?;
        let evaluation = dmarc::evaluate(&self.authenticator, dmarc, &parsed, &outputs, spf);
        let Ok(verdict) = tokio::time::timeout(self.deadline, evaluation).await else {
            metrics::dmarc_result("temperror");
            findings
                .methods
                .push("dmarc=temperror (no DNS answer in time)".to_owned());
            return None;
        };
        let failed = verdict.refusal.is_some() || verdict.quarantine.is_some();
        if failed && let Some(sealer) = arc.ok().and_then(|arc| self.trusted_seal(&arc)) {
            // RFC 7489 6.7: a trusted forwarder vouches for what it received.
            tracing::info!(%sealer, "DMARC failure overridden by a trusted forwarder's ARC seal");
            metrics::dmarc_result("overridden");
            findings.methods.push(format!(
                "{} (policy overridden: trusted_forwarder, ARC sealed by {sealer})",
                verdict.method
            ));
            return None;
        }
        findings.methods.push(verdict.method);
        findings.quarantine = verdict.quarantine;
        verdict.refusal
    }

    /// The trusted forwarder that sealed a valid chain last, when its own results (its
    /// `ARC-Authentication-Results:`) said the message passed DMARC when it arrived there.
    fn trusted_seal(&self, arc: &ArcOutput<'_>) -> Option<String> {
        if !matches!(arc.result(), DkimResult::Pass) {
            return None;
        }
        let last = arc.sets().iter().max_by_key(|set| set.seal.header.i)?;
        let sealer = last.seal.header.d.to_ascii_lowercase();
        let results = String::from_utf8_lossy(last.results.value).to_ascii_lowercase();
        (self.trusted_sealers.contains(&sealer) && results.contains("dmarc=pass")).then_some(sealer)
    }
}

/// Whether an ARC chain failed only on its last message signature's relaxed body hash.
fn relaxed_body_mismatch(arc: &ArcOutput<'_>) -> bool {
    matches!(
        arc.result(),
        DkimResult::Neutral(Error::Arc(ArcError::FailedBodyHashMatch))
    ) && arc
        .sets()
        .last()
        .is_some_and(|set| set.signature.header.cb == Canonicalization::Relaxed)
}

/// `outputs`, with each relaxed-body signature's result taken from `rechecked` (the same
/// signatures, checked on the body without its trailing whitespace-only lines).
fn relaxed_rechecked<'a>(
    outputs: Vec<DkimOutput<'a>>,
    rechecked: Vec<DkimOutput<'a>>,
) -> Vec<DkimOutput<'a>> {
    if outputs.len() != rechecked.len() {
        return outputs;
    }
    outputs
        .into_iter()
        .zip(rechecked)
        .map(|(first, again)| {
            let relaxed_body = first
                .signature()
                .is_some_and(|signature| signature.cb == Canonicalization::Relaxed);
            let same_signature = first.signature().map(|s| &s.b) == again.signature().map(|s| &s.b);
            if relaxed_body && same_signature {
                again
            } else {
                first
            }
        })
        .collect()
}

/// RFC 8601's result names. A body that no longer matches its signature's hash failed
/// verification (RFC 6376 3.7), which RFC 8601 calls `fail`; the library says `neutral`.
fn label(result: &DkimResult) -> &'static str {
    match result {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(Error::Dkim(DkimError::FailedBodyHashMatch)) => "fail",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}
