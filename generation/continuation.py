"""`gen continue`: carry a piece on, track by track, with the model for each track's role.

The piece is analysed (`generation.transcription.analyse`: tempo, meter, downbeat, key, roles),
laid on its grid (`on_grid`: shifted so downbeats fall on bar lines, or, for a performance whose
tempo drifts, each beat moved onto the grid's beat), and each track whose role has a model is
continued from its own notes, starting on the first downbeat at or after the piece's end. The output holds the original piece untouched (every
note at its time, pitch, velocity and instrument) and the continuation after it.

Roles and models: drums -> a drum model (drum_kit_rnn); melody and bass -> a melody model
(attention_rnn, basic_rnn), bass falling back to the melody model; chords -> a polyphony model
(polyphony_rnn) or a performance model, falling back to the melody model. A track whose role has no
model is kept and not continued, and the report says so.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from generation.bundled import display_name
from generation.continuation_metrics import DISSONANT_INTERVALS
from generation.errors import BadInputFile, GenError
from generation.protos import NoteSequence
from generation.transcription import ROLES, Analysis, Track, analyse, map_times, on_grid, set_grid

# `gen vary` draws this many candidates for each re-sampled bar (one batch) and keeps the one whose
# notes agree best with what the other tracks play in that bar: the rest of the piece as context.
VARY_CANDIDATES = 4
FALLBACKS = {"drums": ("drums",), "melody": ("melody",), "bass": ("bass", "melody"), "chords": ("chords", "melody")}


@dataclass
class TrackResult:
    track: Track
    model: str | None  # the run continuing it, or None
    new_notes: int = 0
    skipped: str = ""  # why it was not continued


@dataclass
class ContinuationResult:
    sequence: NoteSequence
    analysis: Analysis
    tracks: list[TrackResult] = field(default_factory=list)
    bars: int = 0
    plan: list[int] = field(default_factory=list)  # style "piece": the piece's bar (1 = its first) played in each new bar
    period: int = 0  # the piece's strongest repetition, in bars (0: none found)
    period_similarity: float = 0.0
    chords_found: list[str] = field(default_factory=list)  # a chord per bar of the piece's last bars
    chords_planned: list[str] = field(default_factory=list)  # a chord per new bar


# The LSTM encodings that can play each role's notes (`generation.lstm.encodings.ENCODINGS`).
ROLE_ENCODINGS = {"drums": ("drums",), "melody": ("melody", "polyphony", "performance"),
                  "bass": ("melody", "polyphony", "performance"), "chords": ("polyphony", "performance", "melody")}


@dataclass
class ModelChoice:
    """Which run serves each role, and where each choice came from."""

    runs: dict[str, str] = field(default_factory=dict)  # role -> run directory or bundled model name
    bundled: list[str] = field(default_factory=list)  # roles served by a bundled default

    def describe(self) -> str:
        return ", ".join(f"{role}={run}{' (bundled)' if role in self.bundled else ''}"
                         for role, run in self.runs.items())


def _run_kind(run: str) -> tuple[str, str]:
    """(family, encoding type or '') of a run directory or bundled model name, from its config alone."""
    from generation.checkpoint import read_run_config, resolve_checkpoint
    from generation.config_files import run_family

    family = run_family(run)
    if family != "lstm":
        return family, ""
    directory, _ = resolve_checkpoint(run)
    return family, str(read_run_config(directory).get("encoding", {}).get("type", ""))


def check_role_model(role: str, run: str) -> None:
    """A `GenError` unless `run` (an LSTM run) can play `role`'s notes; reads only its config."""
    family, encoding = _run_kind(run)
    if family != "lstm":
        raise GenError(f"--model {role}={run}: {'a GrooVAE' if family == 'groovae' else f'a {family} run'}, "
                       "not an LSTM note model; "
                       f"{'give it to --groove' if family == 'groovae' else 'train an LSTM config'}")
    if encoding not in ROLE_ENCODINGS[role]:
        wanted = " or ".join(ROLE_ENCODINGS[role])
        raise GenError(f"--model {role}={run}: a {encoding} model cannot play {role}; {role} takes a {wanted} model")


def check_groove_model(run: str) -> None:
    family, _ = _run_kind(run)
    if family != "groovae":
        what = "an LSTM note model" if family == "lstm" else f"a {family} run"
        raise GenError(f"--groove {run}: {what}, not a GrooVAE; give LSTMs with --model ROLE=RUN")


def choose_models(named: Mapping[str, str], roles: tuple[str, ...] = ROLES, *, bundled: bool = True) -> ModelChoice:
    """The run for each of `roles`: the bundled default (`gen models`), replaced role by role by
    `named` (role -> run directory or bundled name). Each named run is checked against its role
    before any model loads."""
    from generation.bundled import defaults_by_role

    choice = ModelChoice()
    if bundled:
        for role, model in defaults_by_role().items():
            if role in roles and role not in named:
                choice.runs[role] = model.name
                choice.bundled.append(role)
    for role, run in named.items():
        check_role_model(role, run)
        choice.runs[role] = run
    return choice


