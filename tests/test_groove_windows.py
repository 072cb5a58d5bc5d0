"""Whole-piece GrooVAE jobs keep the drums in time: each window on its own bars, on the piece's grid.

The bundled models (`groove-humanize`, `groove-4bar`) play the Groove fixtures, the README's example
and an MT3-style copy at 135 bpm; the output's drums must span the input's bars and stay on its beats.
"""

from __future__ import annotations

import numpy as np
import pytest

from generation.io.midi import midi_to_note_sequence
from generation.io.readers import read_music_file
from generation.music_vae import TrainedModel
from generation.music_vae.tasks import humanize, regroove
from generation.protos import NoteSequence
from generation.transcription import analyse, mt3_style_midi

from .conftest import FIXTURES

ROOT = FIXTURES.parent.parent
FUNK = FIXTURES / "groove" / "drummer1" / "eval_session" / "1_funk-groove1_138_beat_4-4.mid"
FILL = FIXTURES / "groove" / "drummer7" / "session3" / "98_hiphop_70_fill_4-4.mid"
BANTRY = ROOT / "examples" / "bantry_lasses.mid"
# A real MT3 transcription (strings, choir, piano, guitar, bass, drums), test input only: not in a clone.
VIVALAVIDA = ROOT.parent / "shared" / "mt3" / "multi_instrument_vivalavida.mid"


@pytest.fixture(scope="module")
def models() -> dict[str, TrainedModel]:
    return {name: TrainedModel(None, batch_size=64, checkpoint_dir_or_path=name, given_hits=True)
            for name in ("groove-humanize", "groove-4bar")}


def mt3_copy_at(path, bpm: float) -> NoteSequence:
    """The file's music played at `bpm` (times scaled), written as MT3 writes: 120 bpm, 4/4, 220 ticks."""
    sequence = read_music_file(path).sequences[0]
    scale = sequence.tempos[0].qpm / bpm
    for note in sequence.notes:
        note.start_time *= scale
        note.end_time *= scale
    return midi_to_note_sequence(mt3_style_midi(sequence), "mt3_copy.mid")


def drum_onsets(sequence: NoteSequence) -> np.ndarray:
    return np.sort([n.start_time for n in sequence.notes if n.is_drum])


def drum_bars(sequence: NoteSequence, analysis) -> set[int]:
    """Grid bars with a drum onset, each onset in the bar of its nearest 16th."""
    step = analysis.bar_seconds / 16
    return {int(np.floor((analysis.to_grid(t) + step / 2) / analysis.bar_seconds)) for t in drum_onsets(sequence)}


def in_bars(sequence: NoteSequence, analysis, bars: set[int]) -> bool:
    """Every drum onset in one of `bars`, where an onset half a 16th from a bar line may count on either side
    (a humanized hit is played up to half a step early or late)."""
    step = analysis.bar_seconds / 16
    grid = np.array([analysis.to_grid(t) for t in drum_onsets(sequence)])
    early = np.floor((grid + 0.51 * step) / analysis.bar_seconds)
    late = np.floor((grid + 0.49 * step) / analysis.bar_seconds)
    return all(int(a) in bars or int(b) in bars for a, b in zip(early, late))


def inputs():
    return [("funk", read_music_file(FUNK).sequences[0]), ("fill", read_music_file(FILL).sequences[0]),
            ("bantry", read_music_file(BANTRY).sequences[0]), ("funk at 135 bpm, MT3-style", mt3_copy_at(FUNK, 135.0))]


@pytest.mark.parametrize("label, sequence", inputs(), ids=lambda v: v if isinstance(v, str) else "")
def test_humanized_drums_span_the_input_and_stay_on_its_hits(models, label, sequence) -> None:
    result = humanize(models["groove-humanize"], sequence, seed=0)
    analysis = result.analysis
    step = analysis.bar_seconds / 16
    before, after = drum_onsets(sequence), drum_onsets(result.sequence)
    assert abs(after[0] - before[0]) <= step and abs(after[-1] - before[-1]) <= step, (label, before[[0, -1]], after[[0, -1]])
    nearest = np.abs(after[:, None] - before[None, :]).min(axis=1)
    assert nearest.max() <= step, f"{label}: a hit {nearest.max():.3f} s from every input hit (a 16th: {step:.3f} s)"
    bars = drum_bars(sequence, analysis)
    assert bars <= drum_bars(result.sequence, analysis) and in_bars(result.sequence, analysis, bars)
    pitched = lambda s: sorted((n.pitch, n.start_time, n.program) for n in s.notes if not n.is_drum)  # noqa: E731
    assert pitched(result.sequence) == pitched(sequence)
    if analysis.mt3_style:
        assert analysis.tempo_bpm == pytest.approx(135.0, rel=0.01)


