//! `tern-bench-dns ADDRESS_FILE`: an authoritative DNS server on 127.0.0.1 for the policy
//! benchmark, answering what a sender's domain and the DNS lists would: the bench domain's SPF
//! record, and NXDOMAIN (not listed) for every DNSBL query. It writes its `address:port` to
//! ADDRESS_FILE and serves until it is killed.

use anyhow::Context as _;
use tern_testkit::dns::TestDns;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: tern-bench-dns ADDRESS_FILE")?;
    let dns = TestDns::start().await;
    // smtp-source's default sender and HELO domains (the harness's bench.test).
    dns.add_txt("bench.test", "v=spf1 ip4:127.0.0.0/8 -all");
    std::fs::write(&path, dns.addr().to_string()).with_context(|| format!("writing {path}"))?;
    // Served by the server's own tasks until this process is killed.
    std::future::pending::<()>().await;
    Ok(())
}
