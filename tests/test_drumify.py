"""`gen drumify`: a drum part to the rhythm of a piece, window by window on its bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from generation.errors import BadInputFile, GenError
from generation.io.readers import read_music_file
from generation.music_vae import configs
from generation.music_vae.tasks import drumify

from .test_cli import run

REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLE = REPOSITORY / "examples" / "bantry_lasses.mid"  # violin, piano, bass, drums; 8 bars at 112 bpm
BASS = "Electric Bass (finger)"


class KickOnEveryTap:
    """A tap-to-drums model that plays a kick on each tap it is given, at velocity 0.8."""

    def __init__(self) -> None:
        self.config = configs.load_config("groovae_2bar_tap_fixed_velocity")
        self.inputs: list[np.ndarray] = []

    def encode_tensors(self, inputs, lengths, controls, seed=None):
        self.inputs = [np.asarray(w) for w in inputs]
        mu = np.zeros((len(inputs), self.config.hparams.z_size), np.float32)
        return mu, mu, np.ones_like(mu)

    def decode_to_tensors(self, z, length, temperature, c_input=None, seed=None):
        drums = self.config.data_converter.num_drums
        out = np.zeros((len(z), length, self.config.data_converter.output_depth), np.float32)
        for k, window in enumerate(self.inputs):
            taps = window[:, :drums].max(axis=1) > 0
            out[k, taps, 0] = 1.0  # kick
            out[k, taps, drums] = 0.8
        return out


def test_the_drums_play_on_the_rhythm_of_the_chosen_part() -> None:
    piece = read_music_file(EXAMPLE).sequences[0]
    result = drumify(KickOnEveryTap(), piece, parts=[BASS.lower()], name=str(EXAMPLE))
    bass = sorted({round(n.start_time, 3) for n in piece.notes if n.program == 33 and not n.is_drum})
    drums = sorted(n.start_time for n in result.sequence.notes if n.is_drum)
    sixteenth = 60 / 112 / 4
    assert len(drums) == len(bass) == result.notes_in
    assert all(abs(d - b) < sixteenth / 2 for d, b in zip(drums, bass))
    assert {n.pitch for n in result.sequence.notes if n.is_drum} == {36}  # the old drums are replaced
    kept = sorted((n.pitch, n.start_time) for n in result.sequence.notes if not n.is_drum)
    assert kept == sorted((n.pitch, n.start_time) for n in piece.notes if not n.is_drum)
    only = drumify(KickOnEveryTap(), piece, parts=[BASS], drums_only=True, name=str(EXAMPLE))
    assert only.sequence.notes and all(n.is_drum for n in only.sequence.notes)


def test_a_drum_part_alone_is_its_own_rhythm_and_bad_choices_are_one_line() -> None:
    piece = read_music_file(REPOSITORY / "examples" / "drums.mid").sequences[0]
    result = drumify(KickOnEveryTap(), piece, name="drums.mid")
    assert result.notes_in == len(piece.notes) and result.notes_out > 0
    with pytest.raises(BadInputFile, match=r"^x.mid: no notes of tuba to take a rhythm from \(it has Acoustic"):
        drumify(KickOnEveryTap(), read_music_file(EXAMPLE).sequences[0], parts=["Tuba"], name="x.mid")
    humanizer = KickOnEveryTap()
    humanizer.config = configs.load_config("groovae_2bar_humanize")
    with pytest.raises(GenError, match="does not read taps"):
        drumify(humanizer, piece, name="drums.mid")


def test_gen_drumify_with_a_tiny_trained_model(tmp_path: Path) -> None:
    from generation.preprocess import preprocess
    from generation.training import TrainOptions, train

    from .conftest import FIXTURES

    preprocess([FIXTURES / "groove"], tmp_path / "groove", jobs=1)
    train(configs.load_config("groovae_tap_tiny"), [tmp_path / "groove.tfrecord"], tmp_path / "run",
          TrainOptions(num_steps=2, batch_size=2, workers=1, device="cpu"))
    out = tmp_path / "drums.mid"
    result = run("drumify", str(EXAMPLE), "-o", str(out), "--model", str(tmp_path / "run"), "--parts", BASS)
    assert result.exit_code == 0, result.output
    assert "drums played by" in result.output and out.exists()
    again = run("drumify", str(EXAMPLE), "-o", str(out), "--model", str(tmp_path / "run"))
    assert again.exit_code == 1 and "exists already" in again.stderr


def test_the_tap_baseline_plays_the_drums_usual_at_each_place_in_the_bar() -> None:
    from generation.music_vae.evaluate import _tap_baseline_f1

    taps = np.zeros((4, 32, 9), bool)
    taps[:, ::4, 3] = True  # quarter-note taps
    truth = np.zeros_like(taps)
    truth[:, ::16, 0] = True  # a kick on each downbeat
    truth[:, 8::16, 1] = True  # a snare on beat 3
    assert _tap_baseline_f1(taps, truth, 16) == 1.0
    truth[0, 8, 1], truth[0, 8, 2] = False, True  # one window plays a hi-hat there instead
    assert _tap_baseline_f1(taps, truth, 16) == pytest.approx(15 / 16)  # 15 of 16 guesses, 15 of 16 hits


def test_the_bundled_model_plays_on_the_bass_lines_rhythm(tmp_path: Path) -> None:
    """groove-tap2drum given the example's bass (32 notes, a quarter-note walk with pickups):
    nine in ten of its drum onsets fall on a bass onset (within half a 16th) and nine in ten bass
    onsets get a drum (measured: all of them)."""
    out = tmp_path / "drums.mid"
    result = run("drumify", str(EXAMPLE), "--parts", BASS, "--drums-only", "-o", str(out))
    assert result.exit_code == 0, result.output
    taps = sorted({n.start_time for n in read_music_file(EXAMPLE).sequences[0].notes if n.program == 33})
    drums = sorted(n.start_time for n in read_music_file(out).sequences[0].notes)
    half_sixteenth = 60 / 112 / 8
    on_taps = sum(min(abs(d - t) for t in taps) < half_sixteenth for d in drums) / len(drums)
    answered = sum(min(abs(d - t) for d in drums) < half_sixteenth for t in taps) / len(taps)
    assert on_taps >= 0.9 and answered >= 0.9, (on_taps, answered)