@pytest.mark.parametrize("label, sequence", inputs(), ids=lambda v: v if isinstance(v, str) else "")
def test_regrooved_drums_fill_exactly_the_input_bars(models, label, sequence) -> None:
    result = regroove(models["groove-4bar"], sequence, seed=0)
    analysis = result.analysis
    step = analysis.bar_seconds / 16
    bars = drum_bars(sequence, analysis)
    assert bars <= drum_bars(result.sequence, analysis) and in_bars(result.sequence, analysis, bars), label
    last_bar_end = analysis.from_grid((max(bars) + 1) * analysis.bar_seconds)
    assert drum_onsets(result.sequence)[-1] < last_bar_end + step


def test_the_mt3_tempo_estimate_is_the_grid_and_the_file_gets_its_bars(models) -> None:
    copy = mt3_copy_at(FUNK, 135.0)
    result = humanize(models["groove-humanize"], copy, seed=0)
    assert result.analysis.tempo_source == "estimated"
    assert result.sequence.tempos[-1].qpm == pytest.approx(result.analysis.tempo_bpm)
    assert result.sequence.ticks_per_quarter >= 1920


def test_a_model_that_plays_nothing_is_reported_and_the_bars_kept(models, monkeypatch) -> None:
    model = models["groove-4bar"]
    silent = lambda z, length, *args, **kwargs: np.zeros((len(z), length, 27), np.float32)  # noqa: E731
    monkeypatch.setattr(model, "decode_to_tensors", silent)
    funk = read_music_file(FUNK).sequences[0]
    result = regroove(model, funk, seed=0)
    assert result.kept_bars == list(range(1, result.drum_bars + 1)) and result.drum_bars == 16
    assert "warning: the model played nothing in 16 of the bars" in result.describe("re-grooved", "groove-4bar")
    assert sorted(drum_onsets(result.sequence)) == pytest.approx(sorted(drum_onsets(funk)))


def test_a_piece_with_changing_tempo_is_refused_with_the_reason(models) -> None:
    from generation.errors import BadInputFile

    funk = read_music_file(FUNK).sequences[0]
    funk.tempos.add(time=10.0, qpm=100.0)
    with pytest.raises(BadInputFile, match=r"2 tempos \(100 to 138 qpm\).*--tempo-from notes"):
        humanize(models["groove-humanize"], funk, name="funk.mid")
    assert analyse(funk, estimate=True).tempo_source == "estimated"
    assert humanize(models["groove-humanize"], funk, estimate_tempo=True, name="funk.mid").notes_out > 0


@pytest.mark.skipif(not VIVALAVIDA.is_file(), reason="real MT3 transcriptions live in ../shared/mt3 (not in a clone)")
def test_a_real_mt3_transcription_keeps_its_drums_in_time_through_vary_and_humanize(models) -> None:
    from generation.continuation import vary_piece

    sequence = read_music_file(VIVALAVIDA).sequences[0]
    for mode, model in (("humanize", models["groove-humanize"]), ("vary", models["groove-4bar"])):
        result = vary_piece(sequence, {}, groove_model=model, mode=mode, seed=0)
        analysis = result.analysis
        assert analysis.tempo_bpm == pytest.approx(135, rel=0.02)
        bars = drum_bars(sequence, analysis)
        assert bars <= drum_bars(result.sequence, analysis) and in_bars(result.sequence, analysis, bars), mode
        step = analysis.bar_seconds / 16
        last_bar_end = analysis.from_grid((max(bars) + 1) * analysis.bar_seconds)
        assert drum_onsets(sequence)[0] - step <= drum_onsets(result.sequence)[0]
        assert drum_onsets(result.sequence)[-1] < last_bar_end + step, mode


def test_vary_keeps_drums_its_groove_model_cannot_play_and_says_why(tmp_path: Path) -> None:
    from .test_cli import run

    waltz = FIXTURES / "groove" / "drummer1" / "session2" / "1_latin-chacarera_157_beat_3-4.mid"
    result = run("vary", str(waltz), "-o", str(tmp_path / "out.mid"))
    assert result.exit_code == 0, result.output
    assert "drums: Drums: kept as it was: groovae_4bar plays bars of 4 quarter notes; this piece is in 3/4" in result.stdout
    humanized = run("vary", str(waltz), "-o", str(tmp_path / "played.mid"), "--mode", "humanize")
    assert humanized.exit_code == 1 and "plays bars of 4 quarter notes; this piece is in 3/4" in humanized.stderr
