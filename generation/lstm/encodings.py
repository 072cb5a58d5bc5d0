"""Event encodings for the LSTM note models, built on note-seq's event classes.

A model sees a piece as a list of integer tokens. Tokens below `num_classes` are note-seq's
one-hot classes of one event; melodies, drums and performances add START and END tokens after
them, and polyphony has its own START and END events (Magenta's vocabulary). Per encoding:

- melody: `note_seq.Melody` (note-on pitch, NOTE_OFF, NO_EVENT per 16th step), Magenta's range
  [48, 84) via `Melody.squash` (notes outside are moved by octaves, counted; optionally the whole
  melody is transposed to C major / A minor first, as Magenta's melody_rnn does);
- drums: `note_seq.DrumTrack` per 16th step, 9 drum classes as a 512-way multi-hot class
  (`MultiDrumOneHotEncoding`); pitches outside the classes' map are dropped and counted;
- polyphony: Magenta's polyphony_rnn events START, END, STEP_END, NEW_NOTE(p), CONTINUED_NOTE(p)
  per 16th step, so chords and held notes are both explicit (`PolyphonicSequence` below);
- performance: `note_seq.Performance` at 100 steps per second: NOTE_ON(p), NOTE_OFF(p),
  TIME_SHIFT(10 ms .. 1 s) and, with dynamics, VELOCITY(bin of 32).

Extraction follows Magenta's pipelines: split on time-signature and tempo changes, quantize, then
extract per instrument with Magenta's rules (minimum length, gap bars, the highest note of a chord
for melodies), counting what is discarded and why. `augment` transposes (and stretches
performances) at training time. `token_steps` says how many time steps each token advances, which
is how generation counts bars and seconds for every encoding alike.
"""

from __future__ import annotations

import collections
import copy
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from generation.errors import GenError
from generation.protos import NoteSequence

STEPS_PER_QUARTER = 4


class NoPrimerEvents(GenError):
    """A primer holds nothing the model's encoding can use (e.g. no drums for a drum model)."""


@dataclass
class Primed:
    """A primer, encoded: the tokens to feed (START first, no END) and where the continuation goes."""

    tokens: list[int]
    first_step: int  # the step of the first event after START
    continuation_step: int  # the continuation's first step (the primer's length in steps)
    seconds_per_step: float
    transpose: int = 0  # semitones the primer was moved by before encoding (undone on decoding)


# -- Magenta's polyphonic sequence (polyphony_rnn), written here: note-seq does not carry it. ----

START, END, STEP_END, NEW_NOTE, CONTINUED_NOTE = range(5)


@dataclass(frozen=True)
class PolyphonicEvent:
    event_type: int
    pitch: int | None = None


