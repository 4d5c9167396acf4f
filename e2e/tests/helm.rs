//! The Helm chart (`helm/tern`) with a real helm (v4, built from its Go module by
//! `scripts/kube.sh`): every scenario under `ci/` lints and renders; the rendered objects keep
//! what matters (autoscaling targets, KEDA's query, disruption budgets, grace periods, security
//! contexts, no secret in a ConfigMap, the operator's RBAC equal to deploy/'s); every component
//! accepts the settings the chart gives it (`tern <component> --check-config`); every object
//! validates against the schemas of Kubernetes 1.30 to 1.37 (kubernetes-validate); and the real API
//! server, with KEDA's, cert-manager's and the Prometheus operator's own definitions installed,
//! accepts every object of every scenario, then a `helm install`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tern_e2e::tern_binary;
use tern_testkit::KubeCluster;
use tern_testkit::kube_cluster::helm;
use tern_testkit::tls_files::{SecretMount, TestCertificate};

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/tern")
}

/// Every scenario file under `ci/`, by name.
fn scenarios() -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(chart().join("ci"))
        .expect("ci/")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| {
            let name = path.file_stem().unwrap_or_default().to_string_lossy();
            (name.trim_end_matches("-values").to_owned(), path)
        })
        .collect();
    found.sort();
    assert!(found.len() >= 5, "the scenarios: {found:?}");
    found
}

