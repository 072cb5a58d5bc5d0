"""Outputs under faults: a read-only or full folder, two processes writing one output. Each gives a
one-line error or a complete file, and never leaves a half-written or temporary file behind."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLE = REPOSITORY / "examples" / "bantry_lasses.mid"


def gen(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPOSITORY / "cli.py"), *arguments], capture_output=True, text=True,
                          timeout=300)


def mounted(folder: Path, options: str) -> Iterator[Path]:
    """A small tmpfs at `folder` (root only: a read-only or full disk cannot be made otherwise, and
    root ignores file permissions)."""
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    yield from mounted(tmp_path / "read-only", "ro,size=64k")


@pytest.fixture
def full(tmp_path: Path) -> Iterator[Path]:
    yield from mounted(tmp_path / "full", "size=16k")  # room for a MIDI file, not for audio or a score


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def test_a_read_only_folder_is_one_line_and_nothing_is_written(read_only: Path) -> None:
    for command, name in (("tidy", "x.mid"), ("score", "x.musicxml"), ("continue", "x.mid")):
        line = one_error_line(gen(command, str(EXAMPLE), "-o", str(read_only / name)))
        assert line == f"Error: {read_only / name}: cannot write: folder {read_only} is not writable"
    assert not os.listdir(read_only)


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(full: Path) -> None:
    line = one_error_line(gen("score", str(EXAMPLE), "-o", str(full / "x.musicxml")))
    assert line == f"Error: {full / 'x.musicxml'}: cannot write: no space left on device"
    assert not os.listdir(full)  # the temporary file is gone too
    done = gen("tidy", str(EXAMPLE), "-o", str(full / "x.mid"))  # a small file still fits
    assert done.returncode == 0, done.stderr
    assert os.listdir(full) == ["x.mid"]


def test_two_processes_writing_one_output_leave_one_complete_file(tmp_path: Path) -> None:
    from generation.io.readers import read_music_file

    out = tmp_path / "x.mid"
    command = [sys.executable, str(REPOSITORY / "cli.py"), "continue", str(EXAMPLE), "-o", str(out)]
    first = subprocess.Popen([*command, "--seed", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen([*command, "--seed", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = [(p.wait(timeout=300), p.stderr.read()) for p in (first, second)]
    for status, errors in results:  # each wrote its file, or found the other's there already
        assert status == 0 or (status == 1 and "exists already; give --force to replace it" in errors), errors
        assert "Traceback" not in errors
    assert any(status == 0 for status, _ in results)
    assert os.listdir(tmp_path) == ["x.mid"]
    assert read_music_file(out).sequences[0].notes  # whole: it reads back
