"""Note F1 and speed of `generation.audio_transcription.transcribe` (Basic Pitch on onnxruntime).

Held-out material: pieces of music21's corpus (public domain) and the project's own example
`examples/bantry_lasses.mid`, none of it in Basic Pitch's training data (MAESTRO, GuitarSet,
MedleyDB-Pitch, iKala, Slakh). The transcriber's thresholds are Basic Pitch's published defaults
for `predict()` (onset 0.5, frame 0.3, notes longer than 11 frames; ONSET_THRESHOLD,
FRAME_THRESHOLD, MIN_NOTE_SECONDS in generation/audio_transcription.py), so no clip here, nor any
other, was used for choosing them. Each clip is written as MIDI, played to WAV by the project's
renderer (`generation.render.render_file`, what `gen render` runs: TimGM6mb.sf2, 48 kHz stereo,
normalized) and transcribed; the notes found are scored against the notes written with
mir_eval.transcription:

  onset F1         a note is found when its pitch (within 50 cents) and onset (within 50 ms) match
  onset+offset F1  ... and its end, within 20% of the note's length or 50 ms, whichever is more

Drums are played but left out of the reference: Basic Pitch transcribes no drums (a drum hit gives
no note or a stray pitched one, which counts against precision). Unisons are merged: where two
parts play one pitch within 50 ms of each other, the reference keeps one note (the longer), since
one key can sound once.

The clips are fixed: the first CLIP_SECONDS (--seconds) of each named piece, notes cut there, in
two groups.

  piano (solo piano: every part on Acoustic Grand Piano)
    chorale-piano     Bach, chorale BWV 66.6 (SATB)
    quartet-piano     Haydn, string quartet op. 74 no. 1, 3rd movement
    rag-piano         Joplin, Maple Leaf Rag (dense two-handed piano)
    folk-piano        Essen folk song han1.abc, tune 1 (one line)
    sonata-piano      Mozart, sonata K. 545, 1st movement (exposition)
    polonaise-piano   Clara Schumann, polonaise op. 1 no. 1
    lied-piano        Schubert, Der Lindenbaum (voice and piano, both on piano)
    madrigal-piano    Monteverdi, madrigal book 3 no. 1 (five voices)
    mass-piano        Palestrina, Agnus Dei (Agnus_01.krn, five voices)
    beethoven-piano   Beethoven, string quartet op. 18 no. 1, 1st movement
    reel-piano        O'Neill's Music of Ireland (1850), tune 1 (one line)
  band (ensembles, each part on its own instrument; four with a drum kit)
    chorale-choir     BWV 66.6 on Choir Aahs
    quartet-strings   Haydn op. 74/1 iii on violins, viola, cello
    folk-flute        the Essen tune on flute (the one solo line of the group)
    bantry-band       examples/bantry_lasses.mid as written: fiddle, piano, bass, drums
    chorale-rhythm    Bach, BWV 10.7: soprano, alto, tenor on piano, bass on electric bass, drums
    chorale-guitar    Bach, BWV 101.7: upper voices on nylon guitar, bass on acoustic bass, drums
    chorale-winds     Bach, BWV 102.7 on flute, oboe, clarinet, bassoon
    chorale-brass     Bach, BWV 103.6 on trumpet, French horn, trombone, tuba
    mozart-strings    Mozart, string quartet K. 458, 1st movement, on violins, viola, cello
    corelli-trio      Corelli, trio sonata op. 3 no. 1, Grave, on two violins and cello
    madrigal-winds    Monteverdi 3.1 on a wind quintet: flute, oboe, clarinet, horn, bassoon
    mass-choir        Palestrina, Agnus_01 on Choir Aahs
    lied-clarinet     Schubert, Der Lindenbaum: the voice on clarinet, the piano on piano
    beach-choir       Amy Beach, Prayer of a Tired Child: four voices on Choir Aahs, and piano
    rag-drums         the Maple Leaf Rag on piano with a drum kit

The drum kit added to chorale-rhythm, chorale-guitar and rag-drums is a plain beat that follows
the piece's tempo map: bass drum and snare on alternate quarter notes, closed hi-hat on eighths.

Per clip it prints the seconds of audio, the seconds transcribe() took (reading, resampling, the
model and the note decoding; the model already loaded) per second of audio (the real-time factor),
the reference and estimated note counts, then precision, recall and F1 for both measures. Per
group and over all clips: notes pooled over the clips, and the spread of the clips' onset F1 and
real-time factor (mean, standard deviation, minimum, median, maximum); then, separately, the first
call's cost (importing onnxruntime and loading the model). The model runs on one thread unless
GEN_THREADS or OMP_NUM_THREADS says otherwise (`generation.threads`).

    python benchmarks/transcription.py [--keep DIR] [--seconds 30] [--only piano|band]

Needs the audio and transcribe extras, music21 and mir_eval: pip install '.[audio,transcribe]'
mir_eval. A few minutes on a shared 2-core CPU. --keep DIR keeps the rendered WAVs and reference
MIDI files there.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
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
ONSET_TOLERANCE = 0.05  # seconds
GROUPS = ("piano", "band")

# General MIDI programs (0-based) and the names the table prints.
PIANO, GUITAR, ACOUSTIC_BASS, ELECTRIC_BASS = 0, 24, 32, 33
VIOLIN, VIOLA, CELLO, CHOIR = 40, 41, 42, 52
TRUMPET, TROMBONE, TUBA, HORN, OBOE, BASSOON, CLARINET, FLUTE = 56, 57, 58, 60, 68, 70, 71, 73
PROGRAM_NAMES = {PIANO: "piano", GUITAR: "guitar", ACOUSTIC_BASS: "bass",
                 ELECTRIC_BASS: "el. bass", VIOLIN: "violin", VIOLA: "viola", CELLO: "cello",
                 CHOIR: "choir", TRUMPET: "trumpet", TROMBONE: "trombone", TUBA: "tuba", HORN: "horn",
                 OBOE: "oboe", BASSOON: "bassoon", CLARINET: "clarinet", FLUTE: "flute"}
STRINGS = [VIOLIN, VIOLIN, VIOLA, CELLO]
# GM percussion keys of the added beat, and their velocities.
BASS_DRUM, SNARE, CLOSED_HAT = 36, 38, 42
DRUM_VELOCITY = {BASS_DRUM: 100, SNARE: 90, CLOSED_HAT: 70}
DRUM_SECONDS = 0.1


@dataclass
class Clip:
    group: str  # one of GROUPS
    name: str
    piece: str
    sequence: NoteSequence  # what is played, drums included

    @property
    def instruments(self) -> str:
        """The instruments heard, in order of first appearance ("drums" for any drum note)."""
        names = [("drums" if n.is_drum else PROGRAM_NAMES.get(n.program, f"program {n.program}"))
                 for n in sorted(self.sequence.notes, key=lambda n: n.start_time)]
        return ", ".join(dict.fromkeys(names))


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
    """A copy with voice i on programs[i] (the last program repeats), each voice its own track.

    A voice is a (part, instrument) pair in order of first appearance: the MusicXML reader numbers
    parts and may share one instrument between them, the Humdrum reader numbers instruments only."""
    played = copy.deepcopy(sequence)
    voices = list(dict.fromkeys((n.part, n.instrument) for n in played.notes))
    for note in played.notes:
        voice = voices.index((note.part, note.instrument))
        note.program = programs[min(voice, len(programs) - 1)]
        note.instrument = voice
        note.is_drum = False
    return played


def _tempo_at(sequence: NoteSequence, seconds: float) -> float:
    """Quarter notes per minute at `seconds` (120 where the sequence gives no tempo)."""
    qpm = 120.0
    for tempo in sorted(sequence.tempos, key=lambda t: t.time):
        if tempo.time <= seconds + 1e-9:
            qpm = tempo.qpm
    return qpm


def _with_drums(sequence: NoteSequence) -> NoteSequence:
    """A copy with a plain beat over the whole piece, on the tempo map: bass drum and snare on
    alternate quarter notes, closed hi-hat on every eighth."""
    drummed = copy.deepcopy(sequence)
    instrument = max((n.instrument for n in sequence.notes), default=0) + 1
    end = max((n.end_time for n in sequence.notes), default=0.0)
    seconds, eighth = 0.0, 0
    while seconds < end:
        keys = [CLOSED_HAT] + ([BASS_DRUM if eighth % 4 == 0 else SNARE] if eighth % 2 == 0 else [])
        for key in keys:
            drummed.notes.add(pitch=key, velocity=DRUM_VELOCITY[key], start_time=seconds,
                              end_time=seconds + DRUM_SECONDS, instrument=instrument, is_drum=True)
        seconds += 30.0 / _tempo_at(sequence, seconds)
        eighth += 1
    drummed.total_time = max(drummed.total_time, end)
    return drummed


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


def clips(seconds: float, only: str | None = None) -> list[Clip]:
    """The benchmark's clips, in a fixed order: the first `seconds` of each piece; `only` one group."""
    from generation.io.readers import read_music_file

    chorale = _corpus("bach/bwv66.6.mxl")
    quartet = _corpus("haydn/opus74no1/movement3.mxl")
    rag = _corpus("joplin/maple_leaf_rag.mxl")
    folk = _first_abc_tune("essenFolksong/han1.abc")
    lied = _corpus("schubert/Lindenbaum.xml")
    madrigal = _corpus("monteverdi/madrigal.3.1.mxl")
    mass = _corpus("palestrina/Agnus_01.krn")
    piano = [
        ("chorale-piano", "Bach, chorale BWV 66.6", chorale),
        ("quartet-piano", "Haydn, op. 74/1 iii", quartet),
        ("rag-piano", "Joplin, Maple Leaf Rag", rag),
        ("folk-piano", "Essen folk song han1 no. 1", folk),
        ("sonata-piano", "Mozart, sonata K. 545 i", _corpus("mozart/k545/movement1_exposition.mxl")),
        ("polonaise-piano", "C. Schumann, polonaise op. 1/1", _corpus("schumann_clara/polonaise_op1n1.mxl")),
        ("lied-piano", "Schubert, Der Lindenbaum", lied),
        ("madrigal-piano", "Monteverdi, madrigal III/1", madrigal),
        ("mass-piano", "Palestrina, Agnus Dei (01)", mass),
        ("beethoven-piano", "Beethoven, op. 18/1 i", _corpus("beethoven/opus18no1/movement1.mxl")),
        ("reel-piano", "O'Neill 1850 no. 1", _first_abc_tune("oneills1850/0001-0050.abc")),
    ]
    band = [
        ("chorale-choir", "Bach, chorale BWV 66.6", _played_on(chorale, [CHOIR])),
        ("quartet-strings", "Haydn, op. 74/1 iii", _played_on(quartet, STRINGS)),
        ("folk-flute", "Essen folk song han1 no. 1", _played_on(folk, [FLUTE])),
        ("bantry-band", "examples/bantry_lasses.mid",
         read_music_file(ROOT / "examples" / "bantry_lasses.mid").sequences[0]),
        ("chorale-rhythm", "Bach, chorale BWV 10.7",
         _with_drums(_played_on(_corpus("bach/bwv10.7.mxl"), [PIANO, PIANO, PIANO, ELECTRIC_BASS]))),
        ("chorale-guitar", "Bach, chorale BWV 101.7",
         _with_drums(_played_on(_corpus("bach/bwv101.7.mxl"), [GUITAR, GUITAR, GUITAR, ACOUSTIC_BASS]))),
        ("chorale-winds", "Bach, chorale BWV 102.7",
         _played_on(_corpus("bach/bwv102.7.mxl"), [FLUTE, OBOE, CLARINET, BASSOON])),
        ("chorale-brass", "Bach, chorale BWV 103.6",
         _played_on(_corpus("bach/bwv103.6.mxl"), [TRUMPET, HORN, TROMBONE, TUBA])),
        ("mozart-strings", "Mozart, K. 458 i", _played_on(_corpus("mozart/k458/movement1.mxl"), STRINGS)),
        ("corelli-trio", "Corelli, op. 3/1 Grave",
         _played_on(_corpus("corelli/opus3no1/1grave.xml"), [VIOLIN, VIOLIN, CELLO])),
        ("madrigal-winds", "Monteverdi, madrigal III/1", _played_on(madrigal, [FLUTE, OBOE, CLARINET, HORN, BASSOON])),
        ("mass-choir", "Palestrina, Agnus Dei (01)", _played_on(mass, [CHOIR])),
        ("lied-clarinet", "Schubert, Der Lindenbaum", _played_on(lied, [CLARINET, PIANO])),
        ("beach-choir", "Beach, Prayer of a Tired Child",
         _played_on(_corpus("beach/prayer_of_a_tired_child.musicxml"), [CHOIR, CHOIR, CHOIR, CHOIR, PIANO])),
        ("rag-drums", "Joplin, Maple Leaf Rag", _with_drums(_played_on(rag, [PIANO]))),
    ]
    made = [("piano", name, piece, _played_on(sequence, [PIANO])) for name, piece, sequence in piano]
    made += [("band", name, piece, sequence) for name, piece, sequence in band]
    return [Clip(group, name, piece, _clipped(sequence, seconds))
            for group, name, piece, sequence in made if only in (None, group)]


