"""Hostile and extreme input on the musician's commands: every file of the sample of the hostile
corpus (tests/hostile_corpus.py) is handled or refused in one `Error:` line, in a fresh `gen`
process each, without a traceback, a hang, or anything left in the output folder; and the corpus
itself is what benchmarks/hostile_corpus.py runs on (deterministic, over 300 files).

The command runs take about 3 minutes in all on two cores when every run passes (continue and
vary load their models for each file; a hang costs LIMIT_S more); the whole corpus, on every
command, is the benchmark's: python benchmarks/hostile_corpus.py.
"""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

import mido
import pytest

from .hostile_corpus import COMMANDS, _many_notes, FAILURES, classify, plan, run_one, shown_lines, write_corpus

TESTED = ("continue", "vary", "humanize", "tidy", "score", "plot")
LIMIT_S = 30  # the slowest sample file takes under 10 s on any of these; a hang stops here
LIMIT_MB = 2048


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> list[Path]:
    return write_corpus(tmp_path_factory.mktemp("hostile"), seed=0, size="sample")


@pytest.mark.parametrize("command", TESTED)
def test_every_sample_file_is_handled_or_refused_in_one_line(command: str, sample: list[Path], tmp_path: Path) -> None:
    must_accept = {e.name for e in plan("sample") if e.must_accept}
    runs = [run_one(command, path, tmp_path, LIMIT_S, LIMIT_MB, path.name in must_accept) for path in sample]
    failed = [r for r in runs if r.outcome in FAILURES]
    assert not failed, f"{len(failed)} of {len(runs)} runs failed:\n" + "\n".join(
        f"{r.outcome}: {r.file.name} ({r.seconds:.1f} s, {r.peak_mb:.0f} MB): {r.last_line}\n    {r.reproduce()}"
        for r in failed)
    assert {r.outcome for r in runs} <= {"ok", "refused"}
    for run in runs:
        if run.outcome == "refused":  # the line names the file
            assert run.last_line.startswith(f"Error: {run.file}"), (run.file.name, run.last_line)
    assert list(tmp_path.iterdir()) == []  # each run's output folder went with it, empty


def test_the_full_corpus_has_over_300_named_files_and_the_sample_covers_every_category() -> None:
    full, sample = plan("full"), plan("sample")
    names = [e.name for e in full]
    assert len(full) >= 300 and len(set(names)) == len(names)
    assert all(name.endswith(".mid") and "/" not in name for name in names)
    assert 25 <= len(sample) <= 40 and {e.name for e in sample} <= set(names)
    assert {e.category for e in sample} == {e.category for e in full}
    heaviest = ("notes-500000", "notes-2000001", "dense-one-hour", "mt3-like-16", "mt3-like-64")
    assert not any(e.name.startswith(heaviest) for e in sample)
    assert {e.name for e in full if e.must_accept} >= {f"mt3-like-{n}.mid" for n in
                                                       ("1-minute", "4-minutes", "16-minutes", "64-minutes")}
    for name in ("tempo-zero-at-tick-0.mid", "tempo-zero-mid-file.mid", "time-signature-255-4.mid", "zero-tracks.mid",
                 "empty-file.mid", "png-header.mid", "ticks-per-beat-0.mid", "notes-500000.mid",
                 "dense-one-hour-230400-notes-4-instruments.mid", "instruments-200-tracks-16-channels.mid"):
        assert name in names
    assert sum(name.startswith("truncated-") for name in names) >= 100
    assert sum(name.startswith("byte-flipped-") for name in names) >= 100


def _digests(paths: list[Path]) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_the_corpus_is_the_same_for_a_seed_and_the_sample_is_part_of_it(tmp_path: Path) -> None:
    first = _digests(write_corpus(tmp_path / "a", seed=0))
    assert len(first) == len(plan("full")) >= 300
    assert _digests(write_corpus(tmp_path / "b", seed=0)) == first
    sample = _digests(write_corpus(tmp_path / "sample", seed=0, size="sample"))
    assert sample == {name: first[name] for name in sample}
    other = _digests(write_corpus(tmp_path / "c", seed=1, size="sample"))
    assert other != sample  # the damage is drawn from the seed


