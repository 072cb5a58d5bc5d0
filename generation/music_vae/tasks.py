"""Whole-piece GrooVAE jobs: humanize or re-groove a drum part window by window, interpolate grooves.

A piece is read the way `gen continue` reads it (`generation.transcription.analyse`: the file's own
tempo and meter, or for an MT3 transcription the tempo, downbeat and beat map estimated from its
notes) and laid on that grid with its downbeats on bar lines (`on_grid`). The drum part is then cut
at bar lines into the model's windows (2 or 4 bars), one after another from the first bar with a
drum hit; the last window ends on the last drum bar, overlapping the one before it when the bars do
not divide evenly, and a part shorter than one window is padded with silent bars. Each window is
encoded and decoded, and each bar of the new part comes from the first window that holds it, so
the new drums fill exactly the bars the old ones played, on the piece's beats, and map back to the
piece's own time (`Analysis.from_grid`). Bars where the original has no drums stay silent. A bar in
which the model plays nothing where the original played is kept as it was, and reported
(`GrooveResult.kept_bars`). A decoded hit on a cell (step, drum class) that the original also hits
keeps the original's pitch (a floor tom stays a floor tom). Other instruments are copied unchanged.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from generation.errors import BadInputFile, GenError
from generation.protos import NoteSequence
from generation.transcription import Analysis, analyse, map_times, on_grid, set_grid


@dataclass
class DrumPart:
    """A piece's drums on its analysed grid, as one converter tensor from bar 0."""

    analysis: Analysis
    inputs: np.ndarray  # [bars * steps_per_bar * rows_per_step, input_depth], padded to whole windows
    controls: np.ndarray  # [same rows, control_depth]
    hit_bars: list[int]  # grid bars (0 = the bar of the first downbeat, or of the pickup) with a hit
    notes: list[Any]  # the original drum notes, in grid seconds
    instrument: int  # of the original drum notes (the most common), for the new ones
    program: int
    window_bars: int  # the model's window
    starts: list[int]  # the first bar of each window


@dataclass
class GrooveResult:
    """The piece with its new drum part, and what happened to each drum bar."""

    sequence: NoteSequence
    analysis: Analysis
    drum_bars: int  # bars the original drums play in
    kept_bars: list[int] = field(default_factory=list)  # of those, bars (1 = the first) the model left empty: kept
    notes_in: int = 0  # drum notes of the original
    notes_out: int = 0  # drum notes written

    def describe(self, verb: str, model: str, notes_in: str = "drum notes") -> str:
        """One line: what `model` did (`verb`: "humanized"...), bars and notes (`notes_in`: what the
        notes in were), bars it left empty."""
        words = (f"{verb} by {model}: {self.drum_bars} bars, {self.notes_in} {notes_in} in, "
                 f"{self.notes_out} out")
        if self.kept_bars:
            shown = ", ".join(str(b) for b in self.kept_bars[:8])
            more = f" and {len(self.kept_bars) - 8} more" if len(self.kept_bars) > 8 else ""
            words += (f"; warning: the model played nothing in {len(self.kept_bars)} of the bars "
                      f"({shown}{more}), kept as they were")
        return words


def _part_error(model: Any, name: str, sequence: NoteSequence, analysis: Analysis) -> None:
    converter = model.config.data_converter
    numerator, denominator = analysis.time_signature
    quarters = numerator * 4 / denominator
    if abs(quarters - converter.quarters_per_bar) > 1e-9:
        raise BadInputFile(name, f"{model.config.name} plays bars of {converter.quarters_per_bar} quarter notes; "
                                 f"this piece is in {numerator}/{denominator}")
    if analysis.tempo_source == "file":
        tempos = sorted({round(t.qpm, 3) for t in sequence.tempos})
        meters = sorted({(s.numerator, s.denominator) for s in sequence.time_signatures})
        if len(tempos) > 1 or len(meters) > 1:
            changes = (f"{len(tempos)} tempos ({tempos[0]:g} to {tempos[-1]:g} qpm)" if len(tempos) > 1
                       else f"{len(meters)} time signatures")
            raise BadInputFile(name, f"it changes its grid ({changes}) and {model.config.name} needs one steady "
                                     "grid; estimate one from the notes with --tempo-from notes")


