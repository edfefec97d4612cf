"""DescribeCluster (key 60), v0-1: this broker, the cluster id, and the controller (KIP-700).

A single node is the whole cluster and its own controller. v1 asks for an endpoint type
(KIP-919): brokers (1) are served; controllers (2) is MISMATCHED_ENDPOINT_TYPE and anything else
UNSUPPORTED_ENDPOINT_TYPE (INVALID_REQUEST for both at v0), as a Kafka broker answers. Without an
authorizer every cluster operation is allowed, so `include_cluster_authorized_operations`
reports all of them. Not v2 (fenced brokers, KIP-1073), which a single node has no use for.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from kbroker.admin import CLUSTER_OPERATIONS
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.describe_cluster_request import DescribeClusterRequest
from protocol.messages.describe_cluster_response import (
    DescribeClusterBroker,
    DescribeClusterResponse,
)

if TYPE_CHECKING:
    from kbroker.context import RequestContext


class EndpointType(enum.IntEnum):
    UNKNOWN = 0
    BROKER = 1
    CONTROLLER = 2


def _endpoint_error(
    request: DescribeClusterRequest, version: int
) -> DescribeClusterResponse | None:
    requested = request.endpoint_type
    if requested == EndpointType.BROKER:
        return None
    if requested == EndpointType.CONTROLLER:
        code = ErrorCode.MISMATCHED_ENDPOINT_TYPE
        message = (
            "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of "
            "type CONTROLLER"
        )
    else:
        code = ErrorCode.UNSUPPORTED_ENDPOINT_TYPE
        message = f"Unsupported endpoint type {requested}"
    if version == 0:
        code = ErrorCode.INVALID_REQUEST
    return DescribeClusterResponse(error_code=code, error_message=message)


@handles(ApiKey.DESCRIBE_CLUSTER, 0, 1)
async def describe_cluster(
    ctx: RequestContext, request: DescribeClusterRequest
) -> DescribeClusterResponse:
    error = _endpoint_error(request, ctx.api_version)
    if error is not None:
        return error
    broker = ctx.broker
    host, port = broker.advertised
    response = DescribeClusterResponse(
        endpoint_type=EndpointType.BROKER,
        cluster_id=broker.cluster_id,
        controller_id=broker.node_id,
        brokers=[
            DescribeClusterBroker(
                broker_id=broker.node_id, host=host, port=port, rack=broker.config.broker_rack
            )
        ],
    )
    if request.include_cluster_authorized_operations:
        response.cluster_authorized_operations = CLUSTER_OPERATIONS
    return response