def load_models(choice: ModelChoice) -> dict[str, Any]:
    """role -> `LSTMModel` for a `ModelChoice`."""
    from generation.lstm import LSTMModel

    return {role: LSTMModel(run) for role, run in choice.runs.items()}


def variation_paths(output: str, count: int) -> list[str]:
    """Where `gen vary -n count` and `gen continue -n count` write: `output` itself for one,
    OUTPUT-001.mid ... for more (the suffix kept: roll.png gives roll-001.png ...)."""
    if count == 1:
        return [output]
    from pathlib import Path

    path = Path(output)
    return [str(path.with_suffix("")) + f"-{k:03d}{path.suffix or '.mid'}" for k in range(1, count + 1)]


def model_for(role: str, models: Mapping[str, Any]) -> tuple[str, Any] | None:
    for candidate in FALLBACKS[role]:
        if candidate in models:
            return candidate, models[candidate]
    return None


def _track_notes(sequence: NoteSequence, track: Track) -> NoteSequence:
    part = copy.deepcopy(sequence)
    del part.notes[:]
    for note in sequence.notes:
        if (note.instrument, note.program, note.is_drum) == (track.instrument, track.program, track.is_drum):
            part.notes.add().CopyFrom(note)
    return part


def _on_its_grid(sequence: NoteSequence, estimate_tempo: bool | None, name: str) -> tuple[Analysis, NoteSequence]:
    """(analysis, the piece on its grid); a piece with nothing to analyse is a `BadInputFile` naming `name`."""
    try:
        analysis = analyse(sequence, estimate=estimate_tempo)
    except GenError as error:
        raise BadInputFile(name, str(error)) from None
    return analysis, on_grid(sequence, analysis)


STYLES = ("piece", "models")
DEFAULT_NOVELTY = 0.5
CONTEXT_BARS = 4  # bars of the piece's end that the plan matches against its earlier bars
STRUCTURE_BARS = 128  # the plan looks this far back: bounded work on a long piece


def continue_piece(
    sequence: NoteSequence,
    models: Mapping[str, Any],
    *,
    bars: int = 8,
    temperature: float = 1.0,
    seed: int | None = None,
    only_continuation: bool = False,
    estimate_tempo: bool | None = None,
    style: str = "piece",
    novelty: float = DEFAULT_NOVELTY,
    progress: Callable[[str], None] | None = None,
    name: str = "the piece",
) -> ContinuationResult:
    """Continues `sequence` by `bars` bars; `name` (the file) goes into error messages.

    style "piece" (the default): the piece goes on the way it goes (`generation.structure.plan_bars`:
    after its last bars comes what followed the most similar earlier bars), every track in its own
    texture, and a share `novelty` of the bars of each pitched track is written anew by the model
    for its role (`models`: `LSTMModel`s by role), chosen among candidates for the planned bar's
    harmony and the track's texture (`_rewrite_bar`). novelty 0 plays only the piece's own bars.
    style "models": each track continued on its own by the model for its role, from its own notes."""
    if bars < 1:
        raise GenError(f"bars must be at least 1; got {bars}")
    if style not in STYLES:
        raise GenError(f"style must be one of {', '.join(STYLES)}; got {style!r}")
    if not 0 <= novelty <= 1:
        raise GenError(f"novelty must be between 0 and 1; got {novelty}")
    analysis, grid = _on_its_grid(sequence, estimate_tempo, name)
    start = analysis.continuation_grid_start  # a bar line of the grid
    output = copy.deepcopy(sequence)
    if only_continuation:
        del output.notes[:]
    result = ContinuationResult(output, analysis, bars=bars)
    if style == "piece":
        new_notes = _go_on_as_the_piece(grid, analysis, models, result, bars=bars, temperature=temperature,
                                        seed=seed, novelty=novelty, progress=progress)
    else:
        new_notes = _continue_track_by_track(grid, analysis, models, result, bars=bars, temperature=temperature,
                                             seed=seed, progress=progress, name=name)
    for note in new_notes:
        added = output.notes.add()
        added.CopyFrom(note)
        added.start_time = analysis.from_grid(note.start_time)
        added.end_time = analysis.from_grid(note.end_time)
    end = analysis.from_grid(start + bars * analysis.bar_seconds)
    output.total_time = max([end] + [n.end_time for n in output.notes])
    if analysis.mt3_style:
        set_grid(output, analysis)
    return result


