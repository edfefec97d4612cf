"""Our codecs against kafka-python's, an independent implementation, byte for byte.

kafka-python (3.x) builds each request and response class at import time from Apache Kafka's
JSON message schemas (`kafka.protocol.api_message.ApiMessage`, fields parsed by
`kafka.protocol.schemas.fields`) and encodes an instance with `obj.encode(version=v)`. Our
classes are generated from our own declarations. For every message kafka-python knows and
every version both sides define, the tests build the same value in both implementations,
walking our declaration and kafka-python's schema side by side, and assert:

- both encode it to identical bytes, and our decoder reads kafka-python's bytes back to the
  value we built;
- the same for Hypothesis-drawn values (nulls, empty and longer arrays, edge integers, tagged
  fields present or absent);
- both declare the same field names per version, and the same defaults for tagged fields
  (a tagged field equal to its default is not sent, so its default is part of the wire).

kafka-python renames a few fields (its `json_patch` hooks, e.g. Metadata's
`cluster_authorized_operations` becomes `authorized_operations`, an int32 bit field it holds as
a set of bit numbers); `KP_RENAMES` and `to_bitfield` undo that.

kafka-python also still ships its older hand-written classes (`kafka.protocol.old`, one class
per version with a positional schema), which reach versions Kafka 4's schemas dropped (Produce
v0-2, Fetch v0-3, ...): the second half of this module compares against those the same way.
Coverage: 104 JSON-built classes in 478 (message, version) pairs, and 270 hand-written ones;
together 519 distinct (API, request or response, version) triples over 52 APIs.
"""

from __future__ import annotations

import importlib
import pkgutil
import random
import sys
import uuid
from collections.abc import Iterator
from functools import cache
from types import ModuleType
from typing import Any

# kafka-python 3.0 reads its schemas with importlib.resources.read_text, deprecated in 3.11.
import kafka.protocol
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.protocol.api_message import ApiMessage as KpMessage
from kafka.protocol.old import types as old_types
from kafka.protocol.old.api import Request as OldRequest
from kafka.protocol.old.api import Response as OldResponse
from kafka.protocol.schemas.fields.codecs.types import BitField

from protocol._codec import ApiMessage
from protocol.codegen.schema import Field, Message, load_all
from protocol.frames import request_class, response_class

KP_RENAMES = {
    "cluster_authorized_operations": "authorized_operations",
    "topic_authorized_operations": "authorized_operations",
}
INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
ALPHABET = "az-_.é中"  # one- to three-byte UTF-8, so byte lengths differ from char lengths


