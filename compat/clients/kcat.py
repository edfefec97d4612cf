"""Driver for kcat (the Debian package): `python -m compat.clients.kcat`.

Every op runs the `kcat` command line, as a user would; nothing here talks to the broker.

- Produce: records go to kcat's stdin, split by a multi-byte message delimiter (-D) and key
  delimiter (-K), so keys and values may hold any byte. kcat applies -p, -H and -Z to a whole
  run, so consecutive records that share a partition, headers and value-nullness go in one
  invocation. kcat skips a line with neither key nor value, so a record with no key and an
  empty or null value cannot be sent (an error, not a silent drop). kcat reports no offsets.
- Consume: `-f` prints partition, offset, timestamp and the key and value lengths, then the raw
  key and value, then the headers (`%h`: k=v,k=v; a header value holding ',' or '=' would be
  ambiguous).
- Groups: one `kcat -G` process per member; assignments come from its "% Group ... rebalanced"
  lines on stderr. It commits by itself (see group_commit).
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any

from compat.clients._driver import handlers_of, record_out, serve, unb64

Args = dict[str, Any]
MESSAGE_DELIMITER = b"\x1e\x1dKCAT-RECORD\x1d\x1e"
KEY_DELIMITER = b"\x1f\x1cKCAT-KEY\x1c\x1f"
FORMAT = "%p %o %T %K %S\\n%k%s\\n%h\\n"
AUTO_COMMIT_S = 5.0  # librdkafka's default auto.commit.interval.ms
_ASSIGNED = re.compile(r"rebalanced \(memberid [^)]*\): assigned: (.*)")
_REVOKED = re.compile(r"rebalanced \(memberid [^)]*\): revoked")
_PARTITION = re.compile(r"\[(\d+)\]")


def _escape(delimiter: bytes) -> str:
    return "".join(f"\\x{b:02x}" for b in delimiter)


def _headers(text: bytes) -> list[tuple[str, bytes | None]]:
    if not text:
        return []
    pairs = []
    for item in text.split(b","):
        key, sep, value = item.partition(b"=")
        pairs.append((key.decode("utf-8", "surrogateescape"), value if sep else None))
    return pairs


def read_record(stream: IO[bytes]) -> Args | None:
    """One record as FORMAT prints it, or None at EOF."""
    line = stream.readline()
    if not line:
        return None
    partition, offset, timestamp, klen, vlen = (int(x) for x in line.split())
    key = stream.read(klen) if klen >= 0 else None
    value = stream.read(vlen) if vlen >= 0 else None
    stream.readline()  # the newline after the value
    headers = _headers(stream.readline().rstrip(b"\n"))
    return record_out(partition, offset, key, value, headers, timestamp)


class Member:
    """One `kcat -G` process: its records arrive on a queue, its assignment from stderr."""

    def __init__(self, argv: list[str], index: int) -> None:
        self.index = index
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.records: queue.Queue[Args] = queue.Queue()
        self.assigned: list[int] = []
        self.log: list[str] = []
        threading.Thread(target=self._read_records, daemon=True).start()
        threading.Thread(target=self._read_log, daemon=True).start()

    def _read_records(self) -> None:
        assert self.proc.stdout is not None
        while (record := read_record(self.proc.stdout)) is not None:
            self.records.put({**record, "member": self.index})

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.log.append(line)
            sys.stderr.write(f"[member {self.index}] {line}\n")
            if (m := _ASSIGNED.search(line)) is not None:
                self.assigned = sorted(int(p) for p in _PARTITION.findall(m.group(1)))
            elif _REVOKED.search(line):
                self.assigned = []

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # kcat closes the consumer: commit, leave

    def stop(self) -> None:
        self.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class Driver:
    def __init__(self) -> None:
        self.common: list[str] = []
        self.timeout_s = 30.0
        self.members: list[Member] = []

    def version(self, _: Args) -> Args:
        out = subprocess.run(["kcat", "-V"], capture_output=True, check=True, text=True).stdout
        found = re.search(r"Version (\S+) \(.*librdkafka (\S+)", out)
        text = f"kcat {found.group(1)} (librdkafka {found.group(2)})" if found else out.strip()
        return {"version": text}

    def init(self, a: Args) -> Args:
        self.common = ["kcat", "-b", a["bootstrap"], "-X", f"client.id={a['client_id']}"]
        self.timeout_s = a["timeout_ms"] / 1000
        return {}

    def _run(self, argv: list[str], stdin: bytes | None = None) -> bytes:
        done = subprocess.run(
            argv, input=stdin, capture_output=True, timeout=self.timeout_s, check=False
        )
        sys.stderr.write(done.stderr.decode("utf-8", "replace"))
        if done.returncode != 0:
            raise RuntimeError(done.stderr.decode("utf-8", "replace").strip() or argv[:4])
        return done.stdout

    # ---------------------------------------------------------------- produce

    def produce(self, a: Args) -> Args:
        argv = [*self.common, "-P", "-t", a["topic"], "-z", a["compression"]]
        if a["idempotent"]:
            argv += ["-X", "enable.idempotence=true"]
        self._produce_runs(argv, a["records"])
        return {"offsets": None}

    def _produce_runs(self, base: list[str], records: list[Args]) -> None:
        def run_of(r: Args) -> tuple[Any, ...]:
            return (r["partition"], tuple(map(tuple, r["headers"])), r["value"] is None)

        for (partition, headers, null_value), group in itertools.groupby(records, run_of):
            argv = [*base, "-D", _escape(MESSAGE_DELIMITER), "-K", _escape(KEY_DELIMITER)]
            if partition is not None:
                argv += ["-p", str(partition)]
            for name, value in headers:
                raw = unb64(value)
                argv += ["-H", name if raw is None else f"{name}={raw.decode()}"]
            if null_value:
                argv.append("-Z")
            self._run(argv, b"".join(self._line(r) for r in group))

    @staticmethod
    def _line(r: Args) -> bytes:
        key, value = unb64(r["key"]), unb64(r["value"]) or b""
        if key is None and not value:
            raise ValueError("kcat cannot send a record with no key and an empty or null value")
        for part in (key or b"", value):
            if MESSAGE_DELIMITER in part or KEY_DELIMITER in part:
                raise ValueError("a key or value contains this driver's delimiter")
        body = value if key is None else key + KEY_DELIMITER + value
        return body + MESSAGE_DELIMITER

    def transaction(self, a: Args) -> Args:
        raise NotImplementedError("kcat cannot write an aborted transaction deterministically")

    # ---------------------------------------------------------------- consume

    def consume(self, a: Args) -> Args:
        argv = [*self.common, "-C", "-t", a["topic"], "-e", "-c", str(a["count"]), "-u"]
        argv += ["-X", f"isolation.level={a['isolation']}", "-f", FORMAT]
        if len(a["partitions"]) == 1:
            argv += ["-p", str(a["partitions"][0])]  # else: every partition, filtered below
        start = "beginning" if a["from_timestamp"] is None else f"s@{a['from_timestamp']}"
        done = subprocess.Popen([*argv, "-o", start], stdout=subprocess.PIPE)
        assert done.stdout is not None
        got = []
        while (record := read_record(done.stdout)) is not None:
            if record["partition"] in a["partitions"]:
                got.append(record)
        done.wait(self.timeout_s)
        return {"records": got}

    def offset_for_time(self, a: Args) -> Args:
        where = f"{a['topic']}:{a['partition']}:{a['timestamp']}"
        out = self._run([*self.common, "-Q", "-t", where]).decode()
        found = re.search(r"offset (-?\d+)", out)
        if found is None:
            raise RuntimeError(f"no offset in kcat's answer: {out!r}")
        offset = int(found.group(1))
        return {"offset": None if offset < 0 else offset}

    # ---------------------------------------------------------------- groups

    def group_join(self, a: Args) -> Args:
        argv = [*self.common, "-G", a["group"], a["topic"], "-u", "-f", FORMAT]
        for setting in (
            "auto.offset.reset=earliest",
            "heartbeat.interval.ms=100",
            "session.timeout.ms=10000",
        ):
            argv += ["-X", setting]
        self.members = [Member(argv, i) for i in range(a["members"])]
        every = self._partitions(a["topic"])
        deadline = time.monotonic() + self.timeout_s
        owned: list[list[int]] = []
        while time.monotonic() < deadline:
            owned = [m.assigned for m in self.members]
            if all(owned) and sorted(p for o in owned for p in o) == every:
                return {"assignments": owned}
            time.sleep(0.05)
        raise TimeoutError(f"group not stable: assignments {owned}")

    def _partitions(self, topic: str) -> list[int]:
        out = self._run([*self.common, "-L", "-t", topic]).decode()
        return sorted(int(p) for p in re.findall(r"partition (\d+),", out))

    def group_consume(self, a: Args) -> Args:
        got: list[Args] = []
        deadline = time.monotonic() + float(a.get("timeout_ms", self.timeout_s * 1000)) / 1000
        while len(got) < a["count"] and time.monotonic() < deadline:
            for member in self.members:
                with contextlib.suppress(queue.Empty):
                    got.append(member.records.get(timeout=0.02))
        return {"records": got}

    def group_commit(self, _: Args) -> Args:
        """kcat commits by itself, every auto.commit.interval.ms (5 s: its -X sets only the
        legacy topic-level property of that name) and at close. The close-time commit fails
        in a group of several once the first member has left (REBALANCE_IN_PROGRESS), so wait
        for a periodic one."""
        time.sleep(AUTO_COMMIT_S + 0.3)
        return {}

    def group_close(self, _: Args) -> Args:
        for member in self.members:
            member.terminate()
        for member in self.members:
            member.stop()
        self.members = []
        return {}


def close_members(driver: Driver) -> None:
    for member in driver.members:
        member.stop()


if __name__ == "__main__":
    if shutil.which("kcat") is None:
        print("kcat is not on PATH: run scripts/install-compat-clients", file=sys.stderr)
        sys.exit(2)
    driver = Driver()
    sys.exit(serve(handlers_of(driver), close=lambda: close_members(driver)))