def drum_part(model: Any, sequence: NoteSequence, *, estimate_tempo: bool | None = None,
              analysis: Analysis | None = None, name: str = "<sequence>") -> DrumPart:
    """The drum part of `sequence` on its grid, and where the model's windows start.

    `estimate_tempo`: None estimates the grid for MT3-style files only (`analyse`); `analysis`
    reuses one already made. A piece without drums, or whose meter or tempo the model cannot
    follow, is a `BadInputFile` naming `name`."""
    drums = [n for n in sequence.notes if n.is_drum]
    if not drums:
        raise BadInputFile(name, "no drum notes (MIDI channel 10) to work on")
    if analysis is None:
        try:
            analysis = analyse(sequence, estimate=estimate_tempo)
        except GenError as error:
            raise BadInputFile(name, str(error)) from None
    _part_error(model, name, sequence, analysis)
    converter = model.config.data_converter
    drum_sequence = NoteSequence()
    drum_sequence.CopyFrom(sequence)
    del drum_sequence.notes[:]
    drum_sequence.notes.extend(drums)
    grid = on_grid(drum_sequence, analysis)
    whole = converter.whole_tensors(grid, training=False)
    if not whole.inputs:
        raise BadInputFile(name, f"no drum notes that {model.config.name} can read (pitches outside its drum classes)")
    rows_per_bar = converter.rows_per_step * converter.steps_per_bar
    window_bars = converter.split_bars or len(whole.inputs[0]) // rows_per_bar
    inputs, controls = whole.inputs[0], whole.controls[0]
    bar_seconds = analysis.bar_seconds
    step = bar_seconds / converter.steps_per_bar
    hit_bars = sorted({int(np.floor(n.start_time / step + 0.5)) // converter.steps_per_bar for n in grid.notes
                       if converter.class_of_pitch(n.pitch) is not None})
    hit_bars = [b for b in hit_bars if b * rows_per_bar < len(inputs)]
    first, last = hit_bars[0], hit_bars[-1]
    starts = list(range(first, last + 1 - window_bars + 1, window_bars)) or [first]
    if starts[-1] + window_bars <= last:
        starts.append(last + 1 - window_bars)
    needed = (max(starts) + window_bars) * rows_per_bar
    if len(inputs) < needed:  # a part shorter than one window: silent bars after it
        inputs = np.concatenate([inputs, np.zeros((needed - len(inputs), inputs.shape[1]), inputs.dtype)])
        controls = np.concatenate([controls, np.zeros((needed - len(controls), controls.shape[1]), controls.dtype)])
    instrument, program = Counter((n.instrument, n.program) for n in drums).most_common(1)[0][0]
    return DrumPart(analysis, inputs, controls, hit_bars, list(grid.notes), instrument, program, window_bars, starts)


def _windows(model: Any, part: DrumPart) -> tuple[list[np.ndarray], list[np.ndarray]]:
    converter = model.config.data_converter
    rows_per_bar = converter.rows_per_step * converter.steps_per_bar
    window = part.window_bars * rows_per_bar
    inputs = [part.inputs[s * rows_per_bar: s * rows_per_bar + window] for s in part.starts]
    controls = [part.controls[s * rows_per_bar: s * rows_per_bar + window] for s in part.starts]
    return inputs, controls


def _control_input(model: Any, controls: list[np.ndarray]) -> np.ndarray | None:
    if not model.config.data_converter.control_depth:
        return None
    return np.stack([np.asarray(c, np.float32) for c in controls])


