"""DescribeConfigs (key 32), v0-4: topic and broker configs, their sources (KIP-133, KIP-226).

A topic resource lists every topic config with its effective value; an illegal name is
INVALID_TOPIC_EXCEPTION and an unknown topic UNKNOWN_TOPIC_OR_PARTITION. A broker resource must
be named after this node (all broker configs) or "" (the cluster-wide dynamic defaults only); any
other name, or another resource type, is INVALID_REQUEST. `configuration_keys` null or empty
means all. v0 reports `is_default`; v1+ the source and, when asked, the synonyms in Kafka's
order; v3+ each config's type and, when asked, its documentation (KIP-569).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.admin import ConfigResourceType, check_topic_name, existing_topic, is_per_broker
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages.describe_configs_request import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from protocol.messages.describe_configs_response import (
    DescribeConfigsResourceResult,
    DescribeConfigsResponse,
    DescribeConfigsResult,
    DescribeConfigsSynonym,
)

if TYPE_CHECKING:
    from kbroker.broker import Broker
    from kbroker.config import ConfigEntry
    from kbroker.context import RequestContext


def _result(entry: ConfigEntry) -> DescribeConfigsResourceResult:
    return DescribeConfigsResourceResult(
        name=entry.name,
        value=entry.value,
        read_only=entry.read_only,
        is_default=entry.is_default,
        config_source=entry.source,
        is_sensitive=entry.sensitive,
        synonyms=[DescribeConfigsSynonym(s.name, s.value, s.source) for s in entry.synonyms],
        config_type=entry.config_type,
        documentation=entry.documentation,
    )


def _entries(
    broker: Broker, resource: DescribeConfigsResource, synonyms: bool, docs: bool
) -> list[ConfigEntry]:
    names = resource.configuration_keys
    if resource.resource_type == ConfigResourceType.TOPIC:
        check_topic_name(resource.resource_name)
        info = existing_topic(broker, resource.resource_name)
        resolved = broker.topic_config(info)
        return resolved.describe(names, include_synonyms=synonyms, include_documentation=docs)
    if resource.resource_type == ConfigResourceType.BROKER:
        per_broker = is_per_broker(broker, resource.resource_name)
        return broker.config.describe(
            names, include_synonyms=synonyms, include_documentation=docs, per_broker=per_broker
        )
    raise KafkaError(
        ErrorCode.INVALID_REQUEST, f"Unsupported resource type: {resource.resource_type}"
    )


def _describe(
    broker: Broker, resource: DescribeConfigsResource, synonyms: bool, docs: bool
) -> DescribeConfigsResult:
    result = DescribeConfigsResult(
        error_message=None,
        resource_type=resource.resource_type,
        resource_name=resource.resource_name,
    )
    try:
        result.configs = [_result(e) for e in _entries(broker, resource, synonyms, docs)]
    except KafkaError as exc:
        result.error_code, result.error_message = exc.code, exc.message
    return result


@handles(ApiKey.DESCRIBE_CONFIGS, 0, 4)
async def describe_configs(
    ctx: RequestContext, request: DescribeConfigsRequest
) -> DescribeConfigsResponse:
    synonyms, docs = request.include_synonyms, request.include_documentation
    results = [_describe(ctx.broker, r, synonyms, docs) for r in request.resources]
    return DescribeConfigsResponse(results=results)
