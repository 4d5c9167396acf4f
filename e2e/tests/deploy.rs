//! The Grafana dashboard and the Prometheus alert rules under `deploy/` parse, and every `tern_…`
//! metric they query is one the code defines: renaming a metric without updating them fails here.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Deserialize;

fn deploy_file(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The metric names the ingress and the worker define, with the series a histogram exposes.
fn defined_metrics() -> BTreeSet<String> {
    let histograms: Vec<&str> = tern_ingress::metrics::HISTOGRAMS
        .iter()
        .chain(tern_worker::metrics::HISTOGRAMS)
        .map(|(name, _)| *name)
        .collect();
    let mut names = BTreeSet::new();
    for name in tern_ingress::metrics::ALL
        .iter()
        .chain(tern_worker::metrics::ALL)
    {
        names.insert((*name).to_owned());
        if histograms.contains(name) {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

/// Every `tern_…` identifier in a PromQL expression.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut found = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("tern_") {
        let starts_word = rest[..at].chars().next_back().is_none_or(|c| !ident(c));
        let end = rest[at..]
            .find(|c: char| !ident(c))
            .map_or(rest.len(), |e| at + e);
        if starts_word {
            found.insert(rest[at..end].to_owned());
        }
        rest = &rest[end..];
    }
    found
}

fn assert_defined(what: &str, expr: &str, defined: &BTreeSet<String>) -> usize {
    let used = metrics_in(expr);
    assert!(!used.is_empty(), "{what} queries no Tern metric: {expr}");
    let unknown: Vec<&String> = used.difference(defined).collect();
    assert!(
        unknown.is_empty(),
        "{what} queries metrics the code does not define: {unknown:?}"
    );
    used.len()
}

#[derive(Deserialize)]
struct Dashboard {
    title: String,
    uid: String,
    panels: Vec<Panel>,
}

#[derive(Deserialize)]
struct Panel {
    title: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    targets: Vec<Target>,
}

#[derive(Deserialize)]
struct Target {
    expr: String,
}

#[test]
fn the_dashboard_queries_only_metrics_the_code_defines() {
    let dashboard: Dashboard =
        serde_json::from_str(&deploy_file("grafana/tern-dashboard.json")).expect("valid JSON");
    assert_eq!(dashboard.title, "Tern");
    assert!(!dashboard.uid.is_empty());
    let defined = defined_metrics();
    let mut used = BTreeSet::new();
    for panel in dashboard.panels.iter().filter(|p| p.kind != "row") {
        assert!(
            !panel.targets.is_empty(),
            "panel {} has no query",
            panel.title
        );
        for target in &panel.targets {
            assert_defined(&format!("panel {}", panel.title), &target.expr, &defined);
            used.extend(metrics_in(&target.expr));
        }
    }
    // The views the operators asked for are there.
    for wanted in [
        "tern_ingress_messages_accepted_total",
        "tern_ingress_rejects_total",
        "tern_ingress_commit_seconds_bucket",
        "tern_ingress_notice_failures_total",
        "tern_worker_queue_jobs",
        "tern_worker_queue_oldest_due_seconds",
        "tern_worker_attempts_total",
        "tern_worker_delivery_seconds_bucket",
        "tern_worker_lease_expiries_total",
        "tern_worker_dsns_queued_total",
    ] {
        assert!(used.contains(wanted), "no panel shows {wanted}");
    }
}

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    alert: String,
    expr: String,
    labels: std::collections::BTreeMap<String, String>,
    annotations: std::collections::BTreeMap<String, String>,
}

#[test]
fn the_alert_rules_query_only_metrics_the_code_defines() {
    let rules: RuleFile =
        serde_saphyr::from_str(&deploy_file("prometheus/tern-alerts.yaml")).expect("valid YAML");
    let defined = defined_metrics();
    let mut alerts = BTreeSet::new();
    for group in &rules.groups {
        assert!(!group.rules.is_empty(), "group {} is empty", group.name);
        for rule in &group.rules {
            assert!(alerts.insert(rule.alert.clone()), "{} twice", rule.alert);
            assert_defined(&format!("alert {}", rule.alert), &rule.expr, &defined);
            assert!(rule.labels.contains_key("severity"), "{}", rule.alert);
            assert!(rule.annotations.contains_key("summary"), "{}", rule.alert);
        }
    }
    for wanted in [
        "TernQueueOldestDueJobOld",
        "TernHighDeferralRate",
        "TernHighBounceRate",
        "TernCommitErrors",
        "TernNoWorkerProgress",
    ] {
        assert!(alerts.contains(wanted), "no alert {wanted}");
    }
}

#[test]
fn a_renamed_metric_would_be_caught() {
    let defined = defined_metrics();
    assert_eq!(
        metrics_in("sum(rate(tern_worker_attempts_total{x=\"tern_no\"}[5m])) / tern_gone_total"),
        BTreeSet::from([
            "tern_worker_attempts_total".to_owned(),
            "tern_no".to_owned(),
            "tern_gone_total".to_owned()
        ])
    );
    assert!(!defined.contains("tern_gone_total"));
    assert!(defined.contains("tern_ingress_commit_seconds_bucket"));
}