class PolyphonicSequence:
    """Events of all notes of a quantized sequence, one step after another (Magenta's rules):
    START, then per step the held pitches (CONTINUED_NOTE) and the new ones (NEW_NOTE), highest
    first, then STEP_END; END last."""

    def __init__(self, events: list[PolyphonicEvent], steps_per_quarter: int = STEPS_PER_QUARTER, start_step: int = 0):
        self.events = events
        self.steps_per_quarter = steps_per_quarter
        self.start_step = start_step

    @classmethod
    def from_quantized_sequence(cls, quantized: NoteSequence, start_step: int = 0) -> PolyphonicSequence:
        starts: dict[int, list[int]] = collections.defaultdict(list)
        ends: dict[int, list[int]] = collections.defaultdict(list)
        for note in quantized.notes:
            if note.quantized_start_step >= start_step:
                starts[note.quantized_start_step].append(note.pitch)
                ends[note.quantized_end_step].append(note.pitch)
        events = [PolyphonicEvent(START)]
        active: list[int] = []  # a list: one pitch may sound twice at once
        for step in range(start_step, quantized.total_quantized_steps):
            for pitch in ends[step]:
                active.remove(pitch)
            step_events = [PolyphonicEvent(CONTINUED_NOTE, p) for p in active]
            for pitch in starts[step]:
                active.append(pitch)
                step_events.append(PolyphonicEvent(NEW_NOTE, pitch))
            events += sorted(step_events, key=lambda e: e.pitch, reverse=True)  # stable: continued first
            events.append(PolyphonicEvent(STEP_END))
        events.append(PolyphonicEvent(END))
        return cls(events, quantized.quantization_info.steps_per_quarter, start_step)

    @property
    def num_steps(self) -> int:
        return sum(e.event_type == STEP_END for e in self.events)

    def to_sequence(self, velocity: int = 100, instrument: int = 0, program: int = 0, qpm: float = 120.0) -> NoteSequence:
        """Notes from the events. Ill-formed events are skipped as Magenta skips them: a START or END
        inside, a CONTINUED_NOTE of a pitch not sounding; a note still sounding at the end ends there."""
        seconds_per_step = 60.0 / qpm / self.steps_per_quarter
        sequence = NoteSequence()
        sequence.tempos.add(qpm=qpm)
        sequence.ticks_per_quarter = 220
        step = self.start_step
        sounding: list[tuple[int, int]] = []  # (pitch, start step), oldest first
        continued: Counter = Counter()  # continuations of each pitch in the current step

        def add(pitch: int, start: int, end: int) -> None:
            sequence.notes.add(pitch=pitch, velocity=velocity, instrument=instrument, program=program,
                               start_time=start * seconds_per_step, end_time=end * seconds_per_step)

        for event in self.events:
            if event.event_type == NEW_NOTE:
                sounding.append((event.pitch, step))
            elif event.event_type == CONTINUED_NOTE:
                continued[event.pitch] += 1
            elif event.event_type == STEP_END:
                # Notes begun before this step end unless continued; of two notes of one pitch
                # the older ends first (a continuation of a pitch not sounding is ignored).
                older = Counter(pitch for pitch, start in sounding if start < step)
                to_end = {pitch: max(0, count - continued[pitch]) for pitch, count in older.items()}
                kept = []
                for pitch, start in sounding:
                    if start < step and to_end[pitch] > 0:
                        to_end[pitch] -= 1
                        add(pitch, start, step)
                    else:
                        kept.append((pitch, start))
                sounding, continued = kept, Counter()
                step += 1
        for pitch, start in sounding:
            add(pitch, start, max(step, start + 1))
        sequence.total_time = max([n.end_time for n in sequence.notes], default=step * seconds_per_step)
        return sequence


# -- encodings -----------------------------------------------------------------------------------


