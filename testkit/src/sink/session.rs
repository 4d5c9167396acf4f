//! One connection to the sink: read a line, answer it, in order. Pipelined commands simply wait
//! in the read buffer, so replies come back in the order the commands were sent.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::script::{format_reply, is_positive, param, path_and_params, pick, unexpected};
use super::{Inner, SinkConfig, SinkMessage};

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Longest command line, or piece of a data line, read at once: a client that never sends a
/// line feed cannot make the sink buffer without bound.
const CHUNK_LIMIT: u64 = 1024 * 1024;

/// RFC 6531 3.7.4.1: a non-ASCII address in a transaction that did not ask for SMTPUTF8.
const UTF8_WITHOUT_SMTPUTF8: &str = "553 5.6.7 non-ASCII address needs SMTPUTF8";

enum Flow {
    Continue,
    Close,
}

struct Session {
    inner: Arc<Inner>,
    io: BufReader<Box<dyn Stream>>,
    tls: bool,
    /// The greeting was not 2xx: only QUIT is served (RFC 5321 3.1).
    refused: bool,
    helo: Option<String>,
    mail: Option<(String, Vec<String>)>,
    rcpts: Vec<(String, Vec<String>)>,
}

pub(super) async fn run(inner: Arc<Inner>, stream: TcpStream) {
    let mut session = Session {
        inner,
        io: BufReader::new(Box::new(stream)),
        tls: false,
        refused: false,
        helo: None,
        mail: None,
        rcpts: Vec::new(),
    };
    // An I/O error ends the session the same way the client's hanging up does.
    let _ = session.serve().await;
}

impl Session {
    fn config(&self) -> &SinkConfig {
        &self.inner.config
    }

    async fn serve(&mut self) -> io::Result<()> {
        let config = self.config();
        let protocol = if config.lmtp { "LMTP" } else { "ESMTP" };
        let greeting = config
            .greeting
            .clone()
            .unwrap_or_else(|| format!("220 {} {protocol} tern test sink", config.hostname));
        self.refused = !is_positive(&greeting);
        self.reply(&greeting).await?;
        while let Some(line) = self.read_chunk().await? {
            if let Flow::Close = self.command(&line).await? {
                break;
            }
        }
        Ok(())
    }

