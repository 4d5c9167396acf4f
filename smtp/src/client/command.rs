//! The commands a delivery sends, written as wire bytes. ESMTP parameters go out only when the
//! server announced their extension: a server that did not is entitled to refuse them (`555`).

use super::Capabilities;
use crate::{Notify, Ret};

/// A value that cannot be put on the wire. Each would let stored data add or change commands
/// (a CR LF in an address is a second command), so the command is not written at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("the sender address contains a control character")]
    ReversePath,
    #[error("the recipient address contains a control character")]
    ForwardPath,
    #[error("the HELO name is empty or not one printable word")]
    HeloName,
}

/// The greeting command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hello {
    Ehlo,
    Helo,
    /// LMTP (RFC 2033).
    Lhlo,
}

/// `MAIL FROM` and what its parameters are made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFrom<'a> {
    /// Without angle brackets; `""` is the null reverse-path.
    pub reverse_path: &'a str,
    /// The message size in octets: `SIZE=` when the server announced SIZE.
    pub size: u64,
    /// The body has 8-bit octets: `BODY=8BITMIME` when the server announced 8BITMIME.
    pub eight_bit: bool,
    /// The transaction needs SMTPUTF8: the parameter when the server announced it.
    pub smtputf8: bool,
    /// Sent when the server announced DSN.
    pub ret: Option<Ret>,
    /// Decoded; sent as xtext when the server announced DSN.
    pub envid: Option<&'a str>,
}

/// `RCPT TO` and what its parameters are made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptTo<'a> {
    /// Without angle brackets.
    pub forward_path: &'a str,
    /// Sent when the server announced DSN.
    pub notify: Option<Notify>,
    /// `addr-type;address`, decoded; sent as xtext when the server announced DSN. The whole
    /// value is encoded, which leaves an atom `addr-type` and the `;` as they are.
    pub orcpt: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    Hello(Hello, &'a str),
    Mail(MailFrom<'a>),
    Rcpt(RcptTo<'a>),
    Data,
    Rset,
    Quit,
    StartTls,
}

impl Command<'_> {
    /// Appends the command and its CRLF to `out`, with the parameters `peer` allows. On error
    /// `out` is left as it was, so a pipelined batch never carries half a command.
    pub fn write(&self, peer: &Capabilities, out: &mut Vec<u8>) -> Result<(), CommandError> {
        let start = out.len();
        let written = self.write_unchecked(peer, out);
        if written.is_err() {
            out.truncate(start);
        }
        written
    }

    fn write_unchecked(&self, peer: &Capabilities, out: &mut Vec<u8>) -> Result<(), CommandError> {
        match self {
            Command::Hello(verb, name) => {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(CommandError::HeloName);
                }
                out.extend_from_slice(match verb {
                    Hello::Ehlo => b"EHLO ",
                    Hello::Helo => b"HELO ",
                    Hello::Lhlo => b"LHLO ",
                });
                out.extend_from_slice(name.as_bytes());
            }
            Command::Mail(mail) => mail.write(peer, out)?,
            Command::Rcpt(rcpt) => rcpt.write(peer, out)?,
            Command::Data => out.extend_from_slice(b"DATA"),
            Command::Rset => out.extend_from_slice(b"RSET"),
            Command::Quit => out.extend_from_slice(b"QUIT"),
            Command::StartTls => out.extend_from_slice(b"STARTTLS"),
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}

impl MailFrom<'_> {
    fn write(&self, peer: &Capabilities, out: &mut Vec<u8>) -> Result<(), CommandError> {
        if has_control(self.reverse_path) {
            return Err(CommandError::ReversePath);
        }
        out.extend_from_slice(b"MAIL FROM:<");
        out.extend_from_slice(self.reverse_path.as_bytes());
        out.push(b'>');
        if peer.size.is_some() {
            out.extend_from_slice(b" SIZE=");
            out.extend_from_slice(self.size.to_string().as_bytes());
        }
        // Without 8BITMIME the body still goes as it is. Postfix would convert a MIME body to
        // 7-bit quoted-printable by default (disable_mime_output_conversion = no); we do not
        // rewrite stored messages, which would break DKIM signatures, and pass 8-bit data as
        // Postfix does for unlabelled 8-bit mail. Nearly every server takes it anyway.
        if self.eight_bit && peer.eightbitmime {
            out.extend_from_slice(b" BODY=8BITMIME");
        }
        if self.smtputf8 && peer.smtputf8 {
            out.extend_from_slice(b" SMTPUTF8");
        }
        if peer.dsn {
            if let Some(ret) = self.ret {
                out.extend_from_slice(b" RET=");
                out.extend_from_slice(ret.as_str().as_bytes());
            }
            if let Some(envid) = self.envid {
                out.extend_from_slice(b" ENVID=");
                xtext(envid, out);
            }
        }
        Ok(())
    }
}

impl RcptTo<'_> {
    fn write(&self, peer: &Capabilities, out: &mut Vec<u8>) -> Result<(), CommandError> {
        if has_control(self.forward_path) {
            return Err(CommandError::ForwardPath);
        }
        out.extend_from_slice(b"RCPT TO:<");
        out.extend_from_slice(self.forward_path.as_bytes());
        out.push(b'>');
        if peer.dsn {
            if let Some(notify) = self.notify {
                out.extend_from_slice(b" NOTIFY=");
                out.extend_from_slice(notify.to_string().as_bytes());
            }
            if let Some(orcpt) = self.orcpt {
                out.extend_from_slice(b" ORCPT=");
                xtext(orcpt, out);
            }
        }
        Ok(())
    }
}

fn has_control(path: &str) -> bool {
    path.bytes().any(|b| b.is_ascii_control())
}

/// RFC 3461 xtext: `+`, `=`, space, controls and every non-ASCII byte as `+XX`.
pub(crate) fn xtext(value: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in value.bytes() {
        if (b'!'..=b'~').contains(&byte) && byte != b'+' && byte != b'=' {
            out.push(byte);
        } else {
            out.extend_from_slice(&[
                b'+',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
        }
    }
}
