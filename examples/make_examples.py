"""Writes the example pieces in this folder; run `python examples/make_examples.py` to rebuild them.

`bantry_lasses.mid`: the first eight bars of the reel "The Bantry Lasses" (O'Neill's Music of
Ireland, 1903, no. 1190; public domain, from the ABC transcription in music21's corpus), arranged
by this project for four tracks: the tune on a fiddle, chords on a piano, a bass line and a drum
kit, at 112 quarter notes per minute in 4/4.

`bantry_lasses_mt3.mid`: the same music written the way MT3 writes a transcription (120 bpm and
4/4 whatever the music does, 220 ticks per quarter, every velocity 127, 10 ms drum hits), to try
`gen continue` on transcription-like input.

`drums.mid`: a stiff drum part, as a drum machine plays it: eight bars of a rock beat at 100 quarter
notes per minute in 4/4 (kick, snare, closed hi-hat in eighths, a crash and a tom fill), every hit
on the grid at velocity 100, for `gen humanize` to play. `drums_mt3.mid`: the same part as MT3
writes a drum transcription (120 bpm whatever the music does, velocity 127), for
`gen vary --mode humanize`.

The arrangement is deterministic: the chords are picked per half bar from the tune's notes, so
the files are the same on every run (`tests/test_bundled.py` checks that).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
QPM = 112.0
BARS = 8
TUNE = ("oneills1850/1176-1275.abc", 1190)  # The Bantry Lasses, in G major

# Triads of G major that may harmonise a half bar, with a preference that breaks ties (I, V, IV first).
TRIADS = {"G": (67, 71, 62), "D": (62, 66, 69), "C": (60, 64, 67), "Em": (64, 67, 71), "Am": (69, 72, 64)}
PREFERENCE = ["G", "D", "C", "Em", "Am"]
BASS_ROOTS = {"G": 43, "D": 38, "C": 36, "Em": 40, "Am": 45}
FIDDLE, PIANO, BASS = 40, 0, 33
KICK, SNARE, CLOSED_HAT = 36, 38, 42
CRASH, HIGH_TOM, LOW_TOM = 49, 50, 45
DRUMS_QPM = 100.0


def tune_notes() -> list[tuple[float, float, int]]:
    """(onset, duration, pitch) in quarter notes of the tune's first BARS bars, repeats expanded."""
    from music21 import corpus

    path, number = TUNE
    score = corpus.parse(path, number=number).expandRepeats()
    notes = []
    for note in score.flatten().notes:
        onset, length = float(note.offset), float(note.quarterLength)
        if length > 0 and onset < BARS * 4:
            for pitch in getattr(note, "pitches", ()):
                notes.append((onset, min(length, BARS * 4 - onset), int(pitch.midi)))
    return notes


def choose_chord(melody: list[tuple[float, float, int]], start: float, end: float) -> str:
    """The triad whose pitch classes cover the most melody time in [start, end)."""
    def coverage(name: str) -> float:
        classes = {p % 12 for p in TRIADS[name]}
        return sum(min(end, on + length) - max(start, on) for on, length, pitch in melody
                   if on < end and on + length > start and pitch % 12 in classes)

    return max(PREFERENCE, key=lambda name: (coverage(name), -PREFERENCE.index(name)))


