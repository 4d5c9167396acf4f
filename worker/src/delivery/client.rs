//! The SMTP/LMTP client of one delivery connection: greeting, EHLO (HELO fallback, LHLO for
//! LMTP), STARTTLS, then transactions, pipelined when the server allows, on a connection that
//! may carry several messages with RSET between them.
//!
//! The protocol itself (reply parsing, capabilities, command bytes, dot-stuffing) is sans-IO in
//! [`tern_smtp::client`]; this module adds sockets, timeouts and TLS.
//!
//! - `stream`: the byte stream (TCP, TLS, or an in-memory test stream), read and written alike.
//! - `transaction`: [`Connection::send`], one transaction from MAIL to the final replies.
//! - `data`: the dot-stuffed message, written in blocks.
//! - `refusal`: replies made up locally for what must not be sent (SIZE, SMTPUTF8).

mod data;
mod refusal;
mod stream;
#[cfg(test)]
mod tests;
mod transaction;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use tern_smtp::client::Capabilities;
use tern_smtp::client::{Command, Hello, RemoteReply};
use tern_smtp::{Notify, Ret};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use self::stream::{Io, Wire};
use super::DeliveryError;
pub use super::route::Protocol;
use super::tls;
pub use super::tls::TlsInfo;

/// Whether to use STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// When offered, without checking the certificate (Postfix `may`).
    Opportunistic,
    /// Required, with a certificate that verifies for the host name (Postfix `verify`).
    Verified,
    /// Never (a local LMTP store, a test peer).
    Disabled,
}

/// How long to wait for each reply: RFC 5321 4.5.3.2, whose values are minimums a client
/// should not go below, since a slow server that answers late has often already acted.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect: not in the RFC. Long enough for a distant host, short enough that a dead
    /// MX hands over to the next one quickly (Postfix's `smtp_connect_timeout` is 30 s too).
    pub connect: Duration,
    pub greeting: Duration,
    /// EHLO, HELO, LHLO: the RFC's "initial 220" wait applies to them in practice; Postfix
    /// waits 300 s.
    pub helo: Duration,
    pub mail: Duration,
    pub rcpt: Duration,
    pub data_init: Duration,
    /// Each block of message data written.
    pub data_block: Duration,
    /// The reply to the final dot: long, since the server may be filtering the message, and
    /// giving up early risks a duplicate delivery (RFC 1047).
    pub data_end: Duration,
    /// RSET, STARTTLS and the TLS handshake; QUIT waits at most [`QUIT_LIMIT`] of it. Not in
    /// the RFC; 2 minutes like DATA initiation, as nothing slow happens on the server for them.
    pub other: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        Self {
            connect: Duration::from_secs(30),
            greeting: minutes(5),
            helo: minutes(5),
            mail: minutes(5),
            rcpt: minutes(5),
            data_init: minutes(2),
            data_block: minutes(3),
            data_end: minutes(10),
            other: minutes(2),
        }
    }
}

/// QUIT is a courtesy whose answer changes nothing, and shutdown closes idle connections one
/// after another within its grace period, so it never waits long.
pub const QUIT_LIMIT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct ClientConfig {
    /// The name given in EHLO, HELO and LHLO.
    pub helo_name: String,
    pub timeouts: Timeouts,
    pub tls_opportunistic: Arc<rustls::ClientConfig>,
    pub tls_verified: Arc<rustls::ClientConfig>,
}

/// The recipients and parameters of one transaction; addresses without angle brackets.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// `""` is the null reverse-path.
    pub mail_from: &'a str,
    /// The message needs SMTPUTF8 (a non-ASCII address or header).
    pub smtputf8: bool,
    /// The body has 8-bit octets.
    pub eight_bit: bool,
    pub ret: Option<Ret>,
    /// Decoded; encoded as xtext on the wire.
    pub envid: Option<&'a str>,
    pub recipients: Vec<EnvelopeRecipient<'a>>,
}

