//! The machine-readable part: RFC 3464 per-message and per-recipient fields, in the order of
//! its grammar (2.2 and 2.3).

use super::fields::{clean, date, field};
use super::{DsnInput, DsnRecipient};

/// The body of the `message/delivery-status` (or `message/global-delivery-status`) part: the
/// per-message block, then one block per recipient, each after an empty line.
pub(super) fn fields(input: &DsnInput<'_>, global: bool) -> String {
    let mut out = String::with_capacity(256 + 384 * input.recipients.len());
    if let Some(envid) = input.original_envelope_id {
        // Stored xtext-decoded; RFC 3464 2.2.1 wants it exactly as the sender gave it.
        field(&mut out, "Original-Envelope-Id", &clean(envid, global));
    }
    let mta = clean(input.reporting_mta, global);
    field(&mut out, "Reporting-MTA", &format!("dns; {mta}"));
    field(&mut out, "X-Tern-Queue-ID", &clean(input.queue_id, global));
    field(&mut out, "Arrival-Date", &date(input.arrival_date));
    for recipient in &input.recipients {
        out.push_str("\r\n");
        recipient_fields(&mut out, recipient, global);
    }
    out
}

fn recipient_fields(out: &mut String, recipient: &DsnRecipient<'_>, global: bool) {
    if let Some(original) = recipient.original_recipient {
        field(
            out,
            "Original-Recipient",
            &original_recipient(original, global),
        );
    }
    let address = clean(recipient.final_recipient, global);
    field(
        out,
        "Final-Recipient",
        &format!("{}; {address}", address_type(&address)),
    );
    field(out, "Action", recipient.action.as_str());
    field(out, "Status", &clean(recipient.status, global));
    if let Some(mta) = recipient.remote_mta {
        field(out, "Remote-MTA", &typed("dns", &clean(mta, global)));
    }
    if let Some(diagnostic) = recipient.diagnostic {
        field(
            out,
            "Diagnostic-Code",
            &typed("smtp", &clean(diagnostic, global)),
        );
    }
    if let Some(at) = recipient.last_attempt {
        field(out, "Last-Attempt-Date", &date(at));
    }
    if let Some(until) = recipient.will_retry_until {
        field(out, "Will-Retry-Until", &date(until));
    }
}

/// `rfc822` for an ASCII address; RFC 6533 3 gives a UTF-8 address the `utf-8` type, which
/// only a global report carries raw (an ASCII report has no non-ASCII address to show).
fn address_type(address: &str) -> &'static str {
    if address.is_ascii() {
        "rfc822"
    } else {
        "utf-8"
    }
}

/// The stored ORCPT (`type;address`), its type corrected to `utf-8` when an `rfc822` address
/// turned out not to be ASCII; a value without a type is taken as an `rfc822` address.
fn original_recipient(stored: &str, global: bool) -> String {
    let stored = clean(stored, global);
    match stored.split_once(';') {
        Some((kind, address)) if kind.eq_ignore_ascii_case("rfc822") => {
            format!("{};{address}", address_type(address))
        }
        Some((kind, address)) => format!("{kind};{address}"),
        None => format!("{};{stored}", address_type(&stored)),
    }
}

/// `value` when it already starts with a type (`dns;`, `smtp;`, `x-tern;`: a name and a
/// semicolon), else `kind; value`. An SMTP reply starts with digits and a host name has no
/// semicolon, so neither is mistaken for a typed value.
pub(super) fn typed(kind: &str, value: &str) -> String {
    match split_type(value) {
        Some(_) => value.to_owned(),
        None => format!("{kind}; {value}"),
    }
}

/// The type and the text of a typed value such as `smtp; 550 5.1.1 text`.
pub(super) fn split_type(value: &str) -> Option<(&str, &str)> {
    let (kind, text) = value.split_once(';')?;
    let atom = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    let named = kind.starts_with(|c: char| c.is_ascii_alphabetic()) && kind.chars().all(atom);
    named.then(|| (kind, text.trim_start()))
}
