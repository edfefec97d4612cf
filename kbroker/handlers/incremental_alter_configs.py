"""IncrementalAlterConfigs (key 44), v0-1: edit topic or broker configs one by one (KIP-339).

Each config carries an operation: SET, DELETE (back to the default), APPEND or SUBTRACT (list
items; only for LIST configs such as cleanup.policy, else INVALID_CONFIG). The edited topic
overrides are validated as a whole (INVALID_CONFIG) and take effect on the topic's logs at once;
broker resources (this node's id, or "" for the cluster default) edit the dynamic layers of the
broker config, in memory only (see kbroker.admin). A resource named twice, a config named twice,
a null value for anything but DELETE or an unknown operation is INVALID_REQUEST, as in Kafka.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from kbroker.admin import (
    DUPLICATE_RESOURCE,
    AlterConfigOp,
    ConfigResourceType,
    check_unique,
    edit_broker_configs,
    edit_topic_configs,
    is_per_broker,
)
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages.incremental_alter_configs_request import (
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)
from protocol.messages.incremental_alter_configs_response import (
    AlterConfigsResourceResponse,
    IncrementalAlterConfigsResponse,
)

if TYPE_CHECKING:
    from kbroker.broker import Broker
    from kbroker.context import RequestContext


def _alter(broker: Broker, resource: AlterConfigsResource, validate_only: bool) -> None:
    check_unique([c.name for c in resource.configs], "config keys")
    nulls = [
        c.name
        for c in resource.configs
        if c.value is None and c.config_operation != AlterConfigOp.DELETE
    ]
    if nulls:
        message = f"Null value not supported for : {', '.join(nulls)}"
        raise KafkaError(ErrorCode.INVALID_REQUEST, message)
    ops = [(c.name, c.config_operation, c.value) for c in resource.configs]
    name = resource.resource_name
    if resource.resource_type == ConfigResourceType.TOPIC:
        edit_topic_configs(broker, name, ops, validate_only)
    elif resource.resource_type == ConfigResourceType.BROKER:
        edit_broker_configs(broker, is_per_broker(broker, name), ops, validate_only)
    else:
        message = f"Unknown resource type {resource.resource_type}"
        raise KafkaError(ErrorCode.INVALID_REQUEST, message)


@handles(ApiKey.INCREMENTAL_ALTER_CONFIGS, 0, 1)
async def incremental_alter_configs(
    ctx: RequestContext, request: IncrementalAlterConfigsRequest
) -> IncrementalAlterConfigsResponse:
    seen = Counter((r.resource_type, r.resource_name) for r in request.resources)
    responses = []
    for resource in request.resources:
        result = AlterConfigsResourceResponse(
            error_message=None,
            resource_type=resource.resource_type,
            resource_name=resource.resource_name,
        )
        try:
            if seen[(resource.resource_type, resource.resource_name)] > 1:
                raise KafkaError(ErrorCode.INVALID_REQUEST, DUPLICATE_RESOURCE)
            _alter(ctx.broker, resource, request.validate_only)
        except KafkaError as exc:
            result.error_code, result.error_message = exc.code, exc.message
        responses.append(result)
    return IncrementalAlterConfigsResponse(responses=responses)
