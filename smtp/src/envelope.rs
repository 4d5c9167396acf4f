//! What a finished transaction hands to the driver.

use crate::{ForwardPath, MailParams, RcptParams, ReversePath};

/// An accepted message: the envelope and the content to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub envelope: Envelope,
    /// The content exactly as received: dot-unstuffed, CRLF line ends and
    /// without the terminating ".CRLF" for DATA; the concatenated chunks for
    /// BDAT.
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The HELO/EHLO argument.
    pub helo: String,
    /// Whether the client greeted with EHLO.
    pub esmtp: bool,
    pub from: ReversePath,
    pub params: MailParams,
    pub recipients: Vec<Recipient>,
    /// Whether the content came in BDAT chunks rather than DATA.
    pub bdat: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub path: ForwardPath,
    pub params: RcptParams,
}
