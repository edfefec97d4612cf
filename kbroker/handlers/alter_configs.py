"""AlterConfigs (key 33), v0-2: replace a topic's or a broker's dynamic configs (KIP-133, KIP-226).

Full replacement: configs the request does not list revert to their defaults (use
IncrementalAlterConfigs to change one at a time). A topic's new overrides are validated as a
whole (INVALID_CONFIG) and take effect on its logs at once; broker resources (this node's id, or
"" for the cluster default) change the dynamic layers of the broker config, in memory only (see
kbroker.admin). A resource named twice, a config named twice in one resource, or a null value is
INVALID_REQUEST, as in Kafka; `validate_only` checks without applying.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.admin import (
    alter_broker_configs,
    alter_each,
    alter_topic_configs,
    check_unique,
    on_resource_type,
    reject_null_values,
)
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
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
    reject_null_values([c.name for c in resource.configs if c.value is None])
    configs = {c.name: c.value for c in resource.configs if c.value is not None}
    on_resource_type(
        broker,
        resource,
        lambda topic: alter_topic_configs(broker, topic, configs, validate_only),
        lambda per_broker: alter_broker_configs(broker, per_broker, configs, validate_only),
    )


def _result(resource: AlterConfigsResource) -> AlterConfigsResourceResponse:
    return AlterConfigsResourceResponse(
        error_message=None,
        resource_type=resource.resource_type,
        resource_name=resource.resource_name,
    )


@handles(ApiKey.ALTER_CONFIGS, 0, 2)
async def alter_configs(ctx: RequestContext, request: AlterConfigsRequest) -> AlterConfigsResponse:
    responses = alter_each(
        request.resources, lambda r: _alter(ctx.broker, r, request.validate_only), _result
    )
    return AlterConfigsResponse(responses=responses)
