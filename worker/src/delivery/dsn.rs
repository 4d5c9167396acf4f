//! Delivery status notifications: the `multipart/report` (RFC 6522) message telling an envelope
//! sender what became of some recipients, with a human-readable part, the RFC 3464
//! `message/delivery-status` part and the returned message or its header.
//!
//! When an address is not ASCII or the message came with SMTPUTF8, the report uses RFC 6533's
//! types instead (`message/global-delivery-status`, `message/global`,
//! `message/global-headers`), whose fields may carry UTF-8; otherwise every field is ASCII and
//! anything else in a value becomes `?`.
//!
//! The message is written by hand rather than with a MIME builder: its shape is fixed (three
//! parts, all headers ours), the RFC 3464 fields would have to be written by hand anyway, and
//! the hazards (header injection, line length, the boundary, 8-bit content) are each handled in
//! a few lines below and tested, including by Python's `email` parser.
//!
//! - `human`: the first part and the subject.
//! - `report`: the delivery-status fields.
//! - `returned`: how much of the original goes back (RET, size, 8-bit safety).
//! - `fields`: cleaning, folding and dates shared by all three.

mod fields;
mod human;
mod report;
mod returned;
#[cfg(test)]
mod tests;

use time::OffsetDateTime;
use uuid::Uuid;

pub use returned::MAX_RETURNED;

use fields::{clean, date, field};

/// What happened to a recipient (RFC 3464 2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    Relayed,
    Expanded,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
            Action::Expanded => "expanded",
        }
    }
}

/// How much of the message a failure report returns (RFC 3461 4.3 RET).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Ret {
    /// The whole message; also what a sender who gave no RET gets, as from Postfix: the
    /// message back is what helps most, and RFC 3461 4.3 leaves the choice to the MTA.
    #[default]
    Full,
    /// Only its header.
    Headers,
}

impl From<tern_smtp::Ret> for Ret {
    fn from(ret: tern_smtp::Ret) -> Self {
        match ret {
            tern_smtp::Ret::Full => Ret::Full,
            tern_smtp::Ret::Hdrs => Ret::Headers,
        }
    }
}

/// One recipient of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRecipient<'a> {
    /// The address the delivery was for (the RCPT TO path, without `<>`).
    pub final_recipient: &'a str,
    /// The ORCPT as stored: `addr-type;address`, the address xtext-decoded.
    pub original_recipient: Option<&'a str>,
    pub action: Action,
    /// RFC 3463 code.
    pub status: &'a str,
    /// Host name of the server that gave the diagnostic; written as `dns; <host>`.
    pub remote_mta: Option<&'a str>,
    /// The `Diagnostic-Code` value as [`super::outcome::Verdict`] displays it: `smtp; 550 5.1.1
    /// text` for a remote reply, `x-tern; text` for a local failure. A value without a
    /// diagnostic type is taken to be a bare SMTP reply.
    pub diagnostic: Option<&'a str>,
    pub last_attempt: Option<OffsetDateTime>,
    /// Only for [`Action::Delayed`]: when the queue will give up.
    pub will_retry_until: Option<OffsetDateTime>,
}

/// Everything a report is made from.
#[derive(Debug, Clone)]
pub struct DsnInput<'a> {
    /// Our host name; the field is `Reporting-MTA: dns; <name>`.
    pub reporting_mta: &'a str,
    /// The decoded ENVID, when the sender gave one.
    pub original_envelope_id: Option<&'a str>,
    /// When the message was received.
    pub arrival_date: OffsetDateTime,
    /// Shown to the reader and as `X-Tern-Queue-ID`.
    pub queue_id: &'a str,
    /// The envelope sender the report goes to; never empty (nothing reports on a report).
    pub original_sender: &'a str,
    /// RET. It only decides failure reports: delay and success reports return the header
    /// alone, since RET asks what comes back with a failure and a success needs no evidence.
    pub ret: Ret,
    pub recipients: Vec<DsnRecipient<'a>>,
    /// The message as stored (our `Received:` header and the bytes received).
    pub original_message: &'a [u8],
    pub now: OffsetDateTime,
    /// Domain of `From: MAILER-DAEMON@...` and of the `Message-ID`.
    pub message_id_domain: &'a str,
    /// The original was sent with SMTPUTF8.
    pub smtputf8: bool,
}

/// The report as a whole: decided by the most serious action among its recipients, it picks
/// the subject, the introduction and how much of the message goes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Failure,
    Delay,
    Success,
}