def _continue_track_by_track(grid: NoteSequence, analysis: Analysis, models: Mapping[str, Any],
                             result: ContinuationResult, *, bars: int, temperature: float, seed: int | None,
                             progress: Callable[[str], None] | None, name: str) -> list[Any]:
    """style "models": new notes (grid times) of each track continued by its role's model alone."""
    start = analysis.continuation_grid_start
    if not any(model_for(t.role, models) for t in analysis.tracks):
        roles = sorted({t.role for t in analysis.tracks})
        raise GenError(f"{name}: no model for any of its tracks ({', '.join(roles)}); "
                       "give --model ROLE=RUN_DIR for one of them")
    new_notes: list[Any] = []
    for index, track in enumerate(analysis.tracks):
        chosen = model_for(track.role, models)
        if chosen is None:
            result.tracks.append(TrackResult(track, None, skipped=f"no model for {track.role}"))
            continue
        role, model = chosen
        if progress:
            progress(f"continuing track {index + 1}/{len(analysis.tracks)} ({_label(track)}) with "
                     f"{display_name(model.run_dir)} ({model.config.name})")
        primer = _track_notes(grid, track)
        primer.total_time = start
        began = time.perf_counter()
        try:
            continued = model.generate(primer, bars=bars if model.encoding.metric else None,
                                       seconds=None if model.encoding.metric else bars * analysis.bar_seconds,
                                       temperature=temperature, seed=None if seed is None else seed + index,
                                       start_time=start)
        except GenError as error:  # e.g. nothing the model can use in this track
            result.tracks.append(TrackResult(track, display_name(model.run_dir), skipped=str(error)))
            continue
        new = [n for n in continued.notes if n.start_time >= start - 1e-6]
        if progress:
            seconds = time.perf_counter() - began
            progress(f"  +{len(new)} notes in {seconds:.1f} s ({bars / max(seconds, 1e-9):.1f} bars/s)")
        for note in new:
            note.instrument, note.program, note.is_drum = track.instrument, track.program, track.is_drum
        new_notes.extend(new)
        result.tracks.append(TrackResult(track, display_name(model.run_dir), new_notes=len(new)))
    return new_notes


def _go_on_as_the_piece(grid: NoteSequence, analysis: Analysis, models: Mapping[str, Any],
                        result: ContinuationResult, *, bars: int, temperature: float, seed: int | None,
                        novelty: float, progress: Callable[[str], None] | None) -> list[Any]:
    """style "piece": new notes (grid times) following the plan of the piece's own bars, a share
    `novelty` of each pitched track's bars rewritten by its role's model."""
    from generation import structure

    bar_seconds = analysis.bar_seconds
    start = analysis.continuation_grid_start
    end_bar = int(round(start / bar_seconds))
    recent = NoteSequence()
    recent.notes.extend(n for n in grid.notes if n.start_time >= (end_bar - STRUCTURE_BARS) * bar_seconds - 1e-9)
    piece = structure.bars_of(recent, bar_seconds, start)
    rng = np.random.default_rng(seed)
    plan = structure.plan_bars(piece, bars, context=CONTEXT_BARS)
    period, similarity = structure.repeat_period(piece)
    result.plan = [b - piece.first + 1 for b in plan]
    result.period, result.period_similarity = period, similarity
    chords = structure.bar_chords(grid, bar_seconds, analysis.tempo_bpm, analysis.time_signature, piece.first,
                                  piece.end)
    result.chords_found = chords
    result.chords_planned = [chords[b - piece.first] for b in plan]
    if progress:
        progress(f"plan: bars {_bar_span(result.plan)} of the last {piece.count} bars"
                 + (f" (the piece repeats every {period} bars, similarity {similarity:.2f})" if period else ""))
    rest_window = range(end_bar - max(CONTEXT_BARS, period), end_bar)
    new_notes: list[Any] = []
    targets = [end_bar + k for k in range(bars)]
    playing = {key for key in piece.tracks if piece.plays(key, rest_window)}
    # Each pitched track's new bars as they will sound, once it is done: a later track's new bar is
    # checked against them, not against the plan they may have left.
    finished: dict[Any, list[Any]] = {}

    def sounding_with(key: Any, k: int) -> list[tuple[float, float, int]]:
        """(start, end, pitch) of the other pitched tracks in new bar k (grid seconds)."""
        begin, end = targets[k] * bar_seconds, (targets[k] + 1) * bar_seconds
        shift = (targets[k] - plan[k]) * bar_seconds
        notes = []
        for other in sorted(playing):
            if other == key or other[2]:
                continue
            if other in finished:
                notes += [(n.start_time, n.end_time, n.pitch) for n in finished[other]
                          if n.end_time > begin and n.start_time < end]
            else:
                notes += [(n.start_time + shift, n.end_time + shift, n.pitch) for n in piece.bar_notes(other, plan[k])]
        return notes

    for track in analysis.tracks:
        key = (track.instrument, track.program, track.is_drum)
        if key not in playing:
            result.tracks.append(TrackResult(track, None, skipped="resting at the end of the piece"))
            continue
        began = time.perf_counter()
        notes: list[Any] = []
        for k, (target, source) in enumerate(zip(targets, plan)):
            held_on = k + 1 < len(plan) and plan[k + 1] == source + 1
            shift = (target - source) * bar_seconds
            for note in piece.bar_notes(key, source):
                copied = type(note)()
                copied.CopyFrom(note)
                copied.start_time += shift
                copied.end_time += shift
                if not held_on:  # the next bar is not this bar's successor: nothing rings into it
                    copied.end_time = min(copied.end_time, (target + 1) * bar_seconds)
                notes.append(copied)
        chosen = model_for(track.role, models)
        rewritten = varied = 0
        # Each track draws its own bars, so that a varied bar mostly sounds against the piece's own
        # music in the other tracks.
        rewrite = rng.random(bars) < novelty
        if not track.is_drum and rewrite.any():
            pitches = [n.pitch for b in range(piece.first, piece.end) for n in piece.bar_notes(key, b)]
            register = (min(pitches), max(pitches))
            for k in np.flatnonzero(rewrite):
                target = targets[k]
                planned = [n for n in notes if target * bar_seconds - 1e-6 <= n.start_time < (target + 1) * bar_seconds - 1e-6]
                if not planned:
                    continue  # the track rests in this bar of the plan
                harmony = _planned_harmony(piece, plan[k], key)
                sounding = sounding_with(key, int(k))
                fresh = None
                if chosen is not None:
                    fresh = _rewrite_bar(chosen[1], grid, track, notes, target * bar_seconds, bar_seconds, planned,
                                         harmony, register, sounding, temperature=temperature,
                                         seed=(seed or 0) * 100_003 + int(k) * 1_009 + track.program)
                if fresh is not None:
                    notes = [n for n in notes if n not in planned] + fresh
                    rewritten += 1
                else:  # the piece's bar, its notes moved to other tones of the bar's harmony
                    _vary_pitches(planned, sounding, register, target * bar_seconds, rng)
                    varied += 1
        for note in notes:
            note.instrument, note.program, note.is_drum = key
        new_notes.extend(notes)
        finished[key] = notes
        how = [f"{rewritten} bars by {display_name(chosen[1].run_dir)}" if rewritten and chosen else "",
               f"{varied} bars varied in pitch" if varied else ""]
        source = ", ".join(["the piece"] + [h for h in how if h])
        result.tracks.append(TrackResult(track, source, new_notes=len(notes)))
        if progress and (rewritten or varied):
            progress(f"  {_label(track)}: {rewritten} bars rewritten, {varied} varied, in "
                     f"{time.perf_counter() - began:.1f} s")
    return new_notes


