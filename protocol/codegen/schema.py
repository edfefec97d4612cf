"""Parser for kbroker's message declarations (`protocol/defs/*.kdef`).

The format is described in `protocol/defs/README.md`. One file holds one API (its request and
response) or one data type; every line of a message body declares one field, nested by
indentation:

    request ProduceRequest key 0 versions 0-13 flexible 9+ listeners broker
      transactional_id string 3+ nullable 3+ default null
      topic_data []TopicProduceData 0+
        name string 0-12

The parser only reads text; `protocol.codegen.pygen` turns the result into Python and the tests
use it to build Hypothesis strategies. Nothing here runs when the broker serves requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DEFS_DIR = Path(__file__).resolve().parent.parent / "defs"

SCALARS = frozenset(
    {"bool", "int8", "int16", "uint16", "int32", "int64", "float64", "uuid"}
    | {"string", "bytes", "records"}
)
FIXED_SIZE = {"bool": 1, "int8": 1, "int16": 2, "uint16": 2, "int32": 4, "int64": 8, "float64": 8}


class SchemaError(Exception):
    """A declaration file that does not follow the format (names the file and line)."""


@dataclass(frozen=True)
class VersionRange:
    """An inclusive range of versions; `high` None means open-ended (`N+`); empty if `low` None."""

    low: int | None
    high: int | None

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        if text == "none":
            return cls(None, None)
        if text.endswith("+"):
            return cls(int(text[:-1]), None)
        if "-" in text:
            low, high = text.split("-")
            return cls(int(low), int(high))
        return cls(int(text), int(text))

    def __contains__(self, version: object) -> bool:
        if self.low is None or not isinstance(version, int):
            return False
        return self.low <= version and (self.high is None or version <= self.high)

    def __str__(self) -> str:
        if self.low is None:
            return "none"
        if self.high is None:
            return f"{self.low}+"
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


NONE = VersionRange(None, None)


@dataclass
class Field:
    """One field: its wire type, when it exists, when it may be null, when it is tagged."""

    name: str
    type: str  # scalar name, struct name, or "[]" + either
    versions: VersionRange
    nullable: VersionRange = NONE
    tag: int | None = None
    tagged: VersionRange = NONE
    default: str | None = None  # literal as declared: null, true, -1, "text"
    flexible: VersionRange | None = None  # per-field override (only RequestHeader.client_id)
    fields: list[Field] | None = None  # inline struct declaration

    @property
    def is_array(self) -> bool:
        return self.type.startswith("[]")

    @property
    def element_type(self) -> str:
        return self.type[2:] if self.is_array else self.type

    @property
    def is_struct(self) -> bool:
        return self.element_type not in SCALARS


@dataclass
class Struct:
    name: str
    fields: list[Field]


@dataclass
class Message:
    """A request, response, header or data type, with all the structs it declares."""

    kind: str  # request | response | header | data
    name: str
    api_key: int | None
    versions: VersionRange
    flexible: VersionRange
    unstable: bool = False
    listeners: tuple[str, ...] = ()
    fields: list[Field] = field(default_factory=list)
    structs: dict[str, Struct] = field(default_factory=dict)  # every struct, inline or common
    source: str = ""

    @property
    def min_version(self) -> int:
        assert self.versions.low is not None
        return self.versions.low

    @property
    def max_version(self) -> int:
        assert self.versions.high is not None
        return self.versions.high

    def all_versions(self) -> range:
        return range(self.min_version, self.max_version + 1)

    def is_flexible(self, version: int) -> bool:
        return version in self.flexible


def _parse_field(tokens: list[str], where: str) -> Field:
    if len(tokens) < 3:
        raise SchemaError(f"{where}: a field needs a name, a type and versions")
    fld = Field(tokens[0], tokens[1], VersionRange.parse(tokens[2]))
    i = 3
    while i < len(tokens):
        word = tokens[i]
        if word == "nullable":
            fld.nullable = VersionRange.parse(tokens[i + 1])
            i += 2
        elif word == "tag":
            fld.tag, fld.tagged = int(tokens[i + 1]), VersionRange.parse(tokens[i + 2])
            i += 3
        elif word == "default":
            fld.default = tokens[i + 1]
            i += 2
        elif word == "flexible":
            fld.flexible = VersionRange.parse(tokens[i + 1])
            i += 2
        else:
            raise SchemaError(f"{where}: unknown field attribute {word!r}")
    return fld


def _parse_header(tokens: list[str], where: str) -> Message:
    kind, name = tokens[0], tokens[1]
    attrs: dict[str, str] = {}
    flags: set[str] = set()
    i = 2
    while i < len(tokens):
        if tokens[i] == "unstable":
            flags.add("unstable")
            i += 1
        else:
            attrs[tokens[i]] = tokens[i + 1]
            i += 2
    if kind not in ("request", "response", "header", "data"):
        raise SchemaError(f"{where}: unknown declaration kind {kind!r}")
    versions = VersionRange.parse(attrs["versions"])
    if versions.high is None:
        raise SchemaError(f"{where}: message versions must be a closed range")
    return Message(
        kind=kind,
        name=name,
        api_key=int(attrs["key"]) if "key" in attrs else None,
        versions=versions,
        flexible=VersionRange.parse(attrs.get("flexible", "none")),
        unstable="unstable" in flags,
        listeners=tuple(attrs["listeners"].split(",")) if "listeners" in attrs else (),
        source=where,
    )


def _tokenize(line: str) -> list[str]:
    """Split on spaces, keeping a JSON string literal (which may hold spaces) as one token."""
    head, quote, rest = line.partition('"')
    tokens = head.split()
    if quote:
        literal = json.loads('"' + rest[: rest.rindex('"') + 1])
        tokens.append(json.dumps(literal))
        tokens.extend(rest[rest.rindex('"') + 1 :].split())
    return tokens


def parse_text(text: str, source: str = "<text>") -> list[Message]:
    """Parse one declaration file into its messages."""
    messages: list[Message] = []
    # stack of (indent, children list) for nesting fields under their struct field
    stack: list[tuple[int, list[Field]]] = []
    current: Message | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        where = f"{source}:{lineno}"
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        tokens = _tokenize(raw.strip())
        if indent == 0:
            current = _parse_header(tokens, where)
            messages.append(current)
            stack = [(0, current.fields)]
            continue
        if current is None:
            raise SchemaError(f"{where}: a field before any message")
        while stack and indent <= stack[-1][0] and len(stack) > 1:
            stack.pop()
        if tokens[0] == "struct":
            # a common struct; a field above may already have named it (forward reference)
            struct = current.structs.setdefault(tokens[1], Struct(tokens[1], []))
            stack.append((indent, struct.fields))
            continue
        fld = _parse_field(tokens, where)
        stack[-1][1].append(fld)
        if fld.is_struct:
            struct = current.structs.setdefault(fld.element_type, Struct(fld.element_type, []))
            if not struct.fields:  # declared inline below this line (or a common struct later)
                fld.fields = struct.fields
                stack.append((indent, fld.fields))
    return messages


def _check(message: Message) -> None:
    def walk(fields: list[Field]) -> None:
        for fld in fields:
            if fld.is_struct and fld.element_type not in message.structs:
                raise SchemaError(f"{message.source}: {fld.name}: unknown struct {fld.type}")
            if fld.fields:
                walk(fld.fields)

    walk(message.fields)
    for struct in message.structs.values():
        walk(struct.fields)


def load_file(path: Path) -> list[Message]:
    messages = parse_text(path.read_text(encoding="utf-8"), str(path.relative_to(DEFS_DIR)))
    for message in messages:
        _check(message)
    return messages


def definition_files(root: Path = DEFS_DIR) -> list[Path]:
    return sorted(root.rglob("*.kdef"))


def load_all(root: Path = DEFS_DIR) -> Iterator[tuple[Path, list[Message]]]:
    for path in definition_files(root):
        yield path, load_file(path)
