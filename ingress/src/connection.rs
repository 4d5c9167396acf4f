//! Drives one [`Session`] over a byte stream.
//!
//! PIPELINING (RFC 2920): replies are collected while complete commands remain in the input and
//! written in one go when the session needs more input, so a pipelined group costs one write and
//! replies keep their order. Input that arrives early simply waits in the buffer; the session
//! consumes it in order, so nothing deadlocks and nothing is read twice.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tern_common::control::ControlWatch;
use tern_common::policy::{RelayDecision, RelayPolicy};
use tern_common::queue::QueueStore;
use tern_common::users::{AuthOutcome, User, UserStore};
use tern_smtp::auth::Credentials;
use tern_smtp::{AuthPolicy, Reply, ReversePath, Session, Step, Verdict};
use tern_smtp::{SessionConfig, TlsState};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::accept::{Client, Committer};
use crate::blocklist::{self, Gate};
use crate::deadline::RecordDeadline;
use crate::findings::Findings;
use crate::live_policy::LivePolicy;
use crate::metrics;
use crate::policy::Standing;
use crate::smtp_watch::{SmtpWatches, Transcript};
use crate::stream::SmtpStream;
use crate::tls::{TlsInfo, TlsServer};
use crate::trace::{self, SessionTrace};
use tern_common::checks::ListenerKind;

/// Flush replies early once this many bytes are pending, so a client that pipelines without
/// reading cannot make us buffer without bound.
const MAX_PENDING_OUTPUT: usize = 16 * 1024;

/// The two phases of shutdown as seen by a session.
#[derive(Clone)]
pub(crate) struct Stop {
    /// Finish the transaction in progress, close when idle.
    pub(crate) drain: CancellationToken,
    /// Close now.
    pub(crate) abort: CancellationToken,
}

/// What every session of one ingress uses: the policy it judges clients and recipients by, the
/// means to check credentials and to start TLS, and the committer that queues messages.
pub(crate) struct Sessions<Q> {
    pub(crate) committer: Committer<Q>,
    pub(crate) relay: RelayPolicy,
    /// The live control plane: domains, networks and the blocklist on top of `relay`.
    pub(crate) control: ControlWatch,
    pub(crate) session: Arc<SessionConfig>,
    /// Certificates and handshakes; `None` without TLS.
    pub(crate) tls: Option<Arc<TlsServer>>,
    /// SMTP AUTH users; `None` means AUTH is not offered (and submission cannot be used).
    pub(crate) users: Option<UserStore>,
    pub(crate) idle_timeout: Duration,
    /// A message's `Traceparent:` header may parent its transaction span.
    pub(crate) trace_join_traceparent: bool,
    /// The policy checks at connect, MAIL, RCPT and the end of data, as the environment and
    /// the control plane's policy document set them now.
    pub(crate) policy: Arc<LivePolicy>,
    /// Live transcripts the API asked for; `None` without NATS.
    pub(crate) watches: Option<SmtpWatches>,
}

pub(crate) struct Connection<Q> {
    sessions: Arc<Sessions<Q>>,
    stream: SmtpStream,
    client: Client,
    kind: ListenerKind,
    stop: Stop,
    session: Session,
    /// The authenticated user, after AUTH succeeded.
    user: Option<User>,
    input: BytesMut,
    output: Vec<u8>,
    /// The stage the next error reply is counted under.
    stage: metrics::Stage,
    /// The session's span and its open transaction's.
    trace: SessionTrace,
    /// An allow entry of the blocklist matched: the blocklist is not asked again.
    allowlisted: bool,
    /// When the client must have finished what it is sending.
    deadline: RecordDeadline,
    /// The client is in a trusted network (the settings' or the control plane's).
    trusted: bool,
    /// This session's live transcript, when a watch covers its client.
    transcript: Option<Transcript>,
    /// A client of the port 25 role from outside the trusted networks: the reputation checks
    /// (DNSBL, greeting delay, greylisting, per-client limits) apply to it.
    stranger: bool,
}

