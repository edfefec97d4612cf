"""A broker in its own process (for kill -9 and restart tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

START_TIMEOUT_S = 30


class BrokerProcess:
    def __init__(self, data_dir: str, *overrides: str, port: int = 0) -> None:
        self.data_dir = data_dir
        self.overrides = overrides
        self.port = port  # 0: a free one, chosen at each start
        self.proc: subprocess.Popen[bytes] | None = None
        self.bootstrap = ""
        parent, name = os.path.split(os.path.abspath(data_dir))
        self.log_path = os.path.join(parent, name + ".log")

    def start(self) -> str:
        args = [sys.executable, "-m", "kbroker", "--port", str(self.port), "--print-bootstrap"]
        for item in (f"log.dirs={self.data_dir}", *self.overrides):
            args += ["--override", item]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line:
            raise RuntimeError(f"broker exited; see {self.log_path}")
        self.bootstrap = line
        return line

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(START_TIMEOUT_S)
        self._close_pipe()

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(START_TIMEOUT_S)
        self._close_pipe()
        return code

    def _close_pipe(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def ensure_stopped(self) -> None:
        """Kill the process if it is still running (test clean-up after a failure)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(START_TIMEOUT_S)
        self._close_pipe()

    def log_text(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()
