"""NoteSequence -> files."""

from __future__ import annotations

import os

from generation.io.files import atomic_output
from generation.protos import NoteSequence


# MIDI stores a tempo as 24-bit microseconds per quarter note: 3.58 quarter notes per minute is the
# slowest; a slower one (only a damaged file has it) is written as that.
SLOWEST_QPM = 60e6 / 0xFFFFFF * (1 + 1e-9)


def write_midi(sequence: NoteSequence, path: str | os.PathLike[str]) -> None:
    """Writes `sequence` as a Standard MIDI File with note_seq's writer (pretty_midi), atomically.

    The file keeps the sequence's ticks_per_quarter, tempos, time and key signatures, and one track
    per (instrument, program, is_drum).
    """
    with atomic_output(path) as temporary:
        to_pretty_midi(sequence).write(str(temporary))


def to_pretty_midi(sequence: NoteSequence):
    """note_seq's `note_sequence_to_pretty_midi`, but with the tempo map laid in one pass: note_seq
    recomputes pretty_midi's whole tick-to-time table after each tempo event, which takes minutes
    on a file with a tempo event on every tick. The ticks are the same: each tempo event goes on
    the tick nearest its time under the tempos before it."""
    from note_seq import midi_io

    if any(t.qpm < SLOWEST_QPM for t in sequence.tempos):
        slowed, sequence = sequence, NoteSequence()
        sequence.CopyFrom(slowed)
        for tempo in sequence.tempos:
            tempo.qpm = max(tempo.qpm, SLOWEST_QPM)
    initial = next((t for t in sequence.tempos if t.time == 0), None)
    later = sorted((t for t in sequence.tempos if t is not initial), key=lambda t: t.time)
    if not later:
        return midi_io.note_sequence_to_pretty_midi(sequence)
    stripped = NoteSequence()
    stripped.CopyFrom(sequence)
    del stripped.tempos[:]
    if initial is not None:
        stripped.tempos.add().CopyFrom(initial)
    midi = midi_io.note_sequence_to_pretty_midi(stripped)
    tick, scale = midi._tick_scales[-1]  # pylint: disable=protected-access
    time = 0.0  # the time of `tick`
    for tempo in later:
        steps = round((tempo.time - time) / scale)
        tick, time = tick + steps, time + steps * scale
        scale = 60.0 / (midi.resolution * tempo.qpm)
        midi._tick_scales.append((tick, scale))  # pylint: disable=protected-access
    midi._update_tick_to_time(0)  # pylint: disable=protected-access
    return midi
