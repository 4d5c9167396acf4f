#!/usr/bin/env python3
"""`make test-compose`: the repository's docker-compose.yml run for real, on local images.

Images come from scripts/images.sh, which installs and starts the Docker engine first if needed.
The compose file runs as a project of its own, twice: with Debian's `docker-compose` 1.29 and with
`docker compose` v2 (the plugin, built from its Go module by scripts/images.sh). Each time, after
every service reports healthy, these checks are made from outside, through the ports it publishes
on 127.0.0.1:

1. a message sent with swaks to the ingress arrives in Mailpit, through the workers;
2. its trace is in Jaeger, with spans of the ingress and of a worker in one trace;
3. the admin API answers with the dev token and finds the message;
4. Prometheus has scraped every Tern component, evaluates Tern's alert rules without an error,
   and runs every query of the Grafana dashboard;
5. a worker stopped while it holds leases hands them back: Mailpit is frozen, the worker that
   holds the stuck deliveries is stopped, Mailpit thaws, and the other worker delivers them well
   before the lease would have run out;
6. the Helm chart's `helm test` pod, rendered by helm, runs as its spec says (image, command,
   environment, user, no capabilities) on the project's network, where the Service name it is
   given resolves to the ingress: its message arrives in Mailpit;
7. `down -v` leaves no container, network or volume of the project behind.

Traffic stays between the project's own containers and 127.0.0.1.
"""

import json
import os
import shlex
import subprocess
import sys
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = "tern-compose-test"
FILE = os.path.join(ROOT, "docker-compose.yml")
DOCKER = "/usr/bin/docker"
# What scripts/images.sh built: name → image.
LOCAL_IMAGES = {}
# Every service of the file that stays up; each has a healthcheck.
SERVICES = ["postgres", "nats", "ingress", "worker-1", "worker-2", "api", "jaeger", "mailpit",
            "prometheus"]
TOKEN = open(os.path.join(ROOT, "deploy/compose/api-token")).read().strip()
# Longer than the test can take: a delivery after a stop can only come from a hand-back.
LEASE_SECONDS = 300


def log(text):
    print(f"test-compose: {text}", file=sys.stderr, flush=True)


def run(args, env=None, check=True):
    return subprocess.run(args, env=env, check=check, text=True, capture_output=True)


def http_json(url, token=None):
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def eventually(what, seconds, probe):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            found = probe()
            if found:
                return found
        except Exception as error:  # the service may not be up yet
            last = error
        time.sleep(1)
    raise SystemExit(f"test-compose: timed out after {seconds}s waiting for {what} (last: {last})")


def swaks(subject, to="someone@example.test"):
    out = run(["swaks", "--server", "127.0.0.1:2525", "--from", "sender@example.test",
               "--to", to, "--header", f"Subject: {subject}", "--body", "from the compose test"])
    assert "250 2.0.0" in out.stdout, out.stdout


def mailpit_subjects():
    found = http_json("http://127.0.0.1:8025/api/v1/messages?limit=500")
    return [message["Subject"] for message in found.get("messages", [])]


def main():
    images = run(["bash", os.path.join(ROOT, "scripts/images.sh"), "build"])
    env = dict(os.environ)
    for line in images.stdout.splitlines():
        name, _, value = line.partition("=")
        env[name] = value
        LOCAL_IMAGES[name] = value
    env["TERN_WORKER_LEASE"] = f"{LEASE_SECONDS}s"
    log("images: " + ", ".join(images.stdout.split()))
    plugin_config = run(["bash", os.path.join(ROOT, "scripts/images.sh"), "compose-v2"]).stdout.strip()

    tools = [
        ("docker-compose 1.29", ["docker-compose"], env),
        ("docker compose v2", [DOCKER, "compose"], dict(env, DOCKER_CONFIG=plugin_config)),
    ]
    for name, command, tool_env in tools:
        version = run(command + ["version"], env=tool_env).stdout.splitlines()[0]
        log(f"with {name}: {version}")
        project(lambda *args, check=True: run(
            command + ["-p", PROJECT, "-f", FILE] + list(args), env=tool_env, check=check))
    log("passed")