class Encoding:
    """What every encoding gives the model, the training loop and generation."""

    kind = ""
    metric = True  # quantized per quarter note (False: absolute steps per second)

    def __init__(self, transpose_range: tuple[int, int] = (0, 0)):
        if len(transpose_range) != 2 or transpose_range[0] > transpose_range[1]:
            raise ValueError(f"transpose_range must be [lowest, highest]; got {list(transpose_range)}")
        self.transpose_range = (int(transpose_range[0]), int(transpose_range[1]))
        self._one_hot = self._build_one_hot()
        self.num_classes = int(self._one_hot.num_classes)
        self.start_token, self.end_token = self.num_classes, self.num_classes + 1
        self.vocab_size = self.num_classes + 2
        self.token_steps = np.array([self._steps_of_class(i) for i in range(self.num_classes)] + [0, 0], np.int64)

    # Each subclass: the note-seq one-hot encoding, how many steps a class advances, extraction and rendering.
    def _build_one_hot(self) -> Any:
        raise NotImplementedError

    def _steps_of_class(self, index: int) -> int:
        return 1

    def _tracks(self, quantized: NoteSequence, counts: Counter) -> list[Any]:
        raise NotImplementedError

    def _render(self, events: list[Any], first_step: int, seconds_per_step: float) -> NoteSequence:
        raise NotImplementedError

    def _primer_events(self, quantized: NoteSequence) -> tuple[list[Any], int, int]:
        """(events, first step, semitones the events were transposed by)."""
        raise NotImplementedError

    @property
    def seconds_per_step_default(self) -> float:
        return 60.0 / 120.0 / STEPS_PER_QUARTER

    # -- shared ---------------------------------------------------------------------------------

    def tokens(self, events: list[Any], *, start: bool = True, end: bool = True) -> list[int]:
        encoded = [self._one_hot.encode_event(event) for event in events]
        return ([self.start_token] if start else []) + encoded + ([self.end_token] if end else [])

    def events(self, tokens: list[int]) -> list[Any]:
        """Events of tokens: START skipped, everything from the first END on dropped."""
        result = []
        for token in tokens:
            if token == self.end_token:
                break
            if token != self.start_token:
                result.append(self._one_hot.decode_event(int(token)))
        return result

    def decode(self, tokens: list[int], *, first_step: int = 0, seconds_per_step: float | None = None) -> NoteSequence:
        """A NoteSequence of tokens whose first event is at step `first_step`."""
        return self._render(self.events(tokens), first_step, seconds_per_step or self.seconds_per_step_default)

    def augment(self, sequence: NoteSequence, rng: np.random.Generator, counts: Counter) -> NoteSequence:
        """A random transposition in `transpose_range` (notes pushed outside 0-127 are dropped, counted)."""
        low, high = self.transpose_range
        amount = int(rng.integers(low, high + 1)) if high > low else low
        if amount == 0:
            return sequence
        from note_seq import sequences_lib

        transposed, deleted = sequences_lib.transpose_note_sequence(sequence, amount, in_place=False)
        counts["notes_dropped_by_transposition"] += deleted
        return transposed

    def quantized_pieces(self, sequence: NoteSequence, counts: Counter) -> list[NoteSequence]:
        """Magenta's TimeChangeSplitter and Quantizer: one quantized piece per stretch of one tempo and meter."""
        from note_seq import sequences_lib

        pieces = []
        for piece in sequences_lib.split_note_sequence_on_time_changes(sequence):
            try:
                pieces.append(sequences_lib.quantize_note_sequence(piece, STEPS_PER_QUARTER))
            except (sequences_lib.BadTimeSignatureError, sequences_lib.NegativeTimeError,
                    sequences_lib.MultipleTimeSignatureError, sequences_lib.MultipleTempoError) as error:
                counts[f"pieces_discarded_{type(error).__name__}"] += 1
        return pieces

    def extract(self, sequence: NoteSequence, counts: Counter | None = None,
                rng: np.random.Generator | None = None) -> list[tuple[list[int], int]]:
        """(tokens with START and END, first step) of every track Magenta's rules extract from `sequence`;
        with `rng`, the sequence is augmented first (training)."""
        counts = counts if counts is not None else Counter()
        if rng is not None:
            sequence = self.augment(sequence, rng, counts)
        result = []
        for piece in self.quantized_pieces(sequence, counts):
            for events, first_step in self._tracks(piece, counts):
                result.append((self.tokens(events), first_step))
        counts["tracks_extracted"] += len(result)
        return result

    def prime(self, primer: NoteSequence, start_time: float | None = None) -> Primed:
        """The primer encoded for continuing it from `start_time` seconds (default: where it ends);
        `NoPrimerEvents` if the encoding finds nothing in it."""
        if start_time is not None:
            primer = copy.deepcopy(primer)
            primer.total_time = max(start_time, max([n.end_time for n in primer.notes], default=0.0))
        quantized, seconds_per_step = self._quantize_primer(primer)
        events, first_step, transpose = self._primer_events(quantized)
        return Primed(self.tokens(events, end=False), first_step, quantized.total_quantized_steps, seconds_per_step,
                      transpose)

    def _quantize_primer(self, primer: NoteSequence) -> tuple[NoteSequence, float]:
        """A primer may change tempo or meter; its final tempo and meter are used for the whole grid."""
        from note_seq import sequences_lib

        sequence = copy.deepcopy(primer)
        for repeated in (sequence.tempos, sequence.time_signatures):
            if len(repeated) > 1:
                last = copy.deepcopy(max(repeated, key=lambda item: item.time))
                last.time = 0.0
                del repeated[:]
                repeated.add().CopyFrom(last)
        if sequence.time_signatures and sequence.time_signatures[0].time > 0:
            sequence.time_signatures[0].time = 0.0
        try:
            quantized = sequences_lib.quantize_note_sequence(sequence, STEPS_PER_QUARTER)
        except (sequences_lib.BadTimeSignatureError, sequences_lib.NegativeTimeError) as error:
            raise NoPrimerEvents(f"cannot put the primer on a 16th-note grid: {error}") from None
        qpm = sequence.tempos[0].qpm if sequence.tempos else 120.0
        return quantized, 60.0 / qpm / STEPS_PER_QUARTER


