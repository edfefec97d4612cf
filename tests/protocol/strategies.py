"""Hypothesis strategies for any declared message at any version, derived from protocol/defs."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from hypothesis import strategies as st

from protocol.codegen.build import snake
from protocol.codegen.schema import Field, Message, Struct, load_all

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=8)
INTS = {
    "int8": st.integers(-(2**7), 2**7 - 1),
    "int16": st.integers(-(2**15), 2**15 - 1),
    "uint16": st.integers(0, 2**16 - 1),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "int64": st.integers(-(2**63), 2**63 - 1),
}
SCALARS: dict[str, st.SearchStrategy[Any]] = {
    **INTS,
    "bool": st.booleans(),
    "float64": st.floats(allow_nan=False),
    "uuid": st.uuids(),
    "string": TEXT,
    "bytes": st.binary(max_size=12),
    "records": st.binary(max_size=24),
}


@cache
def all_messages() -> dict[str, Message]:
    return {m.name: m for _, messages in load_all() for m in messages}


def message_class(message: Message, struct_name: str) -> type[Any]:
    module = importlib.import_module(f"protocol.messages.{snake(message.name)}")
    cls: type[Any] = getattr(module, struct_name)
    return cls


def _field(message: Message, f: Field, version: int, depth: int) -> st.SearchStrategy[Any]:
    if f.is_struct:
        element = _struct(message, message.structs[f.element_type], version, depth + 1)
    else:
        element = SCALARS[f.element_type]
    if f.is_array:
        element = st.lists(element, max_size=3 if depth < 3 else 1)
    if version in f.nullable:
        element = st.none() | element
    return element


def _unknown_tags() -> st.SearchStrategy[dict[int, bytes] | None]:
    # tags far above any Kafka declares, so they never collide with a known one
    return st.none() | st.dictionaries(
        st.integers(1000, 1005), st.binary(max_size=4), min_size=1, max_size=2
    )


def _struct(message: Message, struct: Struct, version: int, depth: int) -> st.SearchStrategy[Any]:
    cls = message_class(message, struct.name)
    kwargs = {
        f.name + ("_" if f.name in ("from",) else ""): _field(message, f, version, depth)
        for f in struct.fields
        if version in f.versions
    }
    if message.is_flexible(version):
        kwargs["unknown_tagged_fields"] = _unknown_tags()
    return st.builds(cls, **kwargs)


def message_strategy(message: Message, version: int) -> st.SearchStrategy[Any]:
    """Objects valid at `version`: fields absent from it keep their defaults."""
    return _struct(message, Struct(message.name, message.fields), version, 0)
