//! DNS blocklists at connect: the port 25 role asks every configured list about a client before
//! greeting it, unless the client is trusted or allowlisted, and refuses it with `554 5.7.1`
//! when its listings weigh enough (the one place a report becomes a reply).

use std::net::IpAddr;

use tern_common::dnsbl::{Dnsbl, Report, SiteResult};
use tern_smtp::{Refusal, Reply};

use crate::metrics;

/// The reply that refuses `client`, or `None` to greet it.
pub(crate) async fn at_connect(dnsbl: &Dnsbl, client: IpAddr) -> Option<Reply> {
    let report = dnsbl.check(client).await;
    for (site, result) in &report.results {
        metrics::dnsbl_result(&site.zone, result.label());
        if let SiteResult::Error(reason) = result {
            tracing::debug!(client = %client, zone = %site.zone, %reason, "DNSBL gave no answer");
        }
    }
    let reply = verdict(dnsbl, &report, client)?;
    tracing::info!(client = %client, score = report.score(), reply = %reply, "client refused by DNS blocklists");
    Some(reply)
}

/// The reply `report` earns `client`, when its listings weigh enough.
pub(crate) fn verdict(dnsbl: &Dnsbl, report: &Report, client: IpAddr) -> Option<Reply> {
    if report.score() < dnsbl.threshold {
        return None;
    }
    let zones = report.listed_by().join(", ");
    // Postfix's wording, so that senders' tools recognise it.
    let reply = Reply::new(
        554,
        "5.7.1",
        format!("Service unavailable; client [{client}] blocked using {zones}"),
    );
    Some(reply.because(Refusal::Dnsbl))
}