def _pitched_only(quantized: NoteSequence) -> NoteSequence:
    """The pitched notes, all on instrument 0 and program 0 (a primer's voices seen as one part)."""
    result = copy.deepcopy(quantized)
    del result.notes[:]
    for note in quantized.notes:
        if not note.is_drum and note.velocity > 0:
            copied = result.notes.add()
            copied.CopyFrom(note)
            copied.instrument, copied.program = 0, 0
    return result


class MelodyEncoding(Encoding):
    kind = "melody"

    def __init__(self, min_note: int = 48, max_note: int = 84, transpose_to_key: int | None = 0, min_bars: int = 7,
                 gap_bars: float = 1.0, min_unique_pitches: int = 5, transpose_range: tuple[int, int] = (0, 0)):
        if not 0 <= min_note < max_note <= 128 or max_note - min_note < 12:
            raise ValueError(f"melody range [{min_note}, {max_note}) must span at least an octave within 0-128")
        self.min_note, self.max_note, self.transpose_to_key = min_note, max_note, transpose_to_key
        self.min_bars, self.gap_bars, self.min_unique_pitches = min_bars, gap_bars, min_unique_pitches
        super().__init__(transpose_range)

    def _build_one_hot(self) -> Any:
        from note_seq import MelodyOneHotEncoding

        return MelodyOneHotEncoding(self.min_note, self.max_note)

    def _squash(self, melody: Any, counts: Counter) -> int:
        before = [e for e in melody if e >= 0]
        amount = melody.squash(self.min_note, self.max_note, self.transpose_to_key)
        moved = sum(1 for old, new in zip(before, [e for e in melody if e >= 0]) if new != old + amount)
        counts["notes_moved_by_octaves_into_range"] += moved
        return amount

    def _tracks(self, quantized: NoteSequence, counts: Counter) -> list[tuple[list[Any], int]]:
        from note_seq import Melody
        from note_seq.events_lib import NonIntegerStepsPerBarError
        from note_seq.melodies_lib import BadNoteError, PolyphonicMelodyError

        tracks = []
        steps_per_bar = _steps_per_bar(quantized)
        for instrument in sorted({n.instrument for n in quantized.notes if not n.is_drum}):
            search_start = 0
            while True:
                melody = Melody()
                try:
                    melody.from_quantized_sequence(quantized, search_start_step=search_start, instrument=instrument,
                                                   gap_bars=self.gap_bars, ignore_polyphonic_notes=True)
                except (PolyphonicMelodyError, BadNoteError, NonIntegerStepsPerBarError) as error:
                    counts[f"melodies_discarded_{type(error).__name__}"] += 1
                    break
                if not melody:
                    break
                search_start = melody.end_step
                if len(melody) < self.min_bars * steps_per_bar:
                    counts["melodies_discarded_too_short"] += 1
                    continue
                if len({e for e in melody if e >= 0}) < self.min_unique_pitches:
                    counts["melodies_discarded_too_few_pitches"] += 1
                    continue
                self._squash(melody, counts)
                tracks.append((list(melody), melody.start_step))
        return tracks

    def _primer_events(self, quantized: NoteSequence) -> tuple[list[Any], int, int]:
        from note_seq import Melody

        line = _pitched_only(quantized)
        if not line.notes:
            raise NoPrimerEvents("the primer has no pitched notes for a melody model")
        melody = Melody()
        melody.from_quantized_sequence(line, instrument=0, gap_bars=math.inf, ignore_polyphonic_notes=True)
        melody.set_length(quantized.total_quantized_steps - melody.start_step)
        transpose = melody.squash(self.min_note, self.max_note, self.transpose_to_key)
        return list(melody), melody.start_step, int(transpose)

    def _render(self, events: list[Any], first_step: int, seconds_per_step: float) -> NoteSequence:
        from note_seq import Melody

        melody = Melody(events, start_step=first_step, steps_per_quarter=STEPS_PER_QUARTER)
        return melody.to_sequence(velocity=100, sequence_start_time=first_step * seconds_per_step,
                                  qpm=60.0 / seconds_per_step / STEPS_PER_QUARTER)