enum Next {
    Read,
    Close,
}

/// What a client did while the port 25 role kept silent before its greeting.
enum Pregreet {
    Quiet,
    Talked,
    HungUp,
}

impl<Q: QueueStore> Connection<Q> {
    /// `tls` is set when the stream is already encrypted (implicit TLS).
    pub(crate) fn new(
        sessions: Arc<Sessions<Q>>,
        stream: SmtpStream,
        client_ip: IpAddr,
        tls: Option<TlsInfo>,
        kind: ListenerKind,
        stop: Stop,
    ) -> Self {
        let tls_state = match (&tls, &sessions.tls) {
            (Some(_), _) => TlsState::Active,
            (None, Some(_)) => TlsState::Offered,
            (None, None) => TlsState::Unavailable,
        };
        let auth = AuthPolicy {
            offered: sessions.users.is_some(),
            // RFC 6409: the submission roles take mail only from authenticated users.
            required: kind != ListenerKind::Smtp,
        };
        let sessions_idle = sessions.idle_timeout;
        let transcript = sessions
            .watches
            .as_ref()
            .and_then(|watches| watches.transcript(client_ip));
        if let Some(transcript) = &transcript {
            let tls = if tls.is_some() { " over TLS" } else { "" };
            transcript.note(format!(
                "session from {client_ip} on the {} listener{tls}",
                kind.label()
            ));
        }
        let session = Session::new(Arc::clone(&sessions.session))
            .with_tls(tls_state)
            .with_auth(auth);
        Self {
            sessions,
            stream,
            client: Client {
                ip: client_ip,
                tls,
                login: None,
                trusted: false,
                findings: Findings::default(),
            },
            kind,
            stop,
            session,
            user: None,
            input: BytesMut::with_capacity(1024),
            output: Vec::with_capacity(512),
            stage: metrics::Stage::Connect,
            trace: SessionTrace::current(),
            allowlisted: false,
            deadline: RecordDeadline::new(sessions_idle),
            trusted: false,
            transcript,
            stranger: false,
        }
    }

    pub(crate) async fn run(mut self) -> io::Result<()> {
        if self.stop.drain.is_cancelled() {
            return self.close_with(Reply::shutting_down()).await;
        }
        let plane = self.sessions.control.current();
        match blocklist::at_connect(&plane, self.client.ip, OffsetDateTime::now_utc()) {
            Gate::Pass => {}
            Gate::Allowlisted => self.allowlisted = true,
            Gate::Refuse(reply) => {
                tracing::info!(client = %self.client.ip, reply = %reply, "client refused by the blocklist");
                return self.close_with(reply).await;
            }
        }
        // Reputation is for strangers: trusted networks and allowlisted clients skip it (and
        // each listener runs the checks its policy names).
        self.trusted = self.sessions.relay.trusts(&plane, self.client.ip);
        self.client.trusted = self.trusted;
        self.stranger = !self.allowlisted && !self.trusted;
        let policy = self.sessions.policy.current();
        if let Some(reply) = policy.at_connect(self.standing(), self.client.ip).await {
            return self.close_with(reply).await;
        }
        let greet_delay = policy.greet_delay_for(self.standing());
        if !greet_delay.is_zero() {
            match self.before_greeting(greet_delay).await? {
                Pregreet::Quiet => {}
                Pregreet::HungUp => return Ok(()),
                Pregreet::Talked => {
                    tracing::info!(client = %self.client.ip, "client talked before the greeting");
                    return self.close_with(Reply::early_talker()).await;
                }
            }
        }
        let greeting = self.session.greeting();
        self.transcribe_reply(&greeting);
        greeting.write_to(&mut self.output);
        self.flush().await?;
        self.deadline.restart();
        loop {
            if let Next::Close = self.process_input().await? {
                self.flush().await?;
                return self.shutdown_stream().await;
            }
            self.flush().await?;
            if self.stop.drain.is_cancelled() && !self.session.in_transaction() {
                return self.close_with(Reply::shutting_down()).await;
            }
            let in_transaction = self.session.in_transaction();
            let before = self.input.len();
            tokio::select! {
                biased;
                _ = self.stop.abort.cancelled() => return self.close_with(Reply::shutting_down()).await,
                _ = self.stop.drain.cancelled(), if !in_transaction => {
                    return self.close_with(Reply::shutting_down()).await;
                }
                read = tokio::time::timeout_at(self.deadline.at(), self.stream.read_buf(&mut self.input)) => match read {
                    Err(_) => return self.close_with(Reply::idle_timeout()).await,
                    Ok(Ok(0)) => return Ok(()),
                    Ok(Ok(_)) => self.deadline.received(&self.input[before..]),
                    Ok(Err(error)) => return Err(error),
                },
            }
        }
    }

