"""Note F1 and speed of `generation.audio_transcription.transcribe` (Basic Pitch on onnxruntime).

Held-out material (nothing of it is in Basic Pitch's training data: MAESTRO, GuitarSet,
MedleyDB-Pitch, iKala, Slakh) is written as MIDI, played to WAV by the project's renderer
(`generation.render.render_file`: TimGM6mb.sf2, 48 kHz stereo, normalized) and transcribed; the
notes found are scored against the notes written, with mir_eval.transcription:

  onset F1         a note is found when its pitch (within 50 cents) and onset (within 50 ms) match
  onset+offset F1  ... and its end, within 20% of the note's length or 50 ms, whichever is more

Drums are left out of the reference (the transcriber gives no drums), and so are unisons: where two
parts play one pitch within 50 ms of each other, the reference keeps one note (the longer), since
one key can sound once. Clips (the first CLIP_SECONDS of each piece, notes cut there):

  chorale-piano / chorale-choir   Bach, BWV 66.6 (music21 corpus), SATB on piano / on Choir Aahs
  quartet-piano / quartet-strings Haydn, op. 74 no. 1, 3rd movement, on piano / violins, viola, cello
  rag-piano                       Joplin, Maple Leaf Rag (dense two-handed piano)
  folk-piano / folk-flute         an Essen folk song (han1.abc, tune 1), on piano / on flute
  bantry-band                     examples/bantry_lasses.mid as written (fiddle, accompaniment, bass, drums)

Per clip it prints the seconds of audio, the seconds transcribe() took (reading, resampling, the
model and the note decoding; the model already loaded) and their ratio (the real-time factor),
then precision, recall and F1 for both measures; then the totals (notes pooled over the clips) and,
separately, the first call's cost (importing onnxruntime and loading the model). The model runs on
one thread unless GEN_THREADS or OMP_NUM_THREADS says otherwise (`generation.threads`).

    python benchmarks/transcription_f1.py [--keep DIR] [--seconds 30]

Needs the audio and transcribe extras and mir_eval: pip install '.[audio,transcribe]' mir_eval.
About a minute here. --keep DIR keeps the rendered WAVs and reference MIDI files there.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generation.protos import NoteSequence  # noqa: E402

CLIP_SECONDS = 30.0
UNISON_SECONDS = 0.05
CHOIR, FLUTE, VIOLIN, VIOLA, CELLO, PIANO = 52, 73, 40, 41, 42, 0


@dataclass
class Clip:
    name: str
    sequence: NoteSequence  # what is played (drums included)


def _corpus(path: str) -> NoteSequence:
    from music21 import corpus

    from generation.io.readers import read_music_file

    return read_music_file(corpus.getWork(path)).sequences[0]


def _first_abc_tune(path: str) -> NoteSequence:
    """The first tune of a music21 corpus ABC tunebook (reading the whole book takes music21 ~20 s)."""
    from music21 import corpus

    from generation.io.readers import read_music_file

    text = Path(corpus.getWork(path)).read_text(encoding="latin-1")
    first = text[text.index("X:"):]
    second = first.find("\nX:", 1)
    with tempfile.TemporaryDirectory() as folder:
        tune = Path(folder) / "tune.abc"
        tune.write_text(first[:second] if second > 0 else first, encoding="latin-1")
        return read_music_file(tune).sequences[0]


def _played_on(sequence: NoteSequence, programs: list[int]) -> NoteSequence:
    """A copy with instrument i (in order of first appearance) on programs[i] (the last one repeats)."""
    played = copy.deepcopy(sequence)
    order = list(dict.fromkeys(n.instrument for n in played.notes))
    for note in played.notes:
        note.program = programs[min(order.index(note.instrument), len(programs) - 1)]
    return played


def _clipped(sequence: NoteSequence, seconds: float) -> NoteSequence:
    """The first `seconds`: notes starting before, cut there; no event after (the synthesizer
    plays up to the last event, a key signature included)."""
    clipped = copy.deepcopy(sequence)
    del clipped.notes[:]
    for events in (clipped.tempos, clipped.time_signatures, clipped.key_signatures, clipped.control_changes,
                   clipped.pitch_bends, clipped.text_annotations):
        kept = [copy.deepcopy(e) for e in events if e.time < seconds]
        del events[:]
        events.extend(kept)
    for note in sequence.notes:
        if note.start_time < seconds:
            kept = clipped.notes.add()
            kept.CopyFrom(note)
            kept.end_time = min(note.end_time, seconds)
    clipped.total_time = max((n.end_time for n in clipped.notes), default=0.0)
    return clipped


def clips(seconds: float) -> list[Clip]:
    from generation.io.readers import read_music_file

    chorale = _corpus("bach/bwv66.6.mxl")
    quartet = _corpus("haydn/opus74no1/movement3.mxl")
    rag = _corpus("joplin/maple_leaf_rag.mxl")
    folk = _first_abc_tune("essenFolksong/han1.abc")
    band = read_music_file(ROOT / "examples" / "bantry_lasses.mid").sequences[0]
    made = [
        ("chorale-piano", _played_on(chorale, [PIANO])),
        ("chorale-choir", _played_on(chorale, [CHOIR])),
        ("quartet-piano", _played_on(quartet, [PIANO])),
        ("quartet-strings", _played_on(quartet, [VIOLIN, VIOLIN, VIOLA, CELLO])),
        ("rag-piano", _played_on(rag, [PIANO])),
        ("folk-piano", _played_on(folk, [PIANO])),
        ("folk-flute", _played_on(folk, [FLUTE])),
        ("bantry-band", band),
    ]
    return [Clip(name, _clipped(sequence, seconds)) for name, sequence in made]


def reference(sequence: NoteSequence) -> tuple[np.ndarray, np.ndarray]:
    """(intervals [n, 2] seconds, pitches [n] MIDI) of the pitched notes, unisons merged."""
    notes = sorted(((n.start_time, n.end_time, n.pitch) for n in sequence.notes
                    if not n.is_drum and n.end_time > n.start_time), key=lambda n: (n[2], n[0]))
    kept: list[tuple[float, float, int]] = []
    for start, end, pitch in notes:
        if kept and kept[-1][2] == pitch and start - kept[-1][0] < UNISON_SECONDS:
            kept[-1] = (kept[-1][0], max(kept[-1][1], end), pitch)
        else:
            kept.append((start, end, pitch))
    return np.array([k[:2] for k in kept]).reshape(-1, 2), np.array([k[2] for k in kept])


def estimate(sequence: NoteSequence) -> tuple[np.ndarray, np.ndarray]:
    notes = [(n.start_time, n.end_time, n.pitch) for n in sequence.notes]
    return np.array([n[:2] for n in notes]).reshape(-1, 2), np.array([n[2] for n in notes])


Notes = tuple[np.ndarray, np.ndarray]  # intervals [n, 2] seconds, MIDI pitches [n]


def scores(ref: Notes, est: Notes) -> dict[str, tuple[float, float, float]]:
    """{'onset': (P, R, F1), 'offset': (P, R, F1)} from mir_eval, pitches compared in Hz."""
    import mir_eval

    hz = mir_eval.util.midi_to_hz
    args = (ref[0], hz(ref[1]), est[0], hz(est[1]))
    onset = mir_eval.transcription.precision_recall_f1_overlap(*args, onset_tolerance=0.05, offset_ratio=None)[:3]
    offset = mir_eval.transcription.precision_recall_f1_overlap(*args, onset_tolerance=0.05, offset_ratio=0.2,
                                                                offset_min_tolerance=0.05)[:3]
    return {"onset": onset, "offset": offset}


def counts(ref, est) -> dict[str, tuple[int, int, int]]:
    """{measure: (matched, reference notes, estimated notes)}: for pooling over the clips."""
    import mir_eval

    hz = mir_eval.util.midi_to_hz
    result = {}
    for measure, ratio in (("onset", None), ("offset", 0.2)):
        matched = mir_eval.transcription.match_notes(ref[0], hz(ref[1]), est[0], hz(est[1]), onset_tolerance=0.05,
                                                     offset_ratio=ratio, offset_min_tolerance=0.05)
        result[measure] = (len(matched), len(ref[1]), len(est[1]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the rendered WAVs and reference MIDI files in this folder")
    parser.add_argument("--seconds", type=float, default=CLIP_SECONDS, help="seconds of each piece (default 30)")
    options = parser.parse_args()

    started = time.perf_counter()
    from generation import audio_transcription

    audio_transcription.load_model()
    first_call = time.perf_counter() - started

    from generation.io.writers import write_midi
    from generation.render import render_file

    folder = options.keep or Path(tempfile.mkdtemp(prefix="transcription_f1_"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"threads: {audio_transcription.load_model().get_session_options().intra_op_num_threads}, "
          f"load average {os.getloadavg()[0]:.1f}, clips of {options.seconds:g} s, files in {folder}\n")
    header = f"{'clip':16} {'audio s':>7} {'time s':>6} {'RTF':>6}  {'ref':>4} {'est':>4}  " \
             f"{'onset P':>7} {'R':>5} {'F1':>5}  {'on+off P':>8} {'R':>5} {'F1':>5}"
    print(header)
    print("-" * len(header))
    totals = {"onset": np.zeros(3), "offset": np.zeros(3)}
    audio_seconds = transcribe_seconds = 0.0
    for clip in clips(options.seconds):
        midi_path, wav_path = folder / f"{clip.name}.mid", folder / f"{clip.name}.wav"
        write_midi(clip.sequence, midi_path)
        seconds, _, _ = render_file(midi_path.read_bytes(), wav_path, name=clip.name)
        begin = time.perf_counter()
        transcribed = audio_transcription.transcribe(wav_path)
        took = time.perf_counter() - begin
        ref, est = reference(clip.sequence), estimate(transcribed)
        s = scores(ref, est)
        for measure, (matched, n_ref, n_est) in counts(ref, est).items():
            totals[measure] += (matched, n_ref, n_est)
        audio_seconds += seconds
        transcribe_seconds += took
        print(f"{clip.name:16} {seconds:7.1f} {took:6.2f} {took / seconds:6.3f}  {len(ref[1]):4d} {len(est[1]):4d}  "
              f"{s['onset'][0]:7.3f} {s['onset'][1]:5.3f} {s['onset'][2]:5.3f}  "
              f"{s['offset'][0]:8.3f} {s['offset'][1]:5.3f} {s['offset'][2]:5.3f}")
    print("-" * len(header))
    pooled = []
    for measure in ("onset", "offset"):
        matched, n_ref, n_est = totals[measure]
        p, r = matched / max(n_est, 1), matched / max(n_ref, 1)
        pooled.append((p, r, 2 * p * r / max(p + r, 1e-9)))
    rtf = transcribe_seconds / audio_seconds
    print(f"{'all (pooled)':16} {audio_seconds:7.1f} {transcribe_seconds:6.2f} {rtf:6.3f}  "
          f"{int(totals['onset'][1]):4d} {int(totals['onset'][2]):4d}  "
          f"{pooled[0][0]:7.3f} {pooled[0][1]:5.3f} {pooled[0][2]:5.3f}  "
          f"{pooled[1][0]:8.3f} {pooled[1][1]:5.3f} {pooled[1][2]:5.3f}")
    print(f"\nfirst call (import onnxruntime, load the model): {first_call:.2f} s; "
          f"then {transcribe_seconds / audio_seconds * 60:.1f} s of transcription per minute of audio")


if __name__ == "__main__":
    main()