class DrumEncoding(Encoding):
    kind = "drums"

    def __init__(self, min_bars: int = 7, gap_bars: float = 1.0, transpose_range: tuple[int, int] = (0, 0)):
        self.min_bars, self.gap_bars = min_bars, gap_bars
        super().__init__(transpose_range)

    def _build_one_hot(self) -> Any:
        from note_seq import MultiDrumOneHotEncoding
        from note_seq.drums_encoder_decoder import DEFAULT_DRUM_TYPE_PITCHES

        self.known_pitches = {p for pitches in DEFAULT_DRUM_TYPE_PITCHES for p in pitches}
        return MultiDrumOneHotEncoding()

    def augment(self, sequence: NoteSequence, rng: np.random.Generator, counts: Counter) -> NoteSequence:
        return sequence  # a transposed drum kit is another kit

    def _known_drums(self, quantized: NoteSequence, counts: Counter) -> NoteSequence:
        result = copy.deepcopy(quantized)
        del result.notes[:]
        for note in quantized.notes:
            if note.is_drum and note.velocity > 0:
                if note.pitch in self.known_pitches:
                    result.notes.add().CopyFrom(note)
                else:
                    counts["drum_notes_dropped_unknown_pitch"] += 1
        return result

    def _tracks(self, quantized: NoteSequence, counts: Counter) -> list[tuple[list[Any], int]]:
        from note_seq import DrumTrack
        from note_seq.events_lib import NonIntegerStepsPerBarError

        drums = self._known_drums(quantized, counts)
        tracks, search_start = [], 0
        steps_per_bar = _steps_per_bar(quantized)
        while True:
            track = DrumTrack()
            try:
                track.from_quantized_sequence(drums, search_start_step=search_start, gap_bars=self.gap_bars)
            except NonIntegerStepsPerBarError:
                counts["drum_tracks_discarded_NonIntegerStepsPerBarError"] += 1
                break
            if not track:
                break
            search_start = track.end_step
            if len(track) < self.min_bars * steps_per_bar:
                counts["drum_tracks_discarded_too_short"] += 1
                continue
            tracks.append((list(track), track.start_step))
        return tracks

    def _primer_events(self, quantized: NoteSequence) -> tuple[list[Any], int, int]:
        from note_seq import DrumTrack

        drums = self._known_drums(quantized, Counter())
        if not drums.notes:
            raise NoPrimerEvents("the primer has no drum notes in the drum classes for a drum model")
        track = DrumTrack()
        track.from_quantized_sequence(drums, gap_bars=math.inf)
        track.set_length(quantized.total_quantized_steps - track.start_step)
        return list(track), track.start_step, 0

    def _render(self, events: list[Any], first_step: int, seconds_per_step: float) -> NoteSequence:
        from note_seq import DrumTrack

        track = DrumTrack(events, start_step=first_step, steps_per_quarter=STEPS_PER_QUARTER)
        return track.to_sequence(velocity=100, sequence_start_time=first_step * seconds_per_step,
                                 qpm=60.0 / seconds_per_step / STEPS_PER_QUARTER)