def test_the_extreme_but_valid_files_are_valid_midi(tmp_path: Path) -> None:
    """mido reads them as written (the heavy ones share their builders with these: mido takes
    half a minute over 500,000 notes)."""
    names = {"mt3-like-1-minute.mid": 1, "mt3-like-4-minutes.mid": 4, "mt3-like-16-minutes.mid": 16}
    paths = {p.name: p for p in write_corpus(tmp_path, seed=0)}
    for name, minutes in names.items():
        midi = mido.MidiFile(paths[name])
        assert midi.ticks_per_beat == 220 and abs(midi.length - 60 * minutes) < 10
        ons = [m for t in midi.tracks for m in t if m.type == "note_on" and m.velocity]
        assert {m.velocity for m in ons} == {127} and any(m.channel == 9 for m in ons)
        assert len({m.program for t in midi.tracks for m in t if m.type == "program_change"}) >= 4
        metas = [m.type for t in midi.tracks for m in t if m.type in ("set_tempo", "time_signature")]
        assert sorted(metas) == ["set_tempo", "time_signature"]
    for name, notes in (("dense-one-minute-3840-notes-4-instruments.mid", 3840),
                        ("chords-of-128-notes.mid", 16 * 128 + 8 * 12),
                        ("instruments-200-tracks-16-channels.mid", None), ("type-0-three-channels-mido.mid", None),
                        ("ticks-per-beat-32767.mid", None)):
        midi = mido.MidiFile(paths[name])
        count = sum(1 for t in midi.tracks for m in t if m.type == "note_on" and m.velocity)
        assert count == (notes or count) and count > 0, name
        assert midi.length < 180 * 60  # under the length limit: these test the other limits, or none
    assert len(mido.MidiFile(paths["instruments-200-tracks-16-channels.mid"]).tracks) == 201
    for count, per_step in ((1000, 8), (77, 16)):  # the builder of the 500,000 and 2,000,001 notes
        midi = mido.MidiFile(file=io.BytesIO(_many_notes(count, per_step)(random.Random(0))))
        assert sum(1 for t in midi.tracks for m in t if m.type == "note_on" and m.velocity) == count


@pytest.mark.parametrize("stderr, returncode, outcome", [
    ("Error: song.mid: it has no notes\n", 1, "refused"),
    (" 40%|####      | 4/10 [00:01<00:02]\r100%|##########| 10/10 [00:02<00:00]\nError: song.mid: bad\n", 1, "refused"),
    ("Models: drums=groove-4bar (bundled)\nError: song.mid: it has no notes\n", 1, "refused"),
    ("Error: song.mid: bad\nError: song.mid: worse\n", 1, "multi-line"),
    ("Error: song.mid: bad\nvariation 2/2 (seed 1):\n", 1, "multi-line"),
    ("x.py:3: RuntimeWarning: odd\n  warnings.warn(w)\nError: song.mid: bad\n", 1, "multi-line"),
    ("Usage: gen tidy [OPTIONS] TRANSCRIPTION\nTry 'gen tidy -h' for help.\n\nError: Invalid value\n", 2, "multi-line"),
    ("Killed\n", 1, "multi-line"),
    ("Traceback (most recent call last):\n  File \"cli.py\", line 1\nValueError: x\n", 1, "traceback"),
    ("Traceback (most recent call last):\nValueError: x\n", 0, "traceback"),
    ("", 0, "ok"),
])
def test_a_run_is_classified_by_its_exit_and_what_stderr_shows(stderr: str, returncode: int, outcome: str) -> None:
    assert classify(returncode, stderr, returncode == 0, [], False, False) == outcome


def test_time_memory_and_leftovers_come_before_the_message() -> None:
    assert classify(-9, "", False, ["out.mid.tmp"], True, False) == "timeout"
    assert classify(-9, "", False, [], False, True) == "memory"
    assert classify(1, "Error: x.mid: bad\n", False, ["out.mid"], False, False) == "leftover"
    assert classify(0, "", False, [], False, False) == "no-output"
    assert classify(1, "Error: x.mid: bad\n", False, [], False, False, must_accept=True) == "refused-valid"
    assert classify(1, "Models: ...\nError: x.mid: bad\n", False, [], False, False, must_accept=True) == "refused-valid"
    limit = "Error: x.mid: a score of 1,542 bars; at most 500 ... (raise the limit with GEN_MAX_SCORE_BARS=N)\n"
    assert classify(1, limit, False, [], False, False, must_accept=True) == "refused"  # a stated limit
    assert shown_lines("a\r b \n\n  \nc") == ["b", "c"]


def test_the_runner_kills_a_run_at_its_limit_and_reads_its_memory(tmp_path: Path, monkeypatch) -> None:
    import sys
    monkeypatch.setitem(COMMANDS, "sleep", lambda f, d: (["-c", "import time; time.sleep(30)"], d / "out"))
    monkeypatch.setattr("tests.hostile_corpus.gen_command", lambda: [sys.executable])
    run = run_one("sleep", tmp_path / "x.mid", tmp_path, limit_s=1)
    assert run.outcome == "timeout" and run.seconds < 5 and run.peak_mb > 1
    monkeypatch.setitem(COMMANDS, "grow", lambda f, d: (["-c", "b = bytearray(300 << 20); import time; time.sleep(30)"],
                                                         d / "out"))
    run = run_one("grow", tmp_path / "x.mid", tmp_path, limit_s=20, limit_mb=200)
    assert run.outcome == "memory" and run.seconds < 15 and run.peak_mb > 200
    monkeypatch.setitem(COMMANDS, "litter", lambda f, d: (
        ["-c", "import sys; open('out.tmp', 'w').write('x'); print('Error: x.mid: bad', file=sys.stderr); sys.exit(1)"],
        d / "out"))
    run = run_one("litter", tmp_path / "x.mid", tmp_path)
    assert run.outcome == "leftover" and run.leftovers == ["out.tmp"]
    assert list(tmp_path.iterdir()) == []
