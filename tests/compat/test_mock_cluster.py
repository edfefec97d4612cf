"""The scenarios kbroker cannot run yet (groups, transactions) against a broker that has those
APIs, librdkafka's mock cluster, to show that they are correct scenarios and that the harness
is broker-neutral. What the mock itself gets wrong is pinned too, as the report states it."""

from __future__ import annotations

import pytest

from tests.compat.conftest import Run, run_compat

pytestmark = [pytest.mark.clients, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_compat(
        tmp_path_factory.mktemp("mock"), "--mock",
        "--clients", "confluent-kafka,kcat,kafkajs",
        "--scenarios", "consumer-group,transactions,produce-consume,admin-topics",
        timeout=900,
    )  # fmt: skip


def test_the_group_scenario_passes_on_a_broker_with_groups(mock: Run) -> None:
    for client in ("confluent-kafka", "kcat", "kafkajs"):
        cell = mock.cell("consumer-group", client)
        assert cell["status"] == "pass", (client, cell["detail"], cell["client_stderr"][-2000:])


def test_transactions_run_up_to_what_the_mock_lacks(mock: Run) -> None:
    # Commit, abort, commit and the read_uncommitted read all succeed; the mock's Fetch lists
    # no aborted transactions, so read_committed sees the aborted records.
    cell = mock.cell("transactions", "confluent-kafka")
    assert cell["status"] == "fail"
    assert cell["detail"].startswith("read back 6 read_committed:"), cell["detail"]
    assert "abort-0" in cell["detail"]
    assert mock.cell("transactions", "kcat")["status"] == "not expressible"


def test_the_mock_lacks_admin_apis_and_the_report_says_which(mock: Run) -> None:
    cell = mock.cell("admin-topics", "confluent-kafka")
    assert cell["status"] == "broker lacks"
    assert {"CreateTopics", "DeleteTopics", "DescribeConfigs"} <= set(cell["missing_apis"])
    assert mock.cell("produce-consume", "kcat")["status"] == "pass"


def test_failing_cells_carry_the_mock_clusters_log(mock: Run) -> None:
    cell = mock.cell("transactions", "confluent-kafka")
    log = "\n".join(cell["broker_log"] or [])
    assert "EndTxn" in log or "AddPartitionsToTxn" in log, log[-2000:]
    assert mock.code == 1  # the mock's failures are failures
