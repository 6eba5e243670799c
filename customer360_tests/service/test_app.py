"""The HTTP layer: routes, the API key, body limits, clear 422s, and logs without
personal values."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from customer360.service.app import create_app

from .conftest import API_KEY, JOHN, MAX_BODY_BYTES, World, signup


def test_resolve_returns_the_customer_and_is_idempotent(client: TestClient) -> None:
    first = client.post("/v1/resolve", json=signup("S1", email="JOHN@acme.com"))
    again = client.post("/v1/resolve", json=signup("S1", email="JOHN@acme.com"))
    assert first.status_code == again.status_code == 200
    body = first.json()
    assert {k: body[k] for k in ("resolved_id", "is_new", "matched_on", "confidence")} == {
        "resolved_id": JOHN,
        "is_new": False,
        "matched_on": ["email"],
        "confidence": 1.0,
    }
    assert body["profile"]["email_primary"] == "john@acme.com"
    assert body["profile"]["record_count"] == 4
    assert again.json()["resolved_id"] == JOHN and again.json()["matched_on"] == ["source_record"]

    created = client.post("/v1/resolve", json=signup("S2", email="zoe@new.org"))
    replay = client.post("/v1/resolve", json=signup("S2", email="zoe@new.org"))
    assert created.json()["is_new"] is True and replay.json()["is_new"] is False
    assert created.json()["resolved_id"] == replay.json()["resolved_id"] == "signups:web:S2"


def test_a_replay_with_other_data_is_a_409(client: TestClient) -> None:
    client.post("/v1/resolve", json=signup("S3", email="zoe@new.org"))
    response = client.post("/v1/resolve", json=signup("S3", email="zoe@other.org"))
    assert response.status_code == 409
    assert "accepted before with different data" in response.json()["detail"]


@pytest.mark.parametrize(
    "headers", [{}, {"X-API-Key": "wrong-key-0123456789"}, {"X-API-Key": ""}], ids=str
)
def test_every_v1_route_needs_the_api_key(client: TestClient, headers: dict) -> None:
    client.headers.pop("X-API-Key")
    for method, path, body in [
        ("POST", "/v1/resolve", signup("S4", email="zoe@new.org")),
        ("GET", "/v1/customers/" + JOHN, None),
        ("GET", "/v1/lookup?email=john@acme.com", None),
    ]:
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, path
        assert response.json()["detail"] == (
            "missing or wrong API key; send it in the X-API-Key header"
        )
    assert client.get("/health").status_code == 200  # operations stay open
    assert client.get("/ready").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_without_a_key_configured_auth_is_off(world: World) -> None:
    app = create_app(world.resolver(), None, MAX_BODY_BYTES)
    with TestClient(app) as open_client:
        response = open_client.post("/v1/resolve", json=signup("S5", email="zoe@new.org"))
    assert response.status_code == 200


def test_a_body_over_the_limit_is_a_413_declared_or_streamed(client: TestClient) -> None:
    big = signup("S6", first_name="x" * 900, email="a@b.org")
    big["data"]["padding"] = "y" * MAX_BODY_BYTES
    response = client.post("/v1/resolve", json=big)
    assert response.status_code == 413
    assert response.json() == {"detail": f"request body larger than {MAX_BODY_BYTES} bytes"}

    def chunks():  # no content-length: the body arrives in pieces
        for _ in range(5):
            yield b"x" * 1024

    streamed = client.post(
        "/v1/resolve", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


def test_invalid_input_is_a_422_naming_each_field_without_its_value(client: TestClient) -> None:
    response = client.post(
        "/v1/resolve",
        json={
            "source": "Web Shop",
            "external_id": " 12",
            "data": {"emial": "private@example.org", "phone": 5551234567},
        },
    )
    assert response.status_code == 422
    problems = {p["loc"]: p["message"] for p in response.json()["detail"]}
    assert problems == {
        "body.source": "String should match pattern '^[a-z][a-z0-9_]*$'",
        "body.external_id": "must not start or end with whitespace",
        "body.data.emial": "unknown field; see the OpenAPI schema (/docs) for the accepted fields",
        "body.data.phone": "Input should be a valid string",
    }
    assert "private@example.org" not in response.text and "5551234567" not in response.text

    empty = client.post("/v1/resolve", json=signup("S7", email=None))
    assert empty.status_code == 422
    assert "data holds no value; send at least one of: email, first_name" in empty.text
    missing = client.post("/v1/resolve", json={"source": "web"})
    assert {p["loc"] for p in missing.json()["detail"]} == {"body.external_id", "body.data"}


def test_lookup_by_identifiers(client: TestClient) -> None:
    response = client.get("/v1/lookup", params={"email": "John@Acme.com", "phone": "555-123-4567"})
    assert response.status_code == 200
    assert response.json() == {
        "resolved_ids": [JOHN],
        "identifiers": [
            {"identifier_type": "email", "status": "linkable", "resolved_id": JOHN},
            {"identifier_type": "phone", "status": "linkable", "resolved_id": JOHN},
        ],
    }
    excluded = client.get("/v1/lookup", params={"email": "noreply@acme.com"}).json()
    assert excluded == {
        "resolved_ids": [],
        "identifiers": [{"identifier_type": "email", "status": "excluded", "resolved_id": None}],
    }
    assert client.get("/v1/lookup").status_code == 422
    unknown = client.get("/v1/lookup", params={"mail": "x@y.org"})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == "query.mail"


def test_customer_profile_members_and_lineage(client: TestClient) -> None:
    response = client.get(f"/v1/customers/{JOHN}")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "active"
    assert body["profile"]["email_primary"] == "john@acme.com"
    assert len(body["members"]) == 4 and len(body["lineage"]) == 4
    created = client.post("/v1/resolve", json=signup("a/b#1", email="zoe@new.org")).json()
    pending = client.get("/v1/customers/" + created["resolved_id"].replace("#", "%23"))
    assert pending.json()["status"] == "pending"
    assert pending.json()["members"][0]["entity_key"] == "signups:web:a/b#1"
    assert client.get("/v1/customers/crm_customers:NOBODY").status_code == 404


def test_health_ready_and_the_openapi_schema(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready["ready"] is True and ready["graph_records"] == 10
    schema = client.get("/openapi.json").json()
    assert {"/v1/resolve", "/v1/customers/{resolved_id}", "/v1/lookup", "/health", "/ready"} <= set(
        schema["paths"]
    )
    data = schema["components"]["schemas"]["ResolveData"]["properties"]
    assert sorted(data) == ["email", "first_name", "loyalty_id", "phone"]
    assert "APIKeyHeader" in schema["components"]["securitySchemes"]


def test_not_ready_before_a_graph_is_published(world: World, tmp_path) -> None:
    world.artifacts = tmp_path / "nothing_yet"
    with TestClient(create_app(world.resolver(), API_KEY, MAX_BODY_BYTES)) as fresh:
        assert fresh.get("/ready").status_code == 503
        response = fresh.post(
            "/v1/resolve", json=signup("S8", email="a@b.org"), headers={"X-API-Key": API_KEY}
        )
    assert response.status_code == 503 and "no published graph" in response.json()["detail"]


def test_logs_never_hold_personal_values(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = ["zoe.private@example.org", "Zoe", "S-secret-42", "2125550123"]
    client.post(
        "/v1/resolve",
        json=signup("S-secret-42", email=secrets[0], first_name="Zoe", phone=secrets[3]),
    )
    client.get("/v1/lookup", params={"email": secrets[0]})
    client.post("/v1/resolve", json=signup("S-secret-42", email="changed@example.org"))
    invalid = {"source": "web", "external_id": "x", "data": {"bad": secrets[0]}}
    client.post("/v1/resolve", json=invalid)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "resolve source=web" in logged  # the service does log its requests
    assert not [secret for secret in secrets if secret in logged]
