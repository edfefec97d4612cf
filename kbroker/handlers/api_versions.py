"""ApiVersions (key 18), v0-4: what this broker serves, straight from the handler registry.

A client may send a version newer than ours (KIP-511): it gets a v0 response with
UNSUPPORTED_VERSION and our ranges, and retries with our maximum. From v3 the client names its
software; a name or version that is not `[a-zA-Z0-9](?:[a-zA-Z0-9\\-.]*[a-zA-Z0-9])?` gets
INVALID_REQUEST, as in Kafka.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from kbroker.handlers import REGISTRY, handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.api_versions_response import ApiVersion, ApiVersionsResponse

if TYPE_CHECKING:
    from kbroker.context import RequestContext

_SOFTWARE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")


def supported_versions() -> list[ApiVersion]:
    return [
        ApiVersion(api_key=h.key, min_version=h.min_version, max_version=h.max_version)
        for h in sorted(REGISTRY.values(), key=lambda h: h.key)
    ]


def unsupported_version_response() -> ApiVersionsResponse:
    return ApiVersionsResponse(
        error_code=ErrorCode.UNSUPPORTED_VERSION, api_keys=supported_versions()
    )


@handles(ApiKey.API_VERSIONS, 0, 4)
async def api_versions(ctx: RequestContext, request: ApiVersionsRequest) -> ApiVersionsResponse:
    if ctx.api_version >= 3 and not (
        _SOFTWARE.fullmatch(request.client_software_name)
        and _SOFTWARE.fullmatch(request.client_software_version)
    ):
        return ApiVersionsResponse(error_code=ErrorCode.INVALID_REQUEST)
    return ApiVersionsResponse(error_code=ErrorCode.NONE, api_keys=supported_versions())