    /// Who the client is for the policy checks, as of now (AUTH and allow entries change it).
    fn standing(&self) -> Standing {
        Standing {
            listener: self.kind,
            stranger: self.stranger && self.user.is_none() && !self.allowlisted,
            trusted: self.trusted,
        }
    }

    /// Waits out the greeting delay, watching what the client does meanwhile.
    async fn before_greeting(&mut self, delay: Duration) -> io::Result<Pregreet> {
        tokio::select! {
            _ = self.stop.drain.cancelled() => Ok(Pregreet::Quiet),
            read = tokio::time::timeout(delay, self.stream.read_buf(&mut self.input)) => match read {
                Err(_) => Ok(Pregreet::Quiet),
                Ok(Ok(0)) => Ok(Pregreet::HungUp),
                Ok(Ok(_)) => Ok(Pregreet::Talked),
                Ok(Err(error)) => Err(error),
            },
        }
    }

    /// Runs the session over everything buffered, collecting replies.
    async fn process_input(&mut self) -> io::Result<Next> {
        loop {
            let (used, step) = self.session.process(&self.input);
            let verb = self.session.take_command();
            if let Some(transcript) = &self.transcript {
                transcript.client(&self.input[..used], verb);
            }
            self.input.advance(used);
            if let Some(verb) = verb {
                metrics::command(verb);
                self.trace.command(verb);
                self.stage = metrics::Stage::after(verb);
            }
            match step {
                Step::NeedMore => return Ok(Next::Read),
                Step::Reply(reply) => self.reply(&reply),
                Step::Close(reply) => {
                    self.reply(&reply);
                    return Ok(Next::Close);
                }
                Step::StartTls(reply) => {
                    self.reply(&reply);
                    self.flush().await?;
                    self.start_tls().await?;
                }
                Step::CheckRecipient(recipient) => {
                    let plane = self.sessions.control.current();
                    // Most installations list nothing: skip formatting the address then.
                    let gate = match self.allowlisted || plane.blocklist_len() == 0 {
                        true => Gate::Pass,
                        false => blocklist::at_rcpt(
                            &plane,
                            &recipient.path.to_string(),
                            OffsetDateTime::now_utc(),
                        ),
                    };
                    if let Gate::Refuse(reply) = gate {
                        tracing::info!(client = %self.client.ip, rcpt = %recipient.path, reply = %reply, "recipient refused by the blocklist");
                        let reply = self.session.recipient_verdict(Verdict::Reject(reply));
                        self.reply(&reply);
                        continue;
                    }
                    let decision = match self.user {
                        // Authenticated users may relay anywhere (RFC 6409 submission).
                        Some(_) => RelayDecision::Relay,
                        None => {
                            self.sessions
                                .relay
                                .decide_with(&plane, &recipient.path, self.client.ip)
                        }
                    };
                    let verdict = match decision {
                        // Mail from strangers to our domains: the policy has its say.
                        RelayDecision::Local => {
                            let sender =
                                self.session.sender().cloned().unwrap_or(ReversePath::Null);
                            let refusal = self
                                .sessions
                                .policy
                                .current()
                                .at_rcpt(self.standing(), self.client.ip, &sender, &recipient.path)
                                .await;
                            refusal.map_or(Verdict::Accept, Verdict::Reject)
                        }
                        RelayDecision::Relay => Verdict::Accept,
                        RelayDecision::Denied => {
                            ::metrics::counter!(metrics::RECIPIENTS_REJECTED_TOTAL, "reason" => "relay_denied")
                                .increment(1);
                            tracing::info!(client = %self.client.ip, rcpt = %recipient.path, "relay denied");
                            Verdict::Reject(Reply::relay_denied())
                        }
                    };
                    let reply = self.session.recipient_verdict(verdict);
                    self.reply(&reply);
                }
                Step::Authenticate(credentials) => {
                    let verdict = self.authenticate(credentials).await;
                    let reply = self.session.auth_verdict(verdict);
                    self.reply(&reply);
                }
                Step::CheckSender(from) => {
                    self.client.findings = Findings::default();
                    let mut verdict = self.check_sender(&from);
                    if verdict == Verdict::Accept {
                        let helo = self.session.helo().unwrap_or_default().to_owned();
                        let login = self.user.as_ref().map(|user| user.login.clone());
                        let refusal = self
                            .sessions
                            .policy
                            .current()
                            .at_mail(
                                self.standing(),
                                self.client.ip,
                                &helo,
                                login.as_deref(),
                                &from,
                                &mut self.client.findings,
                            )
                            .await;
                        if let Some(reply) = refusal {
                            verdict = Verdict::Reject(reply);
                        }
                    }
                    let reply = self.session.sender_verdict(verdict);
                    self.reply(&reply);
                }
                Step::Message(transaction) => {
                    // Replies owed for earlier pipelined commands go out before the commit wait.
                    self.flush().await?;
                    let refused = self
                        .sessions
                        .policy
                        .current()
                        .at_data(
                            self.standing(),
                            &transaction.body,
                            &mut self.client.findings,
                        )
                        .await;
                    if let Some(reply) = refused {
                        let reply = self.session.message_result(Err(reply));
                        self.reply(&reply);
                        continue;
                    }
                    let span = self.trace.transaction();
                    // Before the span is entered: a started span keeps its parent.
                    if self.sessions.trace_join_traceparent {
                        trace::join_sender_trace(&span, &transaction.body);
                    }
                    let result = self
                        .sessions
                        .committer
                        .accept(*transaction, &self.client, &span)
                        .instrument(span.clone())
                        .await;
                    let reply = self.session.message_result(result);
                    self.reply(&reply);
                }
            }
            if self.output.len() >= MAX_PENDING_OUTPUT {
                self.flush().await?;
            }
        }
    }

