"""Property-based: whatever bytes, content type, event or JSON a client sends to the server, the answer
is a 2xx or a 4xx with a short JSON detail, never a 500 (issue #14), and nothing but strict JSON is
stored. The real app in-process (ASGI through TestClient); signed deliveries get past the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from pathlib import Path
from urllib.parse import quote

from conftest import edit_config
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sbdk.server import strictjson
from sbdk.settings import load_settings

SECRET = "s3cret-for-properties-0123456789abcdef"
ANSWERED = {200, 201, 202, 400, 404, 413, 415, 422}
# No example pushes to it, so no example starts a run.
WATCHED = "watched-by-no-example"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)
# JSON text that Python's json module reads (or chokes on) but that is not JSON a server should keep.
hostile = st.one_of(
    st.integers(1, 20_000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 3_000).map(lambda n: '{"a": ' * n + "1" + "}" * n),
    st.integers(90, 6_000).map(lambda n: "9" * n),
    st.integers(90, 6_000).map(lambda n: "0." + "1" * n),
    st.sampled_from(["NaN", "-Infinity", "1e999", '"\\ud800"', '"\\udc00x"', '{"\\udbff": 1}', '"\\ud83d\\ude00"']),
    values.map(json.dumps),  # NaN and Infinity included: json.dumps writes them
)


@st.composite
def bodies(draw, template: str) -> bytes:
    """A body for one endpoint: the template with a hostile value in it, arbitrary bytes, or not UTF-8."""
    text = template.replace("VALUE", draw(hostile))
    kind = draw(st.sampled_from(["template", "bytes", "latin-1", "bad byte"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "latin-1":
        return text.replace('"', '"\xe9', 1).encode("latin-1", errors="replace")
    if kind == "bad byte":
        cut = draw(st.integers(0, len(text)))
        return (
            text[:cut].encode("utf-8", errors="surrogatepass") + b"\xff" + text[cut:].encode("utf-8", "surrogatepass")
        )
    return text.encode("utf-8", errors="surrogatepass")


content_types = st.sampled_from(
    [None, "application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded"]
)
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=150)


def check(answer, body: bytes | None = None) -> dict | list:
    assert answer.status_code in ANSWERED, (answer.status_code, answer.text[:500])
    assert len(answer.content) < 4_000, answer.text[:500]
    data = answer.json()
    if answer.status_code >= 400:
        assert data["detail"]
    if answer.status_code == 201 and body is not None:
        strictjson.parse(body)  # stored: it was strict JSON
    return data


def test_no_request_gets_a_500(project: Path, caplog) -> None:
    from sbdk.server import create_app

    caplog.set_level(logging.WARNING)
    edit_config(project, webhooks={"branch": WATCHED, "cors_origins": []})
    (project / ".env").write_text(f"SBDK_WEBHOOK_SECRET={SECRET}\n")
    app = create_app(load_settings(project / "sbdk_config.json"))

    with TestClient(app) as client:
        uuid = client.post("/register", json={"project": "demo"}).json()["uuid"]

        @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            register=bodies('{"project": VALUE, "sbdk_version": "0.1.0"}'),
            track=bodies('{"uuid": "UUID", "event": "dev", "properties": {"x": VALUE}}'),
            delivery=bodies('{"ref": "refs/heads/feature", "after": "abc", "repository": VALUE}'),
            content_type=content_types,
            event=st.one_of(st.sampled_from(["push", "ping", "issues", "x" * 15_000]), header_text),
            delivery_id=st.one_of(st.none(), header_text),
            run_id=st.text(max_size=300),
        )
        def requests(register, track, delivery, content_type, event, delivery_id, run_id) -> None:
            json_headers = {"Content-Type": content_type} if content_type else {}
            check(client.post("/register", content=register, headers=json_headers), register)
            track = track.replace(b"UUID", uuid.encode())
            check(client.post("/track/usage", content=track, headers=json_headers), track)

            signed = {
                **json_headers,
                "X-GitHub-Event": event,
                "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), delivery, hashlib.sha256).hexdigest(),
            }
            if delivery_id is not None:
                signed["X-GitHub-Delivery"] = delivery_id
            answer = check(client.post("/webhook/github", content=delivery, headers=signed))
            assert isinstance(answer, dict) and answer.get("status") != "queued"

            assert client.get("/runs/" + quote(run_id, safe="")).status_code in (404, 405)

        requests()

        health = client.get("/health").json()
        assert (health["running"], health["queued"], health["last_run"]) == (None, None, None)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
