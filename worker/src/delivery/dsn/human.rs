//! The part a person reads, and the subject. Plain wording, one paragraph per recipient; the
//! machine-readable part carries the same facts for software.

use super::fields::{clean, date, wrap};
use super::report::split_type;
use super::returned::Returned;
use super::{Action, DsnInput, DsnRecipient, Kind};

pub(super) fn subject(kind: Kind) -> &'static str {
    match kind {
        Kind::Failure => "Undelivered Mail Returned to Sender",
        Kind::Delay => "Delayed Mail (still being retried)",
        Kind::Success => "Successful Mail Delivery Report",
    }
}

/// The text/plain body, CRLF line endings, lines wrapped.
pub(super) fn text(
    input: &DsnInput<'_>,
    kind: Kind,
    returned: &Returned<'_>,
    global: bool,
) -> String {
    let mut out = String::with_capacity(1024);
    let mta = clean(input.reporting_mta, global);
    wrap(&mut out, &format!("This is the mail system at {mta}."), "");
    out.push_str("\r\n");
    wrap(&mut out, introduction(kind), "");
    out.push_str("\r\n");
    let queue_id = clean(input.queue_id, global);
    wrap(
        &mut out,
        &format!(
            "Queue ID {queue_id}, received {}.",
            date(input.arrival_date)
        ),
        "",
    );
    for recipient in &input.recipients {
        out.push_str("\r\n");
        recipient_text(&mut out, recipient, global);
    }
    if let Some(note) = attachment(returned) {
        out.push_str("\r\n");
        wrap(&mut out, note, "");
    }
    out
}

fn introduction(kind: Kind) -> &'static str {
    match kind {
        Kind::Failure => {
            "Your message could not be delivered to one or more of its recipients, and the \
             mail system has stopped trying. Each recipient is listed below with the reason."
        }
        Kind::Delay => {
            "Your message has not yet reached one or more of its recipients. This is only a \
             warning: the mail system is still trying, and you do not need to send the \
             message again."
        }
        Kind::Success => {
            "Your message reached the recipients listed below, as you asked to be told."
        }
    }
}

fn recipient_text(out: &mut String, recipient: &DsnRecipient<'_>, global: bool) {
    let address = clean(recipient.final_recipient, global);
    let status = clean(recipient.status, global);
    let what = match recipient.action {
        Action::Failed => "delivery failed",
        Action::Delayed => "delivery delayed",
        Action::Delivered => "delivered",
        Action::Relayed => "passed on to a system that sends no further reports",
        Action::Expanded => "delivered to a list, which sent it on",
    };
    wrap(out, &format!("<{address}>: {what} ({status})"), "");
    if let Some(diagnostic) = recipient.diagnostic {
        let diagnostic = clean(diagnostic, global);
        let (kind, text) = split_type(&diagnostic).unwrap_or(("smtp", &diagnostic));
        let reason = match recipient.remote_mta {
            Some(mta) if kind.eq_ignore_ascii_case("smtp") => {
                format!("{} answered: {text}", clean(mta, global))
            }
            _ => text.to_owned(),
        };
        wrap(out, &reason, "    ");
    }
    if let Some(until) = recipient.will_retry_until {
        wrap(out, &format!("Still trying until {}.", date(until)), "    ");
    }
}

fn attachment(returned: &Returned<'_>) -> Option<&'static str> {
    match returned {
        Returned::Whole(_) => Some("Your message is attached."),
        Returned::Header {
            instead_of_whole: false,
            ..
        } => Some("The header of your message is attached."),
        Returned::Header {
            instead_of_whole: true,
            ..
        } => Some("Your message could not be returned whole; its header is attached."),
        Returned::Nothing => None,
    }
}
