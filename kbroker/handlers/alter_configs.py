"""AlterConfigs (key 33), v0-2: replace a topic's or a broker's dynamic configs (KIP-133, KIP-226).

Full replacement: configs the request does not list revert to their defaults (use
IncrementalAlterConfigs to change one at a time). A topic's new overrides are validated as a
whole (INVALID_CONFIG) and take effect on its logs at once; broker resources (this node's id, or
"" for the cluster default) change the dynamic layers of the broker config, in memory only (see
kbroker.admin). A resource named twice, a config named twice in one resource, or a null value is
INVALID_REQUEST, as in Kafka; `validate_only` checks without applying.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from kbroker.admin import (
    DUPLICATE_RESOURCE,
    ConfigResourceType,
    alter_broker_configs,
    alter_topic_configs,
    check_unique,
    is_per_broker,
)
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages.alter_configs_request import AlterConfigsRequest, AlterConfigsResource
from protocol.messages.alter_configs_response import (
    AlterConfigsResourceResponse,
    AlterConfigsResponse,
)

if TYPE_CHECKING:
    from kbroker.broker import Broker
    from kbroker.context import RequestContext


def _alter(broker: Broker, resource: AlterConfigsResource, validate_only: bool) -> None:
    check_unique([c.name for c in resource.configs], "config keys")
    nulls = [c.name for c in resource.configs if c.value is None]
    if nulls:
        message = f"Null value not supported for : {', '.join(nulls)}"
        raise KafkaError(ErrorCode.INVALID_REQUEST, message)
    configs = {c.name: c.value for c in resource.configs if c.value is not None}
    name = resource.resource_name
    if resource.resource_type == ConfigResourceType.TOPIC:
        alter_topic_configs(broker, name, configs, validate_only)
    elif resource.resource_type == ConfigResourceType.BROKER:
        alter_broker_configs(broker, is_per_broker(broker, name), configs, validate_only)
    else:
        message = f"Unknown resource type {resource.resource_type}"
        raise KafkaError(ErrorCode.INVALID_REQUEST, message)


@handles(ApiKey.ALTER_CONFIGS, 0, 2)
async def alter_configs(ctx: RequestContext, request: AlterConfigsRequest) -> AlterConfigsResponse:
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
    return AlterConfigsResponse(responses=responses)
