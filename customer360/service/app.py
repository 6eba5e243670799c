"""The HTTP layer: request and response models, routes, guards and errors — the rules
themselves live in :mod:`customer360.service.resolver`.

The request models are built from the spec: ``data`` accepts exactly the columns the
inbox source maps, and ``/v1/lookup`` exactly the identifier types, so the OpenAPI
schema documents them and anything else is a 422 naming the field. Error bodies never
echo the values sent (they may be personal), and no log line carries them either.

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations,
and the request models are classes built at run time from the spec.
"""

import hashlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Self

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from customer360.core.records import MAX_VALUE_CHARS
from customer360.core.spec import NAME_PATTERN
from customer360.service.inbox import InboxWriteError
from customer360.service.resolver import (
    ForgottenRecordError,
    NotReadyError,
    ReplayConflictError,
    Resolver,
)
from customer360.service.security import BodySizeLimit, api_key_guard

log = logging.getLogger("customer360.service")

MAX_EXTERNAL_ID_LENGTH = 256
# The resolver's refusals and the status each answers with.
REFUSAL_STATUS: dict[type[Exception], int] = {
    NotReadyError: 503,
    ReplayConflictError: 409,
    ForgottenRecordError: 410,
}
MAINTENANCE_SECONDS = 1.0


class ConflictOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    resolved_id: str
    matched_on: list[str]


class ResolveResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    resolved_id: str = Field(description="the customer the record belongs to")
    is_new: bool = Field(description="true only on the call that created the customer")
    matched_on: list[str] = Field(
        description="identifier types whose values point at this customer, or "
        "['source_record'] when the record itself was seen before"
    )
    matched_entity_key: str | None = Field(description="the record that holds the match")
    confidence: float = Field(
        description="1.0 for an unambiguous exact match or a new customer; when the "
        "record's identifiers reach several customers, the share of its links (identifier "
        "type reaching a customer) that point at this one"
    )
    conflicts: list[ConflictOut] = Field(
        description="other customers the record's identifiers point at; the next batch run "
        "merges them into this one"
    )
    profile: dict[str, Any] | None = Field(
        description="the golden profile, or a provisional one (provisional: true) for a "
        "customer the batch has not built yet"
    )


class LookupMatchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    identifier_type: str
    status: str = Field(
        description="linkable, guarded (records naming different people share it: no one "
        "customer holds it), oversize, inactive, invalid or excluded"
    )
    resolved_id: str | None


class LookupResponse(BaseModel):
    resolved_ids: list[str]
    identifiers: list[LookupMatchOut]


class CustomerResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    resolved_id: str
    status: str = Field(description="active, pending (not in the graph yet) or retired")
    profile: dict[str, Any] | None
    members: list[dict[str, Any]]
    lineage: list[dict[str, Any]]
    superseded_by: list[str] = Field(description="for a retired id: who holds its records now")