def arrangement():
    """The four-track piece as a NoteSequence."""
    from generation.protos import NoteSequence

    seconds = 60.0 / QPM
    sequence = NoteSequence(ticks_per_quarter=220)
    sequence.tempos.add(time=0.0, qpm=QPM)
    sequence.time_signatures.add(time=0.0, numerator=4, denominator=4)
    sequence.key_signatures.add(time=0.0, key=7)  # G major
    sequence.sequence_metadata.title = "The Bantry Lasses (first eight bars), arranged for gen's examples"

    def add(onset: float, length: float, pitch: int, velocity: int, program: int, instrument: int,
            is_drum: bool = False) -> None:
        sequence.notes.add(start_time=onset * seconds, end_time=(onset + length) * seconds, pitch=pitch,
                           velocity=velocity, program=program, instrument=instrument, is_drum=is_drum)

    melody = tune_notes()
    for onset, length, pitch in melody:
        accent = 96 if onset % 2 == 0 else 84 if onset % 1 == 0 else 74
        add(onset, length * 0.95, pitch, accent, FIDDLE, 0)
    for half_bar in range(BARS * 2):
        start = half_bar * 2.0
        chord = choose_chord(melody, start, start + 2)
        for pitch in sorted(TRIADS[chord]):
            add(start, 1.9, pitch - 12 if pitch > 67 else pitch, 62 if half_bar % 2 == 0 else 56, PIANO, 1)
        root = BASS_ROOTS[chord]
        add(start, 0.9, root, 88, BASS, 2)
        add(start + 1, 0.9, root + 7 if root + 7 <= 52 else root - 5, 76, BASS, 2)
    for bar in range(BARS):
        for eighth in range(8):
            onset = bar * 4 + eighth * 0.5
            add(onset, 0.1, CLOSED_HAT, (92, 58, 74, 56, 88, 60, 72, 62)[eighth], 0, 9, True)
            if eighth in (0, 4) or (eighth == 5 and bar % 2 == 1):
                add(onset, 0.1, KICK, 104 if eighth != 5 else 82, 0, 9, True)
            if eighth in (2, 6):
                add(onset, 0.1, SNARE, 98 if eighth == 2 else 106, 0, 9, True)
    sequence.total_time = max(note.end_time for note in sequence.notes)
    return sequence


def stiff_drums():
    """The stiff eight-bar rock beat of `drums.mid` as a NoteSequence: every hit on the grid, velocity 100."""
    from generation.protos import NoteSequence

    seconds = 60.0 / DRUMS_QPM
    sequence = NoteSequence(ticks_per_quarter=220)
    sequence.tempos.add(time=0.0, qpm=DRUMS_QPM)
    sequence.time_signatures.add(time=0.0, numerator=4, denominator=4)
    sequence.sequence_metadata.title = "A stiff rock beat, eight bars, for gen's examples"

    def hit(onset: float, pitch: int) -> None:
        sequence.notes.add(start_time=onset * seconds, end_time=(onset + 0.25) * seconds, pitch=pitch,
                           velocity=100, instrument=9, is_drum=True)

    for bar in range(BARS):
        start = bar * 4.0
        if bar in (0, 4):
            hit(start, CRASH)
        last = bar == BARS - 1
        for eighth in range(6 if last else 8):
            if not (eighth == 0 and bar in (0, 4)):
                hit(start + eighth * 0.5, CLOSED_HAT)
        for beat, pitch in ((0, KICK), (1, SNARE), (2, KICK), (3, SNARE)):
            if not (last and beat == 3):
                hit(start + beat, pitch)
        if bar % 2 == 1:
            hit(start + 2.5, KICK)
        if last:  # a fill on the fourth beat: four 16ths down the toms
            for sixteenth, pitch in enumerate((SNARE, HIGH_TOM, HIGH_TOM, LOW_TOM)):
                hit(start + 3 + sixteenth * 0.25, pitch)
    sequence.total_time = max(note.end_time for note in sequence.notes)
    return sequence


def write_examples(folder: Path = HERE) -> list[Path]:
    """Writes the example files into `folder` and returns their paths."""
    from generation.io.files import atomic_output
    from generation.io.writers import write_midi
    from generation.transcription import mt3_style_midi

    sequence = arrangement()
    played, transcribed = folder / "bantry_lasses.mid", folder / "bantry_lasses_mt3.mid"
    write_midi(sequence, played)
    with atomic_output(transcribed) as temporary:
        Path(temporary).write_bytes(mt3_style_midi(sequence))
    drums = stiff_drums()
    stiff, drums_transcribed = folder / "drums.mid", folder / "drums_mt3.mid"
    write_midi(drums, stiff)
    with atomic_output(drums_transcribed) as temporary:
        Path(temporary).write_bytes(mt3_style_midi(drums))
    return [played, transcribed, stiff, drums_transcribed]


if __name__ == "__main__":
    for path in write_examples():
        print(f"Wrote {path}")
