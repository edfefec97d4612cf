"""Write protocol/messages/*.py and protocol/api_keys.py from the declarations.

`python -m protocol.codegen` regenerates; `--check` exits 1 if any generated file differs from
what is checked in (the test suite runs it, so a declaration change without regeneration fails).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from protocol.codegen.pygen import HEADER, generate_module
from protocol.codegen.schema import Message, load_all

PROTOCOL_DIR = Path(__file__).resolve().parent.parent
MESSAGES_DIR = PROTOCOL_DIR / "messages"


def snake(name: str) -> str:
    name = name.replace("KRaft", "Kraft")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def enum_name(api_name: str) -> str:
    return snake(api_name).upper()


def _api_keys_module(apis: dict[int, dict[str, Message]]) -> str:
    lines = [
        HEADER,
        '"""Every API key of the Kafka protocol, and the versions each one is declared with."""',
        "",
        "from __future__ import annotations",
        "",
        "import enum",
        "from typing import NamedTuple",
        "",
        "",
        "class ApiKey(enum.IntEnum):",
    ]
    for key, pair in sorted(apis.items()):
        lines.append(f"    {enum_name(pair['request'].name[: -len('Request')])} = {key}")
    lines += [
        "",
        "",
        "class ApiSpec(NamedTuple):",
        '    """What the declarations say of one API (both messages share these)."""',
        "",
        "    key: ApiKey",
        "    name: str",
        "    min_version: int",
        "    max_version: int",
        "    flexible_from: int | None  # first flexible version, None if never flexible",
        "    unstable_max: bool  # Kafka hides the top version unless unstable APIs are enabled",
        "    listeners: tuple[str, ...]",
        "    request_module: str",
        "    request_class: str",
        "    response_module: str",
        "    response_class: str",
        "",
        "",
        "API_SPECS: dict[int, ApiSpec] = {",
    ]
    for _, pair in sorted(apis.items()):
        req, resp = pair["request"], pair["response"]
        api = req.name[: -len("Request")]
        if (req.versions, req.flexible) != (resp.versions, resp.flexible):
            raise ValueError(f"{api}: request and response versions differ")
        lines.append(
            f"    ApiKey.{enum_name(api)}: ApiSpec(ApiKey.{enum_name(api)}, {api!r}, "
            f"{req.min_version}, {req.max_version}, {req.flexible.low}, {req.unstable}, "
            f"{req.listeners!r}, {snake(req.name)!r}, {req.name!r}, "
            f"{snake(resp.name)!r}, {resp.name!r}),"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _messages_init(names: list[str]) -> str:
    return (
        HEADER
        + '"""Generated message classes, one module per message (import the module you need)."""\n'
        + "\nMODULES = (\n"
        + "".join(f"    {n!r},\n" for n in names)
        + ")\n"
    )


def generated_files() -> dict[Path, str]:
    """Every generated file and its content."""
    files: dict[Path, str] = {}
    apis: dict[int, dict[str, Message]] = {}
    for _, messages in load_all():
        for message in messages:
            files[MESSAGES_DIR / f"{snake(message.name)}.py"] = generate_module(message)
            if message.api_key is not None:
                apis.setdefault(message.api_key, {})[message.kind] = message
    names = sorted(path.stem for path in files)
    files[MESSAGES_DIR / "__init__.py"] = _messages_init(names)
    files[PROTOCOL_DIR / "api_keys.py"] = _api_keys_module(apis)
    return files


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    files = generated_files()
    stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    extra = [
        p for p in MESSAGES_DIR.glob("*.py") if p not in files and p.read_text().startswith(HEADER)
    ]
    if check:
        for path in stale + extra:
            print(f"out of date: {path.relative_to(PROTOCOL_DIR.parent)}")
        if stale or extra:
            print("run: python -m protocol.codegen")
        return 1 if stale or extra else 0
    MESSAGES_DIR.mkdir(exist_ok=True)
    for path in stale:
        path.write_text(files[path])
    for path in extra:
        path.unlink()
    print(f"{len(files)} generated files, {len(stale)} written, {len(extra)} removed")
    return 0
