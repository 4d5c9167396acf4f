//! A small SMTP client for test transcripts. It sends exactly the bytes it is given (so tests can
//! send bare LFs, NULs or pipelined groups) and parses multi-line replies.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// Reading a reply gives up after this long, so a broken server fails a test instead of hanging it.
const REPLY_LIMIT: Duration = Duration::from_secs(30);

impl SmtpClient {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> (Self, TestReply) {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|error| panic!("connect to {addr}: {error}"));
        let mut client = Self {
            stream,
            buffer: Vec::new(),
        };
        let greeting = client.reply().await;
        (client, greeting)
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .await
            .expect("send to the server");
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
            tokio::time::timeout(REPLY_LIMIT, self.stream.read(&mut byte)).await,
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
            let read = tokio::time::timeout(REPLY_LIMIT, self.stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("no reply within {REPLY_LIMIT:?}"));
            match read {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }
}
