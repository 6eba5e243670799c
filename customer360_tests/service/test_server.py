"""`customer360 serve` as a real process: it binds loopback, needs its key, owns its
inbox alone, and hands over what it accepted when it stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from .conftest import API_KEY, JOHN, World, signup

STARTUP_SECONDS = 90


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(world: World, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "customer360.cli", "serve", "--spec", str(world.spec_path)]
    command += ["--artifacts", str(world.artifacts), "--port", str(port)]
    environment = {**os.environ, "CUSTOMER360_API_KEY": API_KEY}
    return subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)


def call(port: int, path: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-API-Key": API_KEY, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_until_ready(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stderr.read()
        try:
            if call(port, "/ready")[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.2)
    raise AssertionError("the service did not become ready")


def test_the_service_process_resolves_and_hands_its_records_over_on_stop(world: World) -> None:
    port = free_port()
    server = serve(world, port)
    try:
        wait_until_ready(port, server)
        status, body = call(port, "/v1/resolve", signup("S1", email="john@acme.com"))
        assert (status, body["resolved_id"]) == (200, JOHN)

        second = serve(world, free_port())  # the same inbox: refused
        assert second.wait(timeout=STARTUP_SECONDS) == 2
        assert "another customer360 serve is writing the inbox" in second.stderr.read()
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
    log = server.stderr.read()
    assert "Uvicorn running on http://127.0.0.1:" in log  # loopback by default
    assert "john@acme.com" not in log
    (batch,) = [p for p in world.inbox.iterdir() if not p.name.startswith(".")]
    assert json.loads(batch.read_text())["assigned_resolved_id"] == JOHN


def test_every_answered_record_survives_a_kill_and_replays_to_the_same_id(world: World) -> None:
    port = free_port()
    server = serve(world, port)
    try:
        wait_until_ready(port, server)
        answered = {
            n: call(port, "/v1/resolve", signup(f"K{n}", email=f"k{n}@new.org"))[1]["resolved_id"]
            for n in range(20)
        }
    finally:
        server.kill()  # SIGKILL: no shutdown, the open inbox file stays as it was
        server.wait(timeout=30)

    server = serve(world, port)
    try:
        wait_until_ready(port, server)
        replays = {
            n: call(port, "/v1/resolve", signup(f"K{n}", email=f"k{n}@new.org"))[1]
            for n in range(20)
        }
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    assert {n: r["resolved_id"] for n, r in replays.items()} == answered
    assert not any(r["is_new"] for r in replays.values())
    lines = [
        json.loads(line)
        for batch in sorted(p for p in world.inbox.iterdir() if not p.name.startswith("."))
        for line in batch.read_text().splitlines()
    ]
    assert [line["inbox_key"] for line in lines] == [f"web:K{n}" for n in range(20)]
