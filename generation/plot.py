"""Piano rolls: one panel per track, the original's notes in blue and new ones in orange, bar lines
where the analysis puts the music's downbeats. matplotlib comes with music21, so this needs no extra.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from generation.io.files import atomic_output
from generation.protos import NoteSequence
from generation.transcription import Analysis, instrument_name

ORIGINAL, NEW = "#1f77b4", "#ff7f0e"


def new_notes(piece: NoteSequence, original: NoteSequence, tolerance: float = 1e-3) -> list[bool]:
    """For each note of `piece`: True unless `original` has a note of the same pitch, program and
    drum flag starting within `tolerance` seconds (what `gen continue` and `gen vary` kept)."""
    import bisect

    kept: dict[tuple[int, int, bool], list[float]] = {}
    for note in original.notes:
        kept.setdefault((note.pitch, note.program, note.is_drum), []).append(note.start_time)
    for times in kept.values():
        times.sort()
    flags = []
    for note in piece.notes:
        times = kept.get((note.pitch, note.program, note.is_drum), [])
        i = bisect.bisect_left(times, note.start_time - tolerance)
        flags.append(not (i < len(times) and times[i] <= note.start_time + tolerance))
    return flags


def piano_roll(piece: NoteSequence, path: str | os.PathLike[str], analysis: Analysis, *,
               new: list[bool] | None = None, bars_before: int = 8, title: str = "") -> None:
    """Writes a PNG piano roll of `piece` to `path` (atomically): a panel per (program, drums) track,
    from `bars_before` bars before the first new note (all of it when nothing is new), with
    `analysis`'s bar lines. `new`: a flag per note (`new_notes`), drawn in orange."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    flags = new if new is not None else [False] * len(piece.notes)
    first_new = min((n.start_time for n, f in zip(piece.notes, flags) if f), default=None)
    begin = 0.0 if first_new is None else max(0.0, first_new - bars_before * analysis.bar_seconds)
    end = max((n.end_time for n in piece.notes), default=1.0)
    by_track: dict[tuple[bool, int], list[tuple[Any, bool]]] = {}
    for note, is_new in zip(piece.notes, flags):
        by_track.setdefault((note.is_drum, note.program), []).append((note, is_new))
    tracks = sorted(by_track)
    figure, axes = plt.subplots(len(tracks) or 1, 1, figsize=(14, 1.8 + 1.6 * len(tracks)), sharex=True,
                                squeeze=False)
    downbeats = _downbeats(analysis, begin, end)
    for ax, (is_drum, program) in zip(axes[:, 0], tracks):
        shown = [(n, f) for n, f in by_track[(is_drum, program)] if n.end_time >= begin]
        # One collection per colour: a long piece draws in seconds, not one artist per note.
        for colour, wanted in ((ORIGINAL, False), (NEW, True)):
            notes = [n for n, f in shown if f == wanted]
            if notes:
                ax.add_collection(PolyCollection(_boxes(notes, 0.04 if is_drum else 0.02), facecolors=colour,
                                                 edgecolors="none"))
        pitches = [n.pitch for n, _ in shown] or [60]
        ax.set_ylim(min(pitches) - 2, max(pitches) + 2)
        ax.set_ylabel(instrument_name(program, is_drum), rotation=0, ha="right", va="center", fontsize=8)
        ax.vlines(downbeats, 0, 1, transform=ax.get_xaxis_transform(), color="#bbbbbb", linewidth=0.6, zorder=0)
        if first_new is not None:
            ax.axvline(first_new, color="red", linewidth=1.2)
    axes[-1, 0].set_xlabel("seconds")
    axes[-1, 0].set_xlim(begin, end)
    figure.suptitle(title or "blue: the piece, orange: new", fontsize=10)
    figure.tight_layout()
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png", dpi=80)
    plt.close(figure)


def _boxes(notes: list[Any], shortest: float) -> Any:
    """Rectangles [notes, 4 corners, (seconds, pitch)]: each note's time span, at least `shortest`
    seconds wide so a drum hit shows, 0.8 of a semitone high."""
    start = np.array([n.start_time for n in notes])
    end = np.maximum(np.array([n.end_time for n in notes]), start + shortest)
    low = np.array([n.pitch for n in notes]) - 0.4
    high = low + 0.8
    return np.stack([np.stack([start, low], 1), np.stack([end, low], 1), np.stack([end, high], 1),
                     np.stack([start, high], 1)], 1)


def _downbeats(analysis: Analysis, begin: float, end: float) -> list[float]:
    bar = analysis.bar_seconds
    first = int((analysis.to_grid(begin)) // bar)
    last = int(analysis.to_grid(end) // bar) + 1
    return [float(analysis.from_grid(k * bar)) for k in range(first, last + 1)]
