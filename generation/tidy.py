"""`gen tidy`: a transcription (MT3's above all) made usable in DAWs and notation software.

MT3 writes every file at 120 bpm in 4/4 whatever the music does, transcribes audio in independent
2-second segments (so one instrument can jump between related programs from one segment to the
next, magenta/mt3#87), and writes drum hits 10 ms long. `tidy` gives such a file:

- the estimated tempo map and meter (`generation.transcription.set_grid`), so bar lines fall on the
  music's downbeats; every note keeps its time (1,920 ticks per quarter: within 0.3 ms);
- one track per instrument, named by its General MIDI name: program jumps merged by MERGE_RULE;
- drum hits a 16th note long (or up to the next hit of the same drum, if sooner);
- optionally every note on the grid's 16ths (`quantize`).

Times are in seconds of the piece; "grid seconds" are the steady grid of `Analysis.to_grid`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from generation.protos import NoteSequence
from generation.transcription import Analysis, instrument_name, set_grid

# Two pitched tracks are one instrument jumping between programs when their programs are in the
# same General MIDI family (the table's groups of 8: pianos 0-7, chromatic percussion 8-15, organs,
# guitars, basses, strings, ensembles, brass, reeds, pipes, synth leads, pads, ...) and they sound
# together for less than MERGE_OVERLAP of the shorter one's sounding time: two real instruments
# play together, segments of one alternate. The smaller joins the one with more notes.
MERGE_OVERLAP = 0.05
MERGE_RULE = ("same General MIDI family (programs 8 to a family), sounding together less than 5% of the "
              "smaller track's time: merged into the track with more notes")


@dataclass
class TidyResult:
    sequence: NoteSequence
    analysis: Analysis
    merged: list[tuple[int, int, int]] = field(default_factory=list)  # (program, into program, notes moved)
    drum_notes_lengthened: int = 0
    notes_quantized: int = 0


def _sounding(intervals: np.ndarray) -> np.ndarray:
    """The union of [start, end) intervals [N, 2] as disjoint sorted intervals [M, 2]."""
    if len(intervals) == 0:
        return intervals.reshape(0, 2)
    ordered = intervals[np.argsort(intervals[:, 0])]
    merged = [list(ordered[0])]
    for start, end in ordered[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return np.array(merged)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Seconds during which both unions of intervals (`_sounding`) sound."""
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        total += max(0.0, min(a[i, 1], b[j, 1]) - max(a[i, 0], b[j, 0]))
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return total


def merge_program_jumps(sequence: NoteSequence) -> list[tuple[int, int, int]]:
    """Merges, in place, pitched tracks that are one instrument jumping between programs
    (MERGE_RULE); returns (program, program merged into, notes moved) for each merge."""
    tracks: dict[tuple[int, int], list] = {}
    for note in sequence.notes:
        if not note.is_drum:
            tracks.setdefault((note.instrument, note.program), []).append(note)
    sounding = {key: _sounding(np.array([[n.start_time, n.end_time] for n in notes])) for key, notes in tracks.items()}
    merges = []
    kept: list[tuple[int, int]] = []
    for key in sorted(tracks, key=lambda k: -len(tracks[k])):
        time = float(np.sum(sounding[key][:, 1] - sounding[key][:, 0]))
        into = next((k for k in kept if k[1] // 8 == key[1] // 8
                     and _overlap(sounding[k], sounding[key]) < MERGE_OVERLAP * time), None)
        if into is None:
            kept.append(key)
            continue
        for note in tracks[key]:
            note.instrument, note.program = into
        tracks[into] += tracks[key]
        sounding[into] = _sounding(np.concatenate([sounding[into], sounding[key]]))
        merges.append((key[1], into[1], len(tracks[key])))
    return merges


def lengthen_drums(sequence: NoteSequence, analysis: Analysis) -> int:
    """Gives every drum hit shorter than a 16th note a 16th (on the grid), or up to the next hit of
    the same drum when that comes sooner; returns how many were lengthened."""
    sixteenth = 15.0 / analysis.tempo_bpm  # grid seconds
    by_pitch: dict[int, list] = {}
    for note in sequence.notes:
        if note.is_drum:
            by_pitch.setdefault(note.pitch, []).append(note)
    changed = 0
    for hits in by_pitch.values():
        hits.sort(key=lambda n: n.start_time)
        for note, following in zip(hits, hits[1:] + [None]):
            end = float(analysis.from_grid(analysis.to_grid(note.start_time) + sixteenth))
            if following is not None:
                end = min(end, following.start_time)
            if end > note.end_time + 1e-6:
                note.end_time = end
                changed += 1
    return changed


def quantize(sequence: NoteSequence, analysis: Analysis) -> int:
    """Moves every note's start and end to the nearest 16th of the grid (a note at least a 16th
    long); returns how many notes moved."""
    sixteenth = 15.0 / analysis.tempo_bpm
    moved = 0
    for note in sequence.notes:
        start = round(float(analysis.to_grid(note.start_time)) / sixteenth) * sixteenth
        end = max(round(float(analysis.to_grid(note.end_time)) / sixteenth) * sixteenth, start + sixteenth)
        new_start, new_end = float(analysis.from_grid(start)), float(analysis.from_grid(end))
        if abs(new_start - note.start_time) > 1e-6 or abs(new_end - note.end_time) > 1e-6:
            moved += 1
        note.start_time, note.end_time = new_start, new_end
    return moved


def name_tracks(sequence: NoteSequence) -> None:
    """One instrument_info per instrument, named by its General MIDI name ("Drums" for drums)."""
    del sequence.instrument_infos[:]
    seen: dict[int, tuple[int, bool]] = {}
    for note in sequence.notes:
        seen.setdefault(note.instrument, (note.program, note.is_drum))
    for instrument, (program, is_drum) in sorted(seen.items()):
        sequence.instrument_infos.add(instrument=instrument, name=instrument_name(program, is_drum))


def tidy(sequence: NoteSequence, analysis: Analysis, *, snap: bool = False) -> TidyResult:
    """A tidied copy of `sequence` (see the module's docstring) on `analysis`'s grid: written with
    that grid's tempo map and meter when the grid was estimated, else with the file's own."""
    result = TidyResult(copy.deepcopy(sequence), analysis)
    tidied = result.sequence
    result.merged = merge_program_jumps(tidied)
    result.drum_notes_lengthened = lengthen_drums(tidied, analysis)
    if snap:
        result.notes_quantized = quantize(tidied, analysis)
    name_tracks(tidied)
    tidied.total_time = max([n.end_time for n in tidied.notes], default=0.0)
    if analysis.tempo_source != "file":
        set_grid(tidied, analysis)
    return result
