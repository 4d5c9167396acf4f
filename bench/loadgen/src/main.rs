//! `tern-loadgen`: drives an SMTP server with many concurrent sessions, each carrying messages
//! until the total is sent, and prints how long it took. It exists for the TLS benchmark:
//! Postfix's `smtp-source` cannot STARTTLS. It uses Tern's own delivery client, so it pipelines
//! when the server offers PIPELINING, exactly as it would towards any peer; Tern and Postfix
//! both offer it, so both see the same client.
//!
//! Output, one line: `messages=… failed=… seconds=… per_second=…`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use tern_worker::delivery::client::{
    ClientConfig, Connection, Envelope, EnvelopeRecipient, Protocol, Timeouts, TlsMode,
};
use tern_worker::delivery::tls;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Tls {
    /// Plain SMTP.
    None,
    /// STARTTLS after the first EHLO, certificate not checked.
    Starttls,
}

#[derive(Debug, Parser)]
struct Args {
    /// Server address, e.g. 127.0.0.1:2625.
    server: SocketAddr,
    #[arg(long, default_value_t = 10)]
    sessions: u64,
    /// Messages in all, shared by the sessions.
    #[arg(long, default_value_t = 1000)]
    messages: u64,
    /// Message size in bytes (headers included, roughly).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Send this message (header and body, CRLF line ends) instead of a made-up one of `--size`
    /// bytes: a signed one, for instance.
    #[arg(long)]
    message: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 1)]
    recipients: usize,
    /// Recipient domain; recipients are `rcptN@DOMAIN`.
    #[arg(long, default_value = "bench.test")]
    domain: String,
    #[arg(long, value_enum, default_value = "starttls")]
    tls: Tls,
    /// Messages per connection before QUIT and a new connection (and handshake); 0: no limit.
    /// 1 is what an MX sees: most senders bring one message per connection.
    #[arg(long, default_value_t = 0)]
    per_connection: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.sessions == 0 || args.recipients == 0 {
        bail!("--sessions and --recipients must be at least 1");
    }
    let config = Arc::new(client_config()?);
    let body: Arc<[u8]> = match &args.message {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("reading {}", path.display()))?
            .into(),
        None => message(args.size).into(),
    };
    let recipients: Arc<[String]> = (1..=args.recipients)
        .map(|n| format!("rcpt{n}@{}", args.domain))
        .collect();
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut sessions = Vec::new();
    for _ in 0..args.sessions {
        let session = Session {
            server: args.server,
            tls: args.tls,
            total: args.messages,
            per_connection: args.per_connection,
            config: Arc::clone(&config),
            body: Arc::clone(&body),
            recipients: Arc::clone(&recipients),
            next: Arc::clone(&next),
            failed: Arc::clone(&failed),
        };
        sessions.push(tokio::spawn(session.run()));
    }
    for session in sessions {
        session.await.context("session task")??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    let sent = args.messages - failed;
    println!(
        "messages={sent} failed={failed} seconds={seconds:.3} per_second={:.1}",
        sent as f64 / seconds
    );
    if failed > 0 {
        bail!("{failed} messages were not accepted");
    }
    Ok(())
}

struct Session {
    server: SocketAddr,
    tls: Tls,
    total: u64,
    per_connection: u64,
    config: Arc<ClientConfig>,
    body: Arc<[u8]>,
    recipients: Arc<[String]>,
    next: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl Session {
    /// Sends messages until all are taken; a session that breaks reconnects.
    async fn run(self) -> anyhow::Result<()> {
        let mode = match self.tls {
            Tls::None => TlsMode::Disabled,
            Tls::Starttls => TlsMode::Verified,
        };
        let envelope = Envelope {
            mail_from: "loadgen@bench.test",
            smtputf8: false,
            eight_bit: false,
            ret: None,
            envid: None,
            recipients: self
                .recipients
                .iter()
                .map(|address| EnvelopeRecipient {
                    address,
                    notify: None,
                    orcpt: None,
                })
                .collect(),
        };
        let mut connection: Option<Connection> = None;
        let mut carried = 0;
        while self.next.fetch_add(1, Ordering::Relaxed) < self.total {
            if self.per_connection > 0
                && carried == self.per_connection
                && let Some(open) = connection.take()
            {
                open.quit().await;
            }
            let mut open = match connection.take() {
                Some(open) => open,
                None => {
                    carried = 0;
                    Connection::connect(self.server, "bench", Protocol::Smtp, mode, &self.config)
                        .await
                        .with_context(|| format!("connecting to {}", self.server))?
                }
            };
            carried += 1;
            match open.send(&envelope, &self.body).await {
                Ok(replies) => {
                    if replies.iter().any(|reply| reply.code / 100 != 2) {
                        self.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    connection = Some(open);
                }
                Err(_) => {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if let Some(open) = connection {
            open.quit().await;
        }
        Ok(())
    }
}

/// "Verified" here means only "TLS required": the verifier accepts any certificate, since the
/// servers under test use self-signed ones.
fn client_config() -> anyhow::Result<ClientConfig> {
    let opportunistic = tls::opportunistic().context("TLS client configuration")?;
    let limit = Duration::from_secs(60);
    Ok(ClientConfig {
        helo_name: "loadgen.bench.test".to_owned(),
        timeouts: Timeouts {
            connect: limit,
            greeting: limit,
            helo: limit,
            mail: limit,
            rcpt: limit,
            data_init: limit,
            data_block: limit,
            data_end: limit,
            other: limit,
        },
        tls_opportunistic: Arc::clone(&opportunistic),
        tls_verified: opportunistic,
    })
}

/// A plain-text message of about `size` bytes in 76-character lines.
fn message(size: usize) -> Vec<u8> {
    let mut body =
        b"From: loadgen@bench.test\r\nTo: rcpt1@bench.test\r\nSubject: load\r\n\r\n".to_vec();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\r\n";
    while body.len() < size {
        body.extend_from_slice(line);
    }
    body
}