Notes = tuple[np.ndarray, np.ndarray]  # intervals [n, 2] seconds, MIDI pitches [n]


def reference(sequence: NoteSequence) -> Notes:
    """The pitched notes written (drums out), unisons merged."""
    notes = sorted(((n.start_time, n.end_time, n.pitch) for n in sequence.notes
                    if not n.is_drum and n.end_time > n.start_time), key=lambda n: (n[2], n[0]))
    kept: list[tuple[float, float, int]] = []
    for start, end, pitch in notes:
        if kept and kept[-1][2] == pitch and start - kept[-1][0] < UNISON_SECONDS:
            kept[-1] = (kept[-1][0], max(kept[-1][1], end), pitch)
        else:
            kept.append((start, end, pitch))
    return np.array([k[:2] for k in kept]).reshape(-1, 2), np.array([k[2] for k in kept])


def estimate(sequence: NoteSequence) -> Notes:
    notes = [(n.start_time, n.end_time, n.pitch) for n in sequence.notes]
    return np.array([n[:2] for n in notes]).reshape(-1, 2), np.array([n[2] for n in notes])


def counts(ref: Notes, est: Notes) -> dict[str, tuple[int, int, int]]:
    """{'onset' | 'offset': (matched, reference notes, estimated notes)}, from mir_eval's matching
    (pitches compared in Hz); precision, recall and F1 follow from these, per clip or pooled."""
    import mir_eval

    hz = mir_eval.util.midi_to_hz
    result = {}
    for measure, ratio in (("onset", None), ("offset", 0.2)):
        matched = mir_eval.transcription.match_notes(ref[0], hz(ref[1]), est[0], hz(est[1]),
                                                     onset_tolerance=ONSET_TOLERANCE, offset_ratio=ratio,
                                                     offset_min_tolerance=0.05)
        result[measure] = (len(matched), len(ref[1]), len(est[1]))
    return result


