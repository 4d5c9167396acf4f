//! `tern-otlp-sink`: an OTLP/gRPC trace receiver for the tracing benchmark. It stands where a
//! collector would, keeps every span it is sent, prints its endpoint on the first line and then
//! the number of spans received once a second, until it is killed.

use std::time::Duration;

use anyhow::Context as _;
use tern_testkit::otlp::OtlpReceiver;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let receiver = OtlpReceiver::start()
        .await
        .context("start the OTLP receiver")?;
    println!("endpoint {}", receiver.endpoint());
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let spans = receiver.span_count();
        if spans != last {
            println!("spans {spans}");
            last = spans;
        }
    }
}
