//! Black-box tests of the `tern` binary live in `tests/`; this library finds the binary and
//! starts it as an operator would: environment in, a child process out.

pub mod cluster;
pub mod prometheus;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tern_testkit::services;
use tern_testkit::wait::eventually;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// The `tern` binary built by `cargo build --bin tern` (which `make test` runs first).
pub fn tern_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TERN_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let binary = target.join("debug/tern");
    assert!(
        binary.exists(),
        "{} does not exist: run `cargo build --bin tern` first (`make test` does)",
        binary.display()
    );
    binary
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `tern migrate` against `database_url`.
pub async fn migrate(database_url: &str) {
    let status = Command::new(tern_binary())
        .arg("migrate")
        .env("TERN_DATABASE_URL", database_url)
        .status()
        .await
        .expect("run tern migrate");
    assert!(status.success(), "tern migrate failed");
}

/// A running `tern <command>`; killed when dropped.
pub struct Tern {
    pub child: Child,
    pub admin: u16,
}

impl Tern {
    /// Starts `tern <command>` with the database, a NATS prefix, a free admin port and `env`
    /// (which may override any of them), and waits for `/healthz`.
    pub async fn start(command: &str, database_url: &str, env: &[(&str, String)]) -> Tern {
        Self::start_with_stderr(command, database_url, env, Stdio::inherit()).await
    }

    /// [`Tern::start`] with the process's log lines (stderr) going to `stderr`, e.g. a file the
    /// test reads afterwards.
    pub async fn start_with_stderr(
        command: &str,
        database_url: &str,
        env: &[(&str, String)],
        stderr: Stdio,
    ) -> Tern {
        let admin = free_port();
        let mut vars: HashMap<&str, String> = HashMap::from([
            ("TERN_DATABASE_URL", database_url.to_owned()),
            ("TERN_NATS_URL", services::nats_url()),
            ("TERN_NATS_PREFIX", services::unique_nats_prefix()),
            ("TERN_ADMIN_LISTEN", format!("127.0.0.1:{admin}")),
            ("TERN_LOG_FORMAT", "json".to_owned()),
        ]);
        for (key, value) in env {
            vars.insert(key, value.clone());
        }
        let admin: u16 = vars["TERN_ADMIN_LISTEN"]
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("admin port");
        let child = Command::new(tern_binary())
            .arg(command)
            .envs(vars)
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn tern {command}: {e}"));
        eventually(
            "tern to serve /healthz",
            Duration::from_secs(30),
            || async {
                let (status, _) = try_http_get(admin, "/healthz").await?;
                (status == 200).then_some(())
            },
        )
        .await;
        Tern { child, admin }
    }

    pub fn pid(&self) -> String {
        self.child.id().expect("pid").to_string()
    }

    /// Sends a signal (`"TERM"`, `"KILL"`) to the process.
    pub async fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid()])
            .status()
            .await
            .expect("kill");
        assert!(status.success());
    }
}

/// Sends one message with swaks to `127.0.0.1:port` (`args` are swaks options such as `--from`,
/// `--to`, `--data`), asserts it was accepted and returns the transcript.
pub async fn swaks(port: u16, args: &[&str]) -> String {
    let output = Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdout(Stdio::piped())
        .output()
        .await
        .expect("run swaks (scripts/services.sh installs it)");
    let transcript = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{transcript}");
    transcript
}

/// An HTTP/1.1 request on 127.0.0.1 with a bearer token and an optional JSON body: the status
/// and the response body.
pub async fn http_call(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    json: Option<&str>,
) -> (u16, String) {
    let body = json.unwrap_or("");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if json.is_some() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the API");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or_else(String::new, |(_, b)| b.to_owned());
    (status, body)
}

/// A plain HTTP/1.1 GET on 127.0.0.1: status and the whole response.
pub async fn http_get(port: u16, path: &str) -> (u16, String) {
    try_http_get(port, path).await.expect("admin HTTP server")
}

async fn try_http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Some((status, response))
}

/// EHLO, STARTTLS (trusting `certificate`, asking for `name`), EHLO again and one `AUTH PLAIN`
/// as `login` on the submission port `port`: the reply line (`235 2.7.0 …`).
pub async fn auth_plain(
    port: u16,
    name: &str,
    certificate: &tern_testkit::tls_files::TestCertificate,
    login: &str,
    password: &str,
) -> String {
    use base64::Engine as _;
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let (mut client, greeting) = tern_testkit::SmtpClient::connect(addr).await;
    assert_eq!(greeting.code, 220);
    assert_eq!(client.command("EHLO client.example").await.code, 250);
    assert_eq!(client.command("STARTTLS").await.code, 220);
    let mut client = client
        .start_tls(name, &certificate.cert_pem)
        .await
        .expect("TLS handshake");
    assert_eq!(client.command("EHLO client.example").await.code, 250);
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0{login}\0{password}"));
    let reply = client.command(&format!("AUTH PLAIN {plain}")).await;
    format!("{} {}", reply.code, reply.text())
}