def precision_recall_f1(matched: float, n_ref: float, n_est: float) -> tuple[float, float, float]:
    """As mir_eval computes them (0 for an empty side)."""
    precision = matched / n_est if n_est else 0.0
    recall = matched / n_ref if n_ref else 0.0
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


@dataclass
class Result:
    clip: Clip
    audio_seconds: float
    compute_seconds: float
    counts: dict[str, tuple[int, int, int]]

    @property
    def rtf(self) -> float:
        """Seconds of compute per second of audio."""
        return self.compute_seconds / self.audio_seconds

    def scores(self, measure: str) -> tuple[float, float, float]:
        return precision_recall_f1(*self.counts[measure])


HEADER = (f"{'group':5} {'clip':15} {'piece':30} {'instruments':37} {'audio s':>7} {'s/s':>6}  {'ref':>4} "
          f"{'est':>4}  {'onset P':>7} {'R':>5} {'F1':>5}  {'on+off F1':>9}")


def _row(result: Result) -> str:
    clip, (p, r, f1), offset = result.clip, result.scores("onset"), result.scores("offset")[2]
    _, n_ref, n_est = result.counts["onset"]
    return (f"{clip.group:5} {clip.name:15} {clip.piece[:30]:30} {clip.instruments[:37]:37} "
            f"{result.audio_seconds:7.1f} {result.rtf:6.3f}  {n_ref:4d} {n_est:4d}  "
            f"{p:7.3f} {r:5.3f} {f1:5.3f}  {offset:9.3f}")


