"""`gen score`: a readable score of a piece (MT3 transcriptions included), through music21.

Not a literal dump of performed durations: every note is laid on the analysed grid
(`generation.transcription`: tempo, meter, downbeat, key) and quantized to 16th notes; a gap of
less than a beat before a track's next onset is articulation, not a rest, so the note lasts up to
that onset (a staccato performance reads as plain notes); notes struck together are one chord, and a
chord is cut where the next one starts (one voice per staff). A piano (General MIDI programs 0-7)
playing with both hands (a tenth of its notes or more on either side of middle C, an octave and a
fifth apart) gets a braced grand staff split there, any other track one staff in the clef of its
median note; drums get a percussion staff in the usual drum-set
positions (kick in the bottom space, snare on the third space, cymbals above the staff with x
noteheads). Times here are in quarter notes from the score's first bar line unless said.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from generation.errors import GenError
from generation.limits import MAX_SCORE_BARS
from generation.protos import NoteSequence
from generation.transcription import Analysis, instrument_name, on_grid

STEP = 0.25  # quarter notes: the 16th-note grid
MIDDLE_C = 60
# A piano track gets two staves when at least GRAND_STAFF_SHARE of its notes lie on each side of
# middle C and its range (5th to 95th percentile) spans GRAND_STAFF_SPREAD semitones (a tenor
# voice around middle C stays on one staff).
GRAND_STAFF_SHARE = 0.1
GRAND_STAFF_SPREAD = 19
FORMATS = (".musicxml", ".xml", ".mxl", ".svg")

# GM drum pitch -> (display step, octave, notehead) on a percussion staff (the common drum-set key).
DRUM_POSITIONS: dict[int, tuple[str, int, str]] = {
    35: ("F", 4, "normal"), 36: ("F", 4, "normal"),  # kicks
    37: ("C", 5, "x"), 38: ("C", 5, "normal"), 40: ("C", 5, "normal"),  # side stick, snares
    41: ("A", 4, "normal"), 43: ("A", 4, "normal"),  # floor toms
    45: ("D", 5, "normal"), 47: ("D", 5, "normal"), 48: ("E", 5, "normal"), 50: ("E", 5, "normal"),  # toms
    42: ("G", 5, "x"), 44: ("D", 4, "x"), 46: ("G", 5, "circle-x"),  # hi-hat closed, pedal, open
    49: ("A", 5, "x"), 57: ("A", 5, "x"), 52: ("A", 5, "x"), 55: ("A", 5, "x"),  # crashes, china, splash
    51: ("F", 5, "x"), 59: ("F", 5, "x"), 53: ("F", 5, "diamond"),  # rides, ride bell
}
OTHER_DRUM = ("E", 4, "triangle")


@dataclass
class Event:
    """Notes of one track struck together: onset and length in quarter notes, pitches, drums or not."""

    onset: float
    length: float
    pitches: list[int]


def _q(value: float) -> float:
    return round(value / STEP) * STEP


def track_events(notes: Sequence[Any], quarter_seconds: float) -> list[Event]:
    """Quantized events of one track's notes (grid seconds): chords by onset, lengths as the module says."""
    by_onset: dict[float, list[Any]] = {}
    for note in notes:
        by_onset.setdefault(_q(note.start_time / quarter_seconds), []).append(note)
    onsets = sorted(by_onset)
    events = []
    for index, onset in enumerate(onsets):
        struck = by_onset[onset]
        end = max(max(_q(n.end_time / quarter_seconds) for n in struck), onset + STEP)
        following = onsets[index + 1] if index + 1 < len(onsets) else None
        if following is not None and (end > following or following - end < 1.0):
            end = following  # overlapping the next chord, or a gap of less than a beat: up to it
        events.append(Event(onset, end - onset, sorted({n.pitch for n in struck})))
    return events


def _pitch(midi: int, flats: bool) -> Any:
    """A music21 pitch spelled for the key: no written natural (the key signature decides what is
    shown), black keys as flats in flat keys, as sharps otherwise."""
    from music21 import pitch

    spelled = pitch.Pitch(midi=midi)
    if spelled.accidental is not None and spelled.accidental.name == "natural":
        spelled.accidental = None
    if flats and spelled.accidental is not None and spelled.accidental.name == "sharp":
        spelled = spelled.getEnharmonic()
    return spelled


