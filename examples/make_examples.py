"""Writes the example pieces in this folder; run `python examples/make_examples.py` to rebuild them.

`bantry_lasses.mid`: the first eight bars of the reel "The Bantry Lasses" (O'Neill's Music of
Ireland, 1903, no. 1190; public domain, from the ABC transcription in music21's corpus), arranged
by this project for four tracks: the tune on a fiddle, chords on a piano, a bass line and a drum
kit, at 112 quarter notes per minute in 4/4.

`bantry_lasses_mt3.mid`: the same music written the way MT3 writes a transcription (120 bpm and
4/4 whatever the music does, 220 ticks per quarter, every velocity 127, 10 ms drum hits), to try
`gen continue` on transcription-like input.

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


def write_examples(folder: Path = HERE) -> list[Path]:
    """Writes both example files into `folder` and returns their paths."""
    from generation.io.files import atomic_output
    from generation.io.writers import write_midi
    from generation.transcription import mt3_style_midi

    sequence = arrangement()
    played, transcribed = folder / "bantry_lasses.mid", folder / "bantry_lasses_mt3.mid"
    write_midi(sequence, played)
    with atomic_output(transcribed) as temporary:
        Path(temporary).write_bytes(mt3_style_midi(sequence))
    return [played, transcribed]


if __name__ == "__main__":
    for path in write_examples():
        print(f"Wrote {path}")