def project(compose):
    """Up, the checks, down -v; nothing of the project left afterwards."""
    compose("down", "-v", "--remove-orphans", check=False)
    try:
        # No build here: scripts/images.sh built the image the file names.
        up = compose("up", "-d", "--no-build", check=False)
        if up.returncode != 0:
            raise SystemExit(f"test-compose: up failed:\n{up.stderr}")
        checks(compose)
    except BaseException:
        logs = compose("logs", "--no-color", "--tail=60", check=False)
        print(logs.stdout[-20000:], file=sys.stderr)
        raise
    finally:
        compose("down", "-v", "--remove-orphans", check=False)
    left = run([DOCKER, "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}"])
    assert left.stdout.strip() == "", f"containers left: {left.stdout}"
    volumes = run([DOCKER, "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"])
    assert volumes.stdout.strip() == "", f"volumes left: {volumes.stdout}"
    networks = run([DOCKER, "network", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"])
    assert networks.stdout.strip() == "", f"networks left: {networks.stdout}"
    log("down -v left nothing behind")


def container(compose, service):
    """The id of a service's container: the two tools name containers differently."""
    return compose("ps", "-q", service).stdout.strip()


def health(compose):
    """Each service's health, as the engine reports it."""
    ids = {service: container(compose, service) for service in SERVICES}
    states = {}
    for service, ident in ids.items():
        if not ident:
            states[service] = "no container"
            continue
        out = run([DOCKER, "inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}"
                   "{{else}}no healthcheck{{end}}", ident], check=False)
        states[service] = out.stdout.strip()
    return states


def checks(compose):
    # 0. Every long-running service has a healthcheck, and every one turns healthy.
    last = {}
    def all_healthy():
        last.update(health(compose))
        return all(state == "healthy" for state in last.values())
    try:
        eventually("every service healthy", 180, all_healthy)
    except SystemExit:
        raise SystemExit(f"test-compose: not every service turned healthy: {last}")
    log(f"healthy: {', '.join(SERVICES)}")

    # 1. swaks → ingress → worker → Mailpit.
    eventually("the ingress's banner", 120, lambda: "220" in run(
        ["swaks", "--server", "127.0.0.1:2525", "--quit-after", "BANNER"], check=False).stdout)
    swaks("compose one")
    eventually("the message in Mailpit", 60, lambda: "compose one" in mailpit_subjects())
    log("swaks → ingress → worker → Mailpit: delivered")

    # 2. One trace with the ingress's and a worker's spans.
    def one_trace():
        found = http_json("http://127.0.0.1:16686/api/traces?service=tern-ingress&limit=20")
        for trace in found.get("data", []):
            services = {process["serviceName"] for process in trace["processes"].values()}
            if {"tern-ingress", "tern-worker"} <= services:
                return trace
        return None
    trace = eventually("a trace with ingress and worker spans in Jaeger", 60, one_trace)
    log(f"Jaeger: trace {trace['traceID']} has {len(trace['spans'])} spans")

    # 3. The admin API, with the dev token.
    summary = eventually("the admin API", 30, lambda: http_json(
        "http://127.0.0.1:8080/v1/queue/summary", TOKEN))
    log(f"API: queue summary {json.dumps(summary)[:200]}")
    try:
        http_json("http://127.0.0.1:8080/v1/queue/summary", "not-the-token")
        raise SystemExit("test-compose: the API accepted a wrong token")
    except urllib.error.HTTPError as error:
        assert error.code == 401, error.code

    # 4. Prometheus scraped every component.
    def all_up():
        found = http_json("http://127.0.0.1:9090/api/v1/query?query=up")
        results = found["data"]["result"]
        up = {result["metric"]["instance"] for result in results if result["value"][1] == "1"}
        return up if {"ingress:9100", "worker-1:9100", "worker-2:9100", "api:8080"} <= up else None
    up = eventually("every component scraped by Prometheus", 60, all_up)
    log(f"Prometheus: up for {sorted(up)}")

    # … and evaluates Tern's alert rules against them without an error.
    expected = {rule["alert"] for group in yaml_file("deploy/prometheus/tern-alerts.yaml")["groups"]
                for rule in group["rules"]}
    def rules_evaluated():
        groups = http_json("http://127.0.0.1:9090/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        # Never evaluated reads as the zero time, 0001-01-01.
        evaluated = [rule for rule in rules
                     if not rule.get("lastEvaluation", "0001").startswith("0001")]
        return rules if len(evaluated) == len(rules) else None
    rules = eventually("Prometheus to evaluate every alert rule", 60, rules_evaluated)
    loaded = {rule["name"] for rule in rules}
    assert loaded == expected, f"rules loaded {sorted(loaded)}, file has {sorted(expected)}"
    broken = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert not broken, f"alert rules failing in Prometheus: {broken}"
    log(f"Prometheus: all {len(rules)} alert rules loaded and evaluated without error")

    # … and runs every query of the Grafana dashboard, as Grafana would send it.
    with open(os.path.join(ROOT, "deploy/grafana/tern-dashboard.json")) as file:
        dashboard = json.load(file)
    queries = [target["expr"].replace("$__rate_interval", "1m")
               for panel in dashboard["panels"] for target in panel.get("targets", [])]
    answered = 0
    for query in queries:
        found = http_json("http://127.0.0.1:9090/api/v1/query?"
                          + urllib.parse.urlencode({"query": query}))
        assert found["status"] == "success", (query, found)
        answered += bool(found["data"]["result"])
    # The message sent above, counted as Prometheus scraped it.
    eventually("the accepted message in Prometheus", 30, lambda: [
        result for result in http_json("http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode(
            {"query": "sum(tern_ingress_messages_accepted_total)"}))["data"]["result"]
        if float(result["value"][1]) >= 1])
    log(f"Prometheus: all {len(queries)} dashboard queries run; {answered} have data so far")

    # 5. A worker stopped mid-delivery hands its leases back.
    mailpit = container(compose, "mailpit")
    run([DOCKER, "pause", mailpit])
    subjects = [f"held {n}" for n in range(6)]
    for subject in subjects:
        swaks(subject, to=f"{subject.replace(' ', '-')}@example.test")
    def held_by_worker_1():
        out = run([DOCKER, "exec", container(compose, "postgres"), "psql", "-U", "tern", "-d", "tern",
                   "-tAc", "SELECT count(*) FROM jobs WHERE status = 'leased' AND lease_owner = 'worker-1'"])
        return int(out.stdout.strip() or 0)
    held = eventually("worker-1 to hold leases on the held messages", 30, held_by_worker_1)
    stopping = time.monotonic()
    compose("stop", "worker-1")
    # Its deliveries to the frozen Mailpit cannot finish: it waits out its shutdown grace for
    # them, then hands every lease back and exits.
    stopped = time.monotonic()
    run([DOCKER, "unpause", mailpit])
    eventually("the held messages delivered", LEASE_SECONDS // 3,
               lambda: all(subject in mailpit_subjects() for subject in subjects))
    log(f"worker-1 stopped while it held {held} leases ({stopped - stopping:.0f}s to stop): "
        f"all {len(subjects)} delivered {time.monotonic() - stopped:.0f}s after it exited "
        f"(lease {LEASE_SECONDS}s)")

    # 6. The chart's `helm test` pod against this ingress.
    helm_test(compose)


def helm_test(compose):
    """Runs the pod `helm test` would create, as its spec says, on the project's network."""
    helm = run(["bash", os.path.join(ROOT, "scripts/kube.sh"), "helm"]).stdout.strip()
    chart = os.path.join(ROOT, "helm/tern")
    rendered = run([helm, "template", "t", chart, "-n", "mail",
                    "-f", os.path.join(chart, "ci/default-values.yaml"),
                    "--show-only", "templates/tests/smtp-test.yaml",
                    # The compose ingress listens on 2525 itself; in a cluster, the Service's 25
                    # maps onto it.
                    "--set", "ingress.service.ports.smtp=2525",
                    "--set", "test.to=helm-test@example.test"]).stdout
    pod = yaml_load(rendered)
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test", pod["metadata"]
    spec = pod["spec"]
    [container] = spec["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    ingress = container_ip(compose, "ingress")
    args = [DOCKER, "run", "--rm", "--network", network(compose),
            # What cluster DNS would answer for the Service name the pod is given.
            "--add-host", f"{env['SERVER']}:{ingress}",
            "--user", str(spec["securityContext"]["runAsUser"]),
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    for name, value in env.items():
        args += ["--env", f"{name}={value}"]
    # The chart names the official python image; this machine has a local one.
    image = LOCAL_IMAGES.get("TEST_PYTHON_IMAGE") or container["image"]
    args += ["--entrypoint", container["command"][0], image] + container["command"][1:]
    out = run(args, check=False)
    if out.returncode != 0:
        raise SystemExit(f"test-compose: the helm test pod failed ({shlex.join(args[:8])} …):\n"
                         f"{out.stdout}{out.stderr}")
    eventually("the helm test message in Mailpit", 60, lambda: "helm test" in mailpit_subjects())
    log(f"helm test pod: {out.stdout.strip().splitlines()[0]}; its message arrived in Mailpit")


def yaml_load(text):
    """YAML as JSON values, read by Debian's python3-yaml (docker-compose 1.29 depends on it)."""
    return json.loads(subprocess.run(
        ["/usr/bin/python3", "-c",
         "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"],
        input=text, check=True, text=True, capture_output=True).stdout)


def yaml_file(path):
    with open(os.path.join(ROOT, path)) as file:
        return yaml_load(file.read())


def container_ip(compose, service):
    ident = container(compose, service)
    return run([DOCKER, "inspect", "--format",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", ident]).stdout.strip()


def network(compose):
    ident = container(compose, "ingress")
    found = run([DOCKER, "inspect", "--format", "{{json .NetworkSettings.Networks}}", ident]).stdout
    [name] = json.loads(found).keys()
    return name


if __name__ == "__main__":
    main()