def kp_message_classes() -> list[Any]:
    """Every request and response class kafka-python builds from a JSON schema."""
    for info in pkgutil.walk_packages(kafka.protocol.__path__, "kafka.protocol."):
        if ".old" not in info.name and "generate_stubs" not in info.name:
            importlib.import_module(info.name)
    found: dict[str, Any] = {}
    stack = list(KpMessage.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls._class_version is None and getattr(cls, "_json", None) is not None:
            found[cls.__name__] = cls
    return sorted(found.values(), key=lambda c: (c.API_KEY, c.type))


@cache
def declarations() -> dict[str, Message]:
    return {message.name: message for _, messages in load_all() for message in messages}


def ours_for(kp_cls: Any) -> type[ApiMessage]:
    key = kp_cls.API_KEY
    return request_class(key) if kp_cls.is_request() else response_class(key)


def cases() -> Iterator[Any]:
    for kp_cls in kp_message_classes():
        ours = ours_for(kp_cls)
        low, high = kp_cls.valid_versions
        for version in range(max(low, ours.MIN_VERSION), min(high, ours.MAX_VERSION) + 1):
            yield pytest.param(kp_cls, version, id=f"{kp_cls.__name__}-v{version}")


CASES = list(cases())


def to_bitfield(value: int) -> set[int] | None:
    bits: set[int] = BitField.from_32_bit_field(value & 0xFFFFFFFF)
    return None if bits == {31} else bits


class Builder:
    """Builds one value as (ours, kafka-python's) from our declaration and kafka-python's schema.

    `mode` "full": every field present with a non-default value, nullable fields not null,
    arrays of two elements. "nulls": nullable fields null, arrays of one element. "random":
    anything, drawn from `rng`.
    """

    def __init__(self, rng: random.Random, mode: str) -> None:
        self.rng = rng
        self.mode = mode

    def message(self, kp_cls: Any, version: int) -> tuple[ApiMessage, Any]:
        ours_cls = ours_for(kp_cls)
        decl = declarations()[ours_cls.NAME]
        module = sys.modules[ours_cls.__module__]
        ours, theirs = self.fields(decl, decl.fields, kp_cls._struct, ours_cls, module, version)
        return ours_cls(**ours), kp_cls(version=version, **theirs)

    def fields(
        self,
        decl: Message,
        fields: list[Field],
        kp_struct: Any,
        ours_cls: type[Any],
        module: ModuleType,
        version: int,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        defaults = ours_cls()
        ours: dict[str, Any] = {}
        theirs: dict[str, Any] = {}
        for fld in fields:
            if version not in fld.versions:
                continue
            kp_name = fld.name if fld.name in kp_struct.fields else KP_RENAMES[fld.name]
            kp_field = kp_struct.fields[kp_name]
            default = getattr(defaults, fld.name)
            mine, kps = self.value(decl, fld, kp_field, module, version, default)
            ours[fld.name] = mine
            # kafka-python sends a tagged field when it differs from kafka-python's default;
            # we (and Kafka) when it differs from ours: leave an absent one out of its kwargs.
            if not (version in fld.tagged and mine == default):
                theirs[kp_name] = kps
        return ours, theirs

    def value(
        self,
        decl: Message,
        fld: Field,
        kp_field: Any,
        module: ModuleType,
        version: int,
        default: Any,
    ) -> tuple[Any, Any]:
        if version in fld.nullable and self.null():
            return None, None
        if not fld.is_array:
            return self.element(decl, fld, kp_field, module, version, default)
        pairs = [
            self.element(decl, fld, kp_field, module, version, None) for _ in range(self.length())
        ]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def element(
        self,
        decl: Message,
        fld: Field,
        kp_field: Any,
        module: ModuleType,
        version: int,
        default: Any,
    ) -> tuple[Any, Any]:
        if fld.is_struct:
            ours_cls = getattr(module, fld.element_type)
            fields = decl.structs[fld.element_type].fields
            ours, theirs = self.fields(decl, fields, kp_field, ours_cls, module, version)
            return ours_cls(**ours), kp_field.data_class(version=version, **theirs)
        value = self.scalar(fld, default)
        if getattr(kp_field, "_type_str", None) == "bitfield":
            return value, to_bitfield(value)
        return value, value

    def null(self) -> bool:
        if self.mode == "random":
            return self.rng.random() < 0.25
        return self.mode == "nulls"

    def length(self) -> int:
        if self.mode == "random":
            return self.rng.choice([0, 0, 1, 2, 3])
        return 2 if self.mode == "full" else 1

    def scalar(self, fld: Field, default: Any) -> Any:
        """A value of a scalar type; in "full" mode never the field's default."""
        for _ in range(100):
            value = self.draw(fld.element_type)
            if self.mode == "random" or value != default:
                return value
        raise AssertionError(f"no non-default value for {fld.name}")

    def draw(self, kind: str) -> Any:
        rng = self.rng
        if kind in INT_RANGES:
            low, high = INT_RANGES[kind]
            return rng.choice([low, high, 0, -1 if low else 1, rng.randint(low, high)])
        if kind == "bool":
            return rng.random() < 0.5
        if kind == "float64":
            return rng.choice([0.0, -1.5, rng.uniform(-1e9, 1e9)])
        if kind == "uuid":
            return uuid.UUID(int=rng.getrandbits(128))
        if kind == "string":
            return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 6)))
        assert kind in ("bytes", "records"), kind
        return rng.randbytes(rng.randint(0, 6))


