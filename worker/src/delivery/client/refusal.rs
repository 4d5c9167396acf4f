//! Refusals made up locally, in the image of a server's, for what must not be sent at all.

use tern_smtp::client::{CommandError, RemoteReply};

use super::{Connection, Envelope};

/// Whether the transaction needs SMTPUTF8: the message says so, or an address is not ASCII
/// (which only SMTPUTF8 allows on the wire).
pub(super) fn needs_smtputf8(envelope: &Envelope<'_>) -> bool {
    envelope.smtputf8
        || !envelope.mail_from.is_ascii()
        || envelope.recipients.iter().any(|r| !r.address.is_ascii())
}

impl Connection {
    /// What the server said it cannot take: refused for every recipient without a word to it,
    /// as it would refuse them anyway, only later and after the whole message was sent.
    pub(super) fn refuse_locally(&self, needs_utf8: bool, size: usize) -> Option<RemoteReply> {
        let host = self.wire.host();
        if needs_utf8 && !self.capabilities.smtputf8 {
            // X.6.7 is RFC 6531's code for a message that needs SMTPUTF8 where it is lacking.
            let text = format!("{host} does not support SMTPUTF8, which this message needs");
            return Some(RemoteReply::new(550, Some("5.6.7"), text));
        }
        let size = u64::try_from(size).unwrap_or(u64::MAX);
        if let Some(limit) = self.capabilities.size.filter(|&limit| size > limit) {
            let text = format!("message of {size} bytes exceeds the {limit} bytes {host} accepts");
            return Some(RemoteReply::new(552, Some("5.3.4"), text));
        }
        None
    }

    /// A value in the envelope that cannot be written without changing the command: permanent,
    /// since retrying would send the same stored value again.
    pub(super) fn local_refusal(&self, error: &CommandError) -> RemoteReply {
        let (code, status) = match error {
            CommandError::ReversePath => (553, "5.1.7"),
            CommandError::ForwardPath => (553, "5.1.3"),
            CommandError::HeloName => (501, "5.5.4"),
        };
        let host = self.wire.host();
        RemoteReply::new(code, Some(status), format!("not sent to {host}: {error}"))
    }
}
