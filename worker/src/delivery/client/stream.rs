//! The byte stream of one connection: timed writes, replies read through the sans-IO parser,
//! and the switch to TLS. Plain TCP, TLS and in-memory test streams all take this one path.

use std::time::Duration;

use rustls::pki_types::ServerName;
use tern_smtp::client::{Capabilities, Command, RemoteReply, ReplyParser};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsConnector;

use crate::delivery::DeliveryError;
use crate::delivery::tls::TlsInfo;

/// What a connection runs over.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Replies are short; a few KiB per read keeps an idle pooled connection small.
const READ_BUFFER: usize = 4096;

pub(super) struct Wire {
    stream: Box<dyn Io>,
    parser: ReplyParser,
    read_buffer: Box<[u8]>,
    host: String,
    /// The first failure. Once a reply was missed, a later command would read it as its own, so
    /// every later use fails the same way and the connection can only be dropped.
    failed: Option<DeliveryError>,
}

impl Wire {
    pub(super) fn new(stream: Box<dyn Io>, host: &str) -> Self {
        Self {
            stream,
            parser: ReplyParser::new(),
            read_buffer: vec![0; READ_BUFFER].into_boxed_slice(),
            host: host.to_owned(),
            failed: None,
        }
    }

    pub(super) fn host(&self) -> &str {
        &self.host
    }

    /// `Err` when an earlier failure made the connection unusable.
    pub(super) fn usable(&self) -> Result<(), DeliveryError> {
        self.failed.clone().map_or(Ok(()), Err)
    }

    /// Marks the connection unusable, for failures found above this layer (a refused RSET, a
    /// server closing with 421), and returns the error.
    pub(super) fn fail(&mut self, error: DeliveryError) -> DeliveryError {
        self.failed.get_or_insert(error).clone()
    }

    pub(super) fn protocol_error(&mut self, reason: String) -> DeliveryError {
        let host = self.host.clone();
        self.fail(DeliveryError::Protocol { host, reason })
    }

    fn timeout(&mut self, stage: &'static str) -> DeliveryError {
        let host = self.host.clone();
        self.fail(DeliveryError::Timeout { host, stage })
    }

    fn lost(&mut self, reason: String) -> DeliveryError {
        let host = self.host.clone();
        self.fail(DeliveryError::ConnectionLost { host, reason })
    }

    /// Writes and flushes `bytes` within `limit`.
    pub(super) async fn write(
        &mut self,
        bytes: &[u8],
        limit: Duration,
        stage: &'static str,
    ) -> Result<(), DeliveryError> {
        self.usable()?;
        let stream = &mut self.stream;
        let io = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        match tokio::time::timeout(limit, io).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(self.lost(error.to_string())),
            Err(_) => Err(self.timeout(stage)),
        }
    }

    pub(super) async fn read_reply(
        &mut self,
        limit: Duration,
        stage: &'static str,
    ) -> Result<RemoteReply, DeliveryError> {
        Ok(self.read_reply_lines(limit, stage).await?.0)
    }

    /// The next reply with its lines (for EHLO keywords), within `limit`.
    pub(super) async fn read_reply_lines(
        &mut self,
        limit: Duration,
        stage: &'static str,
    ) -> Result<(RemoteReply, Vec<String>), DeliveryError> {
        self.usable()?;
        match tokio::time::timeout(limit, self.read_until_reply()).await {
            Ok(result) => result,
            Err(_) => Err(self.timeout(stage)),
        }
    }

    async fn read_until_reply(&mut self) -> Result<(RemoteReply, Vec<String>), DeliveryError> {
        loop {
            match self.parser.next_reply_lines() {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(error) => return Err(self.protocol_error(error.to_string())),
            }
            let read = match self.stream.read(&mut self.read_buffer).await {
                Ok(0) => return Err(self.lost("connection closed by the server".to_owned())),
                Ok(read) => read,
                Err(error) => return Err(self.lost(error.to_string())),
            };
            self.parser.push(&self.read_buffer[..read]);
        }
    }

    /// Writes one command and reads its reply.
    pub(super) async fn command(
        &mut self,
        command: &Command<'_>,
        peer: &Capabilities,
        limit: Duration,
        stage: &'static str,
    ) -> Result<RemoteReply, DeliveryError> {
        Ok(self.command_lines(command, peer, limit, stage).await?.0)
    }

    pub(super) async fn command_lines(
        &mut self,
        command: &Command<'_>,
        peer: &Capabilities,
        limit: Duration,
        stage: &'static str,
    ) -> Result<(RemoteReply, Vec<String>), DeliveryError> {
        let mut line = Vec::with_capacity(64);
        if let Err(error) = command.write(peer, &mut line) {
            return Err(self.protocol_error(format!("cannot send {stage}: {error}")));
        }
        self.write(&line, limit, stage).await?;
        self.read_reply_lines(limit, stage).await
    }

    /// Runs the TLS handshake over the stream, after a positive reply to STARTTLS. Errors are
    /// [`DeliveryError::Tls`], except bytes the server sent after its reply, which break the
    /// protocol: read as if they had come over TLS, they would let an attacker on the path
    /// inject replies (the CVE-2011-0411 family).
    pub(super) async fn start_tls(
        &mut self,
        connector: TlsConnector,
        name: ServerName<'static>,
        limit: Duration,
    ) -> Result<TlsInfo, DeliveryError> {
        self.usable()?;
        if self.parser.has_buffered() {
            return Err(self.protocol_error("data after the STARTTLS reply".to_owned()));
        }
        let plain = std::mem::replace(&mut self.stream, Box::new(tokio::io::empty()));
        let tls_error = |wire: &mut Self, reason: String| {
            let host = wire.host.clone();
            wire.fail(DeliveryError::Tls { host, reason })
        };
        let tls = match tokio::time::timeout(limit, connector.connect(name, plain)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => return Err(tls_error(self, error.to_string())),
            Err(_) => return Err(tls_error(self, "handshake timed out".to_owned())),
        };
        let info = TlsInfo::of(tls.get_ref().1);
        self.stream = Box::new(tls);
        Ok(info)
    }

    /// Closes the stream (a TLS close_notify, then FIN), ignoring failures: the caller bounds it.
    pub(super) async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}
