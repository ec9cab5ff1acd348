"""download_result's destination: every name open() takes, and errors that name it."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from support import fast_client

import transactionlink_async._download.atomic as atomic
from transactionlink_async._download.atomic import AtomicFile, temporary_prefix
from transactionlink_async.testing import FakeTransactionLink, GeneratedJson

pytestmark = pytest.mark.anyio

NAME_MAX = 255


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def a_name(size: int, letter: str = "r") -> str:
    """A file name of exactly `size` bytes (UTF-8), ending in ".json"."""
    body = size - len(".json")
    width = len(letter.encode())
    return letter * (body // width) + "x" * (body % width) + ".json"


@pytest.mark.parametrize(
    "name",
    [a_name(240), a_name(241), a_name(250), a_name(255), a_name(255, "é"), a_name(254, "😀")],
    ids=["240", "241", "250", "255", "255-accents", "254-emoji"],
)
async def test_long_names_work(fake: FakeTransactionLink, tmp_path: Path, name: str) -> None:
    assert len(name.encode()) <= NAME_MAX
    execution_id = fake.create_execution()
    fake.set_large_result(execution_id, size=200_000)
    destination = tmp_path / name
    async with fast_client(fake) as tl:
        result = await tl.workflows.download_result(execution_id, destination)
    assert result.path == destination
    assert result.md5 == GeneratedJson(200_000).md5_hex()
    assert names(tmp_path) == [name]


@st.composite
def file_names(draw: st.DrawFn) -> str:
    """Names of any length up to the limit, long ones as often as short ones."""
    letters = st.characters(exclude_categories=["Cs"], exclude_characters="/\x00")
    piece = draw(st.text(letters, min_size=1, max_size=8))
    size = draw(st.integers(1, NAME_MAX))
    name = piece * (size // len(piece.encode()) + 1)
    while len(name.encode()) > size:
        name = name[:-1]
    assume(name not in ("", ".", ".."))
    return name


@settings(max_examples=60, deadline=None)
@given(name=file_names())
def test_any_name_open_takes_gets_a_temporary_file(name: str) -> None:
    prefix = temporary_prefix(name, NAME_MAX)
    assert prefix.startswith(".")
    assert prefix.endswith(".")
    assert ("." + name).startswith(prefix[:-1])
    with tempfile.TemporaryDirectory() as folder:
        destination = Path(folder) / name

        async def create_and_commit() -> None:
            file = await AtomicFile.create(destination)
            try:
                await anyio.to_thread.run_sync(file.write, [b"data"])
                await file.commit()
            finally:
                await file.discard()

        anyio.run(create_and_commit)
        assert destination.read_bytes() == b"data"
        assert os.listdir(folder) == [name]


async def test_a_missing_folder_is_named_as_given(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = fake.create_execution()
    destination = tmp_path / "missing" / "r.json"
    async with fast_client(fake) as tl:
        with pytest.raises(FileNotFoundError) as caught:
            await tl.workflows.download_result(execution_id, destination)
    assert caught.value.filename == str(destination)
    assert str(destination) in str(caught.value)
    assert ".part" not in str(caught.value)
    assert fake.journal == []


async def test_a_folder_is_named_as_given(fake: FakeTransactionLink, tmp_path: Path) -> None:
    execution_id = fake.create_execution()
    async with fast_client(fake) as tl:
        with pytest.raises(IsADirectoryError) as caught:
            await tl.workflows.download_result(execution_id, tmp_path)
    assert str(tmp_path) in str(caught.value)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores file permissions"
)
async def test_a_folder_without_permission_is_named_as_given(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = fake.create_execution()
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o500)
    destination = folder / "r.json"
    async with fast_client(fake) as tl:
        with pytest.raises(PermissionError) as caught:
            await tl.workflows.download_result(execution_id, destination)
    assert caught.value.filename == str(destination)
    assert ".part" not in str(caught.value)


class FailingOs(ModuleType):
    """The `os` module, but one call fails the way a full (or refusing) disk makes it fail."""

    def __init__(self, name: str, code: int) -> None:
        super().__init__("os")
        self._failing = name
        self._code = code

    def __getattr__(self, attribute: str) -> Any:
        real = getattr(os, attribute)
        if attribute != self._failing:
            return real

        def fail(*args: Any, **kwargs: Any) -> Any:
            # As the OS says it: about the file the call was made on (the temporary one).
            raise OSError(self._code, os.strerror(self._code), "/tmp/.r.json.abcdefgh.part")

        return fail


@pytest.mark.parametrize(
    ("call", "code"),
    [("write", errno.ENOSPC), ("fsync", errno.EIO), ("replace", errno.EACCES)],
    ids=["disk-full", "flush", "rename"],
)
async def test_a_failing_disk_is_told_about_the_destination(
    fake: FakeTransactionLink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    call: str,
    code: int,
) -> None:
    execution_id = fake.create_execution()
    fake.set_large_result(execution_id, size=100_000)
    destination = tmp_path / "r.json"
    monkeypatch.setattr(atomic, "os", FailingOs(call, code))
    async with fast_client(fake) as tl:
        with pytest.raises(OSError, match=os.strerror(code)) as caught:
            await tl.workflows.download_result(execution_id, destination)
    assert caught.value.errno == code
    assert caught.value.filename == str(destination)
    assert ".part" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert names(tmp_path) == []
