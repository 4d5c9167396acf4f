//! Accept loops over injected listeners, connection limits and graceful shutdown.
//!
//! Shutdown, as Kubernetes expects it: when `shutdown` is cancelled the listeners close at once,
//! idle sessions are told `421 4.3.2`, and sessions inside a transaction may finish it within the
//! grace period. When the grace period ends every remaining session gets `421 4.3.2` and closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tern_common::bus::Bus;
use tern_common::control::ControlWatch;
use tern_common::queue::QueueStore;
use tern_common::ratelimit::RateLimiter;
use tern_common::users::UserStore;
use tern_smtp::Reply;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, Span};

use crate::accept::Committer;
use crate::config::{IngressConfig, ListenerKind};
use crate::connection::{Connection, Sessions, Stop};
use crate::limits::ConnectionLimits;
use crate::live_policy::LivePolicy;
use crate::proxy::{self, ProxyConfig, ProxyRefusal};
use crate::signing::DkimSigning;
use crate::smtp_watch::SmtpWatches;
use crate::stream::SmtpStream;
use crate::trace;
use crate::{greylist, metrics, ratelimit, troubleshoot};

/// A configured ingress, ready to [`run`].
pub struct Ingress<Q> {
    sessions: Arc<Sessions<Q>>,
    limits: Arc<ConnectionLimits>,
    proxy: Arc<ProxyConfig>,
    shutdown_grace: Duration,
    /// Where troubleshooting questions come from (`None`: this pod answers none).
    questions: Option<Bus>,
}

impl<Q: QueueStore> Ingress<Q> {
    /// `bus` is optional: without it no notices are published (workers still poll). Without
    /// `users` AUTH is not offered, so the submission listeners refuse every MAIL (530).
    pub fn new(
        config: &IngressConfig,
        store: Q,
        bus: Option<Bus>,
        users: Option<UserStore>,
        control: ControlWatch,
        policy_state: Option<PgPool>,
    ) -> Self {
        let policy = LivePolicy::new(
            config.policy_args.clone(),
            config.session.hostname.clone(),
            &config.policy,
            policy_state,
            control.clone(),
        );
        let questions = bus.clone();
        let watches = bus
            .clone()
            .map(|bus| SmtpWatches::new(bus, config.session.hostname.clone()));
        let sessions = Sessions {
            committer: Committer::new(store, bus, config.session.hostname.clone())
                .with_signing(DkimSigning::new(control.clone())),
            relay: config.relay.clone(),
            control,
            session: Arc::clone(&config.session),
            tls: config.tls.clone(),
            users,
            idle_timeout: config.idle_timeout,
            trace_join_traceparent: config.trace_join_traceparent,
            policy: Arc::new(policy),
            watches,
        };
        Self {
            sessions: Arc::new(sessions),
            limits: ConnectionLimits::new(config.max_connections, config.max_connections_per_ip),
            proxy: Arc::new(config.proxy.clone()),
            shutdown_grace: config.shutdown_grace,
            questions,
        }
    }
}

/// Serves SMTP on every listener until `shutdown` is cancelled, then drains (see module docs).
pub async fn run<Q: QueueStore>(
    ingress: Ingress<Q>,
    listeners: Vec<(TcpListener, ListenerKind)>,
    shutdown: CancellationToken,
) {
    let sessions = TaskTracker::new();
    let stop = Stop {
        drain: shutdown.clone(),
        abort: CancellationToken::new(),
    };
    let accept_loops = TaskTracker::new();
    let reload = ingress.sessions.tls.clone().map(|tls| {
        let stop = CancellationToken::new();
        tokio::spawn(tls.watch_certificates(ingress.sessions.control.clone(), stop.clone()));
        stop.drop_guard()
    });
    // Greylisting and the rate limits may be turned on at any time: their expiry runs whenever
    // their state has somewhere to live.
    let expire = ingress.sessions.policy.state().cloned().map(|pool| {
        let stop = CancellationToken::new();
        let policy = Arc::clone(&ingress.sessions.policy);
        tokio::spawn(greylist::expire(
            move || policy.current().greylist.clone(),
            stop.clone(),
        ));
        tokio::spawn(ratelimit::expire(RateLimiter::new(pool), stop.clone()));
        stop.drop_guard()
    });
    let watch = ingress.sessions.watches.clone().map(|watches| {
        let stop = CancellationToken::new();
        tokio::spawn(watches.serve(stop.clone()));
        stop.drop_guard()
    });
    let answer = ingress.questions.clone().map(|bus| {
        let stop = CancellationToken::new();
        tokio::spawn(troubleshoot::serve(
            bus,
            Arc::clone(&ingress.sessions),
            stop.clone(),
        ));
        stop.drop_guard()
    });
    let prune = ingress.sessions.users.clone().map(|users| {
        let stop = CancellationToken::new();
        tokio::spawn(prune_auth_failures(users, stop.clone()));
        stop.drop_guard()
    });
    for (listener, kind) in listeners {
        let ingress = Ingress {
            sessions: Arc::clone(&ingress.sessions),
            limits: Arc::clone(&ingress.limits),
            proxy: Arc::clone(&ingress.proxy),
            shutdown_grace: ingress.shutdown_grace,
            questions: None,
        };
        accept_loops.spawn(accept_loop(
            ingress,
            listener,
            kind,
            sessions.clone(),
            stop.clone(),
        ));
    }
    accept_loops.close();
    accept_loops.wait().await;

    sessions.close();
    let grace = ingress.shutdown_grace;
    if tokio::time::timeout(grace, sessions.wait()).await.is_err() {
        tracing::warn!(
            remaining = sessions.len(),
            "shutdown grace period over; closing remaining sessions"
        );
        stop.abort.cancel();
        sessions.wait().await;
    }
    if !ingress
        .sessions
        .committer
        .drain_notices(Duration::from_secs(5))
        .await
    {
        tracing::warn!(
            "some JetStream notices were still in flight at shutdown; workers will poll for them"
        );
    }
    drop(reload);
    drop(prune);
    drop(expire);
    drop(answer);
    drop(watch);
    tracing::info!("ingress stopped");
}

