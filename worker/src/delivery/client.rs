//! The SMTP/LMTP client of one delivery connection: greeting, EHLO (HELO fallback, LHLO for
//! LMTP), opportunistic STARTTLS, then transactions, pipelined when the server allows, and RSET
//! between them so the connection carries several messages.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tern_smtp::client::RemoteReply;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::DeliveryError;
pub use super::route::Protocol;
pub use super::wire::Capabilities;
use super::wire::{self, MAX_REPLY_LINE, ReplyBuilder};

/// Whether to use STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// When offered, without checking the certificate (Postfix `may`).
    Opportunistic,
    /// Required, with a verified certificate for the host name.
    Verified,
    /// Never (a local LMTP store, a test peer).
    Disabled,
}

/// RFC 5321 4.5.3.2 timeouts; `connect` is ours.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub greeting: Duration,
    pub helo: Duration,
    pub mail: Duration,
    pub rcpt: Duration,
    pub data_init: Duration,
    pub data_block: Duration,
    pub data_end: Duration,
    /// RSET, QUIT and STARTTLS: not named by the RFC; short, as Postfix's 5 minutes for them
    /// only keep a dead connection around.
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

#[derive(Clone)]
pub struct ClientConfig {
    pub helo_name: String,
    pub timeouts: Timeouts,
    pub tls_opportunistic: Arc<rustls::ClientConfig>,
    pub tls_verified: Arc<rustls::ClientConfig>,
}

/// TLS parameters of an established connection, for the attempt record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
}

/// The recipients and parameters of one transaction; addresses without angle brackets.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// `""` is the null reverse-path.
    pub mail_from: &'a str,
    pub smtputf8: bool,
    pub eight_bit: bool,
    pub ret: Option<&'a str>,
    pub envid: Option<&'a str>,
    pub recipients: Vec<EnvelopeRecipient<'a>>,
}

#[derive(Debug, Clone)]
pub struct EnvelopeRecipient<'a> {
    pub address: &'a str,
    pub notify: Option<&'a str>,
    /// `addr-type;address`, decoded; encoded as xtext on the wire.
    pub orcpt: Option<&'a str>,
}

/// Why no connection was established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// Nothing usable was said: the connection or the conversation failed.
    Failed(DeliveryError),
    /// The server answered, and refused us (greeting, EHLO/HELO): the reply applies to every
    /// recipient meant for it.
    Refused(RemoteReply),
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct Connection {
    stream: BufReader<Box<dyn Io>>,
    peer: SocketAddr,
    host: String,
    protocol: Protocol,
    capabilities: Capabilities,
    tls: Option<TlsInfo>,
    timeouts: Timeouts,
    /// MAIL was accepted and the transaction did not reach its end (no DATA, DATA refused):
    /// the next transaction needs an RSET first.
    open_transaction: bool,
}

