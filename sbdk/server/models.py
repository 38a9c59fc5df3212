"""Request bodies of the tracking endpoints, validated by pydantic.

Imported when the app is built (sbdk/server/routes/tracking.py), never by `import sbdk.server`:
pydantic is heavy, and `sbdk --help` must not pay for it.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

# A usage event's properties are a small JSON object; the whole body is capped by the route.
MAX_PROPERTIES_JSON = 16 * 1024


class Registration(BaseModel):
    # Unknown fields are dropped, never stored: nothing personal can ride along.
    model_config = ConfigDict(extra="ignore")

    project: str = Field(min_length=1, max_length=200)
    sbdk_version: str | None = Field(default=None, max_length=50)


class UsageEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    uuid: UUID
    event: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("properties")
    @classmethod
    def small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value)) > MAX_PROPERTIES_JSON:
            raise ValueError(f"properties must be at most {MAX_PROPERTIES_JSON // 1024} KB of JSON")
        return value
