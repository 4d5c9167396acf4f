//! Troubleshooting: what this pod's checks would decide about a client, a sender, recipients and
//! a message, step by step and with what DNS said, without receiving mail or changing any state.
//! Counting checks (the rate limits) are described, not counted; greylisting is read, not
//! recorded. The admin API asks over NATS ([`tern_common::troubleshoot`]), one pod answers.

use futures::StreamExt as _;
use tern_common::bus::Bus;
use tern_common::checks::{Check, ListenerKind};
use tern_common::dnsbl::SiteResult;
use tern_common::greylist::{Grey, Triplet};
use tern_common::policy::RelayDecision;
use tern_common::troubleshoot::{
    Outcome, PolicyAnswer, PolicyQuestion, PolicyRefusal, PolicyReply, PolicyStep,
};
use tern_smtp::{ForwardPath, Reply, ReversePath};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::blocklist::{self, Gate};
use crate::connection::Sessions;
use crate::findings::Findings;
use crate::policy::Standing;
use crate::{dnsbl, spf};

/// Answers the questions that reach this pod until `stop`.
pub(crate) async fn serve<Q>(
    bus: Bus,
    sessions: std::sync::Arc<Sessions<Q>>,
    stop: CancellationToken,
) where
    Q: Send + Sync + 'static,
{
    let mut questions = match bus.policy_questions().await {
        Ok(questions) => questions,
        Err(error) => {
            tracing::warn!(%error, "policy troubleshooting questions not taken on this pod");
            return;
        }
    };
    while let Some(message) = stop.run_until_cancelled(questions.next()).await.flatten() {
        let Some(reply_to) = message.reply else {
            continue;
        };
        let reply = match serde_json::from_slice::<PolicyQuestion>(&message.payload) {
            Ok(question) => answer(&sessions, &question).await,
            Err(error) => refused("body", error.to_string()),
        };
        let payload = serde_json::to_vec(&reply).unwrap_or_default();
        if let Err(error) = bus.client().publish(reply_to, payload.into()).await {
            tracing::warn!(%error, "policy troubleshooting answer not sent");
        }
    }
}

fn refused(field: &str, reason: impl Into<String>) -> PolicyReply {
    PolicyReply::Refused(PolicyRefusal {
        field: field.to_owned(),
        reason: reason.into(),
    })
}

/// The steps a session would take, in order, and how it would end.
struct Steps(Vec<PolicyStep>);

impl Steps {
    fn add(
        &mut self,
        stage: &str,
        check: &str,
        result: &str,
        reply: Option<&Reply>,
        detail: String,
    ) {
        self.0.push(PolicyStep {
            stage: stage.to_owned(),
            check: check.to_owned(),
            result: result.to_owned(),
            reply: reply.map(ToString::to_string),
            detail,
        });
    }

    /// Adds a blocklist stage; `true` when an allow entry matched.
    fn blocklist(&mut self, stage: &str, gate: Gate) -> bool {
        match gate {
            Gate::Pass => self.add(stage, "blocklist", "pass", None, "no entry matches".into()),
            Gate::Allowlisted => {
                self.add(
                    stage,
                    "blocklist",
                    "allow",
                    None,
                    "an allow entry matches: the blocklist and the reputation checks are skipped from here on".into(),
                );
                return true;
            }
            Gate::Refuse(reply) => self.add(
                stage,
                "blocklist",
                "listed",
                Some(&reply),
                "a control-plane entry matches".into(),
            ),
        }
        false
    }

    fn outcome(&self) -> Outcome {
        let first = self.0.iter().find_map(|step| step.reply.as_deref());
        match first {
            None => Outcome::Accept,
            Some(reply) if reply.starts_with('4') => Outcome::Defer,
            Some(_) => Outcome::Reject,
        }
    }
}

