"""DescribeLogDirs (key 35), v0-4: each log dir and the partitions it holds (KIP-113).

Per log dir (absolute path): the partitions asked for (null topics: all) that live there, with
their size on disk; offset_lag is 0 and is_future_key false, since a single node neither
replicates nor moves replicas between dirs. Topics with no partition in a dir are left out of
it, as Kafka does. v3+ has a top-level error code; v4+ the dir's total and usable bytes
(KIP-827, from statvfs). A dir that cannot be read is KAFKA_STORAGE_ERROR. Not v5 (cordoned
dirs, KIP-1066).
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import TYPE_CHECKING

from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.describe_log_dirs_request import DescribeLogDirsRequest
from protocol.messages.describe_log_dirs_response import (
    DescribeLogDirsPartition,
    DescribeLogDirsResponse,
    DescribeLogDirsResult,
    DescribeLogDirsTopic,
)

if TYPE_CHECKING:
    from kbroker.context import RequestContext
    from storage.log import Log


def _wanted(request: DescribeLogDirsRequest) -> set[tuple[str, int]] | None:
    if request.topics is None:
        return None
    return {(t.topic, p) for t in request.topics for p in t.partitions}


def _describe_dir(log_dir: str, logs: list[Log]) -> DescribeLogDirsResult:
    try:
        stats = os.statvfs(log_dir)
    except OSError:
        return DescribeLogDirsResult(error_code=ErrorCode.KAFKA_STORAGE_ERROR, log_dir=log_dir)
    by_topic: dict[str, list[DescribeLogDirsPartition]] = defaultdict(list)
    for log in sorted(logs, key=lambda log: (log.topic, log.partition)):
        by_topic[log.topic].append(
            DescribeLogDirsPartition(
                partition_index=log.partition, partition_size=log.size_in_bytes
            )
        )
    return DescribeLogDirsResult(
        log_dir=log_dir,
        topics=[DescribeLogDirsTopic(name, partitions) for name, partitions in by_topic.items()],
        total_bytes=stats.f_blocks * stats.f_frsize,
        usable_bytes=stats.f_bavail * stats.f_frsize,
    )


@handles(ApiKey.DESCRIBE_LOG_DIRS, 0, 4)
async def describe_log_dirs(
    ctx: RequestContext, request: DescribeLogDirsRequest
) -> DescribeLogDirsResponse:
    broker = ctx.broker
    wanted = _wanted(request)
    in_dir: dict[str, list[Log]] = {d: [] for d in broker.log_dirs}
    for log in broker.logs.logs():
        parent = os.path.dirname(log.dir)
        if parent in in_dir and (wanted is None or (log.topic, log.partition) in wanted):
            in_dir[parent].append(log)
    return DescribeLogDirsResponse(
        results=[_describe_dir(log_dir, logs) for log_dir, logs in in_dir.items()]
    )
