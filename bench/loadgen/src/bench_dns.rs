//! `tern-bench-dns ADDRESS_FILE [NAME=TEXT ...]`: an authoritative DNS server on 127.0.0.1 for
//! the policy benchmarks, answering what a sender's domain and the DNS lists would: the bench
//! domain's SPF and DMARC records, a TXT record for each `NAME=TEXT` (a DKIM key), and NXDOMAIN
//! (not listed) for every DNSBL query. It writes its `address:port` to ADDRESS_FILE and serves
//! until it is killed.

use anyhow::Context as _;
use tern_testkit::dns::TestDns;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .context("usage: tern-bench-dns ADDRESS_FILE [NAME=TEXT ...]")?;
    let dns = TestDns::start().await;
    for record in args {
        let (name, text) = record
            .split_once('=')
            .with_context(|| format!("'{record}' is not NAME=TEXT"))?;
        dns.add_txt(name, text);
    }
    // smtp-source's default sender and HELO domains (the harness's bench.test).
    dns.add_txt("bench.test", "v=spf1 ip4:127.0.0.0/8 -all");
    // A DMARC policy to evaluate (SPF passes aligned; smtp-source's mail carries no signature).
    dns.add_txt("_dmarc.bench.test", "v=DMARC1; p=reject");
    std::fs::write(&path, dns.addr().to_string()).with_context(|| format!("writing {path}"))?;
    // Served by the server's own tasks until this process is killed.
    std::future::pending::<()>().await;
    Ok(())
}