    /// Queues a reply to the client, counting it when it refuses something.
    fn reply(&mut self, reply: &Reply) {
        // The client's turn begins with our reply.
        self.deadline.restart();
        metrics::reply(self.stage, reply);
        self.trace.reply(reply, self.session.in_transaction());
        self.transcribe_reply(reply);
        reply.write_to(&mut self.output);
    }

    fn transcribe_reply(&self, reply: &Reply) {
        if let Some(transcript) = &self.transcript {
            let mut text = Vec::new();
            reply.write_to(&mut text);
            transcript.server(&text);
        }
    }

    /// Checks AUTH credentials against the shared user table (and its lockout). A database
    /// failure is a temporary failure, never a success.
    async fn authenticate(&mut self, credentials: Credentials) -> Verdict {
        let Some(users) = &self.sessions.users else {
            return Verdict::Reject(Reply::auth_temporary_failure());
        };
        let outcome = users
            .authenticate(credentials.login(), credentials.password(), self.client.ip)
            .await;
        let (result, verdict) = match outcome {
            Ok(AuthOutcome::Authenticated(user)) => {
                self.client.login = Some(user.login.clone());
                self.user = Some(user);
                ("ok", Verdict::Accept)
            }
            Ok(AuthOutcome::BadCredentials) => {
                ("bad_credentials", Verdict::Reject(Reply::auth_failed()))
            }
            Ok(AuthOutcome::LockedOut) => (
                "locked_out",
                Verdict::Reject(Reply::auth_temporary_failure()),
            ),
            Err(error) => {
                tracing::warn!(client = %self.client.ip, %error, "SMTP AUTH could not be checked");
                ("error", Verdict::Reject(Reply::auth_temporary_failure()))
            }
        };
        ::metrics::counter!(metrics::AUTH_ATTEMPTS_TOTAL, "listener" => self.kind.label(), "result" => result)
            .increment(1);
        verdict
    }

