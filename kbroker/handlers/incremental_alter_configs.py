"""IncrementalAlterConfigs (key 44), v0-1: edit topic or broker configs one by one (KIP-339).

Each config carries an operation: SET, DELETE (back to the default), APPEND or SUBTRACT (list
items; only for LIST configs such as cleanup.policy, else INVALID_CONFIG). The edited topic
overrides are validated as a whole (INVALID_CONFIG) and take effect on the topic's logs at once;
broker resources (this node's id, or "" for the cluster default) edit the dynamic layers of the
broker config, in memory only (see kbroker.admin). A resource named twice, a config named twice,
a null value for anything but DELETE or an unknown operation is INVALID_REQUEST, as in Kafka.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.admin import (
    AlterConfigOp,
    alter_each,
    check_unique,
    edit_broker_configs,
    edit_topic_configs,
    on_resource_type,
    reject_null_values,
)
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
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
    reject_null_values(
        [
            c.name
            for c in resource.configs
            if c.value is None and c.config_operation != AlterConfigOp.DELETE
        ]
    )
    ops = [(c.name, c.config_operation, c.value) for c in resource.configs]
    on_resource_type(
        broker,
        resource,
        lambda topic: edit_topic_configs(broker, topic, ops, validate_only),
        lambda per_broker: edit_broker_configs(broker, per_broker, ops, validate_only),
    )


def _result(resource: AlterConfigsResource) -> AlterConfigsResourceResponse:
    return AlterConfigsResourceResponse(
        error_message=None,
        resource_type=resource.resource_type,
        resource_name=resource.resource_name,
    )


@handles(ApiKey.INCREMENTAL_ALTER_CONFIGS, 0, 1)
async def incremental_alter_configs(
    ctx: RequestContext, request: IncrementalAlterConfigsRequest
) -> IncrementalAlterConfigsResponse:
    responses = alter_each(
        request.resources, lambda r: _alter(ctx.broker, r, request.validate_only), _result
    )
    return IncrementalAlterConfigsResponse(responses=responses)
