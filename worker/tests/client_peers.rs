//! The outbound client against a peer it shares no code with: Postfix's `smtp-sink`, in SMTP and
//! LMTP, pipelined or not, refusing at each stage, closing with 421 or hanging up. What the sink
//! captured (envelope parameters, the unstuffed message) is checked against what was sent.
//!
//! `smtp-sink` comes with Debian's `postfix` package; without it these tests fail, saying so.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tern_smtp::Ret;
use tern_testkit::wait;
use tern_worker::delivery::DeliveryError;
use tern_worker::delivery::client::{
    ClientConfig, ConnectError, Connection, Envelope, EnvelopeRecipient, Protocol, Timeouts,
    TlsMode,
};
use tern_worker::delivery::tls;

const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

/// A running `smtp-sink` that dumps every message it takes into its own directory.
struct PostfixSink {
    child: Child,
    addr: SocketAddr,
    dumps: PathBuf,
}

impl PostfixSink {
    /// Starts `smtp-sink` with `flags` on a free loopback port.
    async fn start(flags: &[&str]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dumps = std::env::temp_dir().join(format!(
            "tern-smtp-sink-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dumps).expect("create the dump directory");
        // Run as root, smtp-sink insists on dropping to another user, who must write dumps.
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        if root {
            std::fs::set_permissions(&dumps, std::fs::Permissions::from_mode(0o777))
                .expect("open the dump directory to smtp-sink's user");
        }
        // A free port can be taken by someone else before smtp-sink binds it: try a few.
        for _ in 0..5 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|listener| listener.local_addr())
                .expect("find a free port")
                .port();
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let mut command = Command::new(SMTP_SINK);
            if root {
                command.args(["-u", "nobody"]);
            }
            let template = format!("{}/message.", dumps.display());
            command
                .args(flags)
                .args(["-d", &template, &addr.to_string(), "64"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = command.spawn().unwrap_or_else(|error| {
                panic!("start {SMTP_SINK} ({error}); install it with `apt-get install postfix`")
            });
            let mut sink = Self {
                child,
                addr,
                dumps: dumps.clone(),
            };
            if sink.listening().await {
                return sink;
            }
        }
        panic!("{SMTP_SINK} did not start listening on a free port");
    }

    /// Waits until the sink accepts connections; `false` when it exited instead.
    async fn listening(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return false;
            }
            // The greeting, not just a connection: another process may hold a port that was
            // free a moment ago, and then this sink exits or is never the one answering.
            if let Ok(mut stream) = tokio::net::TcpStream::connect(self.addr).await {
                let mut greeting = [0u8; 4];
                let read = tokio::time::timeout(
                    Duration::from_secs(2),
                    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut greeting),
                )
                .await;
                if matches!(read, Ok(Ok(_))) && greeting[..3].iter().all(u8::is_ascii_digit) {
                    return matches!(self.child.try_wait(), Ok(None));
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// The dumps of the messages taken so far, each complete.
    fn dumps(&self) -> Vec<Dump> {
        let Ok(entries) = std::fs::read_dir(&self.dumps) else {
            return Vec::new();
        };
        let mut dumps: Vec<Dump> = entries
            .filter_map(|entry| std::fs::read(entry.ok()?.path()).ok())
            .filter_map(|bytes| Dump::parse(&String::from_utf8_lossy(&bytes)))
            .collect();
        dumps.sort_by(|a, b| a.message.cmp(&b.message));
        dumps
    }

    async fn wait_for(&self, count: usize) -> Vec<Dump> {
        let what = format!("{count} message(s) dumped by smtp-sink");
        wait::eventually(&what, Duration::from_secs(10), || async {
            let dumps = self.dumps();
            (dumps.len() >= count).then_some(dumps)
        })
        .await
    }
}

impl Drop for PostfixSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dumps);
    }
}

/// One message as smtp-sink dumps it: its own header lines, then the message with LF line ends.
#[derive(Debug)]
struct Dump {
    proto: String,
    mail_args: String,
    rcpt_args: Vec<String>,
    message: String,
}

impl Dump {
    /// `None` while the dump is still being written (it ends with an empty line).
    fn parse(text: &str) -> Option<Dump> {
        let field = |name: &str| -> Vec<String> {
            text.lines()
                .filter_map(|line| line.strip_prefix(name))
                .map(str::to_owned)
                .collect()
        };
        // The message follows smtp-sink's three-line Received header.
        let (_, received) = text.split_once("\nReceived: ")?;
        let mut rest = received;
        for _ in 0..3 {
            rest = rest.split_once('\n')?.1;
        }
        Some(Dump {
            proto: field("X-Client-Proto: ").into_iter().next()?,
            mail_args: field("X-Mail-Args: ").into_iter().next()?,
            rcpt_args: field("X-Rcpt-Args: "),
            message: rest.strip_suffix("\n\n")?.to_owned() + "\n",
        })
    }
}