class _PolyphonyOneHot:
    """Magenta's PolyphonyOneHotEncoding: START, END, STEP_END, NEW_NOTE(0-127), CONTINUED_NOTE(0-127)."""

    num_classes = 3 + 128 + 128

    def encode_event(self, event: PolyphonicEvent) -> int:
        if event.event_type < NEW_NOTE:
            return event.event_type
        return 3 + event.pitch + (128 if event.event_type == CONTINUED_NOTE else 0)

    def decode_event(self, index: int) -> PolyphonicEvent:
        if index < 3:
            return PolyphonicEvent(index)
        return PolyphonicEvent(NEW_NOTE, index - 3) if index < 131 else PolyphonicEvent(CONTINUED_NOTE, index - 131)


class PolyphonyEncoding(Encoding):
    kind = "polyphony"

    def __init__(self, min_steps: int = 80, transpose_range: tuple[int, int] = (-4, 4)):
        self.min_steps = min_steps
        super().__init__(transpose_range)
        # Polyphony's own START and END events serve as the start and end of a piece.
        self.start_token, self.end_token = START, END
        self.vocab_size = self.num_classes
        self.token_steps = self.token_steps[: self.num_classes]

    def _build_one_hot(self) -> Any:
        return _PolyphonyOneHot()

    def _steps_of_class(self, index: int) -> int:
        return 1 if index == STEP_END else 0

    def tokens(self, events: list[Any], *, start: bool = True, end: bool = True) -> list[int]:
        encoded = [self._one_hot.encode_event(e) for e in events]
        if not start and encoded and encoded[0] == START:
            encoded = encoded[1:]
        if not end:
            while encoded and encoded[-1] == END:
                encoded.pop()
        return encoded

    def events(self, tokens: list[int]) -> list[Any]:
        result = [PolyphonicEvent(START)]
        for token in tokens:
            if token == END:
                break
            if token != START:
                result.append(self._one_hot.decode_event(int(token)))
        return result + [PolyphonicEvent(END)]

    def _tracks(self, quantized: NoteSequence, counts: Counter) -> list[tuple[list[Any], int]]:
        # Magenta allows one program per polyphonic track; voices of one program (a chorale) are one track.
        if len({n.program for n in quantized.notes if not n.is_drum}) > 1:
            counts["polyphonic_tracks_discarded_more_than_1_program"] += 1
            return []
        pitched = _pitched_only(quantized)
        if not pitched.notes:
            return []
        sequence = PolyphonicSequence.from_quantized_sequence(pitched)
        if sequence.num_steps < self.min_steps:
            counts["polyphonic_tracks_discarded_too_short"] += 1
            return []
        return [(sequence.events, 0)]

    def _primer_events(self, quantized: NoteSequence) -> tuple[list[Any], int, int]:
        pitched = _pitched_only(quantized)
        if not pitched.notes:
            raise NoPrimerEvents("the primer has no pitched notes for a polyphony model")
        return PolyphonicSequence.from_quantized_sequence(pitched).events, 0, 0

    def _render(self, events: list[Any], first_step: int, seconds_per_step: float) -> NoteSequence:
        sequence = PolyphonicSequence(list(events), STEPS_PER_QUARTER, first_step)
        return sequence.to_sequence(qpm=60.0 / seconds_per_step / STEPS_PER_QUARTER)


