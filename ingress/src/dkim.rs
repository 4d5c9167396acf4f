//! DKIM verification (RFC 6376) at the end of data for port 25 strangers: every signature of
//! the message is checked through the program's DNS resolver and its result recorded in the
//! message's `Authentication-Results:` (RFC 8601: `dkim=pass header.d=… header.s=…`). It
//! refuses nothing by itself: a bad signature is the same as none (RFC 6376 6.1), and what a
//! domain wants done about it is DMARC's to say.

use mail_auth::dkim::DkimError;
use mail_auth::{AuthenticatedMessage, DkimResult, Error, MessageAuthenticator};
use tern_common::dns::Resolver;

use crate::metrics;

/// The verifier and its DNS.
pub struct DkimCheck {
    authenticator: MessageAuthenticator,
}

impl std::fmt::Debug for DkimCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimCheck").finish_non_exhaustive()
    }
}

impl DkimCheck {
    pub fn new(resolver: &Resolver) -> Self {
        Self {
            authenticator: MessageAuthenticator(resolver.hickory().clone()),
        }
    }

    /// The `Authentication-Results:` methods for `message`'s signatures (`dkim=none` when it
    /// has none, or cannot even be parsed as a message).
    pub(crate) async fn verify(&self, message: &[u8]) -> Vec<String> {
        let Some(parsed) = AuthenticatedMessage::parse(message) else {
            metrics::dkim_result("none");
            return vec!["dkim=none (not a parsable message)".to_owned()];
        };
        let outputs = self.authenticator.verify_dkim(&parsed).await;
        if outputs.is_empty() {
            metrics::dkim_result("none");
            return vec!["dkim=none".to_owned()];
        }
        outputs
            .iter()
            .map(|output| {
                let result = label(output.result());
                metrics::dkim_result(result);
                match output.signature() {
                    Some(signature) => format!(
                        "dkim={result} header.d={} header.s={}",
                        signature.d, signature.s
                    ),
                    None => format!("dkim={result}"),
                }
            })
            .collect()
    }
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