    /// An authenticated user may only use its own addresses as the envelope sender; then the
    /// blocklist judges the HELO name and the sender.
    fn check_sender(&mut self, from: &ReversePath) -> Verdict {
        if let Some(user) = &self.user
            && !user.may_send_as(from)
        {
            tracing::info!(client = %self.client.ip, login = %user.login, from = %from, "sender not owned by the authenticated user");
            ::metrics::counter!(metrics::SENDERS_REJECTED_TOTAL, "reason" => "not_owned")
                .increment(1);
            return Verdict::Reject(Reply::sender_not_owned(&from.to_string()));
        }
        let plane = self.sessions.control.current();
        if self.allowlisted || plane.blocklist_len() == 0 {
            return Verdict::Accept;
        }
        let sender = match from {
            ReversePath::Null => String::new(),
            ReversePath::Mailbox(mailbox) => mailbox.to_string(),
        };
        match blocklist::at_mail(
            &plane,
            self.session.helo(),
            &sender,
            OffsetDateTime::now_utc(),
        ) {
            Gate::Pass => Verdict::Accept,
            Gate::Allowlisted => {
                self.allowlisted = true;
                Verdict::Accept
            }
            Gate::Refuse(reply) => {
                tracing::info!(client = %self.client.ip, from = %from, reply = %reply, "sender refused by the blocklist");
                Verdict::Reject(reply)
            }
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            // A no-op on TCP; on TLS it pushes out the records rustls still holds.
            self.stream.flush().await?;
            self.output.clear();
        }
        Ok(())
    }

    /// After `220 Ready to start TLS`: whatever the client sent behind STARTTLS arrived in
    /// plaintext and is dropped unread (CVE-2011-0411), then the same session goes on over TLS.
    async fn start_tls(&mut self) -> io::Result<()> {
        self.input.clear();
        let (SmtpStream::Plain(tcp), Some(tls)) = (
            std::mem::replace(&mut self.stream, SmtpStream::Gone),
            self.sessions.tls.as_ref(),
        ) else {
            return Err(io::Error::other(
                "STARTTLS without a plain stream and certificates",
            ));
        };
        match tls.accept(tcp).await {
            Ok((stream, info)) => {
                self.stream = SmtpStream::Tls(Box::new(stream));
                self.client.tls = Some(info);
                trace::tls_started(self.trace.session(), &info);
                if let Some(transcript) = &self.transcript {
                    transcript.note(format!("TLS started: {} {}", info.version, info.cipher));
                }
                self.session.tls_started();
                tracing::debug!(client = %self.client.ip, listener = self.kind.label(), version = info.version, cipher = info.cipher, "STARTTLS");
                Ok(())
            }
            Err(error) => {
                metrics::handshake_failed(self.kind, error.metric_label());
                tracing::info!(client = %self.client.ip, listener = self.kind.label(), %error, "STARTTLS handshake failed");
                Err(io::Error::other(error))
            }
        }
    }

    /// Says `reply` and closes. It counts under the last command's stage, as Postfix logs a
    /// timeout "after RCPT".
    async fn close_with(mut self, reply: Reply) -> io::Result<()> {
        metrics::reply(self.stage, &reply);
        self.transcribe_reply(&reply);
        reply.write_to(&mut self.output);
        self.flush().await?;
        self.shutdown_stream().await
    }

    async fn shutdown_stream(&mut self) -> io::Result<()> {
        self.stream.shutdown().await
    }
}