impl Kind {
    fn of(recipients: &[DsnRecipient<'_>]) -> Kind {
        let has = |action| recipients.iter().any(|r| r.action == action);
        if has(Action::Failed) {
            Kind::Failure
        } else if has(Action::Delayed) {
            Kind::Delay
        } else {
            Kind::Success
        }
    }
}

/// Builds the report. It is 8-bit (to be sent with BODY=8BITMIME) exactly when it is not
/// ASCII; its own header is ASCII unless the sender's address is not, which is when sending
/// it needs SMTPUTF8.
pub fn build(input: &DsnInput<'_>) -> Vec<u8> {
    let global = is_global(input);
    let kind = Kind::of(&input.recipients);
    let returned = returned::choose(kind, input.ret, input.original_message);
    let human = human::text(input, kind, &returned, global);
    let report = report::fields(input, global);
    let original = returned.bytes().unwrap_or_default();
    let boundary = boundary(&[human.as_bytes(), report.as_bytes(), original], || {
        format!("=_tern_{}", Uuid::new_v4().simple())
    });
    let eight_bit = !(human.is_ascii() && report.is_ascii() && original.is_ascii());

    let mut bytes = head(input, kind, &boundary, eight_bit, global).into_bytes();
    let (charset, report_type) = if global {
        ("utf-8", "message/global-delivery-status")
    } else {
        ("us-ascii", "message/delivery-status")
    };
    let text_type = format!("text/plain; charset={charset}");
    part(
        &mut bytes,
        &boundary,
        &text_type,
        "Notification",
        human.as_bytes(),
    );
    part(
        &mut bytes,
        &boundary,
        report_type,
        "Delivery report",
        report.as_bytes(),
    );
    if let Some(content_type) = returned.content_type(global) {
        part(
            &mut bytes,
            &boundary,
            content_type,
            returned.description(),
            original,
        );
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    bytes
}

/// The report's own header, the empty line and a preamble for readers without MIME.
fn head(input: &DsnInput<'_>, kind: Kind, boundary: &str, eight_bit: bool, global: bool) -> String {
    let mut head = String::with_capacity(1024);
    let domain = clean(input.message_id_domain, global);
    let sender = clean(input.original_sender, global);
    field(
        &mut head,
        "From",
        &format!("Mail Delivery System <MAILER-DAEMON@{domain}>"),
    );
    field(&mut head, "To", &format!("<{sender}>"));
    field(&mut head, "Subject", human::subject(kind));
    field(&mut head, "Date", &date(input.now));
    let id = Uuid::new_v4().simple();
    field(&mut head, "Message-ID", &format!("<{id}@{domain}>"));
    field(&mut head, "MIME-Version", "1.0");
    // RFC 3834 5: keeps vacation responders and the like from answering a report.
    field(&mut head, "Auto-Submitted", "auto-replied");
    let content_type =
        format!("multipart/report; report-type=delivery-status; boundary=\"{boundary}\"");
    field(&mut head, "Content-Type", &content_type);
    if eight_bit {
        field(&mut head, "Content-Transfer-Encoding", "8bit");
    }
    head.push_str("\r\nThis is a delivery status notification in MIME format.\r\n");
    head
}

/// RFC 6533 types are needed when an address cannot be written in ASCII, and when the original
/// was an SMTPUTF8 message, whose header may be UTF-8 that `message/rfc822` cannot carry.
fn is_global(input: &DsnInput<'_>) -> bool {
    input.smtputf8
        || !input.original_sender.is_ascii()
        || input.recipients.iter().any(|r| {
            !r.final_recipient.is_ascii() || r.original_recipient.is_some_and(|o| !o.is_ascii())
        })
}

/// Appends a delimiter, the part's header and its body. The CRLF before each delimiter belongs
/// to the delimiter (RFC 2046 5.1.1), so a body is returned exactly as it was.
fn part(out: &mut Vec<u8>, boundary: &str, content_type: &str, description: &str, body: &[u8]) {
    let mut head = format!("\r\n--{boundary}\r\n");
    field(&mut head, "Content-Description", description);
    field(&mut head, "Content-Type", content_type);
    let encoding = if body.is_ascii() { "7bit" } else { "8bit" };
    field(&mut head, "Content-Transfer-Encoding", encoding);
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
}

/// The first candidate that occurs in none of the bodies. A random one all but never does,
/// but a returned message is the sender's, and it may quote another report's boundary.
fn boundary(bodies: &[&[u8]], mut candidate: impl FnMut() -> String) -> String {
    loop {
        let boundary = candidate();
        let needle = boundary.as_bytes();
        if !bodies
            .iter()
            .any(|body| body.windows(needle.len()).any(|w| w == needle))
        {
            return boundary;
        }
    }
}
