"""GitHub deliveries: signature check, payload parsing and what a delivery asks for.

Pure standard library, so every rule here is testable without a server. The order matters and is
the app's: no secret -> 503, oversized -> 413, missing or wrong signature -> 401, and only then is
the body parsed (DESIGN.md §6).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

# GitHub caps webhook payloads at 25 MB and drops larger ones; anything bigger is not from GitHub.
MAX_BODY_BYTES = 25 * 1024 * 1024
SIGNATURE_HEADER = "X-Hub-Signature-256"
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
# Answers kept for redelivered X-GitHub-Delivery ids (GitHub keeps a redelivery's id).
DELIVERIES_KEPT = 10_000


class BadPayload(ValueError):
    """The body or headers of a verified delivery cannot be understood (answered with 400)."""


def signature_digest(header: str | None) -> str | None:
    """The hex digest of a well-formed `sha256=<64 hex>` header, lower-cased; None otherwise."""
    if header is None:
        return None
    match = _SIGNATURE.fullmatch(header.strip())
    return match.group(1).lower() if match else None


def verify(secret: str, body: bytes, digest: str) -> bool:
    """Constant-time comparison of the body's HMAC-SHA256 with the header's digest."""
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest)


def parse_payload(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The delivery's JSON object. GitHub sends it raw (application/json) or as the `payload`
    field of a form (application/x-www-form-urlencoded), depending on the webhook's settings."""
    try:
        text = body.decode("utf-8")
        if (content_type or "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            fields = parse_qs(text, keep_blank_values=True, strict_parsing=False)
            # No `payload` field: a raw JSON body with curl's default content type; read it as JSON.
            if "payload" in fields:
                text = fields["payload"][0]
        payload = json.loads(text)
    except UnicodeDecodeError as exc:
        raise BadPayload(f"The body is not UTF-8 text: {exc.reason} at byte {exc.start}.") from exc
    except json.JSONDecodeError as exc:
        raise BadPayload(f"The body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from exc
    if not isinstance(payload, dict):
        raise BadPayload(f"The body must be a JSON object, not {type(payload).__name__}.")
    return payload


@dataclass(frozen=True)
class Decision:
    """What a verified delivery asks for: `run` True means a rebuild should be queued."""

    kind: str  # "ping", "push", "ignored"
    run: bool = False
    reason: str | None = None
    ref: str | None = None
    commit: str | None = None


def decide(event: str, payload: dict[str, Any], branch: str) -> Decision:
    """Classify a delivery of type `event` for a server that rebuilds on pushes to `branch`."""
    if event == "ping":
        return Decision("ping")
    if event != "push":
        return Decision("ignored", reason=f"Event {event!r} does not start a run: only push (and ping) are handled.")
    ref = payload.get("ref")
    if not isinstance(ref, str) or not ref:
        raise BadPayload("The push payload has no `ref`.")
    after = payload.get("after")
    commit = after if isinstance(after, str) else None
    if ref.startswith("refs/tags/"):
        tag = ref.removeprefix("refs/tags/")
        return Decision("ignored", ref=ref, reason=f"Tag push ({tag}): only pushes to branch {branch!r} start a run.")
    if not ref.startswith("refs/heads/"):
        return Decision("ignored", ref=ref, reason=f"Push to {ref}: only pushes to branch {branch!r} start a run.")
    name = ref.removeprefix("refs/heads/")
    if payload.get("deleted") is True:
        return Decision("ignored", ref=ref, reason=f"Branch {name!r} was deleted: there is nothing to build.")
    if name != branch:
        return Decision(
            "ignored", ref=ref, reason=f"Push to branch {name!r}: this server rebuilds on pushes to {branch!r}."
        )
    return Decision("push", run=True, ref=ref, commit=commit)


class DeliveryAnswers:
    """The first answer given to each delivery id, so a redelivery gets it again and runs nothing.

    Bounded (oldest forgotten first) and, given a path, kept across restarts in an append-only
    JSON-lines file: one write() per delivery. Not the server's DuckDB file: a row and a commit per
    delivery there, even on a background thread, more than halved the requests answered per second
    under a burst (benchmarks/bench_webhooks.py).
    Used from the event loop only, where check-and-record happens without an await in between,
    so two copies of one delivery cannot both queue a run.
    """

    def __init__(self, path: Path | None = None, kept: int = DELIVERIES_KEPT) -> None:
        self.path = path
        self.kept = kept
        self._answers: OrderedDict[str, tuple[int, dict[str, Any]]] = OrderedDict()
        self._fd: int | None = None

    def open(self) -> None:
        """Load the answers kept by earlier runs of the server and start appending."""
        if self.path is None or self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.is_file() else []
        for line in lines:
            try:
                delivery, status, answer = json.loads(line)
            except ValueError:  # a torn last line from a killed server
                continue
            self._remember(delivery, status, answer)
        if len(lines) > self.kept:
            # Keep the file bounded: rewrite it with what is remembered, then swap it in.
            fresh = self.path.with_suffix(".tmp")
            fresh.write_text("".join(_line(d, s, a) for d, (s, a) in self._answers.items()), encoding="utf-8")
            os.replace(fresh, self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def get(self, delivery: str) -> tuple[int, dict[str, Any]] | None:
        return self._answers.get(delivery)

    def put(self, delivery: str, status: int, answer: dict[str, Any]) -> None:
        self._remember(delivery, status, answer)
        if self._fd is not None:
            os.write(self._fd, _line(delivery, status, answer).encode("utf-8"))

    def _remember(self, delivery: str, status: int, answer: dict[str, Any]) -> None:
        self._answers[delivery] = (status, answer)
        self._answers.move_to_end(delivery)
        while len(self._answers) > self.kept:
            self._answers.popitem(last=False)


def _line(delivery: str, status: int, answer: dict[str, Any]) -> str:
    return json.dumps([delivery, status, answer]) + "\n"


def printable(text: str | None, limit: int = 80) -> str:
    """A header value made safe for a log line (it comes from the network)."""
    if text is None:
        return "-"
    cleaned = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return cleaned + ("..." if len(text) > limit else "")
