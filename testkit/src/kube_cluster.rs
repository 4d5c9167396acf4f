//! A real Kubernetes API server for the operator's tests: etcd and kube-apiserver, built from
//! their Go modules by `scripts/kube.sh` (once per machine), started on loopback ports with a
//! private data directory and RBAC authorization on, and stopped when dropped. There are no
//! nodes: what an operator needs of Kubernetes — CRDs, schemas and CEL, server-side apply,
//! watches, Secrets, Leases, RBAC — is the API server's own work. A test that needs what follows
//! a deletion (a namespace's contents deleted with it, owned objects with their owner) starts the
//! controller manager's namespace and garbage collector controllers too.
//!
//! Two identities sign in with static tokens: an administrator (`system:masters`) that sets up
//! what a cluster admin would, and the operator's service account, which has only what the RBAC
//! under `deploy/` grants it once the test applies that.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The operator's service account, as the RBAC under `deploy/` names it.
pub const OPERATOR_NAMESPACE: &str = "tern";
pub const OPERATOR_ACCOUNT: &str = "tern-operator";

pub struct KubeCluster {
    dir: PathBuf,
    bin: PathBuf,
    /// `https://127.0.0.1:PORT`; the serving certificate is self-signed.
    pub url: String,
    pub admin_token: String,
    pub operator_token: String,
    etcd: Child,
    apiserver: Child,
    controllers: Option<Child>,
}

