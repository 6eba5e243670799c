"""Running the service: one uvicorn worker on one inbox (the inbox allows one writer,
and the in-memory index is per process)."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from customer360.core.inbox import inbox_folder
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore
from customer360.service.app import create_app
from customer360.service.inbox import InboxWriter
from customer360.service.resolver import Resolver


def configure_logging() -> None:
    """Timestamped lines on stderr. Nothing the service logs holds a personal value."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def serve(spec: Spec, artifacts: Path, host: str, port: int, api_key: str | None) -> None:
    """Serve until interrupted; the inbox's open file becomes a batch file on the way out."""
    assert spec.service is not None, "the caller checks that the spec has a service section"
    inbox = InboxWriter(inbox_folder(spec), spec.service.inbox_rotate_seconds)
    resolver = Resolver(spec, ArtifactStore(artifacts), inbox)
    app = create_app(resolver, api_key, spec.service.max_body_bytes)
    # no access log: request lines carry lookup values in their query strings
    uvicorn.run(app, host=host, port=port, access_log=False, server_header=False)
