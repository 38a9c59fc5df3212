"""`POST /webhook/github`: refuse what is not a genuine delivery, then answer each delivery once.

The order is DESIGN.md §6's: no secret -> 503, oversized -> 413, missing or wrong signature -> 401,
and only then is the body parsed (400 when it cannot be) and acted on. A 202 that announces a run
is sent once the run's record is on disk; a redelivery of a push whose run never finished (the
server stopped or was killed first) queues a new run, which is how GitHub's "Redeliver" recovers it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from sbdk.server import github, runs
from sbdk.server.bodies import read_limited
from sbdk.server.state import ServerState
from sbdk.telemetry.metrics import Outcome

if TYPE_CHECKING:
    from sbdk.telemetry.tracing import DeliverySpan

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
# GitHub waits 10 s for an answer; a run record is written in milliseconds.
SAVE_TIMEOUT = 5.0


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
    body = await _genuine_body_or_refusal(state, delivery, request)
    if not isinstance(body, bytes):
        state.metrics.delivered(Outcome.REFUSED)
        return body
    status, answer = await answer_once(state, delivery, body)
    await _run_saved(state, status, answer)
    return status, answer


async def _genuine_body_or_refusal(state: ServerState, delivery: Delivery, request: Request) -> bytes | Answer:
    """The body of a delivery signed with the secret, or its refusal."""
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
    try:
        github.check_delivery_id(delivery.id)
    except github.BadPayload as exc:
        log.warning("%s refused: %s", delivery.label, exc)
        return _refused(400, str(exc))
    return body


def _digest_or_refusal(delivery: Delivery) -> str | Answer:
    """The signature's digest, or the refusal of a delivery that its headers alone disqualify."""
    length = github.content_length(delivery.content_length) if delivery.content_length is not None else None
    if delivery.content_length is not None and length is None:
        return _refused(400, "Invalid Content-Length header.")
    if length is not None and length > github.MAX_BODY_BYTES:
        log.warning("%s refused: body of %s bytes is over the 25 MB limit", delivery.label, length)
        return _refused(413, TOO_LARGE)
    digest = github.signature_digest(delivery.signature)
    if digest is None:
        log.warning("%s refused: missing or malformed %s", delivery.label, github.SIGNATURE_HEADER)
        return _refused(401, f"Missing or malformed {github.SIGNATURE_HEADER} header (sha256=<hex>).")
    return digest


async def answer_once(state: ServerState, delivery: Delivery, body: bytes) -> Answer:
    """A redelivery gets the first answer again and runs nothing, unless that answer queued a run
    that never finished (runs.never_finished); a new delivery is handled.

    Between the last look at the answers and the recording of a new one nothing awaits, so two
    copies of one delivery cannot both queue a run."""
    if delivery.id:
        previous = state.deliveries.get(delivery.id)
        if previous is not None:
            unfinished = await _unfinished_run(state, previous)
            current = state.deliveries.get(delivery.id)
            if current is not None and current is not previous:  # another copy was answered meanwhile
                state.metrics.delivered(Outcome.REDELIVERED)
                return current
            if unfinished is None:
                log.info("%s is a redelivery: answered as the first time, nothing queued", delivery.label)
                state.metrics.delivered(Outcome.REDELIVERED)
                return previous
            log.info(
                "%s is a redelivery of a push whose run %s never finished: handled again", delivery.label, unfinished
            )
    status, answer = handle(state, delivery, body)
    state.metrics.delivered(_outcome(status, answer))
    # A 503 (shutting down) is not an answer to keep: the redelivery should be handled for real.
    if delivery.id and status != 503:
        state.deliveries.put(delivery.id, status, answer)
    return status, answer


async def _unfinished_run(state: ServerState, previous: Answer) -> str | None:
    """The run a previous answer queued, if that run never finished; None otherwise."""
    status, answer = previous
    run_id = answer.get("run_id")
    if status != 202 or answer.get("status") != "queued" or not isinstance(run_id, str):
        return None
    record = state.queue.get(run_id) if state.queue else None
    if record is None and state.store.is_open:  # a run of an earlier session
        record = await run_in_threadpool(state.store.run, run_id)
    return run_id if runs.never_finished(record) else None


async def _run_saved(state: ServerState, status: int, answer: dict[str, Any]) -> None:
    """Wait until the run a 202 announces is on disk, so GET /runs/{id} knows it even after a SIGKILL
    right after the answer."""
    run_id = answer.get("run_id")
    if status != 202 or not isinstance(run_id, str) or state.queue is None:
        return
    saved = state.queue.saved(run_id)
    if saved is None or (saved.done() and saved.result()):  # pushes joining a waiting run
        return
    try:
        # Shielded: a request cancelled while waiting must not cancel the store's future.
        written = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(saved)), SAVE_TIMEOUT)
    except asyncio.TimeoutError:
        log.warning("run %s is announced before its record was written (over %.0f s)", run_id, SAVE_TIMEOUT)
        return
    if not written:
        log.warning("run %s is announced but its record could not be written (see above)", run_id)


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
        return 200, {"status": "pong", "branch": github.watched_branch(branch, payload)}
    if not decision.run:
        log.info("%s ignored: %s", delivery.label, decision.reason)
        return 202, {"status": "ignored", "reason": decision.reason}
    return _queue_run(state, delivery, decision)


def _queue_run(state: ServerState, delivery: Delivery, decision: github.Decision) -> Answer:
    # When tracing is configured, the delivery is a span and the run's trace its child.
    tracing: AbstractContextManager[DeliverySpan | None] = nullcontext()
    if state.tracer is not None:
        # The id and commit were checked printable and bounded (check_delivery_id, decide).
        tracing = state.tracer.delivery(delivery.id, delivery.event, decision.commit)
    with tracing as span:
        traceparent = span.traceparent if span is not None else None
        queued = state.queue.submit(delivery.id, decision.commit, traceparent) if state.queue else None
        if span is not None and queued is not None:
            span.queued(queued.run_id, queued.joined)
        elif span is not None:
            span.refused(SHUTTING_DOWN)
    if queued is None:
        return _refused(503, SHUTTING_DOWN)
    run_id, joined, busy = queued
    if joined:
        after = f" once run {busy} ends." if busy else "."
        detail = f"Joined run {run_id}, which builds everything pushed so far{after}"
    else:
        detail = f"Run {run_id} queued" + (f"; it starts when run {busy} ends." if busy else ".")
    ref = github.printable(decision.ref)
    log.info("%s: push to %s -> run %s %s", delivery.label, ref, run_id, "(joined)" if joined else "queued")
    return 202, {"status": "queued", "run_id": run_id, "coalesced": joined, "detail": detail}


def _refused(status: int, detail: str) -> Answer:
    return status, {"detail": detail}


def _outcome(status: int, answer: dict[str, Any]) -> Outcome:
    """How `handle` answered, for the metrics."""
    if status == 503:
        return Outcome.UNAVAILABLE
    if status >= 400:
        return Outcome.REFUSED
    kind = answer.get("status")
    if kind == "queued":
        return Outcome.JOINED if answer.get("coalesced") else Outcome.QUEUED
    return Outcome.PING if kind == "pong" else Outcome.IGNORED
