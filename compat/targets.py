"""The broker a run is pointed at: any bootstrap address, an ephemeral kbroker, or librdkafka's
mock cluster. The last two run as child processes whose log (stderr) is captured line by line,
so that a failing cell can show what the broker wrote while it ran."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

START_TIMEOUT_S = 30.0
SETTLE_S = 0.2  # for the last log lines of a cell to arrive


@dataclass
class LogCapture:
    """Lines a broker process writes to stderr, in arrival order."""

    lines: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)

    def mark(self) -> int:
        with self.lock:
            return len(self.lines)

    def since(self, mark: int) -> list[str]:
        time.sleep(SETTLE_S)
        with self.lock:
            return self.lines[mark:]


@dataclass
class Target:
    description: str
    bootstrap: str
    log: LogCapture | None = None
    log_note: str = ""  # why there is no log, when there is none
    proc: subprocess.Popen[bytes] | None = None
    _reader: threading.Thread | None = None

    def close(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the mock-cluster helper exits at EOF
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._reader is not None:
            self._reader.join(5)


def external(bootstrap: str) -> Target:
    return Target(
        f"the broker at {bootstrap}",
        bootstrap,
        log_note="no broker log: compat did not start this broker",
    )


def _spawn(description: str, argv: list[str]) -> Target:
    """Start a broker process that prints its bootstrap address as its first stdout line."""
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    log = LogCapture()
    assert proc.stderr is not None and proc.stdout is not None
    stderr = proc.stderr

    def read() -> None:
        for raw in stderr:
            log.add(raw.decode("utf-8", "replace").rstrip("\n"))
        stderr.close()

    reader = threading.Thread(target=read, name="broker-log", daemon=True)
    reader.start()
    target = Target(description, "", log, proc=proc, _reader=reader)
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
    line = proc.stdout.readline().decode().strip() if ready else ""
    if not line:
        target.close()
        tail = "\n".join(log.lines[-20:])
        raise RuntimeError(f"{description} did not print its address; its log ends:\n{tail}")
    target.bootstrap = line
    return target


def start_kbroker(overrides: list[str], log_level: str = "INFO") -> Target:
    """`python -m kbroker --ephemeral --port 0 --print-bootstrap` in a child process (the only
    place compat touches kbroker, and only by running it)."""
    argv = [sys.executable, "-m", "kbroker", "--ephemeral", "--port", "0", "--print-bootstrap"]
    argv += ["--log-level", log_level, "--override", "group.initial.rebalance.delay.ms=0"]
    for item in overrides:
        argv += ["--override", item]
    return _spawn("kbroker (ephemeral, started by compat)", argv)


def start_mock(brokers: int = 1) -> Target:
    """librdkafka's mock cluster, owned by a helper process (compat.mock_cluster)."""
    argv = [sys.executable, "-m", "compat.mock_cluster", "--brokers", str(brokers)]
    return _spawn("librdkafka's mock cluster (test.mock.num.brokers)", argv)
