//! The client against scripted peers on in-memory streams: every byte it writes is recorded,
//! and every reply is what the test says. Connection set-up (greeting, EHLO, STARTTLS) is in
//! `session`, transactions in `transaction`.

mod session;
mod transaction;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;

use super::*;

/// A script entry that hangs up instead of reading the next command.
const CLOSE: &str = "<close>";

/// What a scripted peer received.
#[derive(Debug, Default)]
struct Received {
    /// Every byte, as text.
    all: String,
    /// Each read on its own: the client's writes, as long as it waits for a reply between them.
    writes: Vec<String>,
}

/// A peer that sends `script[0]` as its greeting and then, for each further entry, reads one
/// command line (or, after a reply starting with 354, the message through its final dot) and
/// answers with the entry. `""` answers nothing; [`CLOSE`] hangs up. After the script it reads
/// until the client goes. Returns the client's end of the stream and what the peer received.
fn peer(script: &[&str]) -> (DuplexStream, JoinHandle<Received>) {
    // Larger than any batch a test writes, so each client write arrives as one read.
    let (client, server) = tokio::io::duplex(1 << 20);
    let script: Vec<String> = script.iter().map(|s| (*s).to_owned()).collect();
    (client, tokio::spawn(serve(server, script)))
}

async fn serve(mut io: DuplexStream, script: Vec<String>) -> Received {
    let mut received = Received::default();
    let mut pending = Vec::new();
    let mut in_data = false;
    for (index, entry) in script.iter().enumerate() {
        if entry == CLOSE {
            return received;
        }
        if index > 0 {
            loop {
                if let Some(end) = complete(&pending, in_data) {
                    pending.drain(..end);
                    break;
                }
                if !read(&mut io, &mut pending, &mut received).await {
                    return received;
                }
            }
        }
        in_data = entry.starts_with("354");
        if io.write_all(entry.as_bytes()).await.is_err() {
            return received;
        }
    }
    while read(&mut io, &mut pending, &mut received).await {}
    received
}

/// One read into `pending`; `false` at the end of the stream.
async fn read(io: &mut DuplexStream, pending: &mut Vec<u8>, received: &mut Received) -> bool {
    let mut buffer = vec![0; 1 << 20];
    match io.read(&mut buffer).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
            received.all.push_str(&text);
            received.writes.push(text);
            pending.extend_from_slice(&buffer[..n]);
            true
        }
    }
}

/// The length of the first complete command, or message, in `pending`.
fn complete(pending: &[u8], in_data: bool) -> Option<usize> {
    if !in_data {
        return pending.iter().position(|&b| b == b'\n').map(|i| i + 1);
    }
    if pending.starts_with(b".\r\n") {
        return Some(3);
    }
    pending
        .windows(5)
        .position(|w| w == b"\r\n.\r\n")
        .map(|i| i + 5)
}

/// Generous: only a broken client makes a test wait this long.
fn timeouts() -> Timeouts {
    let limit = Duration::from_secs(10);
    Timeouts {
        connect: limit,
        greeting: limit,
        helo: limit,
        mail: limit,
        rcpt: limit,
        data_init: limit,
        data_block: limit,
        data_end: limit,
        other: limit,
    }
}

fn config(timeouts: Timeouts) -> ClientConfig {
    ClientConfig {
        helo_name: "client.test".to_owned(),
        timeouts,
        tls_opportunistic: tls::opportunistic().expect("opportunistic TLS configuration"),
        tls_verified: tls::verified(&[]).expect("verified TLS configuration"),
    }
}

fn peer_address() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 25], 25))
}

async fn start_with(
    script: &[&str],
    protocol: Protocol,
    tls: TlsMode,
    timeouts: Timeouts,
) -> (Result<Connection, ConnectError>, JoinHandle<Received>) {
    let (stream, received) = peer(script);
    let config = config(timeouts);
    let connection = Connection::start(
        Box::new(stream),
        peer_address(),
        "mx.dest.test",
        protocol,
        tls,
        &config,
    )
    .await;
    (connection, received)
}

/// A connection that must succeed, plain SMTP.
async fn smtp(script: &[&str]) -> (Connection, JoinHandle<Received>) {
    let (connection, received) =
        start_with(script, Protocol::Smtp, TlsMode::Opportunistic, timeouts()).await;
    (connection.expect("connection established"), received)
}

/// Drops the connection and returns what the peer received.
async fn finish(connection: Connection, received: JoinHandle<Received>) -> Received {
    drop(connection);
    received.await.expect("the peer task does not panic")
}

fn envelope<'a>(addresses: &[&'a str]) -> Envelope<'a> {
    Envelope {
        mail_from: "a@origin.test",
        smtputf8: false,
        eight_bit: false,
        ret: None,
        envid: None,
        recipients: addresses
            .iter()
            .map(|&address| EnvelopeRecipient {
                address,
                notify: None,
                orcpt: None,
            })
            .collect(),
    }
}

fn reply(code: u16, status: &str, text: &str) -> RemoteReply {
    RemoteReply::new(code, Some(status), text)
}

const GREETING: &str = "220 mx.dest.test ESMTP\r\n";
const EHLO_PIPELINING: &str = "250-mx.dest.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
const EHLO_PLAIN: &str = "250 mx.dest.test\r\n";