def kp_default(kp_field: Any) -> Any:
    """kafka-python's default for a field, as our classes hold it."""
    default = kp_field.default
    if getattr(kp_field, "_type_str", None) == "bitfield" and default is None:
        return -(2**31)
    if getattr(kp_field, "_type_str", None) == "uuid" and default is None:
        return uuid.UUID(int=0)
    return default


def check(kp_cls: Any, version: int, builder: Builder) -> None:
    ours, theirs = builder.message(kp_cls, version)
    expected = theirs.encode(version=version)
    assert ours.encode(version) == expected
    decoded = type(ours).decode(expected, version)
    assert decoded == ours


@pytest.mark.parametrize(("kp_cls", "version"), CASES)
@pytest.mark.parametrize("mode", ["full", "nulls"])
def test_same_bytes_as_kafka_python(kp_cls: Any, version: int, mode: str) -> None:
    check(kp_cls, version, Builder(random.Random(f"{kp_cls.__name__}{version}{mode}"), mode))


@pytest.mark.parametrize(("kp_cls", "version"), CASES)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False))
def test_same_bytes_as_kafka_python_for_drawn_values(
    kp_cls: Any, version: int, rng: random.Random
) -> None:
    check(kp_cls, version, Builder(rng, "random"))


def kp_name(fld: Field, kp_struct: Any) -> str:
    return fld.name if fld.name in kp_struct.fields else KP_RENAMES.get(fld.name, fld.name)


def field_report(
    decl: Message, fields: list[Field], ours_cls: type[Any], kp_struct: Any, version: int
) -> list[str]:
    """Differences of names and tagged defaults between one struct in both, recursively."""
    problems: list[str] = []
    module = sys.modules[ours_cls.__module__]
    defaults = ours_cls()
    kp_names = {name for name, f in kp_struct.fields.items() if f.for_version_q(version)}
    ours = [f for f in fields if version in f.versions]
    mapped = {kp_name(f, kp_struct) for f in ours}
    if mapped != kp_names:
        problems.append(
            f"ours only {sorted(mapped - kp_names)}, theirs {sorted(kp_names - mapped)}"
        )
    for fld in ours:
        kp_field = kp_struct.fields.get(kp_name(fld, kp_struct))
        if kp_field is None:
            continue
        tagged_scalar = version in fld.tagged and not fld.is_struct
        if tagged_scalar and getattr(defaults, fld.name) != kp_default(kp_field):
            theirs = kp_default(kp_field)
            problems.append(f"{fld.name}: default {getattr(defaults, fld.name)!r} vs {theirs!r}")
        if fld.is_struct:
            nested = decl.structs[fld.element_type].fields
            nested_cls = getattr(module, fld.element_type)
            found = field_report(decl, nested, nested_cls, kp_field, version)
            problems += [f"{fld.name}.{p}" for p in found]
    return problems


@pytest.mark.parametrize(("kp_cls", "version"), CASES)
def test_same_fields_as_kafka_python(kp_cls: Any, version: int) -> None:
    ours_cls = ours_for(kp_cls)
    decl = declarations()[ours_cls.NAME]
    assert field_report(decl, decl.fields, ours_cls, kp_cls._struct, version) == []


def test_coverage() -> None:
    """Every (message, version) kafka-python knows and we declare is compared."""
    classes = kp_message_classes()
    assert len(classes) >= 104 and len(CASES) >= 478
    covered = {(c.values[0].__name__, c.values[1]) for c in CASES}
    for kp_cls in classes:
        low, high = kp_cls.valid_versions
        ours = ours_for(kp_cls)
        assert low >= ours.MIN_VERSION and high <= ours.MAX_VERSION, kp_cls.__name__
        assert all((kp_cls.__name__, v) in covered for v in range(low, high + 1))
    assert len(old_message_classes()) == len(OLD_CASES) + len(OLD_BUGS) >= 273