def _part_for(name: str, events: Iterable[Event], *, drums: bool, clef: Any = None, flats: bool = False,
              staff: bool = False) -> Any:
    from music21 import chord, note, percussion, stream
    from music21 import clef as clefs

    part = stream.PartStaff() if staff else stream.Part()
    part.partName = name
    if drums:
        part.insert(0, clefs.PercussionClef())
    elif clef is not None:
        part.insert(0, clef)
    for event in events:
        if drums:
            heads = []
            for pitch in event.pitches:
                step, octave, head = DRUM_POSITIONS.get(pitch, OTHER_DRUM)
                hit = note.Unpitched(displayName=f"{step}{octave}")
                hit.notehead = head
                heads.append(hit)
            element = heads[0] if len(heads) == 1 else percussion.PercussionChord(heads)
        elif len(event.pitches) == 1:
            element = note.Note(_pitch(event.pitches[0], flats))
        else:
            element = chord.Chord([_pitch(p, flats) for p in event.pitches])
        element.quarterLength = event.length
        part.insert(event.onset, element)
    return part


def _key(name: str) -> Any:
    from music21 import key

    if not name:
        return None
    tonic, mode = name.split()
    return key.Key(tonic.replace("b", "-"), mode)


def to_score(sequence: NoteSequence, analysis: Analysis, *, title: str = "", parts: Sequence[str] | None = None,
             from_bar: int = 1, bars: int | None = None) -> Any:
    """A music21 Score of `sequence` on `analysis`'s grid. `parts`: instrument names to keep (as
    `instrument_name` gives them, case-insensitive); `from_bar` (1 = the bar of the first note) and
    `bars` choose the measures printed."""
    from music21 import layout, metadata, meter, stream, tempo

    grid = on_grid(sequence, analysis)
    quarter = 60.0 / analysis.tempo_bpm
    bar_quarters = analysis.bar_seconds / quarter
    # Bar 1 is the bar of the first note: a downbeat estimated a hair after it leaves the grid's
    # bar 0 empty but for that note's first milliseconds.
    first = min((_q(n.start_time / quarter) for n in grid.notes), default=0.0)
    begin = (int(first // bar_quarters) + from_bar - 1) * bar_quarters
    end = None if bars is None else begin + bars * bar_quarters
    last = max((n.end_time / quarter for n in grid.notes), default=begin)
    printed = math.ceil((min(last, end if end is not None else last) - begin) / bar_quarters - 1e-6)
    if printed > MAX_SCORE_BARS.value:
        raise GenError(f"a score of {printed:,} bars; at most {MAX_SCORE_BARS.value:,g} are printed at once "
                       f"(choose them with --from-bar and --bars, or raise the limit with {MAX_SCORE_BARS.name}=N)")
    tracks: dict[tuple[int, int, bool], list[Any]] = {}
    for note in grid.notes:
        onset = note.start_time / quarter
        if onset >= begin - STEP / 2 and (end is None or onset < end - STEP / 2):
            tracks.setdefault((note.instrument, note.program, note.is_drum), []).append(note)
    wanted = {p.strip().lower() for p in parts} if parts else None
    score = stream.Score()
    score.insert(0, metadata.Metadata(title=title))
    made = 0
    for (_, program, is_drum), notes in sorted(tracks.items(), key=lambda kv: (kv[0][2], kv[0][1], kv[0][0])):
        name = instrument_name(program, is_drum)
        if wanted is not None and name.lower() not in wanted:
            continue
        events = [Event(e.onset - begin, e.length, e.pitches) for e in track_events(notes, quarter)]
        if end is not None:
            events = [Event(e.onset, min(e.length, end - begin - e.onset), e.pitches) for e in events]
        staves = _staves(events, program, is_drum)
        grand = len(staves) == 2
        signature = None if is_drum else _key(analysis.key)
        flats = signature is not None and signature.sharps < 0
        made_parts = []
        for staff_events, staff_clef in staves:
            part = _part_for(name, staff_events, drums=is_drum, clef=staff_clef, flats=flats, staff=grand)
            part.insert(0, meter.TimeSignature(f"{analysis.time_signature[0]}/{analysis.time_signature[1]}"))
            if signature is not None:
                part.insert(0, _key(analysis.key))
            made_parts.append(part)
        if made_parts and made == 0:
            made_parts[0].insert(0, tempo.MetronomeMark(number=round(analysis.tempo_bpm)))
        for part in made_parts:
            score.insert(0, part)
        if grand:  # one part on two staves, as MusicXML writes a piano
            score.insert(0, layout.StaffGroup(made_parts, name=name, symbol="brace", barTogether=True))
        made += 1
    if not made:
        what = f"no instrument named {', '.join(sorted(wanted))}" if wanted else "no notes"
        raise GenError(f"nothing to print: {what} in the bars chosen")
    for part in score.parts:
        part.makeMeasures(inPlace=True)
        part.makeTies(inPlace=True)
        part.makeAccidentals(inPlace=True)
        for measure in part.getElementsByClass("Measure"):
            measure.number += from_bar - 1  # the piece's own bar numbers
    return score


def _staves(events: list[Event], program: int, is_drum: bool) -> list[tuple[list[Event], Any]]:
    """(events, clef) per staff of a track: a piano playing with both hands (GRAND_STAFF_SHARE,
    GRAND_STAFF_SPREAD) on two staves split at middle C; one voice of a chorale on a piano sound, or
    any other track, on one staff in the clef of its median note; drums on one with no clef here
    (`_part_for` gives it the percussion clef)."""
    from music21 import clef

    if is_drum:
        return [(events, None)]
    pitches = sorted(p for e in events for p in e.pitches)
    below = sum(p < MIDDLE_C for p in pitches) / max(len(pitches), 1)
    spread = pitches[int(0.95 * (len(pitches) - 1))] - pitches[int(0.05 * (len(pitches) - 1))] if pitches else 0
    if program <= 7 and GRAND_STAFF_SHARE <= below <= 1 - GRAND_STAFF_SHARE and spread >= GRAND_STAFF_SPREAD:
        return [(_split(events, upper=True), clef.TrebleClef()), (_split(events, upper=False), clef.BassClef())]
    low = bool(pitches) and pitches[len(pitches) // 2] < MIDDLE_C
    return [(events, clef.BassClef() if low else clef.TrebleClef())]


def _split(events: list[Event], *, upper: bool) -> list[Event]:
    """The events' notes at or above middle C (upper) or below it, as a staff of their own."""
    kept = []
    for event in events:
        pitches = [p for p in event.pitches if (p >= MIDDLE_C) == upper]
        if pitches:
            kept.append(Event(event.onset, event.length, pitches))
    return kept


def write_score(score: Any, path: str) -> None:
    """MusicXML (.musicxml, .xml), compressed MusicXML (.mxl) or SVG pages (.svg, with verovio),
    under a temporary name and then renamed."""
    from pathlib import Path

    from generation.io.files import atomic_output

    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise GenError(f"{path}: a score is written as {', '.join(FORMATS)}; got {suffix or 'no suffix'}")
    import tempfile

    with tempfile.TemporaryDirectory() as folder, atomic_output(path) as temporary:
        # music21 picks its own file name from the format: write in a folder of our own, then copy.
        xml = Path(folder) / ("score.mxl" if suffix == ".mxl" else "score.musicxml")
        written = score.write("mxl" if suffix == ".mxl" else "musicxml", fp=str(xml))
        if suffix == ".svg":
            try:
                import verovio
            except ImportError:
                raise GenError("an SVG score needs verovio: pip install 'gen-music[score]' "
                               "(from a checkout: pip install '.[score]')") from None
            toolkit = verovio.toolkit()
            toolkit.loadFile(str(written))
            Path(temporary).write_text(toolkit.renderToSVG(1), encoding="utf-8")
        else:
            Path(temporary).write_bytes(Path(written).read_bytes())