impl KubeCluster {
    /// Builds the binaries if this machine has not yet, starts etcd and the API server, and
    /// waits until the API server is ready. Panics, naming the missing piece, when it cannot.
    pub fn start() -> Self {
        let bin = binaries();
        let dir = std::env::temp_dir().join(format!("tern-kube-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the cluster directory");

        let etcd_client = free_port();
        let etcd_peer = free_port();
        let etcd = Command::new(bin.join("etcd"))
            .arg("--data-dir")
            .arg(dir.join("etcd"))
            .arg(format!(
                "--listen-client-urls=http://127.0.0.1:{etcd_client}"
            ))
            .arg(format!(
                "--advertise-client-urls=http://127.0.0.1:{etcd_client}"
            ))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}"
            ))
            .arg(format!(
                "--initial-cluster=default=http://127.0.0.1:{etcd_peer}"
            ))
            // A test's data is thrown away: no need to wait for the disk.
            .arg("--unsafe-no-fsync")
            .stdout(log_file(&dir, "etcd.log"))
            .stderr(log_file(&dir, "etcd.log"))
            .spawn()
            .expect("start etcd");

        let admin_token = uuid::Uuid::new_v4().simple().to_string();
        let operator_token = uuid::Uuid::new_v4().simple().to_string();
        std::fs::write(
            dir.join("tokens.csv"),
            format!(
                "{admin_token},admin,admin,\"system:masters\"\n\
                 {operator_token},system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT},operator,\"system:serviceaccounts,system:serviceaccounts:{OPERATOR_NAMESPACE}\"\n"
            ),
        )
        .expect("write the token file");
        let signing = rcgen::KeyPair::generate().expect("service account key");
        std::fs::write(dir.join("sa.key"), signing.serialize_pem()).expect("write sa.key");
        std::fs::write(dir.join("sa.pub"), signing.public_key_pem()).expect("write sa.pub");

        let port = free_port();
        let apiserver = Command::new(bin.join("kube-apiserver"))
            .arg(format!("--etcd-servers=http://127.0.0.1:{etcd_client}"))
            .arg(format!("--secure-port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            // The `kubernetes` Service's endpoints would have to be a routable address.
            .arg("--endpoint-reconciler-type=none")
            .arg("--cert-dir")
            .arg(dir.join("certs"))
            .arg("--token-auth-file")
            .arg(dir.join("tokens.csv"))
            .arg("--authorization-mode=RBAC")
            .arg("--service-cluster-ip-range=10.0.0.0/24")
            .arg("--service-account-issuer=https://kubernetes.default.svc")
            .arg("--service-account-key-file")
            .arg(dir.join("sa.pub"))
            .arg("--service-account-signing-key-file")
            .arg(dir.join("sa.key"))
            // No controller manager makes service account tokens for pods: there are no pods.
            .arg("--disable-admission-plugins=ServiceAccount")
            .stdout(log_file(&dir, "kube-apiserver.log"))
            .stderr(log_file(&dir, "kube-apiserver.log"))
            .spawn()
            .expect("start kube-apiserver");

        let mut cluster = Self {
            dir,
            bin,
            url: format!("https://127.0.0.1:{port}"),
            admin_token,
            operator_token,
            etcd,
            apiserver,
            controllers: None,
        };
        cluster.write_kubeconfig("admin", &cluster.admin_token);
        cluster.write_kubeconfig("operator", &cluster.operator_token);
        cluster.wait_ready();
        cluster
    }

    /// Installs the repository's CustomResourceDefinitions (`deploy/crds/`) and waits until
    /// the API server serves them.
    pub fn install_crds(&self) {
        let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds");
        self.apply_crds([crds.display().to_string()]);
    }

    /// Applies the definitions in each of `dirs`, then waits until every one is served.
    fn apply_crds(&self, dirs: impl IntoIterator<Item = String>) {
        for dir in dirs {
            self.kubectl_ok(&["apply", "--server-side", "-f", &dir]);
        }
        self.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ]);
    }

    /// Starts kube-controller-manager with only the namespace controller (a deleted namespace's
    /// contents are deleted, then the namespace) and the garbage collector (objects go with
    /// their owner), as the administrator.
    pub fn start_controllers(&mut self) {
        if self.controllers.is_some() {
            return;
        }
        let child = Command::new(self.bin.join("kube-controller-manager"))
            .arg("--kubeconfig")
            .arg(self.kubeconfig("admin"))
            .arg("--controllers=namespace-controller,garbage-collector-controller")
            .arg("--leader-elect=false")
            // Nothing asks it for health or metrics here.
            .arg("--secure-port=0")
            .stdout(log_file(&self.dir, "kube-controller-manager.log"))
            .stderr(log_file(&self.dir, "kube-controller-manager.log"))
            .spawn()
            .expect("start kube-controller-manager");
        self.controllers = Some(child);
    }

    /// Installs the CustomResourceDefinitions of other projects, taken from their Go modules by
    /// `scripts/kube.sh what` (`cert-manager-crds`, `chart-crds`): their kinds, without their
    /// controllers.
    pub fn install_crds_of(&self, what: &str) {
        self.apply_crds(kube_script_lines(what));
    }

    /// A kubeconfig file for `who` (`admin` or `operator`).
    pub fn kubeconfig(&self, who: &str) -> PathBuf {
        self.dir.join(format!("{who}.kubeconfig"))
    }

    /// Runs kubectl as the administrator.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_as("admin", args, None)
    }

    /// Runs kubectl as `who`, with `stdin` as its standard input (for `apply -f -`).
    pub fn kubectl_as(&self, who: &str, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write as _;
        let mut child = Command::new(self.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(self.kubeconfig(who))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        let mut input = child.stdin.take().expect("kubectl's stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write to kubectl");
        }
        drop(input);
        child.wait_with_output().expect("kubectl's output")
    }

    /// Runs kubectl as the administrator and panics with its error output when it fails;
    /// returns its standard output.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(
            output.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn write_kubeconfig(&self, who: &str, token: &str) {
        let config = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: test\n  cluster:\n    server: {url}\n    insecure-skip-tls-verify: true\n\
             users:\n- name: {who}\n  user:\n    token: {token}\n\
             contexts:\n- name: {who}\n  context:\n    cluster: test\n    user: {who}\n    namespace: default\n\
             current-context: {who}\n",
            url = self.url
        );
        std::fs::write(self.kubeconfig(who), config).expect("write a kubeconfig");
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            for (child, name) in [
                (&mut self.etcd, "etcd"),
                (&mut self.apiserver, "kube-apiserver"),
            ] {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "{name} exited ({status}) at start; its log: {}",
                        self.dir.join(format!("{name}.log")).display()
                    );
                }
            }
            let output = self.kubectl(&["get", "--raw=/readyz"]);
            if output.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kube-apiserver not ready after 90 s: {}\n(log: {})",
                String::from_utf8_lossy(&output.stderr),
                self.dir.join("kube-apiserver.log").display()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for KubeCluster {
    fn drop(&mut self) {
        if let Some(mut controllers) = self.controllers.take() {
            let _ = controllers.kill();
            let _ = controllers.wait();
        }
        let _ = self.apiserver.kill();
        let _ = self.apiserver.wait();
        let _ = self.etcd.kill();
        let _ = self.etcd.wait();
        // A failed test keeps the logs its message points at.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The directory holding etcd, kube-apiserver and kubectl, built by `scripts/kube.sh`.
fn binaries() -> PathBuf {
    kube_script("bin")
}

/// Runs `scripts/kube.sh what`: the directory it prints.
fn kube_script(what: &str) -> PathBuf {
    PathBuf::from(kube_script_lines(what).remove(0))
}

/// Helm, built by `scripts/kube.sh` (once per machine).
pub fn helm() -> PathBuf {
    kube_script("helm")
}

/// Runs `scripts/kube.sh what`: the lines it prints.
fn kube_script_lines(what: &str) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kube.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(what)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/kube.sh");
    assert!(
        output.status.success(),
        "scripts/kube.sh {what} failed: see its message above"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn log_file(dir: &Path, name: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .expect("open a log file")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}