impl Connection {
    pub async fn connect(
        address: SocketAddr,
        host_name: &str,
        protocol: Protocol,
        tls: TlsMode,
        config: &ClientConfig,
    ) -> Result<Connection, ConnectError> {
        let failed = ConnectError::Failed;
        let tcp = match tokio::time::timeout(config.timeouts.connect, TcpStream::connect(address))
            .await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(error)) => {
                return Err(failed(DeliveryError::Connect {
                    host: format!("{host_name}[{}]", address.ip()),
                    reason: error.to_string(),
                }));
            }
            Err(_) => {
                return Err(failed(DeliveryError::Connect {
                    host: format!("{host_name}[{}]", address.ip()),
                    reason: "connection timed out".into(),
                }));
            }
        };
        let _ = tcp.set_nodelay(true);
        let mut connection = Connection {
            stream: BufReader::new(Box::new(tcp)),
            peer: address,
            host: host_name.to_owned(),
            protocol,
            capabilities: Capabilities::default(),
            tls: None,
            timeouts: config.timeouts,
            open_transaction: false,
        };
        let greeting = connection
            .read_reply(config.timeouts.greeting, "greeting")
            .await
            .map_err(failed)?;
        if !greeting.is_positive() {
            return Err(ConnectError::Refused(greeting));
        }
        connection.hello(config).await?;
        let want_tls = match tls {
            TlsMode::Disabled => false,
            TlsMode::Opportunistic => connection.capabilities.starttls,
            TlsMode::Verified => true,
        };
        if want_tls {
            connection.start_tls(tls, config).await?;
            connection.hello(config).await?;
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
        &self.host
    }

    /// EHLO, falling back to HELO on a 5xx (not for LMTP, which only has LHLO).
    async fn hello(&mut self, config: &ClientConfig) -> Result<(), ConnectError> {
        let verb = match self.protocol {
            Protocol::Smtp => "EHLO",
            Protocol::Lmtp => "LHLO",
        };
        let helo = &config.helo_name;
        let (reply, lines) = self
            .command_lines(&format!("{verb} {helo}\r\n"), self.timeouts.helo, "EHLO")
            .await
            .map_err(ConnectError::Failed)?;
        if reply.is_positive() {
            self.capabilities = Capabilities::parse(lines.iter().skip(1).map(String::as_str));
            return Ok(());
        }
        if self.protocol == Protocol::Lmtp || !reply.is_permanent() {
            return Err(ConnectError::Refused(reply));
        }
        let reply = self
            .command(&format!("HELO {helo}\r\n"), self.timeouts.helo, "HELO")
            .await
            .map_err(ConnectError::Failed)?;
        if !reply.is_positive() {
            return Err(ConnectError::Refused(reply));
        }
        self.capabilities = Capabilities::default();
        Ok(())
    }

    async fn start_tls(
        &mut self,
        mode: TlsMode,
        config: &ClientConfig,
    ) -> Result<(), ConnectError> {
        let host = self.host.clone();
        let tls_error = |reason: String| {
            ConnectError::Failed(DeliveryError::Tls {
                host: host.clone(),
                reason,
            })
        };
        if !self.capabilities.starttls {
            return Err(tls_error("STARTTLS is required but not offered".into()));
        }
        let reply = self
            .command("STARTTLS\r\n", self.timeouts.other, "STARTTLS")
            .await
            .map_err(ConnectError::Failed)?;
        if !reply.is_positive() {
            // Opportunistic TLS that the server refuses after offering it: give up this
            // connection; the retry will find it in the same state, so say why.
            return Err(tls_error(format!("STARTTLS refused: {reply}")));
        }
        if !self.stream.buffer().is_empty() {
            // Bytes after the 220 would be read as if they came over TLS (CVE-2011-0411 family).
            return Err(ConnectError::Failed(DeliveryError::Protocol {
                host: self.host.clone(),
                reason: "data after the STARTTLS reply".into(),
            }));
        }
        let tls_config = match mode {
            TlsMode::Verified => config.tls_verified.clone(),
            _ => config.tls_opportunistic.clone(),
        };
        let name = match self.host.parse::<std::net::IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(self.host.clone())
                .unwrap_or_else(|_| ServerName::IpAddress(self.peer.ip().into())),
        };
        let placeholder: Box<dyn Io> = Box::new(tokio::io::duplex(1).0);
        let plain = std::mem::replace(&mut self.stream, BufReader::new(placeholder)).into_inner();
        let handshake = TlsConnector::from(tls_config).connect(name, plain);
        let tls = match tokio::time::timeout(self.timeouts.other, handshake).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => return Err(tls_error(error.to_string())),
            Err(_) => return Err(tls_error("handshake timed out".into())),
        };
        let (_, session) = tls.get_ref();
        self.tls = Some(TlsInfo {
            version: session
                .protocol_version()
                .and_then(|v| v.as_str())
                .unwrap_or("TLS")
                .to_owned(),
            cipher: session
                .negotiated_cipher_suite()
                .and_then(|c| c.suite().as_str())
                .unwrap_or("unknown")
                .to_owned(),
        });
        self.stream = BufReader::new(Box::new(tls));
        Ok(())
    }

    /// One transaction: one final reply per recipient, in order (see the module docs of
    /// `delivery`). `Err` only when the connection itself failed; it must then be dropped.
    pub async fn send(
        &mut self,
        envelope: &Envelope<'_>,
        body: &[u8],
    ) -> Result<Vec<RemoteReply>, DeliveryError> {
        let count = envelope.recipients.len();
        if self.open_transaction {
            self.reset().await?;
        }
        if let Some(refusal) = self.refuse_locally(envelope, body.len()) {
            return Ok(vec![refusal; count]);
        }
        let mail = self.mail_command(envelope, body.len());
        let rcpts: Vec<String> = envelope
            .recipients
            .iter()
            .map(|r| self.rcpt_command(r))
            .collect();
        let t = self.timeouts;

        let (mail_reply, rcpt_replies) = if self.capabilities.pipelining {
            // RFC 2920: MAIL and every RCPT go in one write; DATA waits for their replies so a
            // refused envelope never has to be cancelled mid-DATA.
            let mut batch = mail.clone();
            for rcpt in &rcpts {
                batch.push_str(rcpt);
            }
            self.write(batch.as_bytes(), t.mail, "MAIL").await?;
            let mail_reply = self.read_reply(t.mail, "MAIL").await?;
            let mut replies = Vec::with_capacity(count);
            for _ in &rcpts {
                replies.push(self.read_reply(t.rcpt, "RCPT").await?);
            }
            (mail_reply, replies)
        } else {
            let mail_reply = self.command(&mail, t.mail, "MAIL").await?;
            let mut replies = Vec::with_capacity(count);
            if mail_reply.is_positive() {
                for rcpt in &rcpts {
                    replies.push(self.command(rcpt, t.rcpt, "RCPT").await?);
                }
            }
            (mail_reply, replies)
        };
        if !mail_reply.is_positive() {
            return Ok(vec![mail_reply; count]);
        }
        self.open_transaction = true;
        let accepted: Vec<usize> = (0..count)
            .filter(|&i| rcpt_replies[i].is_positive())
            .collect();
        if accepted.is_empty() {
            return Ok(rcpt_replies);
        }
        let data = self.command("DATA\r\n", t.data_init, "DATA").await?;
        if data.code != 354 {
            let mut replies = rcpt_replies;
            for &i in &accepted {
                replies[i] = data.clone();
            }
            return Ok(replies);
        }
        self.write(&wire::dot_stuff(body), t.data_block, "DATA block")
            .await?;
        let mut replies = rcpt_replies;
        // Whatever the end-of-data replies say, the transaction is over once they are read.
        self.open_transaction = false;
        match self.protocol {
            Protocol::Smtp => {
                let end = self.read_reply(t.data_end, "DATA end").await?;
                for &i in &accepted {
                    replies[i] = end.clone();
                }
            }
            // RFC 2033 4.2: one reply per accepted recipient, in order.
            Protocol::Lmtp => {
                for &i in &accepted {
                    replies[i] = self.read_reply(t.data_end, "DATA end").await?;
                }
            }
        }
        Ok(replies)
    }

    /// Refusals decided before talking: what the server said it cannot take.
    fn refuse_locally(&self, envelope: &Envelope<'_>, size: usize) -> Option<RemoteReply> {
        let caps = &self.capabilities;
        if envelope.smtputf8 && !caps.smtputf8 {
            return Some(RemoteReply::new(
                550,
                Some("5.6.7"),
                format!(
                    "{} does not support SMTPUTF8, which this message needs",
                    self.host
                ),
            ));
        }
        if caps.size.is_some_and(|limit| size as u64 > limit) {
            return Some(RemoteReply::new(
                552,
                Some("5.3.4"),
                format!("message is larger than {} accepts", self.host),
            ));
        }
        None
    }

    fn mail_command(&self, envelope: &Envelope<'_>, size: usize) -> String {
        let caps = &self.capabilities;
        let mut command = format!("MAIL FROM:<{}>", envelope.mail_from);
        if caps.size.is_some() {
            command.push_str(&format!(" SIZE={size}"));
        }
        // Without 8BITMIME the body goes as it is, as Postfix does by default: downgrading would
        // break signatures, and almost every server takes 8-bit data anyway.
        if envelope.eight_bit && caps.eightbitmime {
            command.push_str(" BODY=8BITMIME");
        }
        if envelope.smtputf8 && caps.smtputf8 {
            command.push_str(" SMTPUTF8");
        }
        if caps.dsn {
            if let Some(ret) = envelope.ret {
                command.push_str(&format!(" RET={ret}"));
            }
            if let Some(envid) = envelope.envid {
                command.push_str(&format!(" ENVID={}", wire::xtext(envid)));
            }
        }
        command.push_str("\r\n");
        command
    }

    fn rcpt_command(&self, recipient: &EnvelopeRecipient<'_>) -> String {
        let mut command = format!("RCPT TO:<{}>", recipient.address);
        if self.capabilities.dsn {
            if let Some(notify) = recipient.notify {
                command.push_str(&format!(" NOTIFY={notify}"));
            }
            if let Some(orcpt) = recipient.orcpt {
                command.push_str(&format!(" ORCPT={}", wire::xtext(orcpt)));
            }
        }
        command.push_str("\r\n");
        command
    }

    /// RSET: ends any transaction and shows the connection still works; `Err`: drop it.
    /// [`Connection::send`] sends one by itself when the last transaction was left open, so a
    /// completed transaction is followed straight by the next MAIL (RFC 5321 3.3).
    pub async fn reset(&mut self) -> Result<(), DeliveryError> {
        let reply = self
            .command("RSET\r\n", self.timeouts.other, "RSET")
            .await?;
        if reply.is_positive() {
            self.open_transaction = false;
            Ok(())
        } else {
            Err(DeliveryError::Protocol {
                host: self.host.clone(),
                reason: format!("RSET: {reply}"),
            })
        }
    }

    /// QUIT, best effort.
    pub async fn quit(mut self) {
        let _ = self
            .command("QUIT\r\n", Duration::from_secs(5), "QUIT")
            .await;
    }

    async fn command(
        &mut self,
        line: &str,
        limit: Duration,
        stage: &'static str,
    ) -> Result<RemoteReply, DeliveryError> {
        self.write(line.as_bytes(), limit, stage).await?;
        self.read_reply(limit, stage).await
    }

    /// A command whose reply lines are wanted too (EHLO keywords).
    async fn command_lines(
        &mut self,
        line: &str,
        limit: Duration,
        stage: &'static str,
    ) -> Result<(RemoteReply, Vec<String>), DeliveryError> {
        self.write(line.as_bytes(), limit, stage).await?;
        self.read_reply_lines(limit, stage).await
    }

    async fn write(
        &mut self,
        bytes: &[u8],
        limit: Duration,
        stage: &'static str,
    ) -> Result<(), DeliveryError> {
        let stream = self.stream.get_mut();
        let io = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        match tokio::time::timeout(limit, io).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(self.lost(error)),
            Err(_) => Err(DeliveryError::Timeout {
                host: self.host.clone(),
                stage,
            }),
        }
    }

    async fn read_reply(
        &mut self,
        limit: Duration,
        stage: &'static str,
    ) -> Result<RemoteReply, DeliveryError> {
        Ok(self.read_reply_lines(limit, stage).await?.0)
    }

    async fn read_reply_lines(
        &mut self,
        limit: Duration,
        stage: &'static str,
    ) -> Result<(RemoteReply, Vec<String>), DeliveryError> {
        match tokio::time::timeout(limit, self.read_reply_inner()).await {
            Ok(result) => result,
            Err(_) => Err(DeliveryError::Timeout {
                host: self.host.clone(),
                stage,
            }),
        }
    }

    async fn read_reply_inner(&mut self) -> Result<(RemoteReply, Vec<String>), DeliveryError> {
        let mut builder = ReplyBuilder::default();
        let mut texts = Vec::new();
        let mut line = Vec::with_capacity(128);
        loop {
            line.clear();
            let read = (&mut self.stream)
                .take(MAX_REPLY_LINE as u64 + 2)
                .read_until(b'\n', &mut line)
                .await
                .map_err(|e| self.lost(e))?;
            if read == 0 {
                return Err(DeliveryError::ConnectionLost {
                    host: self.host.clone(),
                    reason: "connection closed by the server".into(),
                });
            }
            if !line.ends_with(b"\n") {
                return Err(self.protocol_error("reply line too long"));
            }
            // Servers that end lines with a bare LF exist; tolerate them as Postfix does.
            let content = line
                .strip_suffix(b"\r\n")
                .or_else(|| line.strip_suffix(b"\n"))
                .unwrap_or(&line);
            texts.push(String::from_utf8_lossy(content.get(4..).unwrap_or(b"")).into_owned());
            match builder.push(content) {
                Ok(Some(reply)) => return Ok((reply, texts)),
                Ok(None) => {}
                Err(bad) => return Err(self.protocol_error(&bad.0)),
            }
        }
    }

    fn lost(&self, error: std::io::Error) -> DeliveryError {
        DeliveryError::ConnectionLost {
            host: self.host.clone(),
            reason: error.to_string(),
        }
    }

    fn protocol_error(&self, reason: &str) -> DeliveryError {
        DeliveryError::Protocol {
            host: self.host.clone(),
            reason: reason.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests;
