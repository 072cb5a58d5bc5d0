"""Extreme and damaged pieces on the musician's commands: one line naming the file, the limit and the
value, before any analysis; nothing written; a documented variable raises a limit."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest

from .test_cli import run


def piece(path: Path, extra: list | None = None, gap: int = 0) -> Path:
    """32 eighth notes at 480 ticks per quarter; `extra` meta events first; `gap` ticks of silence
    before the last note."""
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.extend(extra or [])
    for i in range(32):
        track.append(mido.Message("note_on", note=60 + i % 7, velocity=90, time=gap if i == 31 else (0 if i == 0 else 240)))
        track.append(mido.Message("note_off", note=60 + i % 7, velocity=0, time=240))
    midi.save(path)
    return path


CASES = {
    "tempo_of_60_million.mid": ([mido.MetaMessage("set_tempo", tempo=1)], 0,
                                "a tempo of 6e+07 quarter notes per minute at 0.000 s; tempos from 1 to 2000"),
    "meter_255_4.mid": ([mido.MetaMessage("time_signature", numerator=255, denominator=4)], 0,
                        "a time signature of 255/4 at 0.000 s; numerators 1 to 64"),
    "note_at_tick_2_28.mid": ([], 2 ** 28 - 20_000, "its last note ends at 4,660.2 minutes; at most 180 minutes are accepted (raise the limit with GEN_MAX_MINUTES=N)"),
}


@pytest.mark.parametrize("command", ["continue", "vary", "tidy", "score", "plot"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_piece_past_a_limit_is_one_line_naming_it(command: str, name: str, tmp_path: Path) -> None:
    extra, gap, words = CASES[name]
    song = piece(tmp_path / name, extra, gap)
    out = tmp_path / ("out.musicxml" if command == "score" else "out.png" if command == "plot" else "out.mid")
    result = run(command, str(song), "-o", str(out))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: {song}: {words}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_limit_is_raised_by_its_variable(tmp_path: Path, monkeypatch) -> None:
    song = piece(tmp_path / "long.mid", gap=2 ** 28 - 20_000)
    monkeypatch.setenv("GEN_MAX_MINUTES", "6000")
    result = run("tidy", str(song), "-o", str(tmp_path / "clean.mid"))
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("GEN_MAX_MINUTES", "many")
    result = run("tidy", str(song), "-o", str(tmp_path / "again.mid"))
    assert result.exit_code == 1 and "GEN_MAX_MINUTES: the environment variable must be a number" in result.stderr


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bantry_lasses.mid"  # 8 bars, 17 s


@pytest.mark.parametrize("command, variable, value, words, within", [
    ("score", "GEN_MAX_SCORE_BARS", "4", "a score of 8 bars; at most 4 are printed at once (choose them with "
     "--from-bar and --bars, or raise the limit with GEN_MAX_SCORE_BARS=N)", ["--bars", "4"]),
    ("render", "GEN_MAX_RENDER_MINUTES", "0.2", "it plays for 0.3 minutes; at most 0.2 minutes of audio are accepted "
     "(render it in shorter parts, or raise the limit with GEN_MAX_RENDER_MINUTES=N)", None),
])
def test_work_past_a_commands_limit_is_refused_before_it_starts(command: str, variable: str, value: str, words: str,
                                                                within: list | None, tmp_path: Path,
                                                                monkeypatch) -> None:
    """The limits on work (bars engraved, minutes synthesized), lowered here so that the example
    passes them; the choice that keeps within the limit runs."""
    monkeypatch.setenv(variable, value)
    out = tmp_path / {"score": "out.musicxml", "render": "out.wav"}.get(command, "out.mid")
    result = run(command, str(EXAMPLE), "-o", str(out))
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()  # vary's progress lines come first
    assert lines[-1] == f"Error: {EXAMPLE}: {words}" and not any(line.startswith("Error") for line in lines[:-1])
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())
    if within is not None:
        result = run(command, str(EXAMPLE), "-o", str(out), *within)
        assert result.exit_code == 0, result.output


def test_vary_past_its_bar_limit_tries_only_that_many_bars_and_says_so(tmp_path: Path, monkeypatch) -> None:
    import json

    monkeypatch.setenv("GEN_MAX_RESAMPLED_BARS", "3")
    result = run("vary", str(EXAMPLE), "-o", str(tmp_path / "out.mid"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.splitlines()[-1])
    tried = [int(what.split(" of ")[1].split()[0]) for label, what in report["changed"].items()
             if "chosen bars re-sampled" in what]
    assert sum(tried) == 3, report["changed"]
    words = ("--amount 0.5 chose 10 bars (53 notes) in 3 pitched tracks; only 3 of them, spread over the piece, "
             "were tried (at most 3 bars and 12,000 notes in one run: lower --amount or choose --tracks, or raise "
             "the limits with GEN_MAX_RESAMPLED_BARS=N and GEN_MAX_RESAMPLED_NOTES=N)")
    assert report["warnings"] == [words]
    text = run("vary", str(EXAMPLE), "-o", str(tmp_path / "again.mid"))
    assert f"  warning: {words}" in text.stdout.splitlines()
