//! The control plane's blocklist at each stage of a session, and the one place a matching entry
//! becomes a reply.
//!
//! Client addresses and networks are judged at connect (`554 5.7.1` in the greeting, or `421
//! 4.7.1` for a temporary refusal, then close). HELO names and senders are judged when the
//! client says MAIL, recipients at RCPT (`550 5.7.1`, or `450 4.7.1`). HELO entries wait for MAIL
//! as Postfix's `smtpd_delay_reject` does: some clients handle a refused HELO badly, and the
//! client then hears why in the reply to the command that would have started a transaction. An
//! `allow` entry that matches makes the session allowlisted: the checks after it are skipped.

use std::net::IpAddr;

use tern_common::control::{BlockAction, Blocked, ControlPlane};
use tern_smtp::{Refusal, Reply};
use time::OffsetDateTime;

/// What a stage of the blocklist says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gate {
    /// No entry matched.
    Pass,
    /// An allow entry matched: skip the blocklist from here on.
    Allowlisted,
    Refuse(Reply),
}

pub(crate) fn at_connect(plane: &ControlPlane, client: IpAddr, now: OffsetDateTime) -> Gate {
    gate(plane.check_client(client, now), |blocked| {
        let reason = reason(blocked, "listed");
        match blocked.action {
            BlockAction::Tempfail => Reply::new(
                421,
                "4.7.1",
                format!("Client host [{client}] temporarily refused: {reason}"),
            ),
            _ => Reply::new(
                554,
                "5.7.1",
                format!("Client host [{client}] blocked: {reason}"),
            ),
        }
    })
}

/// The HELO name, then the sender (`""` for `<>`, which no entry matches).
pub(crate) fn at_mail(
    plane: &ControlPlane,
    helo: Option<&str>,
    sender: &str,
    now: OffsetDateTime,
) -> Gate {
    if let Some(helo) = helo {
        let helo_gate = gate(plane.check_helo(helo, now), |blocked| {
            refused(blocked, &format!("<{helo}>: Helo command rejected"))
        });
        if helo_gate != Gate::Pass {
            return helo_gate;
        }
    }
    gate(plane.check_sender(sender, now), |blocked| {
        refused(blocked, &format!("<{sender}>: Sender address rejected"))
    })
}

pub(crate) fn at_rcpt(plane: &ControlPlane, recipient: &str, now: OffsetDateTime) -> Gate {
    gate(plane.check_recipient(recipient, now), |blocked| {
        refused(
            blocked,
            &format!("<{recipient}>: Recipient address rejected"),
        )
    })
}

fn gate(found: Option<Blocked>, reply: impl FnOnce(&Blocked) -> Reply) -> Gate {
    match found {
        None => Gate::Pass,
        Some(blocked) if blocked.action == BlockAction::Allow => Gate::Allowlisted,
        Some(blocked) => Gate::Refuse(reply(&blocked).because(Refusal::Blocklisted)),
    }
}

/// `550 5.7.1` for a rejection, `450 4.7.1` for a temporary one (Postfix's access-map codes).
fn refused(blocked: &Blocked, what: &str) -> Reply {
    let reason = reason(blocked, "Access denied");
    match blocked.action {
        BlockAction::Tempfail => Reply::new(450, "4.7.1", format!("{what}: {reason}")),
        _ => Reply::new(550, "5.7.1", format!("{what}: {reason}")),
    }
}

fn reason<'a>(blocked: &'a Blocked, default: &'a str) -> &'a str {
    match blocked.reason.trim() {
        "" => default,
        reason => reason,
    }
}

#[cfg(test)]
mod tests {
    use tern_common::control::{BlockEntry, BlockKind, ControlRows, Owner};

    use super::*;

    fn plane(entries: &[(BlockKind, &str, BlockAction)]) -> ControlPlane {
        let entries = entries
            .iter()
            .enumerate()
            .map(|(id, (kind, value, action))| BlockEntry {
                id: id as i64,
                kind: *kind,
                value: (*value).to_owned(),
                action: *action,
                reason: if *action == BlockAction::Tempfail {
                    String::new()
                } else {
                    "spam source".into()
                },
                expires_at: None,
                owner: Owner::Api,
            })
            .collect();
        ControlPlane::new(
            1,
            ControlRows {
                blocklist: entries,
                ..ControlRows::default()
            },
        )
    }

    fn reply(gate: Gate) -> String {
        match gate {
            Gate::Refuse(reply) => reply.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn each_stage_answers_with_its_own_code_and_the_entry_reason() {
        let now = OffsetDateTime::now_utc();
        let plane = plane(&[
            (BlockKind::Ip, "192.0.2.1", BlockAction::Reject),
            (BlockKind::Ip, "192.0.2.2", BlockAction::Tempfail),
            (BlockKind::Ip, "192.0.2.3", BlockAction::Allow),
            (BlockKind::Helo, "spammer", BlockAction::Reject),
            (BlockKind::SenderDomain, "spam.example", BlockAction::Reject),
            (
                BlockKind::Recipient,
                "gone@tern.test",
                BlockAction::Tempfail,
            ),
        ]);
        let ip = |s: &str| s.parse().expect("ip");
        assert_eq!(
            reply(at_connect(&plane, ip("192.0.2.1"), now)),
            "554 5.7.1 Client host [192.0.2.1] blocked: spam source"
        );
        assert_eq!(
            reply(at_connect(&plane, ip("192.0.2.2"), now)),
            "421 4.7.1 Client host [192.0.2.2] temporarily refused: listed"
        );
        assert_eq!(at_connect(&plane, ip("192.0.2.3"), now), Gate::Allowlisted);
        assert_eq!(at_connect(&plane, ip("198.51.100.1"), now), Gate::Pass);
        assert_eq!(
            reply(at_mail(&plane, Some("SPAMMER"), "a@ham.example", now)),
            "550 5.7.1 <SPAMMER>: Helo command rejected: spam source"
        );
        assert_eq!(
            reply(at_mail(&plane, Some("friend"), "a@spam.example", now)),
            "550 5.7.1 <a@spam.example>: Sender address rejected: spam source"
        );
        assert_eq!(at_mail(&plane, Some("friend"), "", now), Gate::Pass);
        assert_eq!(
            reply(at_rcpt(&plane, "gone@tern.test", now)),
            "450 4.7.1 <gone@tern.test>: Recipient address rejected: Access denied"
        );
    }
}
