"""The harness side of the driver protocol: one client process per cell, JSON lines both ways.

Every client, whatever its language, is a *driver*: a program that reads one JSON request per
line on stdin and writes one JSON reply per line on stdout (its logs go to stderr):

    -> {"op": "produce", "topic": "t", "records": [...], "compression": "gzip"}
    <- {"ok": true, "result": {"offsets": [[0, 0], [0, 1]]}}
    <- {"ok": false, "error": "Broker: Message size too large", "code": "MSG_SIZE_TOO_LARGE"}

Bytes (keys, values, header values) travel as base64 strings, null as null. The operations and
their arguments are listed in compat/README.md; `init` comes first, `exit` last.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any, cast

ANSWER_GRACE_S = 15.0  # beyond an op's own timeout_ms, before the driver is declared hung


class ClientError(Exception):
    """The client reported an error for an op (`code` is its name for it, when it has one)."""

    def __init__(self, op: str, message: str, code: str | None) -> None:
        super().__init__(f"{op}: {message}" + (f" [{code}]" if code else ""))
        self.op = op
        self.message = message
        self.code = code


class DriverGone(Exception):
    """The driver process died, hung, or wrote something that is not a reply."""


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


@dataclass
class Rec:
    """A record as scenarios write it and read it back."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp: int | None = None
    partition: int | None = None
    offset: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "key": b64(self.key),
            "value": b64(self.value),
            "headers": [[k, b64(v)] for k, v in self.headers],
            "timestamp": self.timestamp,
            "partition": self.partition,
        }

    @classmethod
    def from_wire(cls, obj: dict[str, Any]) -> Rec:
        return cls(
            key=unb64(obj.get("key")),
            value=unb64(obj.get("value")),
            headers=[(str(k), unb64(v)) for k, v in obj.get("headers") or []],
            timestamp=obj.get("timestamp"),
            partition=obj.get("partition"),
            offset=obj.get("offset"),
        )


class Session:
    """One running driver. `call` sends an op and waits for its reply."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, **(env or {})},
        )
        self.stderr_text = ""
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(b"")

    def call(self, op: str, timeout_s: float = 30.0, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        request = json.dumps({"op": op, **args}).encode() + b"\n"
        try:
            self.proc.stdin.write(request)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise DriverGone(f"{op}: the driver exited ({self._exit_text()})") from None
        try:
            line = self._lines.get(timeout=timeout_s + ANSWER_GRACE_S)
        except queue.Empty:
            self.kill()
            raise DriverGone(f"{op}: no answer within {timeout_s + ANSWER_GRACE_S:.0f} s") from None
        if not line:
            raise DriverGone(f"{op}: the driver exited ({self._exit_text()})")
        try:
            reply = json.loads(line)
        except ValueError:
            raise DriverGone(f"{op}: not a reply: {line[:200]!r}") from None
        if not reply.get("ok"):
            raise ClientError(op, str(reply.get("error")), reply.get("code"))
        return cast(dict[str, Any], reply.get("result") or {})

    def _exit_text(self) -> str:
        try:
            return f"status {self.proc.wait(5)}"
        except subprocess.TimeoutExpired:
            return "still running"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self) -> None:
        """Ask the driver to exit; kill it if it does not within 10 s."""
        if self.proc.poll() is None:
            with contextlib.suppress(DriverGone, ClientError):
                self.call("exit", timeout_s=0.0)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self._reader.join(5)
        self._stderr.seek(0)
        self.stderr_text = self._stderr.read().decode("utf-8", "replace")
        self._stderr.close()

    def stderr_tail(self, lines: int = 40) -> str:
        """The last lines the driver wrote to stderr (after close)."""
        return "\n".join(self.stderr_text.splitlines()[-lines:])
