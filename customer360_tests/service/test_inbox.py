"""The inbox writer: durable complete lines, batch files that never change, one writer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from customer360.core.inbox import ACCEPTING_FILE
from customer360.service import inbox as inbox_module
from customer360.service.inbox import InboxBusyError, InboxWriteError, InboxWriter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def batch_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def test_lines_collect_in_a_hidden_file_until_rotation_makes_them_a_batch(tmp_path: Path):
    clock = Clock()
    writer = InboxWriter(tmp_path / "inbox", rotate_seconds=60, clock=clock)
    writer.append(b'{"n":1}\n')
    clock.now += 30
    writer.append(b'{"n":2}\n')
    assert batch_files(tmp_path / "inbox") == []  # readers and the sensor see nothing yet
    assert writer.rotate_if_due() is None

    clock.now += 30  # the first line is 60 s old
    batch = writer.rotate_if_due()
    assert batch is not None and batch.name.startswith("accepted-") and batch.suffix == ".ndjson"
    assert batch.read_bytes() == b'{"n":1}\n{"n":2}\n'
    assert batch_files(tmp_path / "inbox") == [batch]
    assert writer.rotate_if_due() is None  # nothing new to hand over

    writer.append(b'{"n":3}\n')
    writer.close()  # shutting down hands over what is left
    assert [p.read_bytes() for p in batch_files(tmp_path / "inbox")] == [
        b'{"n":1}\n{"n":2}\n',
        b'{"n":3}\n',
    ]


def test_a_second_writer_on_the_same_inbox_is_refused(tmp_path: Path):
    writer = InboxWriter(tmp_path, rotate_seconds=60)
    with pytest.raises(InboxBusyError, match="another customer360 serve is writing"):
        InboxWriter(tmp_path, rotate_seconds=60)
    writer.close()
    InboxWriter(tmp_path, rotate_seconds=60).close()  # free again


def test_a_half_written_line_from_a_crash_is_cut_off_and_the_rest_handed_over(tmp_path: Path):
    (tmp_path / ACCEPTING_FILE).write_bytes(b'{"n":1}\n{"n":2}\n{"n":')
    writer = InboxWriter(tmp_path, rotate_seconds=60)
    (batch,) = batch_files(tmp_path)
    assert batch.read_bytes() == b'{"n":1}\n{"n":2}\n'
    assert not (tmp_path / ACCEPTING_FILE).exists()
    writer.close()


def disk_full(descriptor: int) -> None:
    raise OSError(28, "No space left on device")


def test_a_failed_write_keeps_nothing_of_the_line(tmp_path: Path, monkeypatch):
    writer = InboxWriter(tmp_path, rotate_seconds=60)
    writer.append(b'{"n":1}\n')
    monkeypatch.setattr(inbox_module, "_sync", disk_full)
    with pytest.raises(InboxWriteError, match="No space left"):
        writer.append(b'{"n":2}\n')
    monkeypatch.undo()
    writer.append(b'{"n":3}\n')
    writer.close()
    (batch,) = batch_files(tmp_path)
    assert batch.read_bytes() == b'{"n":1}\n{"n":3}\n'


def test_after_a_crash_neither_reserved_space_nor_a_failed_line_is_read_back(tmp_path, monkeypatch):
    writer = InboxWriter(tmp_path, rotate_seconds=60)
    writer.append(b'{"n":1}\n')
    monkeypatch.setattr(inbox_module, "_sync", disk_full)  # the line is written, not synced
    with pytest.raises(InboxWriteError):
        writer.append(b'{"n":"a long line whose sync failed"}\n')
    monkeypatch.undo()
    writer.append(b'{"n":3}\n')
    os.close(writer._fd)  # noqa: SLF001 - the process dies: no rotation, the lock goes too
    writer._lock.close()  # noqa: SLF001

    InboxWriter(tmp_path, rotate_seconds=60).close()
    (batch,) = batch_files(tmp_path)
    assert batch.read_bytes() == b'{"n":1}\n{"n":3}\n'


def test_batch_files_are_never_overwritten_and_sort_in_the_order_they_were_made(tmp_path):
    writer = InboxWriter(tmp_path, rotate_seconds=60)
    for n in range(3):
        writer.append(f'{{"n":{n}}}\n'.encode())
        writer.rotate()
    writer.close()
    assert [p.read_bytes() for p in batch_files(tmp_path)] == [
        b'{"n":0}\n',
        b'{"n":1}\n',
        b'{"n":2}\n',
    ]
