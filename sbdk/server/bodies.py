"""Request bodies read with a size limit: a body over the limit is refused before it is read whole.

Imported when the app is built, like the routes that use it.
"""

from __future__ import annotations

from typing import TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def declared_length(request: Request) -> int | None:
    """The Content-Length header as a number; None when absent or not a number."""
    length = request.headers.get("content-length")
    return int(length) if length is not None and length.strip().isdigit() else None


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is longer than `limit` (the rest is never read)."""
    length = declared_length(request)
    if length is not None and length > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def validated(request: Request, model: type[Model], limit: int) -> Model:
    """The JSON body as `model`: 413 over `limit` bytes, 422 (FastAPI's own answer) when invalid."""
    body = await read_limited(request, limit)
    if body is None:
        raise HTTPException(413, f"Body over {limit // 1024} KB.")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