# --- kafka-python's hand-written classes (kafka.protocol.old) --------------------------------
#
# Before 3.0 kafka-python declared one class per API version by hand (`ProduceRequest_v2`),
# each with a positional `SCHEMA`; they still ship, and reach versions the JSON schemas no
# longer list (Kafka 4 dropped Produce v0-2, Fetch v0-3, ...). Their field names are not
# always Kafka's, so fields are matched by position: our untagged fields of the version, in
# declaration order, against the schema's, and their kinds must agree.

OLD_KINDS: dict[Any, str] = {
    old_types.Int8: "int8",
    old_types.Int16: "int16",
    old_types.Int32: "int32",
    old_types.Int64: "int64",
    old_types.Float64: "float64",
    old_types.UUID: "uuid",
    old_types.Bytes: "bytes",
    old_types.CompactBytes: "bytes",
    old_types.Boolean: "bool",
    old_types.BitField: "int32",
}


def old_message_classes() -> list[Any]:
    """Every hand-written request and response class, once per (API, kind, version)."""
    for info in pkgutil.iter_modules(kafka.protocol.old.__path__):
        importlib.import_module(f"kafka.protocol.old.{info.name}")
    found: dict[tuple[int, bool, int], Any] = {}
    stack = [*OldRequest.__subclasses__(), *OldResponse.__subclasses__()]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        version = getattr(cls, "API_VERSION", None)
        if isinstance(version, int) and cls.__name__.endswith(f"_v{version}"):
            found[(cls.API_KEY, issubclass(cls, OldRequest), version)] = cls
    return [found[key] for key in sorted(found)]


def old_ours_for(old_cls: Any) -> type[ApiMessage]:
    key = old_cls.API_KEY
    return request_class(key) if issubclass(old_cls, OldRequest) else response_class(key)


# Hand-written classes that disagree with Kafka itself (the JSON-built classes get them right):
# tested below to still be wrong, so that a kafka-python fix shows up here.
OLD_BUGS = {
    "DescribeAclsRequest_v2": "reuses the v1 schema: no compact strings, no tagged fields",
    "DescribeAclsResponse_v2": "reuses the v1 schema: no compact strings, no tagged fields",
    "DescribeLogDirsRequest_v0": "declares partitions as one int32, Kafka as []int32",
}
OLD_CASES = [
    pytest.param(cls, cls.API_VERSION, id=cls.__name__)
    for cls in old_message_classes()
    if cls.API_VERSION <= old_ours_for(cls).MAX_VERSION and cls.__name__ not in OLD_BUGS
]


def old_kind(typ: Any) -> str:
    if isinstance(typ, old_types.Array):
        return "array"
    if isinstance(typ, old_types.Schema):
        return "struct"
    if isinstance(typ, old_types.String):
        return "string"
    return OLD_KINDS[typ]


def our_kind(fld: Field) -> str:
    if fld.is_array:
        return "array"
    return "struct" if fld.is_struct else scalar_kind(fld.type)


def scalar_kind(type_name: str) -> str:
    return "bytes" if type_name == "records" else type_name


def leaves(schema: Any) -> list[tuple[str, Any]]:
    """The schema's fields with nested (non-array) schemas inlined: the same bytes on the wire."""
    out: list[tuple[str, Any]] = []
    for name, typ in zip(schema.names, schema.fields, strict=True):
        if isinstance(typ, old_types.Schema):
            out += leaves(typ)
        elif typ is not old_types.TaggedFields:
            out.append((name, typ))
    return out


def nest(schema: Any, values: Iterator[Any]) -> tuple[Any, ...]:
    """Inverse of `leaves`: the flat values regrouped as the schema's nested tuples."""
    return tuple(
        nest(typ, values) if isinstance(typ, old_types.Schema) else next(values)
        for typ in schema.fields
        if typ is not old_types.TaggedFields
    )


