//! The pieces of a small Tern cluster that several tests start: a nats-server of the test's
//! own, and `tern api` with a bootstrap token.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::{Tern, free_port};

/// The bootstrap admin token every test API accepts.
pub const TOKEN: &str = "tern_e2e_bootstrap_token_0123456789";

/// A nats-server of the test's own, and one prefix for every process of the test: the
/// processes must share subjects for the change and message notices to reach each other.
pub struct Nats {
    child: Child,
    pub url: String,
    pub prefix: String,
    store: PathBuf,
}

impl Nats {
    pub fn start() -> Self {
        let port = free_port();
        let store = std::env::temp_dir().join(format!("tern-e2e-nats-{port}"));
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
            .arg("-sd")
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server (scripts/services.sh installs it)");
        Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            prefix: format!("e2e{port}"),
            store,
        }
    }

    /// The settings that point a process at this server, with the shared prefix.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            ("TERN_NATS_URL", self.url.clone()),
            ("TERN_NATS_PREFIX", self.prefix.clone()),
        ]
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// A running `tern api`: its port, and the token file it reads (removed on drop).
pub struct Api {
    pub process: Tern,
    pub port: u16,
    token_file: PathBuf,
}

impl Api {
    /// Starts `tern api` on `database_url` with [`TOKEN`] as its bootstrap token and `env`.
    pub async fn start(database_url: &str, env: &[(&str, String)], stderr: Stdio) -> Self {
        let port = free_port();
        let token_file = std::env::temp_dir().join(format!("tern-e2e-token-{port}"));
        std::fs::write(&token_file, TOKEN).expect("write the token file");
        let mut all = vec![
            ("TERN_API_LISTEN", format!("127.0.0.1:{port}")),
            ("TERN_ADMIN_LISTEN", format!("127.0.0.1:{port}")),
            (
                "TERN_API_BOOTSTRAP_TOKEN_FILE",
                token_file.display().to_string(),
            ),
        ];
        all.extend(env.iter().cloned());
        let process = Tern::start_with_stderr("api", database_url, &all, stderr).await;
        Self {
            process,
            port,
            token_file,
        }
    }

    /// `tern api` sharing `nats` with the other processes of the test.
    pub async fn with_nats(database_url: &str, nats: &Nats) -> Self {
        Self::start(database_url, &nats.env(), Stdio::inherit()).await
    }

    pub fn token_file(&self) -> &Path {
        &self.token_file
    }

    /// `method path` with the bootstrap token: the status and the body.
    pub async fn call(&self, method: &str, path: &str, json: Option<&str>) -> (u16, String) {
        crate::http_call(self.port, method, path, TOKEN, json).await
    }

    /// `GET path` as JSON (`Null` when the body is not JSON).
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let (_, body) = self.call("GET", path, None).await;
        serde_json::from_str(&body).unwrap_or_default()
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.token_file);
    }
}
