#!/usr/bin/env python3
"""Latency of the questions `make bench-api` asks, as CSV lines: system,question,n,p50_ms,p99_ms.

  api_latency.py http SYSTEM BASE_URL TOKEN N name=path ...   N GETs each, one kept-alive connection
  api_latency.py cmd SYSTEM N name='shell command' ...        N runs each, output discarded

Each question is asked twice before timing (caches warm, as an operator's second look is), and a
question that fails (non-200, or a command exiting non-zero) stops the benchmark.
"""
import http.client
import statistics
import subprocess
import sys
import time
import urllib.parse


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def report(system, name, samples):
    ms = [s * 1000 for s in samples]
    print(f"{system},{name},{len(ms)},{statistics.median(ms):.2f},{percentile(ms, 0.99):.2f}", flush=True)


def http_questions(system, base, token, n, questions):
    url = urllib.parse.urlparse(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    headers = {"Authorization": f"Bearer {token}"}

    def ask(path):
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            sys.exit(f"{system} {path}: {response.status} {body[:300]!r}")

    for name, path in questions:
        ask(path)
        ask(path)
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            ask(path)
            samples.append(time.perf_counter() - start)
        report(system, name, samples)


def command_questions(system, n, questions):
    def run(command):
        done = subprocess.run(command, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if done.returncode != 0:
            sys.exit(f"{system} {command}: exit {done.returncode}: {done.stderr[:300]!r}")

    for name, command in questions:
        run(command)
        run(command)
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            run(command)
            samples.append(time.perf_counter() - start)
        report(system, name, samples)


def pairs(args):
    return [tuple(arg.split("=", 1)) for arg in args]


def main(argv):
    if len(argv) >= 6 and argv[1] == "http":
        http_questions(argv[2], argv[3], argv[4], int(argv[5]), pairs(argv[6:]))
    elif len(argv) >= 4 and argv[1] == "cmd":
        command_questions(argv[2], int(argv[3]), pairs(argv[4:]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