def create_app(resolver: Resolver, api_key: str | None, max_body_bytes: int) -> FastAPI:
    """The service over one resolver; ``api_key`` None disables authentication."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = threading.Thread(
            target=_maintain, args=(resolver, stop), name="customer360-maintenance", daemon=True
        )
        thread.start()
        yield
        stop.set()
        thread.join()
        resolver.close()

    app = FastAPI(
        title="customer360 resolve service",
        summary="Resolve one customer record in real time against the published identity graph.",
        version="1",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    authenticated = [Depends(api_key_guard(api_key))]
    request_model = _resolve_request_model(resolver.mapper.columns)
    lookup_model = _lookup_query_model(list(resolver.spec.identifier_types))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _problems(exc)})

    async def refused(_: Request, exc: Exception) -> JSONResponse:
        """The resolver's refusals, whose messages hold no personal value, as they are."""
        return JSONResponse(status_code=REFUSAL_STATUS[type(exc)], content={"detail": str(exc)})

    for refusal in REFUSAL_STATUS:
        app.add_exception_handler(refusal, refused)

    @app.exception_handler(InboxWriteError)
    async def not_stored(_: Request, exc: InboxWriteError) -> JSONResponse:
        log.error("inbox write failed: %s", exc)
        return JSONResponse(
            status_code=503,
            content={"detail": "the record could not be stored, nothing was accepted; retry"},
        )

    @app.post("/v1/resolve", dependencies=authenticated, tags=["resolve"])
    async def resolve(body: request_model) -> ResolveResponse:  # type: ignore[valid-type]
        """Resolve one record; idempotent on (source, external_id)."""
        started = time.perf_counter()
        data = body.data.model_dump(by_alias=True, exclude_none=True)
        result = resolver.resolve(body.source, body.external_id, data)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "resolve source=%s external_id=#%s new=%s matched_on=%s %.2f ms",
                body.source,
                hashlib.blake2b(body.external_id.encode(), digest_size=6).hexdigest(),
                result.is_new,
                ",".join(result.matched_on) or "-",
                (time.perf_counter() - started) * 1000,
            )
        return ResolveResponse.model_validate(result)

    @app.get("/v1/customers/{resolved_id:path}", dependencies=authenticated, tags=["customers"])
    def customer(resolved_id: str) -> CustomerResponse:
        """A customer's golden profile, records (members) and lineage of ids."""
        # a plain def: FastAPI runs it in a worker thread, so reading the lineage table
        # (tens of ms on a large graph) does not hold up resolves on the event loop
        view = resolver.customer(resolved_id)
        if view is None:
            raise HTTPException(status_code=404, detail="no customer with this resolved_id")
        return CustomerResponse.model_validate(view)

    @app.get("/v1/lookup", dependencies=authenticated, tags=["customers"])
    async def lookup(query: Annotated[lookup_model, Query()]) -> LookupResponse:  # type: ignore[valid-type]
        """The customers holding the given identifier values (normalized like the data)."""
        values = query.model_dump(exclude_none=True)
        if not values:
            raise HTTPException(
                status_code=422,
                detail="give at least one identifier: " + ", ".join(resolver.spec.identifier_types),
            )
        matches = resolver.lookup(values)
        found = list(dict.fromkeys(m.resolved_id for m in matches if m.resolved_id))
        return LookupResponse(
            resolved_ids=found, identifiers=[LookupMatchOut.model_validate(m) for m in matches]
        )

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        """The process is up (it may still be loading the graph: see /ready)."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"])
    async def ready() -> JSONResponse:
        """200 once a published graph is loaded and requests can be resolved, else 503."""
        status = resolver.status()
        return JSONResponse(status_code=200 if status["ready"] else 503, content=status)

    return app


def _resolve_request_model(columns: list[str]) -> type[BaseModel]:
    """``{source, external_id, data}`` with ``data`` holding the inbox source's columns."""
    data_fields: dict[str, Any] = {
        f"field_{i}": (
            str | None,
            Field(default=None, alias=column, max_length=MAX_VALUE_CHARS),
        )
        for i, column in enumerate(columns)
    }
    data_model = create_model(
        "ResolveData", __config__=ConfigDict(extra="forbid", frozen=True), **data_fields
    )

    class ResolveRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        source: Annotated[
            str,
            Field(
                pattern=NAME_PATTERN,
                max_length=64,
                description="the calling system, lower_snake_case (e.g. web, mobile_app)",
            ),
        ]
        external_id: Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_EXTERNAL_ID_LENGTH,
                description="the record's id in the calling system",
            ),
        ]
        data: data_model = Field(  # type: ignore[valid-type]
            description="the record's fields: " + ", ".join(columns)
        )

        @field_validator("external_id")
        @classmethod
        def _plain_text(cls, external_id: str) -> str:
            if external_id != external_id.strip():
                raise ValueError("must not start or end with whitespace")
            if any(ord(char) < 32 or ord(char) == 127 for char in external_id):
                raise ValueError("must not contain control characters")
            return external_id

        @model_validator(mode="after")
        def _some_data(self) -> Self:
            if not self.data.model_dump(exclude_none=True):
                raise ValueError("data holds no value; send at least one of: " + ", ".join(columns))
            return self

    return ResolveRequest


def _lookup_query_model(identifier_types: list[str]) -> type[BaseModel]:
    fields: dict[str, Any] = {
        name: (str | None, Field(default=None, max_length=MAX_VALUE_CHARS))
        for name in identifier_types
    }
    return create_model("LookupQuery", __config__=ConfigDict(extra="forbid"), **fields)


def _problems(exc: RequestValidationError) -> list[dict[str, str]]:
    """Each problem as where and what, without the value that was sent."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            message = "unknown field; see the OpenAPI schema (/docs) for the accepted fields"
        elif error.get("type") == "missing":
            message = "required; add it"
        problems.append({"loc": where, "message": message})
    return problems


def _maintain(resolver: Resolver, stop: threading.Event) -> None:
    """Rotate the inbox and pick up newly published graphs, about once a second."""
    while True:
        try:
            resolver.maintain()
        except Exception:  # a failing tick must not end the thread; the next one retries
            log.exception("maintenance tick failed")
        if stop.wait(MAINTENANCE_SECONDS):
            return