def _spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return (f"mean {statistics.mean(values):.3f} sd {sd:.3f}, min {min(values):.3f} "
            f"median {statistics.median(values):.3f} max {max(values):.3f}")


def _summary(label: str, results: list[Result]) -> list[str]:
    """The pooled row (notes pooled over the clips) and the spread over the clips, for `results`."""
    audio = sum(r.audio_seconds for r in results)
    compute = sum(r.compute_seconds for r in results)
    pooled = {m: np.sum([r.counts[m] for r in results], axis=0) for m in ("onset", "offset")}
    p, r, f1 = precision_recall_f1(*pooled["onset"])
    offset = precision_recall_f1(*pooled["offset"])[2]
    _, n_ref, n_est = pooled["onset"]
    pooled_row = (f"{label:5} {f'{len(results)} clips, pooled':15} {'':30} {'':37} {audio:7.1f} "
                  f"{compute / audio:6.3f}  {int(n_ref):4d} {int(n_est):4d}  {p:7.3f} {r:5.3f} {f1:5.3f}  "
                  f"{offset:9.3f}")
    return [pooled_row,
            f"{'':5}   onset F1 over the clips: {_spread([x.scores('onset')[2] for x in results])}",
            f"{'':5}   s/s over the clips:      {_spread([x.rtf for x in results])}"]