NEIGHBOURHOOD = 4  # semitones a varied note may move
CHORD_TONE = 0.35  # a pitch class sounding this share of the loudest one's time, at a note, is its harmony


def _vary_pitches(notes: list[Any], sounding: list[tuple[float, float, int]], register: tuple[int, int],
                  bar_start: float, rng: Any) -> None:
    """Varies a bar in place the way a player embellishes a repeat: the rhythm, the note count and
    the notes on the downbeat stay; every other note moves to a nearby tone (within NEIGHBOURHOOD
    semitones, inside the track's register) of the harmony sounding with it (`sounding`: the other
    tracks' (start, end, pitch) in this bar; where they are silent, the track's own bar), the more
    it sounds and the nearer, the likelier; notes struck together stay distinct. The piece's own
    amount of dissonance stays: a note that clashes (DISSONANT_INTERVALS) with another track's note
    sounding with it moves only to a tone that clashes too (the seventh of a seventh chord to its
    root), and a note that does not clash only to a tone that does not either."""
    low, high = register
    centre = (low + high) / 2
    low, high = int(min(low, centre - 6)), int(max(high, centre + 6))
    own = [(n.start_time, n.end_time, n.pitch) for n in notes]
    by_onset: dict[float, list[Any]] = {}
    for note in notes:
        by_onset.setdefault(round(note.start_time, 4), []).append(note)
    for onset, struck in sorted(by_onset.items()):
        if abs(onset - bar_start) < 1e-3:
            continue  # the downbeat anchors the bar's harmony
        end = max(n.end_time for n in struck)
        weights = _sounding_weights(sounding, onset, end)
        if not weights.any():
            weights = _sounding_weights(own, bar_start, end + 1e9)
        weights = weights / weights.max()
        against = [pitch for start, stop, pitch in sounding if start < end and stop > onset]
        taken = {n.pitch for n in struck}
        def clashes(pitch: int) -> bool:
            return any(abs(pitch - q) % 12 in DISSONANT_INTERVALS for q in against)

        for note in sorted(struck, key=lambda n: n.pitch):
            clashing = clashes(note.pitch)
            options = [p for p in range(note.pitch - NEIGHBOURHOOD, note.pitch + NEIGHBOURHOOD + 1)
                       if p != note.pitch and low <= p <= high and p not in taken and weights[p % 12] >= CHORD_TONE
                       and clashes(p) == clashing]
            if not options:
                continue
            chances = np.array([weights[p % 12] / (1 + abs(p - note.pitch)) for p in options])
            taken.discard(note.pitch)
            note.pitch = int(options[int(rng.choice(len(options), p=chances / chances.sum()))])
            taken.add(note.pitch)


