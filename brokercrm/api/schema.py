"""OpenAPI pieces shared by the apps' APIs: the error responses every list or lookup can give.

Documented so that clients generated from the schema (and schema fuzzers) expect them.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

BAD_REQUEST = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="A malformed filter, ordering, page size or cursor; the body maps each parameter to its errors.",
)
NOT_AUTHENTICATED = OpenApiResponse(
    OpenApiTypes.OBJECT, description="No valid session or token, or the caller's role may not use this endpoint."
)
FORBIDDEN = NOT_AUTHENTICATED
NOT_FOUND = OpenApiResponse(
    OpenApiTypes.OBJECT, description="No such client, or the client is outside the caller's scope."
)
NOT_FOUND_PATH = OpenApiResponse(OpenApiTypes.OBJECT, description="No such path (e.g. an unknown kind).")
THROTTLED = OpenApiResponse(OpenApiTypes.OBJECT, description="Too many requests; see Retry-After.")


def list_responses(serializer: object) -> dict[int, object]:
    """Responses of a filtered, paginated list."""
    return {200: serializer, 400: BAD_REQUEST, 403: NOT_AUTHENTICATED, 429: THROTTLED}


def lookup_responses(serializer: object, *, is_list: bool = False) -> dict[int, object]:
    """Responses of an endpoint addressing one client (its detail or one of its lists)."""
    responses = list_responses(serializer) if is_list else {200: serializer, 403: NOT_AUTHENTICATED, 429: THROTTLED}
    return {**responses, 404: NOT_FOUND}
