"""`python -m compat`: run the client compatibility matrix against a broker.

    python -m compat --bootstrap HOST:PORT     # any Kafka-compatible broker
    python -m compat --kbroker                 # an ephemeral kbroker, started and stopped here
    python -m compat --mock                    # librdkafka's mock cluster

Prints the Markdown matrix, writes matrix.md, matrix.json and matrix.html into --out, and exits
1 if any cell failed (0 when every cell passed, was not expressible, needs an API the broker
lacks, or is a listed known failure); 2 on a usage error or an unreachable broker.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from compat import known, render
from compat.model import Report
from compat.registry import CLIENTS, CLIENTS_BY_NAME
from compat.runner import run_matrix
from compat.scenarios import SCENARIOS, SCENARIOS_BY_NAME
from compat.targets import Target, external, start_kbroker, start_mock
from compat.wire import WireError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m compat",
        description="Drive real Kafka clients through scenarios against a broker; "
        "print a scenario x client matrix.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--bootstrap", metavar="HOST:PORT", help="a running broker")
    where.add_argument("--kbroker", action="store_true", help="start an ephemeral kbroker")
    where.add_argument("--mock", action="store_true", help="start librdkafka's mock cluster")
    parser.add_argument(
        "--clients", metavar="A,B", help=f"subset of: {', '.join(c.name for c in CLIENTS)}"
    )
    parser.add_argument(
        "--scenarios", metavar="X,Y", help=f"subset of: {', '.join(s.name for s in SCENARIOS)}"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("build/compat"),
        help="directory for matrix.md, matrix.json, matrix.html (default build/compat)",
    )
    parser.add_argument(
        "--broker-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --kbroker: a broker config override (repeatable)",
    )
    parser.add_argument("--mock-brokers", type=int, default=1, help="with --mock: broker count")
    parser.add_argument(
        "--update-readme",
        type=Path,
        metavar="README.md",
        help="rewrite the matrix section of this file",
    )
    parser.add_argument(
        "--known-failures",
        type=Path,
        metavar="FILE.toml",
        help="cells expected to fail, with reasons (default with --kbroker: "
        "compat/known-failures-kbroker.toml)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return parser


def _pick(names: str | None, known: dict[str, object], what: str) -> list[str]:
    if names is None:
        return list(known)
    picked = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in picked if n not in known]
    if unknown:
        raise SystemExit(f"python -m compat: unknown {what}: {', '.join(unknown)}")
    return picked


def start_target(args: argparse.Namespace) -> Target:
    if args.kbroker:
        return start_kbroker(args.broker_override)
    if args.mock:
        return start_mock(args.mock_brokers)
    return external(args.bootstrap)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    clients = [CLIENTS_BY_NAME[n] for n in _pick(args.clients, dict(CLIENTS_BY_NAME), "client")]
    names = _pick(args.scenarios, dict(SCENARIOS_BY_NAME), "scenario")
    scenarios = [SCENARIOS_BY_NAME[n] for n in names]

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    known_path = args.known_failures
    if known_path is None and args.kbroker:
        known_path = known.KBROKER_KNOWN_FAILURES
    expected = known.load(known_path)
    target = start_target(args)
    try:
        report: Report = run_matrix(target, scenarios, clients, progress)
    except WireError as exc:  # the broker itself is unreachable: no matrix to speak of
        print(f"python -m compat: {target.description}: {exc}", file=sys.stderr)
        return 2
    finally:
        target.close()
    known.apply(report, expected)
    for cell in report.stale_known:
        progress(f"stale known failure (it passed; remove it from {known_path}): {cell}")
    print(render.markdown(report))
    for path in render.write_all(report, args.out):
        progress(f"wrote {path}")
    if args.update_readme is not None:
        changed = render.update_readme(args.update_readme, report)
        progress(f"{args.update_readme}: {'updated' if changed else 'already current'}")
    return report.exit_code