/// Long enough for any machine; only a broken client makes a test wait this long.
fn config() -> ClientConfig {
    let limit = Duration::from_secs(10);
    ClientConfig {
        helo_name: "client.test".to_owned(),
        timeouts: Timeouts {
            connect: limit,
            greeting: limit,
            helo: limit,
            mail: limit,
            rcpt: limit,
            data_init: limit,
            data_block: limit,
            data_end: limit,
            other: limit,
        },
        tls_opportunistic: tls::opportunistic().expect("opportunistic TLS configuration"),
        tls_verified: tls::verified(&[]).expect("verified TLS configuration"),
    }
}

async fn connect(sink: &PostfixSink, protocol: Protocol) -> Connection {
    Connection::connect(
        sink.addr,
        "sink.test",
        protocol,
        TlsMode::Opportunistic,
        &config(),
    )
    .await
    .unwrap_or_else(|error| panic!("connect to smtp-sink: {error:?}"))
}

fn envelope<'a>(addresses: &[&'a str]) -> Envelope<'a> {
    Envelope {
        mail_from: "sender@origin.test",
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

fn codes(replies: &[tern_smtp::client::RemoteReply]) -> Vec<u16> {
    replies.iter().map(|reply| reply.code).collect()
}

/// Dots to stuff, an 8-bit line and no final line break.
const MESSAGE: &str = "From: sender@origin.test\r\nSubject: dots\r\n\r\n.leading dot\r\n.\r\n\
                       ..two\r\nnaïve 8-bit\r\nlast line";

/// [`MESSAGE`] as smtp-sink dumps it: unstuffed, LF line ends, the line break added.
fn dumped_message() -> String {
    MESSAGE.replace("\r\n", "\n") + "\n"
}

#[tokio::test]
async fn a_pipelined_transaction_with_dsn_reaches_postfix_intact() {
    let sink = PostfixSink::start(&[]).await;
    let mut connection = connect(&sink, Protocol::Smtp).await;
    let caps = connection.capabilities().clone();
    assert!(caps.pipelining && caps.dsn && caps.eightbitmime && caps.enhancedstatuscodes);
    let mut envelope = envelope(&["one@dest.test", "two@dest.test"]);
    envelope.eight_bit = true;
    envelope.ret = Some(Ret::Hdrs);
    envelope.envid = Some("id=1 +x");
    envelope.recipients[0].notify = Some("SUCCESS,FAILURE".parse().expect("NOTIFY"));
    envelope.recipients[0].orcpt = Some("rfc822;one+tag@dest.test");
    let replies = connection
        .send(&envelope, MESSAGE.as_bytes())
        .await
        .expect("transaction");
    assert_eq!(codes(&replies), [250, 250]);
    connection.quit().await;

    let dumps = sink.wait_for(1).await;
    assert_eq!(dumps.len(), 1);
    let dump = &dumps[0];
    assert_eq!(dump.proto, "ESMTP");
    assert_eq!(
        dump.mail_args,
        "<sender@origin.test> BODY=8BITMIME RET=HDRS ENVID=id+3D1+20+2Bx"
    );
    assert_eq!(
        dump.rcpt_args,
        [
            "<one@dest.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;one+2Btag@dest.test",
            "<two@dest.test>",
        ]
    );
    assert_eq!(dump.message, dumped_message());
}

#[tokio::test]
async fn lmtp_to_postfix_gives_one_reply_per_recipient() {
    let sink = PostfixSink::start(&["-L"]).await;
    let mut connection = connect(&sink, Protocol::Lmtp).await;
    let replies = connection
        .send(
            &envelope(&["one@dest.test", "two@dest.test", "three@dest.test"]),
            MESSAGE.as_bytes(),
        )
        .await
        .expect("transaction");
    assert_eq!(codes(&replies), [250, 250, 250]);
    let dumps = sink.wait_for(1).await;
    assert_eq!(dumps[0].proto, "LMTP");
    assert_eq!(dumps[0].rcpt_args.len(), 3);
    assert_eq!(dumps[0].message, dumped_message());
}

#[tokio::test]
async fn without_pipelining_postfix_gets_one_command_at_a_time() {
    let sink = PostfixSink::start(&["-p"]).await;
    let mut connection = connect(&sink, Protocol::Smtp).await;
    assert!(!connection.capabilities().pipelining);
    let replies = connection
        .send(
            &envelope(&["one@dest.test", "two@dest.test"]),
            MESSAGE.as_bytes(),
        )
        .await
        .expect("transaction");
    assert_eq!(codes(&replies), [250, 250]);
    assert_eq!(sink.wait_for(1).await[0].message, dumped_message());
}

#[tokio::test]
async fn an_ehlo_refused_by_postfix_falls_back_to_helo() {
    let sink = PostfixSink::start(&["-f", "EHLO"]).await;
    let mut connection = connect(&sink, Protocol::Smtp).await;
    assert!(!connection.capabilities().pipelining);
    let mut envelope = envelope(&["one@dest.test"]);
    envelope.eight_bit = true;
    envelope.ret = Some(Ret::Full);
    let replies = connection
        .send(&envelope, MESSAGE.as_bytes())
        .await
        .expect("transaction");
    assert_eq!(codes(&replies), [250]);
    let dumps = sink.wait_for(1).await;
    assert_eq!(dumps[0].proto, "SMTP");
    // HELO announced nothing, so no parameter was sent; the 8-bit body went as it is.
    assert_eq!(dumps[0].mail_args, "<sender@origin.test>");
    assert_eq!(dumps[0].message, dumped_message());
}

#[tokio::test]
async fn a_greeting_refused_by_postfix_is_a_refusal_with_its_reply() {
    let sink = PostfixSink::start(&["-f", "CONNECT"]).await;
    let result = Connection::connect(
        sink.addr,
        "sink.test",
        Protocol::Smtp,
        TlsMode::Opportunistic,
        &config(),
    )
    .await;
    match result {
        Err(ConnectError::Refused(reply)) => {
            assert_eq!((reply.code, reply.status.as_deref()), (500, Some("5.3.0")));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_mail_is_every_recipients_reply() {
    let sink = PostfixSink::start(&["-f", "MAIL"]).await;
    let mut connection = connect(&sink, Protocol::Smtp).await;
    let replies = connection
        .send(
            &envelope(&["one@dest.test", "two@dest.test"]),
            MESSAGE.as_bytes(),
        )
        .await
        .expect("transaction");
    assert_eq!(codes(&replies), [500, 500]);
    connection
        .reset()
        .await
        .expect("the connection is still in step");
    assert!(sink.dumps().is_empty());
}

#[tokio::test]
async fn when_postfix_refuses_every_recipient_no_data_is_sent_and_the_next_message_goes() {
    let sink = PostfixSink::start(&["-f", "RCPT"]).await;
    let mut connection = connect(&sink, Protocol::Smtp).await;
    for _ in 0..2 {
        let replies = connection
            .send(
                &envelope(&["one@dest.test", "two@dest.test"]),
                MESSAGE.as_bytes(),
            )
            .await
            .expect("transaction");
        assert_eq!(codes(&replies), [500, 500]);
    }
    connection
        .reset()
        .await
        .expect("the connection is still in step");
    assert!(sink.dumps().is_empty());
}

#[tokio::test]
async fn a_refusal_at_the_final_dot_is_every_recipients_reply() {
    let sink = PostfixSink::start(&["-f", "."]).await;
    let mut connection = connect(&sink, Protocol::Smtp).await;
    let replies = connection
        .send(
            &envelope(&["one@dest.test", "two@dest.test"]),
            MESSAGE.as_bytes(),
        )
        .await
        .expect("transaction");
    assert_eq!(codes(&replies), [500, 500]);
    let replies = connection
        .send(&envelope(&["three@dest.test"]), MESSAGE.as_bytes())
        .await
        .expect("the next transaction");
    assert_eq!(codes(&replies), [500]);
}

#[tokio::test]
async fn postfix_closing_with_421_during_the_envelope_defers_every_recipient() {
    let sink = PostfixSink::start(&["-Q", "RCPT"]).await;
    let mut connection = connect(&sink, Protocol::Smtp).await;
    assert!(connection.capabilities().pipelining);
    let replies = connection
        .send(
            &envelope(&["one@dest.test", "two@dest.test"]),
            MESSAGE.as_bytes(),
        )
        .await
        .expect("transaction");
    assert_eq!(codes(&replies), [421, 421]);
    assert!(connection.reset().await.is_err(), "the server closed");
}

#[tokio::test]
async fn postfix_hanging_up_after_the_final_dot_loses_the_connection() {
    let sink = PostfixSink::start(&["-q", "."]).await;
    let mut connection = connect(&sink, Protocol::Smtp).await;
    let result = connection
        .send(&envelope(&["one@dest.test"]), MESSAGE.as_bytes())
        .await;
    assert!(
        matches!(result, Err(DeliveryError::ConnectionLost { ref host, .. }) if host == "sink.test"),
        "{result:?}"
    );
}

#[tokio::test]
async fn one_connection_carries_several_messages_to_postfix() {
    let sink = PostfixSink::start(&[]).await;
    let mut connection = connect(&sink, Protocol::Smtp).await;
    let large = "0123456789 abcdefghij\r\n.dot\r\n".repeat(40_000);
    let bodies = [MESSAGE.to_owned(), large.clone(), "short\r\n".to_owned()];
    for (index, body) in bodies.iter().enumerate() {
        if index == 1 {
            connection
                .reset()
                .await
                .expect("RSET between transactions is harmless");
        }
        let replies = connection
            .send(&envelope(&["one@dest.test"]), body.as_bytes())
            .await
            .expect("transaction");
        assert_eq!(codes(&replies), [250]);
    }
    connection.quit().await;
    let mut messages: Vec<String> = sink
        .wait_for(3)
        .await
        .into_iter()
        .map(|d| d.message)
        .collect();
    messages.sort();
    let mut expected = vec![
        dumped_message(),
        large.replace("\r\n", "\n"),
        "short\n".to_owned(),
    ];
    expected.sort();
    assert_eq!(messages, expected);
}
