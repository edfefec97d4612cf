"""Test-broker start-up and idle memory: `.venv/bin/python scripts/bench/startup.py [--runs N]`.

Three ways to get a broker that serves, each timed to its first answered ApiVersions request,
median of N runs (10 by default), against `python -c pass` as the floor:

- cli: `kbroker --ephemeral --port 0 --print-bootstrap` as a child process, from spawn to the
  answer (the way another language's test suite starts it);
- in-process, cold: a fresh interpreter that imports kbroker.testing and starts `Broker()`,
  from before the import to the answer (a pytest session's first `kafka_broker`);
- in-process, warm: another `Broker()` in that interpreter, imports already done.

Idle RSS is read from /proc after the broker has served and then sat idle for a second: the CLI
process, and the whole interpreter of the in-process case. Targets: start-up under 0.5 s, idle
RSS under 80 MB (MB = 10^6 bytes). A measurement, not a test: it exits 0 whatever it finds.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

# Run as a script, this directory comes first on sys.path and scripts/bench/protocol.py would
# shadow the `protocol` package that kbroker imports in the child.
if sys.path and sys.path[0] == str(Path(__file__).resolve().parent):
    del sys.path[0]

REPO = Path(__file__).resolve().parents[2]
KBROKER = Path(sys.executable).with_name("kbroker")
START_TARGET_S = 0.5
RSS_TARGET_MB = 80.0
IDLE_S = 1.0
TIMEOUT_S = 30.0


def api_versions(address: str) -> None:
    """Send ApiVersions v0 on a new connection and wait for a successful answer."""
    host, port = address.rsplit(":", 1)
    request = struct.pack(">hhih", 18, 0, 1, len(b"bench")) + b"bench"
    with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        size, correlation, error = struct.unpack(">iih", _recv(sock, 10))
        _recv(sock, size - 6)
    if correlation != 1 or error != 0:
        raise RuntimeError(f"ApiVersions answered correlation {correlation}, error {error}")


def _recv(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed by the broker")
        data += chunk
    return data


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no VmRSS for pid {pid}")


def python_pass() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, timeout=TIMEOUT_S)
    return time.perf_counter() - start


def cli(measure_rss: bool) -> tuple[float, float | None]:
    argv = [str(KBROKER), "--ephemeral", "--port", "0", "--print-bootstrap"]
    start = time.perf_counter()
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO
    ) as proc:
        try:
            assert proc.stdout is not None
            api_versions(proc.stdout.readline().strip())
            seconds = time.perf_counter() - start
            rss = None
            if measure_rss:
                time.sleep(IDLE_S)
                rss = rss_mb(proc.pid)
            return seconds, rss
        finally:
            proc.terminate()
            proc.wait(TIMEOUT_S)


def child() -> int:
    """--child: time a cold in-process start, then a warm one; print JSON."""
    start = time.perf_counter()
    from kbroker.testing import Broker  # noqa: PLC0415 (the import is what is measured)

    with Broker() as broker:
        api_versions(broker.bootstrap_servers)
        cold = time.perf_counter() - start
        time.sleep(IDLE_S)
        rss = rss_mb(os.getpid())
    start = time.perf_counter()
    with Broker() as broker:
        api_versions(broker.bootstrap_servers)
        warm = time.perf_counter() - start
    print(json.dumps({"cold": cold, "warm": warm, "rss": rss}))
    return 0


def in_process() -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child"],
        capture_output=True, text=True, check=True, timeout=TIMEOUT_S, cwd=REPO,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout)
    return result


def line(label: str, samples: list[float], unit: str, target: float, floor: float | None) -> str:
    median = statistics.median(samples)
    verdict = "PASS" if median < target else "FAIL"
    over = f"  ({median - floor:+.3f} s over the floor)" if floor is not None else ""
    spread = f"min {min(samples):.3f}, max {max(samples):.3f}"
    return f"{label:<34} {median:8.3f} {unit:<3} {spread:<24} < {target} {unit}: {verdict}{over}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child()
    floor, cli_s, cli_rss, cold, warm, inproc_rss = [], [], [], [], [], []
    for run in range(args.runs):
        print(f"run {run + 1}/{args.runs}", file=sys.stderr, flush=True)
        floor.append(python_pass())
        seconds, rss = cli(measure_rss=True)
        cli_s.append(seconds)
        cli_rss.append(rss or 0.0)
        measured = in_process()
        cold.append(measured["cold"])
        warm.append(measured["warm"])
        inproc_rss.append(measured["rss"])
    base = statistics.median(floor)
    print(f"medians of {args.runs} runs (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    print(f"{'python -c pass (the floor)':<34} {base:8.3f} s")
    print(line("kbroker CLI to ApiVersions", cli_s, "s", START_TARGET_S, base))
    print(line("in-process Broker(), cold", cold, "s", START_TARGET_S, base))
    print(line("in-process Broker(), warm", warm, "s", START_TARGET_S, None))
    print(line("idle RSS, kbroker CLI process", cli_rss, "MB", RSS_TARGET_MB, None))
    print(line("idle RSS, interpreter + Broker()", inproc_rss, "MB", RSS_TARGET_MB, None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