def _new_part(model: Any, part: DrumPart, decoded: np.ndarray, sequence: NoteSequence,
              estimate_tempo: bool | None) -> GrooveResult:
    """The piece with the decoded windows [W, T, depth] laid on their bars, back in the piece's time."""
    converter = model.config.data_converter
    analysis = part.analysis
    rows_per_bar = converter.rows_per_step * converter.steps_per_bar
    whole = np.zeros((len(part.inputs), decoded.shape[-1]), np.float32)
    for bar in part.hit_bars:
        owner = next(k for k, s in enumerate(part.starts) if s <= bar < s + part.window_bars)
        offset = (bar - part.starts[owner]) * rows_per_bar
        whole[bar * rows_per_bar:(bar + 1) * rows_per_bar] = decoded[owner][offset:offset + rows_per_bar]
    new = converter.from_tensors(whole[None], training=False, qpm=analysis.tempo_bpm)[0]
    step = analysis.bar_seconds / converter.steps_per_bar

    def cell(note: Any) -> tuple[int, int | None]:
        return int(np.floor(note.start_time / step + 0.5)), converter.class_of_pitch(note.pitch)

    original_pitch: dict[tuple[int, int | None], int] = {}
    for note in sorted(part.notes, key=lambda n: n.velocity):  # the loudest of a cell last: it wins
        original_pitch[cell(note)] = note.pitch
    played = {c[0] // converter.steps_per_bar for c in map(cell, new.notes)}
    kept = [bar for bar in part.hit_bars if bar not in played]
    for note in new.notes:
        note.pitch = original_pitch.get(cell(note), note.pitch)
    laid = NoteSequence()
    laid.notes.extend(new.notes)
    laid.notes.extend(n for n in part.notes if cell(n)[0] // converter.steps_per_bar in kept)
    laid = map_times(laid, analysis.from_grid)
    result = copy.deepcopy(sequence)
    del result.notes[:]
    result.notes.extend(n for n in sequence.notes if not n.is_drum)
    for note in laid.notes:
        added = result.notes.add()
        added.CopyFrom(note)
        added.start_time = max(0.0, note.start_time)
        added.end_time = max(added.start_time + 1e-3, note.end_time)
        added.instrument, added.program, added.is_drum = part.instrument, part.program, True
    result.total_time = max([sequence.total_time] + [n.end_time for n in result.notes])
    if analysis.mt3_style or estimate_tempo:
        set_grid(result, analysis)
    first = part.hit_bars[0]
    return GrooveResult(result, analysis, drum_bars=len(part.hit_bars), kept_bars=[b - first + 1 for b in kept],
                        notes_in=sum(n.is_drum for n in sequence.notes), notes_out=len(laid.notes))


def humanize(model: Any, sequence: NoteSequence, *, temperature: float = 1e-3, seed: int | None = 0,
             keep_hits: bool = True, estimate_tempo: bool | None = None, analysis: Analysis | None = None,
             name: str = "<sequence>") -> GrooveResult:
    """The piece with its drum part re-played by a humanize model (played timing and dynamics),
    window by window on the piece's own bars; other instruments unchanged.

    keep_hits: play exactly the original's hits (one per step and drum class), the model choosing
    only their velocities and offsets; False lets the decoder draw its own hits, as Magenta's does.
    temperature: for the decoder's hits when they are drawn (near 0 keeps the hits the model is
    sure of)."""
    return _play(model, sequence, spread=0.0, hit_temperature=temperature, keep_hits=keep_hits, seed=seed,
                 estimate_tempo=estimate_tempo, analysis=analysis, name=name)


def _play(model: Any, sequence: NoteSequence, *, spread: float, hit_temperature: float, keep_hits: bool,
          seed: int | None, estimate_tempo: bool | None, analysis: Analysis | None, name: str) -> GrooveResult:
    """Encodes each window of the drum part, decodes from mu + spread * sigma * noise (0: mu), with
    the original's hits when `keep_hits`, and lays the result on the piece's bars."""
    part = drum_part(model, sequence, estimate_tempo=estimate_tempo, analysis=analysis, name=name)
    inputs, controls = _windows(model, part)
    _, mu, sigma = model.encode_tensors(inputs, [len(t) for t in inputs], controls, seed=seed)
    z = mu
    if spread:
        noise = np.random.default_rng(seed).standard_normal(mu.shape).astype(np.float32)
        z = (mu + spread * sigma * noise).astype(np.float32)
    decoded = model.decode_to_tensors(z, len(inputs[0]), hit_temperature, _control_input(model, controls), seed=seed,
                                      hits=_input_hits(model, inputs) if keep_hits else None)
    return _new_part(model, part, decoded, sequence, estimate_tempo)


def _input_hits(model: Any, inputs: list[np.ndarray]) -> np.ndarray | None:
    """[windows, T, classes] hits of the encoder inputs, where the layout has one row per step and
    hits first (the humanize configs'); None otherwise."""
    converter = model.config.data_converter
    if converter.rows_per_step != 1 or converter.input_depth != 3 * converter.num_drums:
        return None
    return np.stack([w[:, :converter.num_drums] for w in inputs]).astype(np.float32)


TAP_PITCH = 46  # taps go in as open hi-hats: the class the tap converters read their one hit from


def drumify(model: Any, sequence: NoteSequence, *, parts: list[str] | None = None, temperature: float = 0.5,
            seed: int | None = 0, estimate_tempo: bool | None = None, drums_only: bool = False,
            name: str = "<sequence>") -> GrooveResult:
    """A drum part played to the rhythm of `sequence` by a tap-to-drums model (Magenta's
    `groovae_2bar_tap_fixed_velocity`), window by window on the piece's own bars.

    The rhythm is every onset of the pitched notes (of the instruments named in `parts`, as
    `instrument_name` gives them; of the drums when the piece has nothing else), one tap per 16th
    at most, its loudness ignored: the model hears when, and chooses which drums and how loud.
    `temperature` is for its hits. Existing drums are replaced; `drums_only` writes only the new
    drum part."""
    from generation.transcription import instrument_name

    if not model.config.data_converter.tapify:
        raise GenError(f"{model.config.name} does not read taps; use a tap-to-drums model (groove-tap2drum)")
    wanted = {p.strip().lower() for p in parts} if parts else None
    pitched = [n for n in sequence.notes if not n.is_drum
               and (wanted is None or instrument_name(n.program, False).lower() in wanted)]
    rhythm = pitched or ([] if wanted else [n for n in sequence.notes if n.is_drum])
    if not rhythm:
        found = sorted({instrument_name(n.program, n.is_drum) for n in sequence.notes})
        raise BadInputFile(name, f"no notes of {', '.join(sorted(wanted))} to take a rhythm from "
                                 f"(it has {', '.join(found) or 'no notes'})" if wanted else "no notes to take a rhythm from")
    try:
        analysis = analyse(sequence, estimate=estimate_tempo)
    except GenError as error:
        raise BadInputFile(name, str(error)) from None
    taps = copy.deepcopy(sequence)
    del taps.notes[:]
    for note in rhythm:
        taps.notes.add(pitch=TAP_PITCH, velocity=100, start_time=note.start_time,
                       end_time=note.start_time + 0.05, instrument=9, is_drum=True)
    part = drum_part(model, taps, analysis=analysis, name=name)
    part.notes = []  # the taps are no drums to keep: a bar the model leaves empty stays silent
    part.instrument, part.program = 9, 0
    inputs, controls = _windows(model, part)
    _, mu, _ = model.encode_tensors(inputs, [len(t) for t in inputs], controls, seed=seed)
    decoded = model.decode_to_tensors(mu, len(inputs[0]), temperature, _control_input(model, controls), seed=seed)
    # `_new_part` keeps the pitched notes of the sequence it is given and replaces its drums.
    result = _new_part(model, part, decoded, taps if drums_only else sequence, estimate_tempo)
    result.notes_in = len(rhythm)
    return result


def regroove(model: Any, sequence: NoteSequence, *, temperature: float = 1.0, hit_temperature: float = 1e-3,
             seed: int | None = 0, estimate_tempo: bool | None = None, analysis: Analysis | None = None,
             name: str = "<sequence>") -> GrooveResult:
    """The piece with its drum part re-grooved: each window encoded, a latent vector drawn near it
    (mu + temperature * sigma * noise: 1.0 samples the posterior, 0 reconstructs), and decoded on
    the window's own bars."""
    return _play(model, sequence, spread=temperature, hit_temperature=hit_temperature, keep_hits=False, seed=seed,
                 estimate_tempo=estimate_tempo, analysis=analysis, name=name)


def interpolate_pieces(model: Any, start: NoteSequence, end: NoteSequence, steps: int, *, temperature: float = 1e-3,
                       seed: int | None = 0, names: tuple[str, str] = ("<start>", "<end>"),
                       distances: list[tuple[float, float]] | None = None) -> NoteSequence:
    """`steps` grooves from the first window of `start` to the first window of `end` (both included),
    end to end in one sequence at `start`'s tempo (the estimated one for an MT3 transcription). A
    piece shorter than a window is padded with silent bars. A melody or drum-pattern model
    interpolates melodies or patterns instead (`interpolate_events`, which fills `distances`)."""
    from generation.music_vae.trained_model import interpolation_path

    if getattr(model, "categorical", False):
        return interpolate_events(model, start, end, steps, temperature=temperature, seed=seed, names=names,
                                  distances=distances)

    first = drum_part(model, start, name=names[0])
    last = drum_part(model, end, name=names[1])
    (a,), (a_controls,) = (w[:1] for w in _windows(model, first))
    (b,), (b_controls,) = (w[:1] for w in _windows(model, last))
    _, mu, _ = model.encode_tensors([a, b], [len(a), len(b)], [a_controls, b_controls], seed=seed)
    decoded = model.decode_to_tensors(interpolation_path(mu[0], mu[1], steps), len(a), temperature, seed=seed)
    qpm = first.analysis.tempo_bpm
    converter = model.config.data_converter
    window_seconds = len(a) // converter.rows_per_step * 60.0 / (qpm * converter.steps_per_quarter)
    return _end_to_end(converter, decoded, qpm, window_seconds, start.ticks_per_quarter)


def _end_to_end(converter: Any, decoded: np.ndarray, qpm: float, window_seconds: float,
                ticks_per_quarter: int) -> NoteSequence:
    """The decoded windows [steps, T, depth] as one piece, each `window_seconds` after the last."""
    result = NoteSequence()
    result.ticks_per_quarter = ticks_per_quarter or 220
    result.tempos.add(qpm=qpm)
    result.time_signatures.add(numerator=converter.quarters_per_bar, denominator=4)
    for number, window in enumerate(converter.from_tensors(decoded, training=False, qpm=qpm)):
        for note in window.notes:
            note.start_time += number * window_seconds
            note.end_time += number * window_seconds
            result.notes.add().CopyFrom(note)
    result.total_time = len(decoded) * window_seconds
    return result


def first_window(model: Any, sequence: NoteSequence, name: str) -> tuple[np.ndarray, int]:
    """The first window (input tensor [T, depth], length) a melody or drum-pattern model reads in
    `sequence`, as its converter extracts them at inference; a `BadInputFile` naming `name` when
    there is none."""
    config = model.config
    converter = copy.copy(config.data_converter)
    converter.max_tensors_per_notesequence = 1
    tensors = converter.to_tensors(sequence, training=False)
    if not tensors.inputs:
        if hasattr(converter, "melody_encoding"):
            what, notes = "melody", f"notes in MIDI pitches {converter.min_pitch}-{converter.max_pitch}"
        else:
            what, notes = "drum pattern", "drum notes (MIDI channel 10)"
        bars = converter.slice_bars or 1
        raise BadInputFile(name, f"no {bars}-bar {what} that {config.name} can read: it needs {bars} bars of "
                                 f"{notes}, in bars of {converter.quarters_per_bar} quarter notes")
    limit = config.hparams.max_seq_len
    return tensors.inputs[0][:limit], min(int(tensors.lengths[0]), limit)


def interpolate_events(model: Any, start: NoteSequence, end: NoteSequence, steps: int, *,
                       temperature: float = 1e-3, seed: int | None = 0,
                       names: tuple[str, str] = ("<start>", "<end>"),
                       distances: list[tuple[float, float]] | None = None) -> NoteSequence:
    """`steps` melodies (or drum patterns) from the first window of `start` to the first window of
    `end`, both included (Magenta's `TrainedModel.interpolate`: slerp between the two means), end
    to end in one sequence at `start`'s first tempo (120 qpm without one). `temperature` near 0
    plays each step's likeliest event. When `distances` is a list, it gets per point (unlike start,
    unlike end, NLL of start, NLL of end): the share of grid steps whose event differs from the
    start's and the end's window, and each window's NLL per event (nats) under the decoder at the
    point's latent vector (teacher-forced): what is heard, and where the point lies between the two."""
    from generation.music_vae.trained_model import interpolation_path

    a, a_length = first_window(model, start, names[0])
    b, b_length = first_window(model, end, names[1])
    _, mu, _ = model.encode_tensors([a, b], [a_length, b_length], seed=seed)
    length = max(a_length, b_length)
    decoded = model.decode_to_tensors(interpolation_path(mu[0], mu[1], steps), length, temperature, seed=seed)
    if distances is not None:
        path = interpolation_path(mu[0], mu[1], steps)
        ends = [np.argmax(a[:a_length], axis=-1), np.argmax(b[:b_length], axis=-1)]
        nll_a = -model.log_likelihood_tensors([a] * steps, [a_length] * steps, path) / a_length
        nll_b = -model.log_likelihood_tensors([b] * steps, [b_length] * steps, path) / b_length
        for point, to_a, to_b in zip(np.argmax(decoded, axis=-1), nll_a, nll_b):
            unlike = [float(np.mean(point[:len(e)] != e)) for e in ends]
            distances.append((unlike[0], unlike[1], float(to_a), float(to_b)))
    converter = model.config.data_converter
    qpm = start.tempos[0].qpm if start.tempos else 120.0
    window_seconds = length * 60.0 / (qpm * converter.steps_per_quarter)
    return _end_to_end(converter, decoded, qpm, window_seconds, start.ticks_per_quarter)
