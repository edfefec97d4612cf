"""DeleteTopics (key 20), v0-6: by name (v0-5 `topic_names`, v6 `topics`) or by id (v6).

Unknown names get UNKNOWN_TOPIC_OR_PARTITION, unknown ids UNKNOWN_TOPIC_ID; with
`delete.topic.enable=false` every topic gets TOPIC_DELETION_DISABLED. Deletion renames the
partition directories at once (`-delete` suffix) and removes them on the storage thread.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from kbroker.handlers import handles
from protocol._codec import ZERO_UUID
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages.delete_topics_request import DeleteTopicsRequest
from protocol.messages.delete_topics_response import DeletableTopicResult, DeleteTopicsResponse

if TYPE_CHECKING:
    from kbroker.context import RequestContext


def _delete(ctx: RequestContext, name: str | None, topic_id: uuid.UUID) -> DeletableTopicResult:
    broker = ctx.broker
    if name is None:
        info = broker.topics.by_id.get(topic_id)
        if info is None:
            return DeletableTopicResult(
                name=None, topic_id=topic_id, error_code=ErrorCode.UNKNOWN_TOPIC_ID
            )
        name = info.name
    try:
        if not broker.config.get("delete.topic.enable"):
            raise KafkaError(ErrorCode.TOPIC_DELETION_DISABLED)
        info = broker.delete_topic(name)
    except KafkaError as exc:
        return DeletableTopicResult(name=name, error_code=exc.code, error_message=exc.message)
    return DeletableTopicResult(name=name, topic_id=info.topic_id)


@handles(ApiKey.DELETE_TOPICS, 0, 6)
async def delete_topics(ctx: RequestContext, request: DeleteTopicsRequest) -> DeleteTopicsResponse:
    if ctx.api_version >= 6:
        targets = [(t.name, t.topic_id) for t in request.topics]
    else:
        targets = [(name, ZERO_UUID) for name in request.topic_names]
    return DeleteTopicsResponse(responses=[_delete(ctx, n, i) for n, i in targets])
