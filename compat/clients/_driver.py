"""The loop every Python driver runs: read a JSON request per line, call its handler, write the
reply. Handlers take the request's arguments and return the result (a dict) or raise; the
driver's `error_code` names the client's error (e.g. "MSG_SIZE_TOO_LARGE") when it can."""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from compat.session import b64, unb64

Handler = Callable[[dict[str, Any]], dict[str, Any] | None]
__all__ = [
    "AsyncHandler",
    "Handler",
    "b64",
    "handlers_of",
    "record_out",
    "serve",
    "serve_async",
    "unb64",
]


def handlers_of(driver: object) -> dict[str, Any]:
    """A driver object's public methods, by name: its ops."""
    return {
        name: getattr(driver, name)
        for name in dir(driver)
        if not name.startswith("_") and callable(getattr(driver, name))
    }


def record_out(
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]] | None,
    timestamp: int,
    **extra: Any,
) -> dict[str, Any]:
    """A consumed record in the protocol's JSON shape."""
    return {
        "partition": partition,
        "offset": offset,
        "key": b64(key),
        "value": b64(value),
        "headers": [[k, b64(v)] for k, v in headers or []],
        "timestamp": timestamp,
        **extra,
    }


def serve(
    handlers: dict[str, Handler],
    error_code: Callable[[BaseException], str | None] = lambda _: None,
    close: Callable[[], None] = lambda: None,
    stdin: TextIO | None = None,
) -> int:
    """Serve requests until `exit` or EOF. Protocol lines go to the real stdout only; anything a
    library prints goes to stderr."""
    out = sys.stdout
    sys.stdout = sys.stderr
    for line in stdin or sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        if op == "exit":
            close()
            out.write(json.dumps({"ok": True}) + "\n")
            out.flush()
            return 0
        try:
            handler = handlers.get(op)
            if handler is None:
                raise NotImplementedError(f"this driver has no op {op!r}")
            reply: dict[str, Any] = {"ok": True, "result": handler(request) or {}}
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            text = str(exc) or type(exc).__name__
            reply = {"ok": False, "error": f"{type(exc).__name__}: {text}", "code": error_code(exc)}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    close()
    return 0


AsyncHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


async def serve_async(
    handlers: dict[str, AsyncHandler],
    error_code: Callable[[BaseException], str | None] = lambda _: None,
    close: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """`serve` for asyncio clients: stdin is read on a thread, so the loop (and the clients'
    heartbeats and fetchers on it) keeps running between requests."""
    loop = asyncio.get_running_loop()
    out = sys.stdout
    sys.stdout = sys.stderr
    asked_to_exit = False
    while not asked_to_exit:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        request = json.loads(line)
        op = request.pop("op")
        if op == "exit":
            asked_to_exit = True
            continue
        try:
            handler = handlers.get(op)
            if handler is None:
                raise NotImplementedError(f"this driver has no op {op!r}")
            reply: dict[str, Any] = {"ok": True, "result": await handler(request) or {}}
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            text = str(exc) or type(exc).__name__
            reply = {"ok": False, "error": f"{type(exc).__name__}: {text}", "code": error_code(exc)}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    if close is not None:
        await close()
    if asked_to_exit:
        out.write(json.dumps({"ok": True}) + "\n")
        out.flush()
    return 0
