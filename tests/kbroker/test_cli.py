"""The `kbroker` command line: parsing, config building, and main() around a fake server."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kbroker import cli
from kbroker.cli import bootstrap_address, build_config, main
from kbroker.config import BrokerConfig, ConfigError, Listener, load_config

Ready = Callable[[list[tuple[str, int]]], None]


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """main() configures the root logger; put it back as pytest had it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_no_arguments_gives_defaults() -> None:
    config = build_config([])
    assert config.listeners == BrokerConfig().listeners
    assert not config.ephemeral and config.num_partitions == 1


def test_file_then_overrides_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "server.properties"
    path.write_text("num.partitions=3\nlisteners=PLAINTEXT://example:9000\n")
    argv = [str(path), "--override", "num.partitions=4", "--override", "listeners=PLAINTEXT://h:1"]
    config = build_config([*argv, "--port", "0"])
    assert config.num_partitions == 4
    assert config.listeners == [Listener("PLAINTEXT", "h", 0, "PLAINTEXT")]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--port", "0"], ["PLAINTEXT://localhost:0"]),
        (["--host", "127.0.0.1"], ["PLAINTEXT://127.0.0.1:9092"]),
        (["--host", "::1", "--port", "19092"], ["PLAINTEXT://[::1]:19092"]),
        (["--host", ""], ["PLAINTEXT://:9092"]),
    ],
)
def test_host_and_port_move_the_first_listener(argv: list[str], expected: list[str]) -> None:
    assert [str(x) for x in build_config(argv).listeners] == expected


def test_host_and_port_keep_other_listeners() -> None:
    config = build_config(
        [
            "--override",
            "listeners=PLAINTEXT://localhost:9092,SSL://localhost:9093",
            "--port",
            "0",
        ]
    )
    assert [str(x) for x in config.listeners] == ["PLAINTEXT://localhost:0", "SSL://localhost:9093"]


def test_ephemeral_flag() -> None:
    assert build_config(["--ephemeral"]).ephemeral
    assert build_config(["--override", "kbroker.ephemeral=true"]).ephemeral


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "70000"],
        ["--port", "x"],
        ["--log-level", "loud"],
        ["a.properties", "b.properties"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_config(argv)
    assert info.value.code == 2
    assert "kbroker: error:" in capsys.readouterr().err


def test_log_level_is_case_insensitive() -> None:
    args = cli.build_parser().parse_args(["--log-level", "debug"])
    assert args.log_level == "DEBUG"


def test_config_errors_raise_from_build_config() -> None:
    with pytest.raises(ConfigError, match=r"num\.partitions"):
        build_config(["--override", "num.partitions=zero"])


@pytest.mark.parametrize(
    ("settings", "bound", "expected"),
    [
        ([], [("127.0.0.1", 40000), ("::1", 40000)], "localhost:40000"),
        (["listeners=PLAINTEXT://:0"], [("0.0.0.0", 1234)], "localhost:1234"),
        (["listeners=PLAINTEXT://0.0.0.0:0"], [("10.1.2.3", 1234)], "10.1.2.3:1234"),
        (["listeners=PLAINTEXT://[::1]:0"], [("::1", 5555)], "[::1]:5555"),
        (
            ["listeners=PLAINTEXT://:0", "advertised.listeners=PLAINTEXT://public:19092"],
            [("0.0.0.0", 4321)],
            "public:19092",
        ),
        (
            ["listeners=PLAINTEXT://:0", "advertised.listeners=PLAINTEXT://public:0"],
            [("0.0.0.0", 4321)],
            "public:4321",
        ),
    ],
)
def test_bootstrap_address(
    settings: list[str], bound: list[tuple[str, int]], expected: str
) -> None:
    assert bootstrap_address(load_config(None, settings), bound) == expected


class FakeServer:
    """Stands in for kbroker.server.run: records the config, calls `ready`, returns 0."""

    def __init__(self, bound: list[tuple[str, int]], result: int = 0) -> None:
        self.bound = bound
        self.result = result
        self.config: BrokerConfig | None = None
        self.dirs_existed = False

    def __call__(self, config: BrokerConfig, *, ready: Ready | None = None) -> int:
        self.config = config
        self.dirs_existed = all(os.path.isdir(d) for d in config.log_dirs)
        if ready is not None:
            ready(self.bound)
            ready(self.bound)  # a second call must not print a second line
        return self.result


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    server = FakeServer([("127.0.0.1", 40000), ("::1", 40000)])
    monkeypatch.setattr(cli, "_load_server_run", lambda: server)
    return server


def test_main_prints_exactly_one_bootstrap_line(
    fake_server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["--ephemeral", "--port", "0", "--print-bootstrap", "--log-level", "ERROR"])
    assert status == 0
    assert capsys.readouterr().out == "localhost:40000\n"
    assert fake_server.config is not None and fake_server.config.ephemeral
    assert fake_server.dirs_existed
    assert not any(os.path.exists(d) for d in fake_server.config.log_dirs)


def test_main_without_print_bootstrap_prints_nothing(
    fake_server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--ephemeral"]) == 0
    assert capsys.readouterr().out == ""


def test_main_returns_the_server_status(fake_server: FakeServer) -> None:
    fake_server.result = 3
    assert main(["--ephemeral"]) == 3


def test_main_config_error_exits_2_with_one_line(
    fake_server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["--override", "log.segment.bytes=10"])
    err = capsys.readouterr().err
    assert status == 2 and fake_server.config is None
    assert err.count("\n") == 1
    assert err.startswith("kbroker: error: Invalid value 10 for configuration log.segment.bytes")
    assert "at least 1048576" in err


def test_main_missing_file_exits_2(
    fake_server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path / "missing.properties")]) == 2
    assert "cannot read config file" in capsys.readouterr().err


def test_main_interrupted_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(config: BrokerConfig, *, ready: Ready | None = None) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_load_server_run", lambda: interrupted)
    assert main(["--ephemeral", "--log-level", "ERROR"]) == 130


def test_logs_go_to_stderr_with_timestamps(
    fake_server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--ephemeral", "--override", "no.such.key=1"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = [x for x in captured.err.splitlines() if "no.such.key" in x]
    assert line[:4].isdigit() and " WARNING kbroker.config: " in line
