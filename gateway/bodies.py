"""Reading a request body the way every gateway route that takes one does: JSON only, and bounded.

A content type, when given, must be a JSON one (``application/json``, ``application/*+json`` such as the
registry's ``application/vnd.schemaregistry.v1+json``), otherwise 415: a cross-site form (``text/plain``)
cannot reach a route. A body larger than the route's limit answers 413, read no further. Both are
:class:`~gateway.problems.Problem`\\ s, so they answer in the format of the path (Confluent's under
``/registry``, problem+json elsewhere).
"""

from __future__ import annotations

from fastapi import Request

from gateway.problems import Problem


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body of a JSON request, at most ``max_bytes`` long (415 or 413 otherwise)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and not content_type.endswith(("/json", "+json")):
        raise Problem(
            415, "Unsupported media type", f"content type {content_type[:80]!r} is not JSON: send JSON"
        )
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise _too_large(max_bytes)
    return bytes(raw)


def _too_large(max_bytes: int) -> Problem:
    return Problem(413, "Request too large", f"the body is larger than {max_bytes} bytes")
