"""decode(encode(x)) == x and encode(decode(b)) == b for every message at every version."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.api_keys import API_SPECS
from tests.protocol.strategies import all_messages, message_class, message_strategy

CASES = [
    (name, version)
    for name, message in sorted(all_messages().items())
    for version in message.all_versions()
]


def test_cases_cover_every_message_version() -> None:
    api_versions = sum(2 * (s.max_version - s.min_version + 1) for s in API_SPECS.values())
    kinds = {m.kind for m in all_messages().values()}
    assert kinds == {"request", "response", "header", "data"}
    api_cases = [c for c in CASES if all_messages()[c[0]].kind in ("request", "response")]
    assert len(api_cases) == api_versions


@pytest.mark.parametrize(("name", "version"), CASES, ids=[f"{n}-v{v}" for n, v in CASES])
@settings(
    max_examples=8,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_roundtrip(name: str, version: int, data: st.DataObject) -> None:
    message = all_messages()[name]
    obj: Any = data.draw(message_strategy(message, version))
    encoded = obj.encode(version)
    cls = message_class(message, message.name)
    decoded = cls.decode(encoded, version)
    assert decoded == obj
    assert decoded.encode(version) == encoded
