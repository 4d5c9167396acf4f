//! `tern probe URL`: ask a Tern process's `/readyz` (or `/healthz`) and exit 0 when it answers
//! 2xx. The image has no shell and no curl, so a container runtime's healthcheck (Docker, Compose)
//! runs the binary itself, as Mailpit's `mailpit readyz` does.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Where to ask: `http://host:port/path`, plain HTTP only (the admin ports are loopback or
/// pod-local and do not speak TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeUrl {
    authority: String,
    path: String,
}

impl std::str::FromStr for ProbeUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let rest = text
            .strip_prefix("http://")
            .ok_or_else(|| format!("'{text}' is not an http:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        let valid_authority = authority
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid_authority {
            return Err(format!("'{text}' does not name a host and a port"));
        }
        if path
            .bytes()
            .any(|byte| byte.is_ascii_whitespace() || byte.is_ascii_control())
        {
            return Err(format!(
                "'{text}' has spaces or control characters in its path"
            ));
        }
        Ok(ProbeUrl {
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// 0 when the URL answers 2xx within `timeout`; 1, with the reason on standard error, when not.
pub async fn run(url: &ProbeUrl, timeout: Duration) -> ExitCode {
    match tokio::time::timeout(timeout, status(url)).await {
        Ok(Ok(code)) if (200..300).contains(&code) => ExitCode::SUCCESS,
        Ok(Ok(code)) => {
            eprintln!(
                "tern probe: http://{}{} answered {code}",
                url.authority, url.path
            );
            ExitCode::FAILURE
        }
        Ok(Err(error)) => {
            eprintln!("tern probe: {error:#}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("tern probe: no answer within {timeout:?}");
            ExitCode::FAILURE
        }
    }
}

/// The status code of one `GET`, read from the status line.
async fn status(url: &ProbeUrl) -> anyhow::Result<u16> {
    let mut stream = TcpStream::connect(&url.authority)
        .await
        .with_context(|| format!("connecting to {}", url.authority))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: tern-probe\r\nConnection: close\r\n\r\n",
        url.path, url.authority
    );
    stream.write_all(request.as_bytes()).await?;
    // The status line is all that matters; 64 bytes hold it whatever the reason phrase.
    let mut head = Vec::with_capacity(64);
    (&mut stream).take(64).read_to_end(&mut head).await?;
    let line = String::from_utf8_lossy(&head);
    let mut words = line.split(' ');
    match (words.next(), words.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(code))) if version.starts_with("HTTP/1.") => Ok(code),
        _ => bail!(
            "{} did not answer HTTP: {:?}",
            url.authority,
            line.lines().next()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::ProbeUrl;

    #[test]
    fn urls_name_an_http_host_port_and_path() {
        let url: ProbeUrl = "http://127.0.0.1:9100/readyz".parse().expect("valid");
        assert_eq!(url.authority, "127.0.0.1:9100");
        assert_eq!(url.path, "/readyz");
        let root: ProbeUrl = "http://[::1]:8080".parse().expect("valid");
        assert_eq!(
            (root.authority.as_str(), root.path.as_str()),
            ("[::1]:8080", "/")
        );
        for bad in [
            "https://127.0.0.1:9100/readyz",
            "http://127.0.0.1/readyz",
            "http://:9100/readyz",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1:9100/ready z",
            "127.0.0.1:9100",
        ] {
            assert!(bad.parse::<ProbeUrl>().is_err(), "{bad} accepted");
        }
    }
}
