"""The `sbdk webhooks` server: GitHub deliveries that queue real rebuilds, and usage tracking.

`create_app(settings)` builds the FastAPI app (sbdk/server/app.py); `serve(app, host, port)` runs it
under uvicorn (sbdk/server/serving.py). Both are loaded on first use: importing this package must not
import FastAPI, uvicorn or pydantic.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from sbdk.server.app import create_app

        return create_app
    if name == "serve":
        from sbdk.server.serving import serve

        return serve
    raise AttributeError(f"module 'sbdk.server' has no attribute {name!r}")
