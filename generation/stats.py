"""What a TFRecord file of NoteSequences holds (what `gen inspect` prints)."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field

from generation.io.tfrecord import scan_records
from generation.metadata import get_metadata
from generation.protos import NoteSequence

# Metadata columns worth a distribution in the summary; the rest are per-file identifiers.
SUMMARISED_COLUMNS = ("split", "style", "genre", "beat_type", "time_signature", "drummer")


@dataclass
class DatasetStats:
    """Totals over every readable NoteSequence of one or more TFRecord files.

    Durations are in seconds, tempos in quarter notes per minute.
    """

    files: list[str] = field(default_factory=list)
    sequences: int = 0
    damaged_records: int = 0
    damage: list[str] = field(default_factory=list)  # one line per damaged record: file, offset, problem
    total_seconds: float = 0.0
    notes: int = 0
    drum_notes: int = 0
    instruments: int = 0  # summed over sequences: distinct (instrument, program, is_drum) in each
    programs: dict[str, int] = field(default_factory=dict)  # 'drums' or GM program number -> notes
    tempo_min: float | None = None
    tempo_max: float | None = None
    time_signatures: dict[str, int] = field(default_factory=dict)  # '4/4' -> sequences having it
    metadata: dict[str, dict[str, int]] = field(default_factory=dict)  # column -> value -> sequences

    @property
    def drum_share(self) -> float:
        return self.drum_notes / self.notes if self.notes else 0.0

    def to_json(self) -> dict:
        data = asdict(self)
        data["drum_share"] = self.drum_share
        return data


def inspect_tfrecords(paths: list[str | os.PathLike[str]]) -> DatasetStats:
    """Reads every record of `paths`, counting damaged ones instead of stopping at them."""
    stats = DatasetStats(files=[os.fspath(p) for p in paths])
    programs: Counter[str] = Counter()
    time_signatures: Counter[str] = Counter()
    metadata: dict[str, Counter[str]] = {}
    for path in paths:
        for scan in scan_records(path):
            if scan.data is None:
                stats.damaged_records += 1
                stats.damage.append(f"{os.fspath(path)}: byte {scan.offset}: {scan.problem}")
                continue
            sequence = NoteSequence()
            try:
                sequence.ParseFromString(scan.data)
            except Exception:  # upb's DecodeError; a record with a good checksum but not a NoteSequence
                stats.damaged_records += 1
                stats.damage.append(f"{os.fspath(path)}: byte {scan.offset}: not a NoteSequence")
                continue
            _add_sequence(stats, sequence, programs, time_signatures, metadata)
    stats.programs = dict(programs.most_common())
    stats.time_signatures = dict(time_signatures.most_common())
    stats.metadata = {column: dict(counts.most_common()) for column, counts in metadata.items()}
    return stats


def _add_sequence(
    stats: DatasetStats,
    sequence: NoteSequence,
    programs: Counter[str],
    time_signatures: Counter[str],
    metadata: dict[str, Counter[str]],
) -> None:
    stats.sequences += 1
    stats.total_seconds += sequence.total_time
    stats.notes += len(sequence.notes)
    instruments = set()
    for note in sequence.notes:
        instruments.add((note.instrument, note.program, note.is_drum))
        if note.is_drum:
            stats.drum_notes += 1
    stats.instruments += len(instruments)
    for note_program, count in Counter("drums" if n.is_drum else str(n.program) for n in sequence.notes).items():
        programs[note_program] += count
    for tempo in sequence.tempos:
        stats.tempo_min = tempo.qpm if stats.tempo_min is None else min(stats.tempo_min, tempo.qpm)
        stats.tempo_max = tempo.qpm if stats.tempo_max is None else max(stats.tempo_max, tempo.qpm)
    for signature in {f"{t.numerator}/{t.denominator}" for t in sequence.time_signatures}:
        time_signatures[signature] += 1
    for column, value in get_metadata(sequence).items():
        if column in SUMMARISED_COLUMNS:
            metadata.setdefault(column, Counter())[value] += 1
