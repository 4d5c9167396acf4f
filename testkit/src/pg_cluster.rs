//! A private PostgreSQL cluster that a test owns and may stop and start again, for outage tests.
//! PostgreSQL refuses to run as root, so under root every command runs as the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

impl PgCluster {
    /// initdb + start on a free loopback port. Panics, naming the missing piece, when it cannot.
    pub fn start() -> Self {
        let bin = find_bin_dir();
        let dir = std::env::temp_dir().join(format!("tern-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create cluster directory");
        if is_root() {
            run(
                Command::new("chown").arg("postgres:postgres").arg(&dir),
                "chown the cluster directory",
            );
        }
        let data = dir.join("data");
        let initdb = bin.join("initdb");
        run(
            as_postgres(&initdb).arg("-D").arg(&data).args([
                "-U",
                "tern",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]),
            "initdb",
        );
        let port = free_port();
        let cluster = Self { dir, bin, port };
        cluster.start_server();
        cluster
    }

    /// URL of the cluster's maintenance database.
    pub fn admin_url(&self) -> String {
        format!("postgres://tern@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server the hard way, as a crash or a lost node would: what was committed
    /// without waiting for the log flush (the workers' `synchronous_commit = off`) may be lost.
    pub fn stop(&self) {
        self.pg_ctl_stop("immediate");
    }

    /// Stops the server as an operator would (a restart, a failover): clients are disconnected
    /// and everything committed survives.
    pub fn shut_down(&self) {
        self.pg_ctl_stop("fast");
    }

    fn pg_ctl_stop(&self, mode: &str) {
        run(
            as_postgres(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", mode, "-w", "stop"]),
            "pg_ctl stop",
        );
    }

    pub fn start_server(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -k {}",
            self.port,
            self.dir.display()
        );
        run(
            as_postgres(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(self.dir.join("log"))
                .args(["-o", &options, "-w", "start"]),
            "pg_ctl start",
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn find_bin_dir() -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| {
            dirs.filter_map(|d| d.ok())
                .map(|d| d.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    candidates.retain(|dir| dir.join("initdb").exists());
    candidates.sort();
    candidates.pop().unwrap_or_else(|| {
        panic!("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin: run `scripts/services.sh up` (it installs the postgresql package)")
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: cannot run: {error}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}