def _sounding_weights(notes: list[tuple[float, float, int]], start: float, end: float) -> Any:
    """Seconds each pitch class sounds within [start, end) among (start, end, pitch) notes."""
    weights = np.zeros(12)
    for note_start, note_end, pitch in notes:
        overlap = min(note_end, end) - max(note_start, start)
        if overlap > 0:
            weights[pitch % 12] += overlap
    return weights


def _bar_span(numbers: list[int]) -> str:
    """'5-8, 5-8' for [5, 6, 7, 8, 5, 6, 7, 8]: runs of consecutive bars."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _planned_harmony(piece: Any, bar: int, track: Any) -> list[float]:
    """Seconds each pitch class sounds in the planned bar: in the other pitched tracks, or where they
    are silent in the track's own planned bar."""
    for others in (True, False):
        weights = [0.0] * 12
        for key in piece.tracks:
            if key[2] or (key != track) != others:
                continue
            for note in piece.bar_notes(key, bar):
                weights[note.pitch % 12] += max(note.end_time - note.start_time, 1e-3)
        if any(weights):
            return weights
    return [1.0] * 12


REWRITE_CANDIDATES = 8
# A rewritten bar must stay this close to the planned bar's texture (`_texture_distance`), else the
# piece's own bar stays: the piece's material outweighs the model's style.
MAX_TEXTURE_DISTANCE = 0.5
REGISTER_MARGIN = 5  # semitones beyond a track's lowest and highest notes still in its register


def _texture_distance(bar: list[Any], planned: list[Any], start: float, bar_seconds: float,
                      register: tuple[int, int]) -> float:
    """How far a candidate bar's texture is from the planned one: note count (log ratio), register
    (octaves between medians), notes at once (per 4), share of notes outside the track's range
    (twice), and rhythm (1 - cosine of the onsets on 16ths). 0 = the same texture."""
    from generation import structure

    count, median, at_once = structure.texture(planned)
    c_count, c_median, c_at_once = structure.texture(bar)
    distance = abs(np.log((c_count + 1) / (count + 1)))
    if not bar or not planned:
        return float(distance + 1.0)
    low, high = register
    centre = (low + high) / 2  # a track of one or two pitches still has an octave to move in
    low, high = min(low, centre - 6), max(high, centre + 6)
    outside = np.mean([not (low - REGISTER_MARGIN <= n.pitch <= high + REGISTER_MARGIN) for n in bar])
    a, b = structure.onset_pattern(bar, start, bar_seconds), structure.onset_pattern(planned, start, bar_seconds)
    rhythm = 1 - float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(distance + abs(c_median - median) / 12 + abs(c_at_once - at_once) / 4 + 2 * outside + rhythm)


PRIMER_BARS = 16  # a rewritten bar is primed with this many bars before it: bounded work on a long piece
PRIMER_NOTES = 1024  # ... and at most this many notes: bounded work on a dense one


def _rewrite_bar(model: Any, grid: NoteSequence, track: Track, notes_so_far: list[Any], start: float,
                 bar_seconds: float, planned: list[Any], harmony: list[float], register: tuple[int, int],
                 sounding: list[tuple[float, float, int]], *, temperature: float, seed: int) -> list[Any] | None:
    """A new bar for `track` from `model`, primed with the last PRIMER_BARS bars the track played
    before `start` (the piece's notes, then the continuation's): the best of REWRITE_CANDIDATES
    (`_best_bar`)."""
    template = _track_notes(grid, track)
    played = list(template.notes) + [n for n in notes_so_far if n.start_time < start - 1e-6]
    del template.notes[:]
    candidates = _sample_bar(model, REWRITE_CANDIDATES, template, played, start, bar_seconds,
                             temperature=temperature, seed=seed)
    if candidates is None:
        return None
    return _best_bar(candidates, start, bar_seconds, planned, harmony, register, sounding)


def _sample_bar(model: Any, count: int, template: NoteSequence, notes: list[Any], start: float,
                bar_seconds: float, *, temperature: float, seed: int) -> list[NoteSequence] | None:
    """`count` candidates from `model` for the bar at `start` (grid seconds), primed with `notes`
    from PRIMER_BARS bars before it in `template`'s tempo and meter: the primer is moved back by
    whole bars to begin near 0 (the model reads a bounded window on the same grid) and the
    candidates moved forward again. None when there is nothing to prime with or the model gives
    nothing."""
    import math

    offset = max(0, math.floor(start / bar_seconds + 1e-9) - PRIMER_BARS) * bar_seconds
    primer = NoteSequence()
    primer.CopyFrom(template)
    del primer.notes[:]
    for note in notes:
        if offset - 1e-6 <= note.start_time < start - 1e-6:
            added = primer.notes.add()
            added.CopyFrom(note)
            added.start_time -= offset
            added.end_time -= offset
    if not primer.notes:
        return None
    if len(primer.notes) > PRIMER_NOTES:  # a dense piece: the most recent notes, as the feed costs per note
        recent = sorted(primer.notes, key=lambda n: n.start_time)[-PRIMER_NOTES:]
        del primer.notes[:]
        primer.notes.extend(recent)
    primer.total_time = start - offset
    try:
        candidates = model.sample(count, primer, bars=1 if model.encoding.metric else None,
                                  seconds=None if model.encoding.metric else bar_seconds, temperature=temperature,
                                  seed=seed, start_time=start - offset)
    except GenError:
        return None
    for candidate in candidates:
        for note in candidate.notes:
            note.start_time += offset
            note.end_time += offset
    return candidates