    async fn command(&mut self, line: &[u8]) -> io::Result<Flow> {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, argument) = text.split_once(' ').unwrap_or((text, ""));
        let verb = verb.to_ascii_uppercase();
        let lmtp = self.config().lmtp;
        match verb.as_str() {
            "QUIT" => {
                self.reply("221 2.0.0 bye").await?;
                return Ok(Flow::Close);
            }
            _ if self.refused => self.reply("503 5.5.1 no service here, say QUIT").await?,
            "EHLO" | "HELO" if lmtp => self.reply("500 5.5.1 this is LMTP: LHLO").await?,
            "LHLO" if !lmtp => self.reply("500 5.5.1 this is SMTP: EHLO").await?,
            "EHLO" | "LHLO" => self.ehlo(argument, true).await?,
            "HELO" => self.ehlo(argument, false).await?,
            "STARTTLS" => return self.starttls(argument).await,
            "MAIL" => self.mail(argument).await?,
            "RCPT" => self.rcpt(argument).await?,
            "DATA" => return self.data().await,
            "RSET" => {
                self.reset();
                self.reply("250 2.0.0 ok").await?;
            }
            "NOOP" => self.reply("250 2.0.0 ok").await?,
            _ => self.reply("500 5.5.2 command not recognized").await?,
        }
        Ok(Flow::Continue)
    }

    async fn ehlo(&mut self, argument: &str, extended: bool) -> io::Result<()> {
        let name = argument.trim();
        if name.is_empty() {
            return self.reply("501 5.5.4 a host name is required").await;
        }
        self.helo = Some(name.to_owned());
        self.reset();
        let config = self.config();
        let mut lines = vec![format!("250 {}", config.hostname)];
        if extended {
            let advertised = [
                (config.pipelining, "PIPELINING".to_owned()),
                (
                    config.size.is_some(),
                    format!("SIZE {}", config.size.unwrap_or(0)),
                ),
                (config.eight_bit_mime, "8BITMIME".to_owned()),
                (config.smtputf8, "SMTPUTF8".to_owned()),
                (config.dsn, "DSN".to_owned()),
                (self.inner.tls.is_some() && !self.tls, "STARTTLS".to_owned()),
                (true, "ENHANCEDSTATUSCODES".to_owned()),
            ];
            let extensions = advertised.into_iter().filter(|(on, _)| *on);
            lines.extend(extensions.map(|(_, name)| format!("250 {name}")));
        }
        self.reply(&lines.join("\n")).await
    }

    async fn starttls(&mut self, argument: &str) -> io::Result<Flow> {
        if !argument.trim().is_empty() {
            self.reply("501 5.5.4 STARTTLS takes no argument").await?;
            return Ok(Flow::Continue);
        }
        let acceptor = match &self.inner.tls {
            Some(_) if self.tls => {
                self.reply("503 5.5.1 TLS is already active").await?;
                return Ok(Flow::Continue);
            }
            Some(tls) => tls.acceptor.clone(),
            None => {
                self.reply("502 5.5.1 STARTTLS not offered").await?;
                return Ok(Flow::Continue);
            }
        };
        self.reply("220 2.0.0 ready to start TLS").await?;
        // Dropping the reader drops anything pipelined after STARTTLS: it arrived in plaintext
        // and must not be acted on inside TLS (the CVE-2011-0411 class of bug).
        let plain = std::mem::replace(&mut self.io, BufReader::new(Box::new(tokio::io::empty())));
        let Ok(secure) = acceptor.accept(plain.into_inner()).await else {
            return Ok(Flow::Close);
        };
        self.io = BufReader::new(Box::new(secure));
        self.tls = true;
        self.helo = None;
        self.reset();
        Ok(Flow::Continue)
    }

    async fn mail(&mut self, argument: &str) -> io::Result<()> {
        if self.helo.is_none() {
            return self.reply("503 5.5.1 send EHLO first").await;
        }
        if self.mail.is_some() {
            return self.reply("503 5.5.1 nested MAIL command").await;
        }
        let Some((from, params)) = path_and_params(argument, "FROM:") else {
            return self.reply("501 5.5.4 syntax: MAIL FROM:<address>").await;
        };
        let config = self.config();
        let mut allowed = Vec::new();
        for (on, names) in [
            (config.size.is_some(), &["SIZE"][..]),
            (config.eight_bit_mime, &["BODY"][..]),
            (config.smtputf8, &["SMTPUTF8"][..]),
            (config.dsn, &["RET", "ENVID"][..]),
        ] {
            if on {
                allowed.extend_from_slice(names);
            }
        }
        if let Some(bad) = unexpected(&params, &allowed) {
            let reply = format!("555 5.5.4 unsupported parameter {bad}");
            return self.reply(&reply).await;
        }
        let declared = param(&params, "SIZE").and_then(|size| size.parse::<u64>().ok());
        if let (Some(limit), Some(declared)) = (config.size, declared)
            && declared > limit
        {
            return self.reply("552 5.3.4 message too big").await;
        }
        if !from.is_ascii() && param(&params, "SMTPUTF8").is_none() {
            return self.reply(UTF8_WITHOUT_SMTPUTF8).await;
        }
        let reply = pick(&config.mail_rules, &from)
            .unwrap_or("250 2.1.0 ok")
            .to_owned();
        if is_positive(&reply) {
            self.mail = Some((from, params));
        }
        self.reply(&reply).await
    }

    async fn rcpt(&mut self, argument: &str) -> io::Result<()> {
        if self.mail.is_none() {
            return self.reply("503 5.5.1 need MAIL first").await;
        }
        let Some((to, params)) = path_and_params(argument, "TO:") else {
            return self.reply("501 5.5.4 syntax: RCPT TO:<address>").await;
        };
        let allowed: &[&str] = if self.config().dsn {
            &["NOTIFY", "ORCPT"]
        } else {
            &[]
        };
        if let Some(bad) = unexpected(&params, allowed) {
            let reply = format!("555 5.5.4 unsupported parameter {bad}");
            return self.reply(&reply).await;
        }
        let smtputf8 = self
            .mail
            .as_ref()
            .is_some_and(|(_, params)| param(params, "SMTPUTF8").is_some());
        if !to.is_ascii() && !smtputf8 {
            return self.reply(UTF8_WITHOUT_SMTPUTF8).await;
        }
        let reply = pick(&self.config().rcpt_rules, &to)
            .unwrap_or("250 2.1.5 ok")
            .to_owned();
        if is_positive(&reply) {
            self.rcpts.push((to, params));
        }
        self.reply(&reply).await
    }

    async fn data(&mut self) -> io::Result<Flow> {
        if self.mail.is_none() {
            self.reply("503 5.5.1 need MAIL first").await?;
            return Ok(Flow::Continue);
        }
        if self.rcpts.is_empty() {
            self.reply("554 5.5.1 no valid recipients").await?;
            return Ok(Flow::Continue);
        }
        self.reply("354 end data with <CR><LF>.<CR><LF>").await?;
        let Some(data) = self.read_data().await? else {
            return Ok(Flow::Close);
        };
        self.inner.transactions.fetch_add(1, Ordering::SeqCst);
        let replies = self.data_replies(data.len());
        let accepted: Vec<_> = self
            .rcpts
            .iter()
            .zip(&replies)
            .filter(|(_, reply)| is_positive(reply))
            .map(|(rcpt, _)| rcpt.clone())
            .collect();
        if !accepted.is_empty() {
            let (mail_from, mail_params) = self.mail.clone().unwrap_or_default();
            let (rcpt_to, rcpt_params) = accepted.into_iter().unzip();
            // Recorded before the reply goes out, so a client that has seen 250 finds it here.
            self.inner.received().push(SinkMessage {
                helo: self.helo.clone().unwrap_or_default(),
                tls: self.tls,
                mail_from,
                mail_params,
                rcpt_to,
                rcpt_params,
                data,
            });
        }
        let delay = self.config().data_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        // SMTP answers the transaction once; LMTP answers every recipient (RFC 2033 4.2).
        let count = if self.config().lmtp { replies.len() } else { 1 };
        for reply in replies.into_iter().take(count) {
            self.reply(&reply).await?;
        }
        self.reset();
        Ok(Flow::Continue)
    }

    /// One end-of-DATA reply per accepted recipient. In SMTP they are all the same.
    fn data_replies(&self, size: usize) -> Vec<String> {
        let config = self.config();
        if config.size.is_some_and(|limit| size as u64 > limit) {
            return vec!["552 5.3.4 message too big".to_owned(); self.rcpts.len()];
        }
        let reply_for = |to: &str| pick(&config.data_rules, to).unwrap_or(&config.data_reply);
        if config.lmtp {
            return self
                .rcpts
                .iter()
                .map(|(to, _)| reply_for(to).to_owned())
                .collect();
        }
        let reply = self
            .rcpts
            .iter()
            .find_map(|(to, _)| pick(&config.data_rules, to))
            .unwrap_or(&config.data_reply);
        vec![reply.to_owned(); self.rcpts.len()]
    }

    /// Reads the message up to the lone dot, undoing dot-stuffing. `None` when the client hung
    /// up first, or when the script says to hang up part way.
    async fn read_data(&mut self) -> io::Result<Option<Vec<u8>>> {
        let drop_after = self.config().drop_mid_data;
        if drop_after == Some(0) {
            return Ok(None);
        }
        let mut data = Vec::new();
        let mut received = 0;
        let mut line_start = true;
        loop {
            let Some(chunk) = self.read_chunk().await? else {
                return Ok(None);
            };
            if line_start && chunk == b".\r\n" {
                return Ok(Some(data));
            }
            received += chunk.len();
            let content = match chunk.strip_prefix(b".") {
                Some(unstuffed) if line_start => unstuffed,
                _ => &chunk[..],
            };
            data.extend_from_slice(content);
            line_start = chunk.ends_with(b"\n");
            if drop_after.is_some_and(|limit| received >= limit) {
                return Ok(None);
            }
        }
    }

    /// One line with its line feed, or less if it is longer than [`CHUNK_LIMIT`]; `None` at EOF.
    async fn read_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut chunk = Vec::new();
        (&mut self.io)
            .take(CHUNK_LIMIT)
            .read_until(b'\n', &mut chunk)
            .await?;
        Ok((!chunk.is_empty()).then_some(chunk))
    }

    async fn reply(&mut self, text: &str) -> io::Result<()> {
        let delay = self.config().reply_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let stream = self.io.get_mut();
        stream.write_all(&format_reply(text)).await?;
        stream.flush().await
    }

    fn reset(&mut self) {
        self.mail = None;
        self.rcpts.clear();
    }
}