pub(crate) async fn answer<Q>(sessions: &Sessions<Q>, question: &PolicyQuestion) -> PolicyReply {
    let sender = match ReversePath::parse_text(&question.sender) {
        Ok(sender) => sender,
        Err(reason) => return refused("sender", reason),
    };
    let mut recipients = Vec::new();
    for (at, text) in question.recipients.iter().enumerate() {
        match ForwardPath::parse_text(text) {
            Ok(path) => recipients.push(path),
            Err(reason) => return refused("recipients", format!("entry {at}: {reason}")),
        }
    }
    let plane = sessions.control.current();
    let policy = sessions.policy.current();
    let now = OffsetDateTime::now_utc();
    let client = question.client;
    let mut steps = Steps(Vec::new());

    // Connect.
    let trusted = sessions.relay.trusts(&plane, client);
    let mut allowlisted = steps.blocklist("connect", blocklist::at_connect(&plane, client, now));
    let authenticated = question.login.is_some();
    // Reputation checks are for strangers (neither trusted nor authenticated nor allowlisted),
    // and each listener runs the ones its policy names.
    let standing = |allowlisted: bool| Standing {
        listener: question.listener,
        stranger: !trusted && !authenticated && !allowlisted,
        trusted,
    };
    let (result, detail) = match (trusted, authenticated) {
        (true, _) => (
            "trusted",
            "trusted network: reputation checks skipped, relaying allowed".to_owned(),
        ),
        (false, true) => (
            "trusted",
            "authenticated: reputation checks skipped, relaying allowed".to_owned(),
        ),
        (false, false) => (
            "stranger",
            format!(
                "a stranger on the {} listener: the checks it runs are {}",
                question.listener.label(),
                policy.checks.of(question.listener)
            ),
        ),
    };
    steps.add("connect", "standing", result, None, detail);
    if policy.applies(standing(allowlisted), Check::Dnsbl)
        && let Some(lists) = &policy.dnsbl
    {
        let report = lists.check(client).await;
        let mut detail: Vec<String> = report
            .results
            .iter()
            .map(|(site, result)| match result {
                SiteResult::Listed(answers) => {
                    let answers: Vec<String> = answers.iter().map(ToString::to_string).collect();
                    format!(
                        "{} listed ({}) weight {}",
                        site.query_name(client),
                        answers.join(", "),
                        site.weight
                    )
                }
                SiteResult::NotListed => format!("{}: not listed", site.query_name(client)),
                SiteResult::Error(reason) => {
                    format!("{}: no answer ({reason})", site.query_name(client))
                }
            })
            .collect();
        detail.push(format!(
            "score {} against threshold {}",
            report.score(),
            lists.threshold
        ));
        let reply = dnsbl::verdict(lists, &report, client);
        let result = if reply.is_some() { "listed" } else { "pass" };
        steps.add(
            "connect",
            "dnsbl",
            result,
            reply.as_ref(),
            detail.join("; "),
        );
    }
    if !policy.greet_delay_for(standing(allowlisted)).is_zero() {
        steps.add(
            "connect",
            "greet_delay",
            "pass",
            None,
            format!(
                "the greeting waits {} s; a client that talks first is refused",
                policy.greet_delay.as_secs()
            ),
        );
    }

    // HELO: judged at once only when invalid names are refused; the blocklist's HELO entries
    // wait for MAIL, as in a session.
    if sessions.session.reject_invalid_helo && !tern_smtp::helo_is_valid(&question.helo) {
        let reply = Reply::new(
            501,
            "5.5.2",
            format!("<{}>: Helo command rejected: Invalid name", question.helo),
        );
        steps.add(
            "helo",
            "helo_syntax",
            "invalid",
            Some(&reply),
            "neither a domain name nor an address literal".into(),
        );
    }

    // MAIL: the submission listeners take mail only after AUTH (RFC 6409).
    if question.listener != ListenerKind::Smtp && !authenticated {
        steps.add(
            "mail",
            "auth",
            "required",
            Some(&Reply::auth_required()),
            "the submission listeners take mail only from authenticated clients".into(),
        );
    }
    let sender_text = match &sender {
        ReversePath::Null => String::new(),
        ReversePath::Mailbox(mailbox) => mailbox.to_string(),
    };
    if !allowlisted && plane.blocklist_len() > 0 {
        allowlisted |= steps.blocklist(
            "mail",
            blocklist::at_mail(&plane, Some(&question.helo), &sender_text, now),
        );
    }
    let mut findings = Findings::default();
    if let Some(limits) = &policy.rate_limits {
        steps.add("mail", "rate_limit", "not_counted", None, limits.describe());
    }
    if policy.applies(standing(allowlisted), Check::Spf)
        && let Some(spf) = &policy.spf
    {
        let checked = spf.check(client, &question.helo, &sender_text).await;
        steps.add(
            "mail",
            "spf",
            spf::label(checked.output.result()),
            checked.refusal.as_ref(),
            checked.result.clone(),
        );
        findings.spf = Some(checked.output);
    }

    // RCPT.
    for recipient in &recipients {
        let shown = recipient.to_string();
        if !allowlisted && plane.blocklist_len() > 0 {
            allowlisted |= steps.blocklist("rcpt", blocklist::at_rcpt(&plane, &shown, now));
        }
        let decision = if authenticated {
            RelayDecision::Relay
        } else {
            sessions.relay.decide_with(&plane, recipient, client)
        };
        match decision {
            RelayDecision::Local => steps.add(
                "rcpt",
                "relay",
                "local",
                None,
                format!("{shown}: a domain Tern takes mail for"),
            ),
            RelayDecision::Relay => steps.add(
                "rcpt",
                "relay",
                "relay",
                None,
                format!("{shown}: relayed for a trusted client"),
            ),
            RelayDecision::Denied => steps.add(
                "rcpt",
                "relay",
                "denied",
                Some(&Reply::relay_denied()),
                format!("{shown}: neither our domain nor a trusted client"),
            ),
        }
        if decision == RelayDecision::Local
            && policy.applies(standing(allowlisted), Check::Greylist)
            && let Some(list) = &policy.greylist
        {
            let triplet = Triplet::new(client, &sender_text, &shown);
            match list.peek(&triplet).await {
                Ok(Grey::Passed) => steps.add(
                    "rcpt",
                    "greylist",
                    "pass",
                    None,
                    "the triplet has passed before".into(),
                ),
                Ok(Grey::ClientAllowed) => steps.add(
                    "rcpt",
                    "greylist",
                    "pass",
                    None,
                    "the client network has passed often enough to skip greylisting".into(),
                ),
                Ok(Grey::Deferred { retry_after }) => {
                    let reply = Reply::new(
                        451,
                        "4.7.1",
                        format!(
                            "<{shown}>: Recipient address rejected: Greylisted, try again in {} seconds",
                            retry_after.as_secs().max(1)
                        ),
                    );
                    steps.add(
                        "rcpt",
                        "greylist",
                        "deferred",
                        Some(&reply),
                        "a new triplet, or one still inside its delay (nothing was recorded)"
                            .into(),
                    );
                }
                Err(error) => steps.add(
                    "rcpt",
                    "greylist",
                    "error",
                    Some(&Reply::policy_unavailable()),
                    error.to_string(),
                ),
            }
        }
    }

    // End of data.
    if let Some(message) = &question.message
        && let dmarc = policy.applies(standing(allowlisted), Check::Dmarc)
        && (dmarc || policy.applies(standing(allowlisted), Check::Dkim))
        && let Some(dkim) = &policy.dkim
    {
        let refusal = dkim.check(message.as_bytes(), dmarc, &mut findings).await;
        let result = if refusal.is_some() {
            "refused"
        } else {
            "recorded"
        };
        let mut detail = findings.methods.join("; ");
        if let Some(mark) = &findings.quarantine {
            detail.push_str(&format!("; marked X-Tern-Quarantine: {mark}"));
        }
        steps.add("data", "dkim_dmarc", result, refusal.as_ref(), detail);
    }

    PolicyReply::Answer(PolicyAnswer {
        pod: sessions.session.hostname.clone(),
        revision: plane.revision,
        outcome: steps.outcome(),
        steps: steps.0,
    })
}