#[derive(Debug, Clone)]
pub struct EnvelopeRecipient<'a> {
    pub address: &'a str,
    pub notify: Option<Notify>,
    /// `addr-type;address`, decoded; encoded as xtext on the wire.
    pub orcpt: Option<&'a str>,
}

/// Why no connection was established.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// Nothing usable was said: the connection or the conversation failed.
    #[error(transparent)]
    Failed(#[from] DeliveryError),
    /// The server answered, and refused us (greeting, EHLO/HELO/LHLO): the reply applies to
    /// every recipient meant for it.
    #[error("refused by the server: {0}")]
    Refused(RemoteReply),
}

/// An established connection, greeted and (when wanted) inside TLS, ready for transactions.
pub struct Connection {
    wire: Wire,
    peer: SocketAddr,
    protocol: Protocol,
    capabilities: Capabilities,
    tls: Option<TlsInfo>,
    timeouts: Timeouts,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.wire.host())
            .field("peer", &self.peer)
            .field("protocol", &self.protocol)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to `address` (bounded by `timeouts.connect`), reads the greeting, says EHLO
    /// (HELO when EHLO gets a 5xx; LHLO for LMTP, without fallback), and starts TLS as `tls`
    /// says, saying EHLO again inside it. `host_name` is what TLS verifies and what errors name.
    pub async fn connect(
        address: SocketAddr,
        host_name: &str,
        protocol: Protocol,
        tls: TlsMode,
        config: &ClientConfig,
    ) -> Result<Connection, ConnectError> {
        let connecting = TcpStream::connect(address);
        let failure = |reason: String| DeliveryError::Connect {
            host: format!("{host_name}[{}]", address.ip()),
            reason,
        };
        let tcp = match tokio::time::timeout(config.timeouts.connect, connecting).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(error)) => return Err(failure(error.to_string()).into()),
            Err(_) => return Err(failure("connection timed out".to_owned()).into()),
        };
        // Commands go out in whole writes; Nagle's algorithm would only hold back the next one.
        // Failing to set it costs a little latency, so it is not worth failing the connection.
        let _ = tcp.set_nodelay(true);
        Self::start(Box::new(tcp), address, host_name, protocol, tls, config).await
    }

    /// [`connect`](Self::connect) from the greeting on, over a stream already connected.
    pub(crate) async fn start(
        stream: Box<dyn Io>,
        peer: SocketAddr,
        host_name: &str,
        protocol: Protocol,
        tls: TlsMode,
        config: &ClientConfig,
    ) -> Result<Connection, ConnectError> {
        let mut connection = Connection {
            wire: Wire::new(stream, host_name),
            peer,
            protocol,
            capabilities: Capabilities::default(),
            tls: None,
            timeouts: config.timeouts,
        };
        let greeting = connection
            .wire
            .read_reply(config.timeouts.greeting, "greeting")
            .await?;
        if !greeting.is_positive() {
            return Err(connection.refused(greeting).await);
        }
        connection.hello(&config.helo_name).await?;
        let want_tls = match tls {
            TlsMode::Disabled => false,
            TlsMode::Opportunistic => connection.capabilities.starttls,
            TlsMode::Verified => true,
        };
        if want_tls && connection.start_tls(tls, config).await? {
            connection.hello(&config.helo_name).await?;
        }
        Ok(connection)
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn host_name(&self) -> &str {
        self.wire.host()
    }

    /// EHLO, falling back to HELO on a 5xx (not for LMTP, which only has LHLO).
    async fn hello(&mut self, name: &str) -> Result<(), ConnectError> {
        let (verb, stage) = match self.protocol {
            Protocol::Smtp => (Hello::Ehlo, "EHLO"),
            Protocol::Lmtp => (Hello::Lhlo, "LHLO"),
        };
        let none = Capabilities::default();
        let limit = self.timeouts.helo;
        let command = Command::Hello(verb, name);
        let (reply, lines) = self
            .wire
            .command_lines(&command, &none, limit, stage)
            .await?;
        if reply.is_positive() {
            self.capabilities = Capabilities::from_ehlo(&lines);
            return Ok(());
        }
        if self.protocol == Protocol::Lmtp || !reply.is_permanent() {
            return Err(self.refused(reply).await);
        }
        let command = Command::Hello(Hello::Helo, name);
        let reply = self.wire.command(&command, &none, limit, "HELO").await?;
        if !reply.is_positive() {
            return Err(self.refused(reply).await);
        }
        self.capabilities = Capabilities::default();
        Ok(())
    }

    /// STARTTLS and the handshake. `Ok(false)`: opportunistic TLS the server refused at the
    /// command, so the session goes on in plaintext as Postfix's `may` does; nothing was
    /// negotiated, so nothing is lost that plaintext would not lose anyway.
    async fn start_tls(
        &mut self,
        mode: TlsMode,
        config: &ClientConfig,
    ) -> Result<bool, ConnectError> {
        let host = self.wire.host().to_owned();
        let tls_error = |reason: String| DeliveryError::Tls {
            host: host.clone(),
            reason,
        };
        if !self.capabilities.starttls {
            return Err(tls_error("STARTTLS is required but not offered".to_owned()).into());
        }
        let limit = self.timeouts.other;
        let none = Capabilities::default();
        let reply = self
            .wire
            .command(&Command::StartTls, &none, limit, "STARTTLS")
            .await?;
        if !reply.is_positive() {
            if mode == TlsMode::Opportunistic {
                return Ok(false);
            }
            return Err(tls_error(format!("STARTTLS refused: {reply}")).into());
        }
        let (tls_config, name) = match (mode, tls::server_name(&host)) {
            (TlsMode::Verified, Some(name)) => (config.tls_verified.clone(), name),
            (TlsMode::Verified, None) => {
                let reason = format!("{host} is not a name a certificate can be verified for");
                return Err(self.wire.fail(tls_error(reason)).into());
            }
            (_, name) => (
                config.tls_opportunistic.clone(),
                name.unwrap_or_else(|| self.peer.ip().into()),
            ),
        };
        // A failed handshake gives up this connection in both modes: the attempt is deferred
        // and retried later. Postfix's `may` would instead deliver at once in plaintext over a
        // new connection; that needs the caller to ask for a connection without TLS, which the
        // worker does not do (yet).
        let info = self
            .wire
            .start_tls(TlsConnector::from(tls_config), name, limit)
            .await?;
        self.tls = Some(info);
        self.capabilities = Capabilities::default();
        Ok(true)
    }

    /// The server refused the session: say QUIT without waiting for its answer (RFC 5321 3.1
    /// asks for it after a 554 greeting) and hand the reply on.
    async fn refused(&mut self, reply: RemoteReply) -> ConnectError {
        let none = Capabilities::default();
        let mut quit = Vec::new();
        if Command::Quit.write(&none, &mut quit).is_ok() {
            let _ = self.wire.write(&quit, QUIT_LIMIT, "QUIT").await;
        }
        ConnectError::Refused(reply)
    }

    /// RSET: ends any transaction and shows the connection still works (a pooled connection
    /// before reuse); `Err`: drop it. [`Connection::send`] needs none between transactions.
    pub async fn reset(&mut self) -> Result<(), DeliveryError> {
        let none = Capabilities::default();
        let reply = self
            .wire
            .command(&Command::Rset, &none, self.timeouts.other, "RSET")
            .await?;
        if reply.is_positive() {
            return Ok(());
        }
        Err(self.wire.protocol_error(format!("RSET refused: {reply}")))
    }

    /// QUIT and close, best effort, all within the shorter of `timeouts.other` and
    /// [`QUIT_LIMIT`].
    pub async fn quit(mut self) {
        let limit = self.timeouts.other.min(QUIT_LIMIT);
        let goodbye = async {
            if self.wire.usable().is_ok() {
                let none = Capabilities::default();
                let quit = self.wire.command(&Command::Quit, &none, limit, "QUIT");
                let _ = quit.await;
            }
            self.wire.shutdown().await;
        };
        let _ = tokio::time::timeout(limit, goodbye).await;
    }
}
