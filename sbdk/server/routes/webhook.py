"""`POST /webhook/github`: refuse what is not a genuine delivery, then answer each delivery once.

The order is DESIGN.md §6's: no secret -> 503, oversized -> 413, missing or wrong signature -> 401,
and only then is the body parsed (400 when it cannot be) and acted on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sbdk.server import github
from sbdk.server.bodies import read_limited
from sbdk.server.state import ServerState

log = logging.getLogger("sbdk.server")

# An answer: HTTP status and JSON body. Kept as a plain pair so DeliveryAnswers can persist it.
Answer = tuple[int, dict[str, Any]]

NO_SECRET = (
    "No webhook secret is configured, so this server refuses every delivery. Set SBDK_WEBHOOK_SECRET "
    "to a long random value in the project's .env (or the environment), give GitHub the same value as "
    "the webhook's secret, and restart `sbdk webhooks`."
)
TOO_LARGE = "Body over 25 MB: GitHub never sends deliveries that large."
WRONG_SIGNATURE = "Signature does not match: the webhook's secret on GitHub must equal SBDK_WEBHOOK_SECRET."
SHUTTING_DOWN = "The server is shutting down; GitHub can redeliver this push later."


@dataclass(frozen=True)
class Delivery:
    """The headers of one delivery that matter here. They come from the network: log `label`."""

    id: str | None
    event: str | None
    content_type: str | None
    content_length: str | None
    signature: str | None

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> Delivery:
        return cls(
            id=headers.get("x-github-delivery"),
            event=headers.get("x-github-event"),
            content_type=headers.get("content-type"),
            content_length=headers.get("content-length"),
            signature=headers.get(github.SIGNATURE_HEADER),
        )

    @property
    def label(self) -> str:
        return f"delivery {github.printable(self.id)} ({github.printable(self.event, 40)})"


def router(state: ServerState) -> APIRouter:
    routes = APIRouter()

    @routes.post("/webhook/github")
    async def webhook_github(request: Request) -> JSONResponse:
        status, body = await receive(state, request)
        return JSONResponse(body, status_code=status)

    return routes


async def receive(state: ServerState, request: Request) -> Answer:
    delivery = Delivery.of(request.headers)
    secret = state.settings.webhook_secret
    if not secret:
        log.warning("%s refused: no webhook secret is configured", delivery.label)
        return _refused(503, NO_SECRET)
    digest = _digest_or_refusal(delivery)
    if not isinstance(digest, str):
        return digest
    body = await read_limited(request, github.MAX_BODY_BYTES)
    if body is None:
        log.warning("%s refused: body over the 25 MB limit", delivery.label)
        return _refused(413, TOO_LARGE)
    if not github.verify(secret, body, digest):
        log.warning("%s refused: the signature does not match", delivery.label)
        return _refused(401, WRONG_SIGNATURE)
    # Verified. From here to the answer nothing awaits, so a redelivery racing this one sees the
    # answer recorded by answer_once and cannot queue a second run.
    return answer_once(state, delivery, body)


def _digest_or_refusal(delivery: Delivery) -> str | Answer:
    """The signature's digest, or the refusal of a delivery that its headers alone disqualify."""
    length = delivery.content_length
    if length is not None and not length.strip().isdigit():
        return _refused(400, "Invalid Content-Length header.")
    if length is not None and int(length) > github.MAX_BODY_BYTES:
        log.warning("%s refused: body of %s bytes is over the 25 MB limit", delivery.label, length)
        return _refused(413, TOO_LARGE)
    digest = github.signature_digest(delivery.signature)
    if digest is None:
        log.warning("%s refused: missing or malformed %s", delivery.label, github.SIGNATURE_HEADER)
        return _refused(401, f"Missing or malformed {github.SIGNATURE_HEADER} header (sha256=<hex>).")
    return digest


def answer_once(state: ServerState, delivery: Delivery, body: bytes) -> Answer:
    """A redelivery gets the first answer again and runs nothing; a new delivery is handled."""
    if delivery.id:
        previous = state.deliveries.get(delivery.id)
        if previous is not None:
            log.info("%s is a redelivery: answered as the first time, nothing queued", delivery.label)
            return previous
    status, answer = handle(state, delivery, body)
    # A 503 (shutting down) is not an answer to keep: the redelivery should be handled for real.
    if delivery.id and status != 503:
        state.deliveries.put(delivery.id, status, answer)
    return status, answer


def handle(state: ServerState, delivery: Delivery, body: bytes) -> Answer:
    """What a verified delivery asks for: a pong, nothing (and why), or a run."""
    if not delivery.event:
        return _refused(400, "Missing X-GitHub-Event header.")
    branch = state.settings.webhooks.branch
    try:
        payload = github.parse_payload(body, delivery.content_type)
        decision = github.decide(delivery.event, payload, branch)
    except github.BadPayload as exc:
        log.warning("%s refused: %s", delivery.label, exc)
        return _refused(400, str(exc))
    if decision.kind == "ping":
        log.info("%s: ping, webhook connected", delivery.label)
        return 200, {"status": "pong", "branch": branch}
    if not decision.run:
        log.info("%s ignored: %s", delivery.label, decision.reason)
        return 202, {"status": "ignored", "reason": decision.reason}
    return _queue_run(state, delivery, decision)


def _queue_run(state: ServerState, delivery: Delivery, decision: github.Decision) -> Answer:
    queued = state.queue.submit(delivery.id, decision.commit) if state.queue else None
    if queued is None:
        return _refused(503, SHUTTING_DOWN)
    run_id, joined, busy = queued
    if joined:
        after = f" once run {busy} ends." if busy else "."
        detail = f"Joined run {run_id}, which builds everything pushed so far{after}"
    else:
        detail = f"Run {run_id} queued" + (f"; it starts when run {busy} ends." if busy else ".")
    log.info("%s: push to %s -> run %s %s", delivery.label, decision.ref, run_id, "(joined)" if joined else "queued")
    return 202, {"status": "queued", "run_id": run_id, "coalesced": joined, "detail": detail}


def _refused(status: int, detail: str) -> Answer:
    return status, {"detail": detail}