# How much more a new bar may clash with the other tracks than the planned bar: a rewrite brings new
# notes, not new clashes (with 0.05 the short examples' clash share was 0.048 from the truth's, with 0
# 0.027: benchmarks/continuation_quality.py).
MORE_DISSONANCE = 0.0


def _dissonance(notes: list[Any], sounding: list[tuple[float, float, int]]) -> float:
    """The share (by overlapping seconds) of `notes`' overlaps with `sounding` (other tracks'
    (start, end, pitch)) at a clashing interval (the benchmark's DISSONANT_INTERVALS); 0 with no overlap."""
    clash = total = 0.0
    for note in notes:
        for start, end, pitch in sounding:
            overlap = min(note.end_time, end) - max(note.start_time, start)
            if overlap > 0:
                total += overlap
                clash += overlap * (abs(note.pitch - pitch) % 12 in DISSONANT_INTERVALS)
    return clash / total if total else 0.0


def _best_bar(candidates: list[NoteSequence], start: float, bar_seconds: float, planned: list[Any],
              harmony: list[float], register: tuple[int, int],
              sounding: list[tuple[float, float, int]] | None = None) -> list[Any] | None:
    """Of candidate bars (their notes from `start` for a bar), the one that best fits the planned
    bar's harmony (`_harmony_fit`) less its distance from the planned bar's texture
    (`_texture_distance`) and twice the difference of its clashes with the other tracks
    (`_dissonance` against `sounding`) from the planned bar's (the piece's own harmonic language,
    neither harsher nor blander), in the planned bar's dynamics; None when none is within
    MAX_TEXTURE_DISTANCE and MORE_DISSONANCE of the planned bar's own clashes (the planned bar then
    stays)."""
    import math

    end = start + bar_seconds
    sounding = sounding or []
    own = _dissonance(planned, sounding)
    allowed = own + MORE_DISSONANCE
    best, best_score = None, -math.inf
    for candidate in candidates:
        bar = [n for n in candidate.notes if start - 1e-6 <= n.start_time < end - 1e-6]
        distance = _texture_distance(bar, planned, start, bar_seconds, register)
        clashes = _dissonance(bar, sounding)
        score = _harmony_fit(candidate, harmony, start, end) - distance - 2 * abs(clashes - own)
        if distance <= MAX_TEXTURE_DISTANCE and clashes <= allowed and score > best_score:
            best, best_score = bar, score
    if best is None:
        return None
    velocity = int(round(np.median([n.velocity for n in planned]))) if planned else None
    for note in best:
        note.end_time = min(note.end_time, end)
        if velocity is not None:  # the track's dynamics (MT3's flat 127 stays flat)
            note.velocity = velocity
    return best


@dataclass
class VariationResult:
    sequence: NoteSequence
    analysis: Analysis
    changed: dict[str, str] = field(default_factory=dict)  # track label -> what was done
    warnings: list[str] = field(default_factory=list)  # what the variation could not do as asked
    groove: Any = None  # the drums' `GrooveResult`, when a groove model worked on them