def old_fields(
    b: Builder, decl: Message, fields: list[Field], ours_cls: type[Any], schema: Any, version: int
) -> tuple[dict[str, Any], tuple[Any, ...]]:
    mine = [f for f in fields if version in f.versions and version not in f.tagged]
    slots = leaves(schema)
    ours_shape = [(f.name, our_kind(f)) for f in mine]
    assert [k for _, k in ours_shape] == [old_kind(t) for _, t in slots], (ours_shape, slots)
    defaults = ours_cls()
    ours: dict[str, Any] = {}
    theirs: list[Any] = []
    for fld, (_, typ) in zip(mine, slots, strict=True):
        mine_value, their_value = old_value(b, decl, fld, typ, ours_cls, version, defaults)
        ours[fld.name] = mine_value
        theirs.append(their_value)
    return ours, nest(schema, iter(theirs))


def old_value(
    b: Builder,
    decl: Message,
    fld: Field,
    typ: Any,
    ours_cls: type[Any],
    version: int,
    defaults: Any,
) -> tuple[Any, Any]:
    if version in fld.nullable and b.null():
        return None, None
    if not fld.is_array:
        return old_element(b, decl, fld, typ, ours_cls, version, getattr(defaults, fld.name))
    pairs = [
        old_element(b, decl, fld, typ.array_of, ours_cls, version, None) for _ in range(b.length())
    ]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def old_element(
    b: Builder, decl: Message, fld: Field, typ: Any, ours_cls: type[Any], version: int, default: Any
) -> tuple[Any, Any]:
    if not fld.is_struct:
        assert scalar_kind(fld.element_type) == old_kind(typ), (fld.name, typ)
        value = b.scalar(fld, default)
        return value, (to_bitfield(value) if typ is old_types.BitField else value)
    nested_cls = getattr(sys.modules[ours_cls.__module__], fld.element_type)
    nested = decl.structs[fld.element_type].fields
    if isinstance(typ, old_types.Schema):
        ours, theirs = old_fields(b, decl, nested, nested_cls, typ, version)
        return nested_cls(**ours), theirs
    # A struct of one field, where kafka-python has the bare field (Metadata's topic names,
    # CreatePartitions' broker id lists): the same bytes in a non-flexible version.
    (only,) = [f for f in nested if version in f.versions]
    assert version not in decl.flexible, fld.name
    mine, their = old_value(b, decl, only, typ, nested_cls, version, nested_cls())
    return nested_cls(**{only.name: mine}), their


def old_check(old_cls: Any, version: int, b: Builder) -> None:
    ours_cls = old_ours_for(old_cls)
    decl = declarations()[ours_cls.NAME]
    ours, theirs = old_fields(b, decl, decl.fields, ours_cls, old_cls.SCHEMA, version)
    expected = old_cls(*theirs).encode()
    mine = ours_cls(**ours)
    assert mine.encode(version) == expected
    assert ours_cls.decode(expected, version) == mine


@pytest.mark.parametrize(("old_cls", "version"), OLD_CASES)
@pytest.mark.parametrize("mode", ["full", "nulls"])
def test_same_bytes_as_hand_written_classes(old_cls: Any, version: int, mode: str) -> None:
    old_check(old_cls, version, Builder(random.Random(f"{old_cls.__name__}{mode}"), mode))


@pytest.mark.parametrize(("old_cls", "version"), OLD_CASES)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False))
def test_same_bytes_as_hand_written_classes_for_drawn_values(
    old_cls: Any, version: int, rng: random.Random
) -> None:
    old_check(old_cls, version, Builder(rng, "random"))


@pytest.mark.parametrize("name", sorted(OLD_BUGS))
def test_known_bugs_of_hand_written_classes_are_still_there(name: str) -> None:
    (old_cls,) = [cls for cls in old_message_classes() if cls.__name__ == name]
    with pytest.raises(AssertionError):
        old_check(old_cls, old_cls.API_VERSION, Builder(random.Random(name), "full"))
