"""NoteSequence -> files."""

from __future__ import annotations

import os

from generation.io.files import atomic_output
from generation.protos import NoteSequence


def write_midi(sequence: NoteSequence, path: str | os.PathLike[str]) -> None:
    """Writes `sequence` as a Standard MIDI File with note_seq's writer (pretty_midi), atomically.

    The file keeps the sequence's ticks_per_quarter, tempos, time and key signatures, and one track
    per (instrument, program, is_drum).
    """
    from note_seq import midi_io

    with atomic_output(path) as temporary:
        midi_io.sequence_proto_to_midi_file(sequence, str(temporary))
