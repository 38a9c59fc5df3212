"""Request bodies read with a size limit, and JSON bodies read strictly (sbdk/server/strictjson.py).

A body over the limit is refused before it is read whole; a client that leaves before sending its
whole body is a line in the log, not a traceback. Imported when the app is built, like the routes
that use it.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from sbdk.server import strictjson
from sbdk.server.github import content_length, shown

log = logging.getLogger("sbdk.server")

Model = TypeVar("Model", bound=BaseModel)

JSON = "application/json"


class ClientGone(HTTPException):
    """The client closed the connection before sending its whole body (answered with 400, which
    no one reads: uvicorn drops an answer to a closed connection)."""

    def __init__(self) -> None:
        super().__init__(400, "The connection closed before the whole body was sent.")


def declared_length(request: Request) -> int | None:
    """The Content-Length header as a number; None when absent or not a number."""
    length = request.headers.get("content-length")
    return content_length(length) if length is not None else None


def media_type(content_type: str | None) -> str:
    """`application/json` of `application/json; charset=utf-8`; "" when there is none."""
    return (content_type or "").split(";")[0].strip().lower()


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is longer than `limit` (the rest is never read)."""
    length = declared_length(request)
    if length is not None and length > limit:
        return None
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return None
    except ClientDisconnect:
        log.info("%s %s: the client left before sending its whole body", request.method, request.url.path)
        raise ClientGone() from None
    return bytes(body)


async def validated(request: Request, model: type[Model], limit: int, max_depth: int) -> Model:
    """The JSON body as `model`: 415 unless sent as application/json, 413 over `limit` bytes,
    422 (FastAPI's own answer) when it is not strict JSON (strictjson) or not a valid `model`."""
    # Only a JSON content type makes a browser ask first (a CORS preflight): text/plain or a form
    # would let any web page write here.
    content_type = request.headers.get("content-type")
    if media_type(content_type) != JSON:
        sent = f"not {shown(content_type)}" if content_type else "none was sent"
        raise HTTPException(415, f"Send the body as JSON with the header Content-Type: {JSON} ({sent}).")
    body = await read_limited(request, limit)
    if body is None:
        raise HTTPException(413, f"Body over {limit // 1024} KB.")
    try:
        data = strictjson.parse(body, max_depth=max_depth)
    except strictjson.BadJson as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": [], "msg": str(exc)}]) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # Without the input: an answer does not echo what was sent (it may be 64 KB, or not text).
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        raise RequestValidationError(errors) from None
