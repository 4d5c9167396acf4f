//! A scriptable SMTP/LMTP server that plays a remote mail exchanger in tests.
//!
//! It accepts every command a delivery client sends, answers as [`SinkConfig`] scripts it (per
//! sender, per recipient, at the end of DATA; slowly; or by hanging up in the middle of the
//! data), and records each message it took responsibility for. Several sinks can share one port
//! on different loopback addresses (all of 127.0.0.0/8 is local on Linux), which is how a test
//! gives one domain several MX hosts:
//!
//! ```no_run
//! # async fn example() {
//! use std::net::Ipv4Addr;
//! use tern_testkit::sink::{SinkConfig, SinkServer};
//! let first = SinkServer::start(SinkConfig::at(Ipv4Addr::new(127, 0, 0, 2), 0)).await;
//! let port = first.addr().port();
//! let second = SinkServer::start(SinkConfig::at(Ipv4Addr::new(127, 0, 0, 3), port)).await;
//! # }
//! ```
//!
//! The sink has its own small parser rather than tern-smtp's: a peer that shares the product's
//! parser would share its bugs. It is strict where that finds client bugs (a parameter of an
//! extension it did not advertise gets `555`, a non-ASCII address without `SMTPUTF8` gets `553`)
//! and otherwise plain.

mod script;
mod session;
mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// How a sink behaves. Start from [`SinkConfig::default`] or [`SinkConfig::at`] and change fields.
///
/// Rules are `(pattern, reply)` pairs; the first whose pattern matches the address wins. A pattern
/// `"defer@"` matches that local part, `"@example.test"` that domain, anything else the whole
/// address; all case-insensitive. A reply is its full text, `"451 4.3.0 try later"`; lines
/// separated by `\n` make a multi-line reply.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub ip: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// Speak LMTP (RFC 2033): `LHLO` instead of `EHLO`, one reply per recipient after DATA.
    pub lmtp: bool,
    pub hostname: String,
    /// The first reply (default `220 <hostname> …`); a `554` here refuses the session.
    pub greeting: Option<String>,
    pub pipelining: bool,
    /// Advertised as `SIZE n`; larger declared or actual messages get `552`.
    pub size: Option<u64>,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    pub dsn: bool,
    /// Advertise STARTTLS with a self-signed certificate, see [`SinkServer::cert_pem`].
    pub starttls: bool,
    /// Replies to `MAIL FROM` by sender; default `250 2.1.0 ok`.
    pub mail_rules: Vec<(String, String)>,
    /// Replies to `RCPT TO` by recipient; default `250 2.1.5 ok`.
    pub rcpt_rules: Vec<(String, String)>,
    /// The reply at the end of DATA unless a data rule matches.
    pub data_reply: String,
    /// End-of-DATA replies by recipient. LMTP answers each accepted recipient with its own; SMTP
    /// answers once, with the rule of the first recipient that has one.
    pub data_rules: Vec<(String, String)>,
    /// Hang up once this many bytes of message data have arrived (0: right after `354`).
    pub drop_mid_data: Option<usize>,
    /// Wait this long before every reply, the greeting included.
    pub reply_delay: Duration,
    /// Wait this long more before the end-of-DATA reply: a server slow to confirm a message
    /// (a client's DATA-end timeout). The message is recorded before the wait, as a real server
    /// would already have queued it: the RFC 1047 duplicate a client must live with.
    pub data_delay: Duration,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            lmtp: false,
            hostname: "sink.test".to_owned(),
            greeting: None,
            pipelining: true,
            size: Some(50 * 1024 * 1024),
            eight_bit_mime: true,
            smtputf8: true,
            dsn: true,
            starttls: false,
            mail_rules: Vec::new(),
            rcpt_rules: Vec::new(),
            data_reply: "250 2.0.0 ok: queued".to_owned(),
            data_rules: Vec::new(),
            drop_mid_data: None,
            reply_delay: Duration::ZERO,
            data_delay: Duration::ZERO,
        }
    }
}

impl SinkConfig {
    /// The default sink on `ip:port`.
    pub fn at(ip: impl Into<IpAddr>, port: u16) -> Self {
        Self {
            ip: ip.into(),
            port,
            ..Self::default()
        }
    }

    pub fn rcpt_rule(mut self, pattern: &str, reply: &str) -> Self {
        self.rcpt_rules.push((pattern.to_owned(), reply.to_owned()));
        self
    }

    pub fn data_rule(mut self, pattern: &str, reply: &str) -> Self {
        self.data_rules.push((pattern.to_owned(), reply.to_owned()));
        self
    }
}