class PerformanceEncoding(Encoding):
    kind = "performance"
    metric = False

    def __init__(self, steps_per_second: int = 100, num_velocity_bins: int = 0, max_shift_steps: int = 100,
                 min_events: int = 32, transpose_range: tuple[int, int] = (-3, 3),
                 stretch_factors: tuple[float, ...] = (0.95, 0.975, 1.0, 1.025, 1.05)):
        self.steps_per_second, self.num_velocity_bins, self.max_shift_steps = steps_per_second, num_velocity_bins, max_shift_steps
        self.min_events = min_events
        self.stretch_factors = tuple(float(f) for f in stretch_factors)
        super().__init__(transpose_range)

    def _build_one_hot(self) -> Any:
        from note_seq import PerformanceOneHotEncoding

        return PerformanceOneHotEncoding(num_velocity_bins=self.num_velocity_bins, max_shift_steps=self.max_shift_steps)

    def _steps_of_class(self, index: int) -> int:
        from note_seq.performance_lib import PerformanceEvent

        event = self._one_hot.decode_event(index)
        return event.event_value if event.event_type == PerformanceEvent.TIME_SHIFT else 0

    @property
    def seconds_per_step_default(self) -> float:
        return 1.0 / self.steps_per_second

    def augment(self, sequence: NoteSequence, rng: np.random.Generator, counts: Counter) -> NoteSequence:
        from note_seq import sequences_lib

        sequence = super().augment(sequence, rng, counts)
        factor = float(rng.choice(self.stretch_factors)) if self.stretch_factors else 1.0
        return sequence if factor == 1.0 else sequences_lib.stretch_note_sequence(sequence, factor)

    def quantized_pieces(self, sequence: NoteSequence, counts: Counter) -> list[NoteSequence]:
        from note_seq import sequences_lib

        pitched = copy.deepcopy(sequence)
        del pitched.notes[:]
        for note in sequence.notes:
            if note.is_drum:
                counts["drum_notes_left_out_of_performances"] += 1
            else:
                pitched.notes.add().CopyFrom(note)
        sequences_lib.apply_sustain_control_changes(pitched)  # Magenta's performance pipeline does too
        return [sequences_lib.quantize_note_sequence_absolute(pitched, self.steps_per_second)]

    def _tracks(self, quantized: NoteSequence, counts: Counter) -> list[tuple[list[Any], int]]:
        from note_seq import Performance

        performance = Performance(quantized, num_velocity_bins=self.num_velocity_bins,
                                  max_shift_steps=self.max_shift_steps)
        if len(performance) < self.min_events:
            counts["performances_discarded_too_short"] += 1
            return []
        return [(list(performance), 0)]

    def _quantize_primer(self, primer: NoteSequence) -> tuple[NoteSequence, float]:
        quantized = self.quantized_pieces(primer, Counter())[0]
        # The continuation starts where the primer's last note ends (or at its total_time when that is
        # later: a start time asked for), not after a trailing silence of the file.
        quantized.total_quantized_steps = max([n.quantized_end_step for n in quantized.notes], default=0)
        if primer.total_time > max([n.end_time for n in primer.notes], default=0.0) + 1e-9:
            quantized.total_quantized_steps = max(quantized.total_quantized_steps,
                                                  round(primer.total_time * self.steps_per_second))
        return quantized, 1.0 / self.steps_per_second

    def _primer_events(self, quantized: NoteSequence) -> tuple[list[Any], int, int]:
        from note_seq import Performance

        if not quantized.notes:
            raise NoPrimerEvents("the primer has no pitched notes for a performance model")
        performance = Performance(quantized, num_velocity_bins=self.num_velocity_bins,
                                  max_shift_steps=self.max_shift_steps)
        performance.set_length(quantized.total_quantized_steps)
        return list(performance), 0, 0

    def _render(self, events: list[Any], first_step: int, seconds_per_step: float) -> NoteSequence:
        from note_seq import Performance

        performance = Performance(steps_per_second=round(1.0 / seconds_per_step), start_step=first_step,
                                  num_velocity_bins=self.num_velocity_bins, max_shift_steps=self.max_shift_steps)
        for event in events:
            performance.append(event)
        return performance.to_sequence(velocity=100)


def _steps_per_bar(quantized: NoteSequence) -> int:
    from note_seq import sequences_lib

    return max(1, round(sequences_lib.steps_per_bar_in_quantized_sequence(quantized)))


ENCODINGS: dict[str, type[Encoding]] = {
    "melody": MelodyEncoding,
    "drums": DrumEncoding,
    "polyphony": PolyphonyEncoding,
    "performance": PerformanceEncoding,
}