def vary_piece(
    sequence: NoteSequence,
    models: Mapping[str, Any],
    *,
    groove_model: Any = None,
    mode: str = "vary",
    amount: float = 0.5,
    temperature: float = 1.0,
    seed: int = 0,
    roles: tuple[str, ...] | None = None,
    estimate_tempo: bool | None = None,
    progress: Callable[[str], None] | None = None,
    name: str = "the piece",
) -> VariationResult:
    """A variation of `sequence`: drums re-grooved by `groove_model` (a GrooVAE `TrainedModel`;
    mode "humanize": played timing and dynamics restored by a humanize model), and in each pitched
    track a share `amount` of its bars re-sampled by the LSTM for its role, each from the piece's
    own music before that bar. Tracks of other roles, and bars not chosen, stay as they are."""

    if mode not in ("vary", "humanize"):
        raise GenError(f"mode must be 'vary' or 'humanize'; got {mode!r}")
    if not 0 <= amount <= 1:
        raise GenError(f"amount must be between 0 and 1; got {amount}")
    from generation.limits import MAX_RESAMPLED_BARS, MAX_RESAMPLED_NOTES

    analysis, grid = _on_its_grid(sequence, estimate_tempo, name)
    output = copy.deepcopy(grid)
    result = VariationResult(output, analysis)
    rng = np.random.default_rng(seed)
    wanted = set(roles) if roles else set(ROLES)
    bar = analysis.bar_seconds
    # A first note a hair before its downbeat (an estimate's rounding) belongs to that downbeat's bar.
    first_bar = int(np.floor((min(n.start_time for n in grid.notes)) / bar + 1 / 32))
    last_bar = int(np.ceil(analysis.continuation_grid_start / bar - 1e-9))
    resampled = {}  # track index -> (model, the bars it re-samples), the work known before any is done
    if mode == "vary":
        for index, track in enumerate(analysis.tracks):
            chosen = model_for(track.role, models) if not track.is_drum and track.role in wanted else None
            if chosen is not None:
                resampled[index] = (chosen[1], [b for b in range(first_bar, last_bar) if rng.random() < amount])
    chosen_pairs = [(index, b) for index, (_, bars) in resampled.items() for b in bars]
    counts: dict[tuple[int, int], int] = {}
    keys = {(t.instrument, t.program, t.is_drum): i for i, t in enumerate(analysis.tracks)}
    for note in grid.notes:
        row = keys.get((note.instrument, note.program, note.is_drum))
        if row in resampled:
            pair = (row, _onset_bar(note, bar))
            counts[pair] = counts.get(pair, 0) + 1
    notes_in = sum(counts.get(pair, 0) for pair in chosen_pairs)
    if len(chosen_pairs) > MAX_RESAMPLED_BARS.value or notes_in > MAX_RESAMPLED_NOTES.value:
        # A long or dense piece: the chosen bars thinned at random over the piece (each track keeps
        # about its share) until the work is bounded; the report says so.
        kept, bars_left, notes_left = set(), MAX_RESAMPLED_BARS.value, MAX_RESAMPLED_NOTES.value
        for k in rng.permutation(len(chosen_pairs)):
            pair = chosen_pairs[int(k)]
            if bars_left >= 1 and counts.get(pair, 0) <= notes_left:
                kept.add(pair)
                bars_left -= 1
                notes_left -= counts.get(pair, 0)
        result.warnings.append(
            f"--amount {amount:g} chose {len(chosen_pairs):,} bars ({notes_in:,} notes) in {len(resampled)} pitched "
            f"tracks; only {len(kept):,} of them, spread over the piece, were tried (at most "
            f"{MAX_RESAMPLED_BARS.value:,g} bars and {MAX_RESAMPLED_NOTES.value:,g} notes in one run: lower --amount "
            f"or choose --tracks, or raise the limits with {MAX_RESAMPLED_BARS.name}=N and {MAX_RESAMPLED_NOTES.name}=N)")
        resampled = {index: (model, [b for b in bars if (index, b) in kept])
                     for index, (model, bars) in resampled.items()}
    drum_tracks = [t for t in analysis.tracks if t.is_drum and "drums" in wanted]
    grooved = None
    if drum_tracks and groove_model is not None:
        from generation.music_vae import tasks

        if progress:
            progress(f"{'humanizing' if mode == 'humanize' else 're-grooving'} the drums with {groove_model.config.name}")
        # The drums are worked on the piece's own time and grid; the rest below on the grid.
        if mode == "humanize":
            grooved = tasks.humanize(groove_model, sequence, seed=seed, analysis=analysis, name=name)
        else:
            try:
                grooved = tasks.regroove(groove_model, sequence, temperature=temperature, seed=seed,
                                         analysis=analysis, name=name)
            except BadInputFile as error:  # a meter or grid the model cannot play: the drums stay as they are
                for track in drum_tracks:
                    result.changed[_label(track)] = f"kept as it was: {error.reason}"
    if grooved is not None:
        result.groove = grooved
        del output.notes[:]
        output.notes.extend(n for n in grid.notes if not n.is_drum)
        drums = NoteSequence()
        drums.notes.extend(n for n in grooved.sequence.notes if n.is_drum)
        output.notes.extend(map_times(drums, analysis.to_grid).notes)
        for track in drum_tracks:
            result.changed[_label(track)] = grooved.describe('humanized' if mode == 'humanize' else 're-grooved',
                                                             groove_model.config.name)
    for index, (model, bars) in resampled.items():
        track = analysis.tracks[index]
        if progress:
            progress(f"re-sampling {len(bars)} of {last_bar - first_bar} bars of track {index + 1} ({_label(track)}) "
                     f"with {model.config.name}")
        original = _track_notes(grid, track)
        pitches = [n.pitch for n in original.notes] or [60]
        register = (min(pitches), max(pitches))
        template = NoteSequence()
        template.CopyFrom(original)
        del template.notes[:]  # the track's tempo, meter and the rest, without its notes
        # Notes by bar, so that each bar's work reads only its own neighbourhood: linear in the piece.
        own_by_onset = _by_bar(original.notes, bar, first_bar, last_bar, sounding=False)
        own_sounding = _by_bar(original.notes, bar, first_bar, last_bar, sounding=True)
        others_sounding = _by_bar([n for n in grid.notes if not n.is_drum and not _belongs(n, track)], bar,
                                  first_bar, last_bar, sounding=True)
        new_bars: dict[int, list[Any]] = {}
        began = time.perf_counter()
        for number in bars:
            start, end = number * bar, (number + 1) * bar
            primer = [n for b in range(number - PRIMER_BARS, number) for n in own_by_onset.get(b, ())]
            candidates = _sample_bar(model, VARY_CANDIDATES, template, primer, start, bar,
                                     temperature=temperature, seed=seed * 100_003 + index * 1_009 + number)
            if candidates is None:
                continue  # nothing before this bar to go on from, or nothing from the model
            others = [(n.start_time, n.end_time, n.pitch) for n in others_sounding.get(number, ())]
            # What the new bar should agree with: the other pitched tracks, or where they are
            # silent the track's own original bar.
            context = _sounding_weights(others, start, end)
            if not context.any():
                context = _sounding_weights([(n.start_time, n.end_time, n.pitch) for n in own_sounding.get(number, ())],
                                            start, end)
            new = _best_bar(candidates, start, bar, own_by_onset.get(number, []), context.tolist(), register, others)
            if new is not None:  # else no candidate near the bar's texture: the bar stays
                new_bars[number] = new
        if new_bars:
            keep = [n for n in output.notes if not (_belongs(n, track) and _onset_bar(n, bar) in new_bars)]
            del output.notes[:]
            output.notes.extend(keep)
            for new in new_bars.values():
                for note in new:
                    added = output.notes.add()
                    added.CopyFrom(note)
                    added.instrument, added.program, added.is_drum = track.instrument, track.program, False
        replaced = len(new_bars)
        if progress:
            seconds = time.perf_counter() - began
            progress(f"  {replaced} bars in {seconds:.1f} s ({replaced / max(seconds, 1e-9):.1f} bars/s)")
        result.changed[_label(track)] = (f"{replaced} of {len(bars)} chosen bars re-sampled by {model.config.name}, "
                                         f"each the best of {VARY_CANDIDATES} by its harmony with the other tracks "
                                         "and its texture (bars with no candidate near it kept)")
    varied = map_times(output, analysis.from_grid)  # back to the piece's own times, controls included
    varied.total_time = max([n.end_time for n in varied.notes], default=0.0)
    if analysis.mt3_style:
        set_grid(varied, analysis)
    else:
        del varied.tempos[:]
        del varied.time_signatures[:]
        varied.tempos.extend(sequence.tempos)
        varied.time_signatures.extend(sequence.time_signatures)
    result.sequence = varied
    return result


