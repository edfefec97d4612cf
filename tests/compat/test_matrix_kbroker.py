"""CI runs the whole matrix against kbroker, as `python -m compat --kbroker`: it must exit 0,
and what it reports must be what kbroker is (so a harness bug cannot turn every cell grey)."""

from __future__ import annotations

import pytest

from compat import render
from compat.registry import CLIENTS
from compat.scenarios import SCENARIOS
from tests.compat.conftest import REPO, Run, run_compat

pytestmark = [pytest.mark.clients, pytest.mark.slow, pytest.mark.timeout(600)]

# The versions pinned by pyproject.toml, package-lock.json and Debian bookworm.
PINNED = {
    "confluent-kafka": "confluent-kafka 2.16.1 (librdkafka 2.16.0)",
    "kafka-python": "kafka-python 3.0.12",
    "aiokafka": "aiokafka 0.14.0",
    "kcat": "kcat 1.7.1 (librdkafka 2.0.2)",
    "kafkajs": "kafkajs 2.2.4 (kafkajs-snappy 1.1.0, lz4js 0.2.0, @bokuweb/zstd-wasm 0.0.27)",
    "sarama": "sarama 1.22.1-1 (Debian's)",
}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_compat(tmp_path_factory.mktemp("compat"), "--kbroker")


def test_every_cell_passes_or_is_honestly_grey(matrix: Run) -> None:
    report = matrix.report
    failed = [(c["scenario"], c["client"], c["detail"]) for c in report["cells"]
              if c["status"] == "fail"]  # fmt: skip
    assert failed == [], matrix.stderr[-3000:]
    assert matrix.code == 0
    assert len(report["cells"]) == len(SCENARIOS) * len(CLIENTS)
    assert report["stale_known_failures"] == []


def test_kbroker_serves_every_api_the_clients_need(matrix: Run) -> None:
    """Groups, transactions and the old versions old clients look for are all built, so no
    cell may be grey for a missing API (the harness reports them per cell)."""
    lacking = {api for c in matrix.report["cells"] for api in c["missing_apis"]}
    assert lacking == set()


def test_built_features_pass_in_every_client_that_expresses_them(matrix: Run) -> None:
    statuses = matrix.statuses()
    for client in ("confluent-kafka", "kafka-python", "aiokafka", "kcat", "sarama"):
        for scenario in ("produce-consume", "headers", "large-message", "many-partitions",
                         "idempotent-produce", "compression-none"):  # fmt: skip
            assert statuses[(scenario, client)] == "pass", (scenario, client)
    for client in ("confluent-kafka", "kafka-python", "aiokafka", "kafkajs", "sarama"):
        assert statuses[("admin-topics", client)] == "pass", client
    assert statuses[("seek-by-timestamp", "sarama")] == "pass"  # max_timestamp recomputed
    for client in ("confluent-kafka", "kafka-python", "aiokafka", "kafkajs"):
        assert statuses[("transactions", client)] == "pass", client


def test_versions_are_the_pinned_ones(matrix: Run) -> None:
    assert matrix.report["clients"] == PINNED


def test_reports_are_written(matrix: Run) -> None:
    html = (matrix.out / "matrix.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html and "</html>" in html
    assert "http" not in html.split("<body>")[0]  # self-contained: nothing fetched
    assert (matrix.out / "matrix.md").read_text() in matrix.stdout


def test_the_readme_shows_this_matrix(matrix: Run) -> None:
    readme = (REPO / "README.md").read_text()
    start, end = readme.index(render.README_START), readme.index(render.README_END)
    shown = readme[start : end + len(render.README_END)]
    md = (matrix.out / "matrix.md").read_text()
    table = md[md.index("| scenario |") : md.index("## Scenarios")].strip()
    assert shown == f"{render.README_START}\n{table}\n{render.README_END}", (
        "README.md's matrix is out of date: run "
        ".venv/bin/python -m compat --kbroker --update-readme README.md"
    )
