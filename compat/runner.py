"""Runs the matrix: every scenario through every client, one driver process per cell.

A cell's status is decided in this order, so that the grey statuses are facts about the client
or the broker and never hide a failure:

1. not expressible: the client lacks a capability the scenario uses (registry.py);
2. broker lacks: the broker does not advertise an API the client would use for it, or one the
   harness needs for set-up or checks (found in the broker's ApiVersions before anything runs,
   or when a topic needs CreateTopics);
3. otherwise it runs: pass, or fail with the error. A missing client (kcat not installed, the
   KafkaJS or Go driver not built) is a failure that says what to run.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable

from compat.context import CheckFailed, Context
from compat.model import Cell, Report, ScenarioInfo, Status
from compat.registry import Client, MissingPrerequisite
from compat.scenarios import Scenario
from compat.session import ClientError, DriverGone, Session
from compat.targets import Target
from compat.wire import BrokerLacks, Cluster, WireError

MAX_LOG_LINES = 200
DEFAULT_OP_TIMEOUT_S = 30.0


def client_version(client: Client) -> str:
    """What the driver reports (library version, and librdkafka's where it matters)."""
    try:
        argv, env = client.launch()
    except MissingPrerequisite as exc:
        return f"not installed ({exc})"
    session = Session(argv, env)
    try:
        return str(session.call("version", timeout_s=15)["version"])
    except (ClientError, DriverGone) as exc:
        return f"unknown ({exc})"
    finally:
        session.close()


def plan(scenario: Scenario, client: Client, cluster: Cluster) -> Cell | None:
    """The cell's status if it is decided without running it, else None."""
    apis, reasons = client.apis(list(scenario.capabilities))
    if reasons:
        detail = "; ".join(dict.fromkeys(reasons))
        return Cell(scenario.name, client.name, Status.NOT_EXPRESSIBLE, detail)
    missing = cluster.lacking(apis | set(scenario.harness_apis))
    if missing:
        return Cell(
            scenario.name,
            client.name,
            Status.BROKER_LACKS,
            "broker lacks " + ", ".join(missing),
            missing_apis=missing,
        )
    return None


def run_cell(scenario: Scenario, client: Client, target: Target) -> Cell:
    cell = Cell(scenario.name, client.name, Status.FAIL)
    try:
        argv, env = client.launch()
    except MissingPrerequisite as exc:
        cell.detail = str(exc)
        return cell
    mark = target.log.mark() if target.log is not None else 0
    session = Session(argv, env)
    cluster: Cluster | None = None
    try:
        cluster = Cluster(target.bootstrap)
        session.call(
            "init",
            bootstrap=target.bootstrap,
            client_id=f"compat-{client.name}",
            timeout_ms=int(DEFAULT_OP_TIMEOUT_S * 1000),
        )
        scenario.run(Context(scenario.name, client.name, session, cluster))
        cell.status = Status.PASS
    except BrokerLacks as exc:
        cell.status, cell.detail, cell.missing_apis = Status.BROKER_LACKS, str(exc), exc.names
    except (CheckFailed, ClientError, DriverGone, WireError) as exc:
        cell.detail = str(exc)
    except Exception as exc:  # a bug in a scenario or the harness: still this cell's failure
        cell.detail = f"harness error: {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    finally:
        session.close()
        if cluster is not None:
            cluster.close()
    if cell.status is Status.FAIL:
        cell.client_stderr = session.stderr_tail()
        if target.log is None:
            cell.log_note = target.log_note
        else:
            lines = target.log.since(mark)
            cell.broker_log = lines[-MAX_LOG_LINES:]
            cell.log_note = f"the broker's log while this cell ran ({len(lines)} lines" + (
                f", last {MAX_LOG_LINES} shown)" if len(lines) > MAX_LOG_LINES else ")"
            )
    return cell


def run_matrix(
    target: Target,
    scenarios: list[Scenario],
    clients: list[Client],
    progress: Callable[[str], None] = lambda _: None,
) -> Report:
    started = time.monotonic()
    with Cluster(target.bootstrap) as cluster:
        advertised = cluster.advertised_names()
        progress(f"{target.description} at {target.bootstrap}: {len(advertised)} APIs advertised")
        versions = {}
        for client in clients:
            versions[client.name] = client_version(client)
            progress(f"  {client.name}: {versions[client.name]}")
        cells = []
        for scenario in scenarios:
            for client in clients:
                began = time.monotonic()
                cell = plan(scenario, client, cluster) or run_cell(scenario, client, target)
                cell.seconds = round(time.monotonic() - began, 2)
                cells.append(cell)
                progress(
                    f"  {scenario.name:<20} {client.name:<16} {cell.status} ({cell.seconds} s)"
                )
    return Report(
        target=target.description,
        bootstrap=target.bootstrap,
        broker_apis=advertised,
        clients=versions,
        scenarios=[ScenarioInfo(s.name, s.title, s.description) for s in scenarios],
        cells=cells,
        seconds=time.monotonic() - started,
    )
