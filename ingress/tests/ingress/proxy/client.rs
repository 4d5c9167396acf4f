//! A raw TCP client that starts with arbitrary bytes (a PROXY header, or not), then speaks SMTP.
//! The testkit client reads the greeting on connect, which here must wait for the header.

use std::net::SocketAddr;
use std::time::Duration;

use tern_testkit::TestReply;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reading gives up after this long, so a broken server fails the test instead of hanging it.
const READ_LIMIT: Duration = Duration::from_secs(30);

pub struct ProxiedClient {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl ProxiedClient {
    /// Connects and sends `first` in one write.
    pub async fn connect(addr: SocketAddr, first: &[u8]) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(first).await.expect("send the opening");
        Self {
            stream,
            buffer: Vec::new(),
        }
    }

    pub async fn command(&mut self, line: &str) -> TestReply {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("send");
        self.reply().await
    }

    pub async fn reply(&mut self) -> TestReply {
        let mut lines = Vec::new();
        loop {
            let line = self
                .line()
                .await
                .expect("a reply before the connection closed");
            let code = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("bad reply line {line:?}"));
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_owned());
            if last {
                return TestReply { code, lines };
            }
        }
    }

    /// True when the server closed (or reset) the connection without sending a single byte.
    pub async fn closed_without_a_word(&mut self) -> bool {
        let mut received = Vec::new();
        let read = tokio::time::timeout(READ_LIMIT, self.stream.read_to_end(&mut received)).await;
        match read {
            Ok(Ok(_)) | Ok(Err(_)) => received.is_empty() && self.buffer.is_empty(),
            Err(_) => false,
        }
    }

    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buffer.drain(..end + 2).take(end).collect();
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(READ_LIMIT, self.stream.read(&mut chunk))
                .await
                .expect("a reply in time")
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A v2 header: version/command byte, family/transport byte, then `payload` (addresses, TLVs).
pub fn v2_header(version_command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    out.push(version_command);
    out.push(family);
    out.extend_from_slice(&u16::try_from(payload.len()).expect("short").to_be_bytes());
    out.extend_from_slice(payload);
    out
}
