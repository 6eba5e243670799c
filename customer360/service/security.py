"""The service's guards: an API key on every ``/v1`` call, and a cap on request bodies.

The key comes from the environment (``CUSTOMER360_API_KEY``), never from the spec or the
command line (both end up in shells' histories and process lists), and is compared in
constant time. Bodies are read up to the cap and refused with 413 beyond it, whether or
not the client declared a length.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import HTTPException, Security
from fastapi.security import APIKeyHeader

from customer360.service import API_KEY_ENV_VAR

API_KEY_HEADER = "X-API-Key"
MIN_API_KEY_LENGTH = 16

_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description=f"the service's key, as set in ${API_KEY_ENV_VAR} where it runs",
)


def api_key_problem(key: str | None) -> str | None:
    """Why a configured key cannot be used, or None when it can."""
    if not key:
        return (
            f"set {API_KEY_ENV_VAR} to a long random key (e.g. `python -c 'import secrets; "
            f"print(secrets.token_urlsafe(32))'`), or pass --no-auth to run without one"
        )
    if len(key) < MIN_API_KEY_LENGTH:
        return (
            f"{API_KEY_ENV_VAR} is shorter than {MIN_API_KEY_LENGTH} characters; use a long "
            "random key"
        )
    return None


def api_key_guard(expected: str | None) -> Callable[..., Awaitable[None]]:
    """A dependency that lets a request through only with the expected key in the
    ``X-API-Key`` header; ``None`` disables the check (``--no-auth``)."""
    expected_bytes = expected.encode() if expected is not None else None

    async def require_api_key(key: Annotated[str | None, Security(_header)]) -> None:
        if expected_bytes is None:
            return
        if key is None or not hmac.compare_digest(key.encode(), expected_bytes):
            raise HTTPException(
                status_code=401,
                detail=f"missing or wrong API key; send it in the {API_KEY_HEADER} header",
                headers={"WWW-Authenticate": API_KEY_HEADER},
            )

    return require_api_key


ASGIApp = Callable[[dict, Callable, Callable], Awaitable[None]]


class BodySizeLimit:
    """ASGI middleware: a request body larger than ``max_bytes`` gets 413 before the
    application reads any of it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large(send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Callable) -> None:
        payload = json.dumps(
            {"detail": f"request body larger than {self.max_bytes} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _content_length(scope: dict) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
