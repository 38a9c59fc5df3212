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

from sbdk.server import strictjson

# GitHub caps webhook payloads at 25 MB and drops larger ones; anything bigger is not from GitHub.
MAX_BODY_BYTES = 25 * 1024 * 1024
SIGNATURE_HEADER = "X-Hub-Signature-256"
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
# Answers kept for redelivered X-GitHub-Delivery ids (GitHub keeps a redelivery's id).
DELIVERIES_KEPT = 10_000
# A Content-Length of more digits than this is a body too large for any limit here.
_LENGTH_DIGITS = 18
# GitHub's delivery ids are UUIDs (36 characters).
MAX_DELIVERY_ID = 100
# At most this much of a value from the network goes back into an answer or a log line.
ECHOED = 100
# What the server watches when webhooks.branch is not configured.
DEFAULT_BRANCH = "the repository's default branch"


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
        text = strictjson.utf8(body)
        if (content_type or "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            fields = parse_qs(text, keep_blank_values=True, strict_parsing=False)
            # No `payload` field: a raw JSON body with curl's default content type; read it as JSON.
            if "payload" in fields:
                text = fields["payload"][0]
        payload = strictjson.loads(text)
    except strictjson.BadJson as exc:
        raise BadPayload(str(exc)) from None
    if not isinstance(payload, dict):
        raise BadPayload(f"The body must be a JSON object, not {type(payload).__name__}.")
    return payload


def content_length(header: str) -> int | None:
    """The number of bytes a Content-Length header declares; None when it is not a number. ASCII
    digits only ("\u00b2".isdigit() is true), and a number longer than any body is read as one
    too large rather than given to int() (thousands of digits raise a ValueError)."""
    digits = header.strip()
    if not (digits.isascii() and digits.isdigit()):
        return None
    return int(digits) if len(digits) <= _LENGTH_DIGITS else 10**_LENGTH_DIGITS


def check_delivery_id(header: str | None) -> None:
    """Refuse an X-GitHub-Delivery id that cannot be GitHub's (a UUID) rather than keep it as a
    delivery's key, log it and show it in run records. None or empty: no id, nothing to check."""
    if header and (len(header) > MAX_DELIVERY_ID or not (header.isascii() and header.isprintable())):
        raise BadPayload(
            f"The X-GitHub-Delivery header must be at most {MAX_DELIVERY_ID} printable ASCII characters "
            "(GitHub sends a UUID)."
        )


def watched_branch(configured: str | None, payload: dict[str, Any]) -> str | None:
    """The branch whose pushes start a run: the configured one, else the repository's default branch
    as the delivery names it (`repository.default_branch`); None when neither is known."""
    if configured is not None:
        return configured
    repository = payload.get("repository")
    default = repository.get("default_branch") if isinstance(repository, dict) else None
    return default if isinstance(default, str) and default else None


def describe_branch(configured: str | None) -> str:
    """The watched branch in words, for /health and the startup banner."""
    return configured if configured is not None else DEFAULT_BRANCH


@dataclass(frozen=True)
class Decision:
    """What a verified delivery asks for: `run` True means a rebuild should be queued."""

    kind: str  # "ping", "push", "ignored"
    run: bool = False
    reason: str | None = None
    ref: str | None = None
    commit: str | None = None


def decide(event: str, payload: dict[str, Any], branch: str | None) -> Decision:
    """Classify a delivery of type `event` for a server that rebuilds on pushes to `branch` (None: to
    the repository's default branch, as each delivery names it)."""
    if event == "ping":
        return Decision("ping")
    if event != "push":
        reason = f"Event {shown(event)} does not start a run: only push (and ping) are handled."
        return Decision("ignored", reason=reason)
    ref = payload.get("ref")
    if not isinstance(ref, str) or not ref:
        raise BadPayload("The push payload has no `ref`.")
    why = _why_no_run(ref, payload.get("deleted") is True, branch, watched_branch(branch, payload))
    if why is not None:
        return Decision("ignored", ref=ref, reason=why)
    after = payload.get("after")
    # A commit is shown in run records and logs: bounded like any value from the network.
    commit = printable(after, ECHOED) if isinstance(after, str) and after else None
    return Decision("push", run=True, ref=ref, commit=commit)


def _why_no_run(ref: str, deleted: bool, branch: str | None, watched: str | None) -> str | None:
    """Why a push to `ref` starts no run; None when it starts one."""
    if branch is not None:
        rule = shown(branch)
    else:
        rule = DEFAULT_BRANCH + (f" ({shown(watched)})" if watched is not None else "")
    if ref.startswith("refs/tags/"):
        return f"Tag push ({printable(ref.removeprefix('refs/tags/'), ECHOED)}): only pushes to {rule} start a run."
    if not ref.startswith("refs/heads/"):
        return f"Push to {printable(ref, ECHOED)}: only pushes to {rule} start a run."
    name = ref.removeprefix("refs/heads/")
    if deleted:
        return f"Branch {shown(name)} was deleted: there is nothing to build."
    if watched is None:
        return (
            "The push does not name the repository's default branch (repository.default_branch): set "
            "webhooks.branch in sbdk_config.json to the branch whose pushes rebuild the project."
        )
    if name != watched:
        return f"Push to branch {shown(name)}: this server rebuilds on pushes to {rule}."
    return None


class DeliveryAnswers:
    """The answer given to each delivery id, so a redelivery gets it again and runs nothing (unless
    the run it queued never ran: sbdk/server/routes/webhook.py then answers anew, and `put` replaces it).

    Bounded (oldest forgotten first) and, given a path, kept across restarts in an append-only
    JSON-lines file: one write() per delivery (the last line of an id wins). Not the server's DuckDB
    file: a row and a commit per delivery there, even on a background thread, more than halved the
    requests answered per second under a burst (benchmarks/bench_webhooks.py).
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
    """A value from the network made safe and short for a log line or an answer."""
    if text is None:
        return "-"
    cleaned = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return cleaned + ("..." if len(text) > limit else "")


def shown(text: str) -> str:
    """A value from the network, quoted and bounded, for an answer (a 15 KB header is not echoed)."""
    return repr(printable(text, ECHOED))