/// One message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkMessage {
    /// The `HELO`/`EHLO`/`LHLO` argument.
    pub helo: String,
    /// Whether the transaction ran inside STARTTLS.
    pub tls: bool,
    /// The reverse path without angle brackets; empty for the null sender.
    pub mail_from: String,
    /// `MAIL FROM` parameters as sent, e.g. `["BODY=8BITMIME", "RET=HDRS"]`.
    pub mail_params: Vec<String>,
    /// Recipients whose end-of-DATA reply was 2xx, in `RCPT` order.
    pub rcpt_to: Vec<String>,
    /// Each recipient's `RCPT TO` parameters, parallel to `rcpt_to`.
    pub rcpt_params: Vec<Vec<String>>,
    /// The message as delivered: dot-unstuffed, without the final `.CRLF`.
    pub data: Vec<u8>,
}

impl SinkMessage {
    /// The value of a `MAIL FROM` parameter (`"RET"` → `Some("HDRS")`; `Some("")` when valueless).
    pub fn mail_param(&self, key: &str) -> Option<&str> {
        script::param(&self.mail_params, key)
    }

    /// The value of a `RCPT TO` parameter of the recipient at `index` in `rcpt_to`.
    pub fn rcpt_param(&self, index: usize, key: &str) -> Option<&str> {
        script::param(self.rcpt_params.get(index)?, key)
    }
}

/// What every session shares: the script and what has been seen.
#[derive(Debug)]
struct Inner {
    config: SinkConfig,
    tls: Option<tls::Tls>,
    received: Mutex<Vec<SinkMessage>>,
    connections: AtomicUsize,
    /// Sessions open now, and the most ever open at once.
    open: AtomicUsize,
    peak_open: AtomicUsize,
    transactions: AtomicUsize,
}

/// A running sink. Stops, closing every session, when dropped.
pub struct SinkServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    accept: JoinHandle<()>,
}

impl SinkServer {
    /// Binds and starts serving. Panics when the address cannot be bound.
    pub async fn start(config: SinkConfig) -> Self {
        let listener = TcpListener::bind((config.ip, config.port))
            .await
            .unwrap_or_else(|error| {
                panic!("bind the sink on {}:{}: {error}", config.ip, config.port)
            });
        let addr = listener
            .local_addr()
            .expect("local address of a bound listener");
        let tls = config
            .starttls
            .then(|| tls::self_signed(&config.hostname, config.ip));
        let inner = Arc::new(Inner {
            config,
            tls,
            received: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            peak_open: AtomicUsize::new(0),
            transactions: AtomicUsize::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, inner.clone()));
        Self {
            addr,
            inner,
            accept,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM of the STARTTLS certificate, for a client that should trust it.
    pub fn cert_pem(&self) -> Option<&str> {
        self.inner.tls.as_ref().map(|tls| tls.cert_pem.as_str())
    }

    /// Every accepted message so far, oldest first.
    pub fn received(&self) -> Vec<SinkMessage> {
        self.inner.received().clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::SeqCst)
    }

    /// The most connections that were ever open at once.
    pub fn peak_connections(&self) -> usize {
        self.inner.peak_open.load(Ordering::SeqCst)
    }

    /// DATA phases completed so far, whatever their replies.
    pub fn transactions(&self) -> usize {
        self.inner.transactions.load(Ordering::SeqCst)
    }

    /// Waits until at least `count` messages were accepted and returns them all; panics after
    /// `limit`.
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<SinkMessage> {
        let what = format!("{count} message(s) at the sink on {}", self.addr);
        crate::wait::eventually(&what, limit, || async {
            let received = self.received();
            (received.len() >= count).then_some(received)
        })
        .await
    }
}

impl Drop for SinkServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Inner {
    fn received(&self) -> std::sync::MutexGuard<'_, Vec<SinkMessage>> {
        self.received
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Sessions live in a set owned by this task, so aborting it closes them all.
async fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    let mut sessions = JoinSet::new();
    loop {
        while sessions.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _peer)) => {
                inner.connections.fetch_add(1, Ordering::SeqCst);
                let open = inner.open.fetch_add(1, Ordering::SeqCst) + 1;
                inner.peak_open.fetch_max(open, Ordering::SeqCst);
                let inner = inner.clone();
                sessions.spawn(async move {
                    session::run(inner.clone(), stream).await;
                    inner.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
            // Out of descriptors or the like: pause instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