def _missing_requirement() -> str | None:
    for module, install in (("mir_eval", "pip install mir_eval"), ("music21", "pip install music21"),
                            ("onnxruntime", "pip install '.[transcribe]'"), ("midirenderer", "pip install '.[audio]'")):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed: {install}"
    return None


def run(folder: Path, seconds: float, only: str | None) -> None:
    started = time.perf_counter()
    from generation import audio_transcription

    session = audio_transcription.load_model()
    first_call = time.perf_counter() - started

    from generation.io.writers import write_midi
    from generation.render import render_file

    print(f"threads: {session.get_session_options().intra_op_num_threads}, load average "
          f"{os.getloadavg()[0]:.1f}, clips of {seconds:g} s, files in {folder}")
    print(f"thresholds: Basic Pitch's defaults (onset {audio_transcription.ONSET_THRESHOLD}, frame "
          f"{audio_transcription.FRAME_THRESHOLD}, notes over {audio_transcription.MIN_NOTE_SECONDS} s); "
          f"onsets within {ONSET_TOLERANCE * 1000:g} ms, pitches within 50 cents")
    print("drums are played but not in the reference (Basic Pitch transcribes no drums); unisons merged\n")
    print(HEADER)
    print("-" * len(HEADER))
    results: list[Result] = []
    for clip in clips(seconds, only):
        midi_path, wav_path = folder / f"{clip.name}.mid", folder / f"{clip.name}.wav"
        write_midi(clip.sequence, midi_path)
        audio_seconds, _, _ = render_file(midi_path.read_bytes(), wav_path, name=clip.name)
        begin = time.perf_counter()
        transcribed = audio_transcription.transcribe(wav_path)
        compute = time.perf_counter() - begin
        results.append(Result(clip, audio_seconds, compute, counts(reference(clip.sequence), estimate(transcribed))))
        print(_row(results[-1]), flush=True)
    print("-" * len(HEADER))
    for group in GROUPS:
        in_group = [r for r in results if r.clip.group == group]
        if in_group:
            print("\n".join(_summary(group, in_group)))
    if len({r.clip.group for r in results}) > 1:
        print("\n".join(_summary("all", results)))
    rtf = sum(r.compute_seconds for r in results) / sum(r.audio_seconds for r in results)
    print(f"\ns/s: seconds of transcribe() per second of audio (model loaded). First call (import "
          f"onnxruntime, load the model): {first_call:.2f} s; then {rtf * 60:.1f} s per minute of audio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the rendered WAVs and reference MIDI files in this folder")
    parser.add_argument("--seconds", type=float, default=CLIP_SECONDS, help="seconds of each piece (default 30)")
    parser.add_argument("--only", choices=GROUPS, help="only this group of clips")
    options = parser.parse_args()
    if not options.seconds > 0:
        parser.error(f"--seconds must be above 0, not {options.seconds:g}")
    missing = _missing_requirement()
    if missing:
        parser.error(missing)
    if options.keep:
        if options.keep.exists() and not options.keep.is_dir():
            parser.error(f"--keep {options.keep}: not a folder")
        options.keep.mkdir(parents=True, exist_ok=True)
        run(options.keep, options.seconds, options.only)
    else:
        with tempfile.TemporaryDirectory(prefix="transcription_") as folder:
            run(Path(folder), options.seconds, options.only)


if __name__ == "__main__":
    main()
