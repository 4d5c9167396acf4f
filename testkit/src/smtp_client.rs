//! A small SMTP client for test transcripts. It sends exactly the bytes it is given (so tests can
//! send bare LFs, NULs or pipelined groups) and parses multi-line replies. It can switch to TLS
//! (after STARTTLS, or at once for implicit TLS), trusting only the certificate a test names, so
//! a test learns which certificate the server presented.

mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// One SMTP reply: its code and its lines' text (after the code and separator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl TestReply {
    /// The whole reply as one string, for `contains` checks.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

pub struct SmtpClient {
    stream: Stream,
    buffer: Vec<u8>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    fn io(&mut self) -> &mut (dyn Io + '_) {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.as_mut(),
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Reading a reply gives up after this long, so a broken server fails a test instead of hanging it.
const REPLY_LIMIT: Duration = Duration::from_secs(30);

impl SmtpClient {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> (Self, TestReply) {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|error| panic!("connect to {addr}: {error}"));
        let mut client = Self {
            stream: Stream::Plain(stream),
            buffer: Vec::new(),
        };
        let greeting = client.reply().await;
        (client, greeting)
    }

    /// Connects, sends `preamble` (e.g. a PROXY protocol header) and reads the greeting.
    pub async fn connect_after(addr: SocketAddr, preamble: &[u8]) -> (Self, TestReply) {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|error| panic!("connect to {addr}: {error}"));
        let mut client = Self {
            stream: Stream::Plain(stream),
            buffer: Vec::new(),
        };
        client.send(preamble).await;
        let greeting = client.reply().await;
        (client, greeting)
    }

    /// Connects to an implicit-TLS port, handshakes and reads the greeting. Errors when the
    /// handshake fails, e.g. because the server's certificate is not `trusted_pem`.
    pub async fn connect_tls(
        addr: SocketAddr,
        server_name: &str,
        trusted_pem: &str,
    ) -> std::io::Result<(Self, TestReply)> {
        let tcp = TcpStream::connect(addr).await?;
        let tls = tls::handshake(tcp, server_name, trusted_pem).await?;
        let mut client = Self {
            stream: Stream::Tls(Box::new(tls)),
            buffer: Vec::new(),
        };
        let greeting = client.reply().await;
        Ok((client, greeting))
    }

    /// The handshake after a `220` to STARTTLS. Bytes the server sent after the 220 (which a
    /// correct server never does) are kept and will be read as the first TLS replies would.
    pub async fn start_tls(self, server_name: &str, trusted_pem: &str) -> std::io::Result<Self> {
        let Stream::Plain(tcp) = self.stream else {
            return Err(std::io::Error::other("TLS is already active"));
        };
        let tls = tls::handshake(tcp, server_name, trusted_pem).await?;
        Ok(Self {
            stream: Stream::Tls(Box::new(tls)),
            buffer: self.buffer,
        })
    }

    /// The negotiated protocol version on a TLS connection, e.g. `TLSv1_3`.
    pub fn tls_version(&self) -> Option<String> {
        match &self.stream {
            Stream::Plain(_) => None,
            Stream::Tls(tls) => tls
                .get_ref()
                .1
                .protocol_version()
                .and_then(|v| v.as_str().map(str::to_owned)),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        let io = self.stream.io();
        io.write_all(bytes).await.expect("send to the server");
        io.flush().await.expect("flush to the server");
    }

    /// Sends `line` followed by CRLF and reads one reply.
    pub async fn command(&mut self, line: &str) -> TestReply {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Reads one (possibly multi-line) reply.
    pub async fn reply(&mut self) -> TestReply {
        self.try_reply()
            .await
            .unwrap_or_else(|| panic!("connection closed while waiting for a reply"))
    }

    /// Reads one reply, or `None` when the server closed the connection first.
    pub async fn try_reply(&mut self) -> Option<TestReply> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await?;
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("bad reply line {line:?}"));
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_owned());
            if last {
                return Some(TestReply { code, lines });
            }
        }
    }

    /// True when the server has closed the connection (after any replies already read).
    pub async fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(REPLY_LIMIT, self.stream.io().read(&mut byte)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buffer.drain(..end + 2).take(end).collect();
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            let mut chunk = [0u8; 4096];
            let read = tokio::time::timeout(REPLY_LIMIT, self.stream.io().read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("no reply within {REPLY_LIMIT:?}"));
            match read {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }
}
