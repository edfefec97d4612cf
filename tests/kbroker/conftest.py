"""Fixtures: one in-process broker per test session, and a fresh topic per test."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from kbroker.testing import Broker

_names = itertools.count()


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    with Broker() as b:
        yield b


@pytest.fixture
def new_topic(broker: Broker) -> Callable[..., str]:
    """Create a topic with a unique name through the broker itself."""

    def create(partitions: int = 1, configs: dict[str, str] | None = None) -> str:
        name = f"t{next(_names)}"
        future = broker.run(lambda b: b.create_topic(name, partitions, configs or {}))
        future.result(10)
        return name

    return create
