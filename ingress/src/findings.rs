//! What the policy checks learn about an open transaction, carried from MAIL to the end of
//! data and into the stored message.

use mail_auth::SpfOutput;

/// What the checks learned about the open transaction: for its `Authentication-Results:`
/// header, for DMARC at the end of data, and for marking it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Findings {
    /// `Authentication-Results:` methods, in the order the checks ran (`spf=pass …`).
    pub(crate) methods: Vec<String>,
    /// SPF's answer at MAIL.
    pub(crate) spf: Option<SpfOutput>,
    /// Set when DMARC asks for quarantine: the text of the header that marks the message.
    pub(crate) quarantine: Option<String>,
}