fn run_helm(args: &[&str]) -> String {
    let output = Command::new(helm()).args(args).output().expect("run helm");
    assert!(
        output.status.success(),
        "helm {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The chart rendered with `values` as release `t` in namespace `mail`: its YAML text.
fn render(values: &Path) -> String {
    let chart = chart().display().to_string();
    let values = values.display().to_string();
    run_helm(&["template", "t", &chart, "-n", "mail", "-f", &values])
}

fn documents(yaml: &str) -> Vec<Value> {
    yaml.split("\n---")
        .filter_map(|document| serde_saphyr::from_str::<Option<Value>>(document).expect("YAML"))
        .filter(|document| !document.is_null())
        .collect()
}

fn rendered(scenario: &str) -> Vec<Value> {
    let (_, path) = scenarios()
        .into_iter()
        .find(|(name, _)| name == scenario)
        .unwrap_or_else(|| panic!("no scenario {scenario}"));
    documents(&render(&path))
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|object| object["kind"] == kind && object["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn has(objects: &[Value], kind: &str, name: &str) -> bool {
    objects
        .iter()
        .any(|object| object["kind"] == kind && object["metadata"]["name"] == name)
}

#[test]
fn every_scenario_lints_and_renders() {
    let chart = chart().display().to_string();
    for (name, path) in scenarios() {
        let values = path.display().to_string();
        let lint = run_helm(&["lint", "--strict", &chart, "-f", &values]);
        assert!(lint.contains("0 chart(s) failed"), "{name}: {lint}");
        assert!(!rendered(&name).is_empty(), "{name} renders nothing");
    }
    // A value the schema does not know is refused by name.
    let output = Command::new(helm())
        .args(["template", "t", &chart, "--set", "ingress.replicass=3"])
        .output()
        .expect("helm");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("replicass"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_rendered_chart_keeps_what_matters() {
    let objects = rendered("default");
    // The ingress scales on CPU; a scale-down drops no session: the termination grace outlasts
    // the pause for the load balancer and the sessions' own grace.
    let hpa = find(&objects, "HorizontalPodAutoscaler", "t-tern-ingress");
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        70
    );
    let ingress = &find(&objects, "Deployment", "t-tern-ingress")["spec"]["template"]["spec"];
    let container = &ingress["containers"][0];
    let pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_i64()
        .expect("a preStop pause");
    let grace = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|env| env["name"] == "TERN_INGRESS_SHUTDOWN_GRACE")
        .and_then(|env| env["value"].as_str())
        .and_then(|value| value.trim_end_matches('s').parse::<i64>().ok())
        .expect("the shutdown grace");
    let termination = ingress["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("set");
    assert!(
        termination > pause + grace,
        "{termination} <= {pause} + {grace}"
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    for name in ["t-tern-ingress", "t-tern-worker", "t-tern-operator"] {
        let pdb = find(&objects, "PodDisruptionBudget", name);
        assert_eq!(pdb["spec"]["minAvailable"], 1, "{name}");
    }
    // Every container runs as non-root, read-only, with no capabilities.
    for object in objects
        .iter()
        .filter(|object| object["kind"] == "Deployment")
    {
        let pod = &object["spec"]["template"]["spec"];
        assert_eq!(
            pod["securityContext"]["runAsNonRoot"], true,
            "{}",
            object["metadata"]["name"]
        );
        for container in pod["containers"].as_array().expect("containers") {
            let context = &container["securityContext"];
            assert_eq!(context["readOnlyRootFilesystem"], true);
            assert_eq!(context["allowPrivilegeEscalation"], false);
            assert_eq!(context["capabilities"]["drop"][0], "ALL");
        }
    }
    // The service maps the SMTP ports onto unprivileged ones and keeps the client's address.
    let service = find(&objects, "Service", "t-tern-ingress");
    assert_eq!(service["spec"]["externalTrafficPolicy"], "Local");
    assert_eq!(service["spec"]["ports"][0]["port"], 25);
    // The CRDs outlive the release by default.
    let crd = find(&objects, "CustomResourceDefinition", "maildomains.tern.dev");
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    // The migration runs before the release's pods.
    let job = find(&objects, "Job", "t-tern-migrate");
    assert_eq!(
        job["metadata"]["annotations"]["helm.sh/hook"],
        "pre-install,pre-upgrade"
    );

    // KEDA replaces the workers' HPA: on the due jobs, with the claim's own predicate…
    let keda = rendered("keda-postgresql");
    assert!(!has(&keda, "HorizontalPodAutoscaler", "t-tern-worker"));
    let trigger = &find(&keda, "ScaledObject", "t-tern-worker")["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "postgresql");
    let query = trigger["metadata"]["query"].as_str().expect("a query");
    assert!(query.contains("next_attempt_at <= now()"), "{query}");
    assert_eq!(trigger["metadata"]["targetQueryValue"], "200");
    // …or on the oldest due job's age.
    let keda = rendered("keda-prometheus");
    let trigger = &find(&keda, "ScaledObject", "t-tern-worker")["spec"]["triggers"][0];
    assert_eq!(
        trigger["metadata"]["query"],
        "max(tern_worker_queue_oldest_due_seconds)"
    );
    assert!(has(
        &rendered("default"),
        "HorizontalPodAutoscaler",
        "t-tern-worker"
    ));
}

#[test]
fn no_secret_value_is_rendered_outside_a_secret() {
    for (name, path) in scenarios() {
        for object in documents(&render(&path)) {
            if object["kind"] == "Secret" {
                continue;
            }
            let text = object.to_string();
            for secret in ["tern:secret@", "tern-evaluation"] {
                assert!(
                    !text.contains(secret),
                    "{name}: {} {} carries {secret}",
                    object["kind"],
                    object["metadata"]["name"]
                );
            }
        }
    }
}

#[test]
fn the_operators_rbac_is_deploys() {
    let deploy = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/operator/rbac.yaml"),
    )
    .expect("rbac.yaml");
    let deploy = documents(&deploy);
    let objects = rendered("default");
    let rules = |objects: &[Value], kind: &str| {
        objects
            .iter()
            .find(|object| object["kind"] == kind)
            .map(|object| object["rules"].clone())
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    for kind in ["ClusterRole", "Role"] {
        assert_eq!(rules(&objects, kind), rules(&deploy, kind), "{kind}");
    }
}

#[test]
fn the_charts_files_are_deploys() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pairs = [
        (
            "deploy/prometheus/tern-alerts.yaml",
            "helm/tern/files/prometheus/tern-alerts.yaml",
        ),
        (
            "deploy/grafana/tern-dashboard.json",
            "helm/tern/files/grafana/tern-dashboard.json",
        ),
    ];
    let mut compared: Vec<(PathBuf, PathBuf)> = pairs
        .iter()
        .map(|(from, to)| (root.join(from), root.join(to)))
        .collect();
    for entry in std::fs::read_dir(root.join("deploy/crds")).expect("deploy/crds") {
        let path = entry.expect("an entry").path();
        let copy = root
            .join("helm/tern/files/crds")
            .join(path.file_name().expect("a name"));
        compared.push((path, copy));
    }
    for (original, copy) in compared {
        assert_eq!(
            std::fs::read_to_string(&original).expect("the original"),
            std::fs::read_to_string(&copy).unwrap_or_default(),
            "{} is stale: run `make generate`",
            copy.display()
        );
    }
}

#[test]
fn the_api_server_accepts_every_scenario_and_an_install() {
    let cluster = KubeCluster::start();
    cluster.install_crds_of("chart-crds");
    cluster.install_crds_of("cert-manager-crds");
    let chart = chart().display().to_string();
    for (name, path) in scenarios() {
        let namespace = format!("s-{name}");
        cluster.kubectl_ok(&["create", "namespace", &namespace]);
        let values = path.display().to_string();
        let yaml = run_helm(&["template", "t", &chart, "-n", &namespace, "-f", &values]);
        let output = cluster.kubectl_as(
            "admin",
            &["apply", "--dry-run=server", "-n", &namespace, "-f", "-"],
            Some(&yaml),
        );
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // A real install (its hooks wait for pods, and this API server has no nodes).
    cluster.kubectl_ok(&["create", "namespace", "tern"]);
    let values = chart_values("monitoring");
    let kubeconfig = cluster.kubeconfig("admin").display().to_string();
    run_helm(&[
        "install",
        "t",
        &chart,
        "-n",
        "tern",
        "-f",
        &values,
        "--no-hooks",
        "--kubeconfig",
        &kubeconfig,
    ]);
    let kinds = cluster.kubectl_ok(&[
        "get",
        "deployments,services,servicemonitors,prometheusrules,networkpolicies,pdb",
        "-n",
        "tern",
        "-o",
        "name",
    ]);
    for expected in [
        "deployment.apps/t-tern-ingress",
        "deployment.apps/t-tern-operator",
        "servicemonitor.monitoring.coreos.com/t-tern-worker",
        "prometheusrule.monitoring.coreos.com/t-tern",
    ] {
        assert!(kinds.contains(expected), "{expected} not in {kinds}");
    }
    let status = run_helm(&["status", "t", "-n", "tern", "--kubeconfig", &kubeconfig]);
    assert!(status.contains("STATUS: deployed"), "{status}");
}

fn chart_values(scenario: &str) -> String {
    chart()
        .join("ci")
        .join(format!("{scenario}-values.yaml"))
        .display()
        .to_string()
}

/// The environment a container of `deployment` gets, as `tern` would see it: values as they
/// are, a Secret's URL by a working stand-in, a pod's name by a name; files the pod would mount
/// (a TLS pair, the API's token) by local ones.
fn environment(deployment: &Value, files: &SecretMount, token: &Path) -> Vec<(String, String)> {
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|env| {
            let name = env["name"].as_str().expect("a name").to_owned();
            let value = match (name.as_str(), env["value"].as_str()) {
                ("TERN_DATABASE_URL", _) => "postgres://tern@127.0.0.1:5432/tern".to_owned(),
                ("TERN_NATS_URL", _) => "nats://127.0.0.1:4222".to_owned(),
                ("TERN_INGRESS_TLS_CERTIFICATES", _) => {
                    format!("{}:{}", files.cert().display(), files.key().display())
                }
                ("TERN_API_BOOTSTRAP_TOKEN_FILE", _) => token.display().to_string(),
                (_, Some(value)) => value.to_owned(),
                (_, None) => "tern-pod-0".to_owned(),
            };
            (name, value)
        })
        .collect()
}

#[test]
fn every_component_accepts_the_configuration_the_chart_gives_it() {
    let certificate = TestCertificate::self_signed(&["mx.example.org"]);
    let files = SecretMount::new(&certificate);
    let token = std::env::temp_dir().join(format!("tern-helm-token-{}", std::process::id()));
    std::fs::write(&token, "a bootstrap token").expect("write the token");
    let mut checked = 0;
    for (name, path) in scenarios() {
        for deployment in documents(&render(&path))
            .iter()
            .filter(|object| object["kind"] == "Deployment")
        {
            let container = &deployment["spec"]["template"]["spec"]["containers"][0];
            let command = container["args"][0].as_str().expect("a command");
            // Every name is one the command reads: its --help lists each `[env: NAME]`.
            let help = Command::new(tern_binary())
                .args([command, "--help"])
                .env_clear()
                .output()
                .expect("tern --help");
            let help = String::from_utf8_lossy(&help.stdout);
            for (variable, _) in environment(deployment, &files, &token) {
                let listed = [']', '=']
                    .iter()
                    .any(|end| help.contains(&format!("env: {variable}{end}")));
                assert!(listed, "{name}: tern {command} has no setting {variable}");
            }
            let output = Command::new(tern_binary())
                .args([command, "--check-config"])
                .env_clear()
                .envs(environment(deployment, &files, &token))
                .output()
                .expect("run tern");
            assert!(
                output.status.success(),
                "{name}: tern {command} refuses the chart's settings: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} checked");
    std::fs::remove_file(&token).expect("remove the token");
}

/// kubernetes-validate (from PyPI), which carries the Kubernetes schemas of many releases.
fn kubernetes_validate() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pytool.sh");
    let output = Command::new("bash")
        .arg(script)
        .args(["kubernetes-validate", "1.37.0", "kubernetes-validate"])
        .output()
        .expect("run pytool.sh");
    assert!(
        output.status.success(),
        "installing kubernetes-validate: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// Whether `file` validates, strictly (no unknown field), against Kubernetes `version`; the
/// errors when not. Kinds it has no schema for (KEDA's, the Prometheus operator's) are left to
/// the API server test above.
fn validates(tool: &Path, file: &Path, version: &str) -> Result<(), String> {
    let output = Command::new(tool)
        .args(["--strict", "--quiet", "--no-warn", "-k", version])
        .arg(file)
        .output()
        .expect("run kubernetes-validate");
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

#[test]
fn every_scenario_validates_against_every_supported_kubernetes_release() {
    let tool = kubernetes_validate();
    let dir = std::env::temp_dir().join(format!("tern-helm-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    // The check itself can fail: an unknown field and a wrong type are refused.
    let broken = dir.join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n\
         spec: {replicas: two, selector: {matchLabels: {a: b}}, template: {metadata: {labels: \
         {a: b}}, spec: {containers: [{name: c, image: i, bogus: 1}]}}}\n",
    )
    .expect("write");
    assert!(validates(&tool, &broken, "1.30.0").is_err());
    // The chart's kubeVersion is >=1.30.
    for (name, path) in scenarios() {
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, render(&path)).expect("write");
        for minor in 30..=37 {
            let version = format!("1.{minor}.0");
            if let Err(errors) = validates(&tool, &file, &version) {
                panic!("{name} against Kubernetes {version}:\n{errors}");
            }
        }
    }
    std::fs::remove_dir_all(&dir).expect("remove");
}