def _onset_bar(note: Any, bar_seconds: float) -> int:
    """The bar a note starts in (a microsecond before a downbeat counts as on it)."""
    return int(np.floor((note.start_time + 1e-6) / bar_seconds))


def _by_bar(notes: Any, bar_seconds: float, first_bar: int, last_bar: int, *, sounding: bool) -> dict[int, list[Any]]:
    """Notes grouped by bar number: by the bar each starts in, or (`sounding`) under each bar of
    first_bar .. last_bar - 1 that it sounds in."""
    grouped: dict[int, list[Any]] = {}
    for note in notes:
        if not sounding:
            grouped.setdefault(_onset_bar(note, bar_seconds), []).append(note)
            continue
        low = max(first_bar, int(np.floor(note.start_time / bar_seconds)))
        high = min(last_bar - 1, int(np.ceil(note.end_time / bar_seconds)))
        for number in range(low, high + 1):
            if note.end_time > number * bar_seconds and note.start_time < (number + 1) * bar_seconds:
                grouped.setdefault(number, []).append(note)
    return grouped


def _harmony_fit(candidate: NoteSequence, context: list[float], start: float, end: float) -> float:
    """How well a candidate bar agrees with `context` (seconds per pitch class, `_sounding_weights`): the duration-weighted
    mean of each of its notes' pitch-class weight, 0 to 1. A silent candidate scores 0."""
    peak = max(context)
    total = fit = 0.0
    for note in candidate.notes:
        overlap = min(note.end_time, end) - max(note.start_time, start)
        if overlap > 0:
            total += overlap
            fit += overlap * (context[note.pitch % 12] / peak if peak else 1.0)
    return fit / total if total else 0.0


def _belongs(note: Any, track: Track) -> bool:
    return (note.instrument, note.program, note.is_drum) == (track.instrument, track.program, track.is_drum)


def _label(track: Track) -> str:
    return f"{track.role}: {track.instrument_name}" + ("" if track.is_drum else f" (program {track.program})")