async fn accept_loop<Q: QueueStore>(
    ingress: Ingress<Q>,
    listener: TcpListener,
    kind: ListenerKind,
    tasks: TaskTracker,
    stop: Stop,
) {
    let local = listener.local_addr().ok();
    tracing::info!(listener = kind.label(), address = ?local, "accepting SMTP connections");
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = stop.drain.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(10);
                pair
            }
            Err(error) => {
                // Usually EMFILE: wait for sessions to close rather than spin.
                tracing::warn!(%error, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let sessions = Arc::clone(&ingress.sessions);
        let limits = Arc::clone(&ingress.limits);
        let stop = stop.clone();
        if !ingress.proxy.required_on(kind) {
            tasks.spawn(admit(sessions, limits, stream, peer, kind, stop));
            continue;
        }
        if !ingress.proxy.trusts(peer.ip()) {
            // Whatever header it would send is not believed; dropping the stream closes it.
            ProxyRefusal::Untrusted.record(kind, peer);
            continue;
        }
        let timeout = ingress.proxy.header_timeout;
        tasks.spawn(async move {
            let mut stream = stream;
            match proxy::read_client(&mut stream, peer, timeout, &stop.drain).await {
                Ok(client) => {
                    tracing::debug!(balancer = %peer, %client, listener = kind.label(), "PROXY header accepted");
                    admit(sessions, limits, stream, client, kind, stop).await;
                }
                Err(refusal) => refusal.record(kind, peer),
            }
        });
    }
    tracing::info!(listener = kind.label(), "listener closed");
}

/// Takes the connection permits for `client` (the TCP peer, or the client a PROXY header named)
/// and serves the session, or says why not and closes.
async fn admit<Q: QueueStore>(
    sessions: Arc<Sessions<Q>>,
    limits: Arc<ConnectionLimits>,
    stream: TcpStream,
    client: SocketAddr,
    kind: ListenerKind,
    stop: Stop,
) {
    match limits.try_acquire(client.ip()) {
        Ok(_permit) => {
            serve(sessions, stream, client, kind, stop)
                .instrument(trace::session_span(client, kind))
                .await
        }
        Err(exceeded) => {
            metrics::connection_refused(exceeded.label());
            tracing::info!(client = %client.ip(), limit = exceeded.label(), "connection refused");
            refuse(stream).await;
        }
    }
}

async fn serve<Q: QueueStore>(
    sessions: Arc<Sessions<Q>>,
    stream: TcpStream,
    peer: SocketAddr,
    kind: ListenerKind,
    stop: Stop,
) {
    ::metrics::counter!(metrics::SESSIONS_TOTAL, "listener" => kind.label()).increment(1);
    let active = ::metrics::gauge!(metrics::SESSIONS_ACTIVE);
    active.increment(1.0);
    let client_ip = peer.ip();
    let (stream, tls) = match (kind, &sessions.tls) {
        // Implicit TLS (RFC 8314): the handshake comes before the greeting.
        (ListenerKind::Submissions, Some(server)) => match server.accept(stream).await {
            Ok((stream, info)) => {
                trace::tls_started(&Span::current(), &info);
                (SmtpStream::Tls(Box::new(stream)), Some(info))
            }
            Err(error) => {
                metrics::handshake_failed(kind, error.metric_label());
                tracing::info!(client = %client_ip, listener = kind.label(), %error, "TLS handshake failed");
                active.decrement(1.0);
                return;
            }
        },
        _ => (SmtpStream::Plain(stream), None),
    };
    let connection = Connection::new(sessions, stream, client_ip, tls, kind, stop);
    if let Err(error) = connection.run().await {
        tracing::debug!(client = %client_ip, %error, "session ended with an I/O error");
    }
    active.decrement(1.0);
}

/// Deletes AUTH failure counters whose window has passed, once a window. Every pod does it; the
/// statement is idempotent and touches only expired rows, so they never get in each other's way.
async fn prune_auth_failures(users: UserStore, stop: CancellationToken) {
    let every = users.lockout().window.max(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match users.prune_failures().await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "expired AUTH failure counters deleted"),
            Err(error) => tracing::warn!(%error, "AUTH failure counters not pruned"),
        }
    }
}

/// Over a limit: say why and close, without reading anything.
async fn refuse(mut stream: TcpStream) {
    let mut out = Vec::with_capacity(64);
    Reply::too_many_connections().write_to(&mut out);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = stream.write_all(&out).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
