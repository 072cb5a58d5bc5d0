"""What the musician's commands (`gen continue`, `vary`, `humanize`, `tidy`, `score`, `render`,
`plot`, `sample --primer`, `interpolate`) accept of a piece, checked once it is read and before any
analysis or model: a piece past a limit is a one-line error naming the file, the limit and the value.

The defaults are far beyond real music (a dense one-hour recording transcribed by MT3 has about
230,000 notes) and stop only damaged or hostile files: a tempo event of 1 microsecond per quarter
puts a whole piece into a millisecond, a note at tick 2^28 makes a piece 77 hours long. Each
numeric limit can be raised by an environment variable, e.g. GEN_MAX_MINUTES=600.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from generation.errors import BadInputFile
from generation.protos import NoteSequence


@dataclass(frozen=True)
class Limit:
    name: str  # the environment variable that raises it
    default: float
    unit: str  # what is counted: "notes", "minutes" ...

    @property
    def value(self) -> float:
        given = os.environ.get(self.name)
        if given is None:
            return self.default
        try:
            return float(given)
        except ValueError:
            raise BadInputFile(self.name, f"the environment variable must be a number; got {given!r}") from None

    def refuse(self, name: str, found: str, remedy: str = "") -> BadInputFile:
        return BadInputFile(name, f"{found}; at most {self.value:,g} {self.unit} are accepted "
                                  f"({remedy + ', or ' if remedy else ''}raise the limit with {self.name}=N)")


MAX_MINUTES = Limit("GEN_MAX_MINUTES", 180, "minutes")
MAX_NOTES = Limit("GEN_MAX_NOTES", 2_000_000, "notes")
MAX_TEMPO_EVENTS = Limit("GEN_MAX_TEMPO_EVENTS", 100_000, "tempo events")
MAX_METER_EVENTS = Limit("GEN_MAX_METER_EVENTS", 10_000, "time signatures")
# The synthesizer holds the whole rendering in memory, about 36 MB a minute at its peak (48 kHz
# stereo): this keeps `gen render` under 2 GB.
MAX_RENDER_MINUTES = Limit("GEN_MAX_RENDER_MINUTES", 45, "minutes of audio")
# music21 builds and writes a score of 4 dense tracks at about 20 bars a second on this project's
# 2-core CPU: this many take under half a minute.
MAX_SCORE_BARS = Limit("GEN_MAX_SCORE_BARS", 500, "bars in one score")
# `gen transcribe` holds the recording in memory: an hour of 48 kHz audio peaks at about 1.3 GB (its
# mono copy and the 22,050 Hz one; 10 minutes: 0.34 GB).
MAX_TRANSCRIBE_MINUTES = Limit("GEN_MAX_TRANSCRIBE_MINUTES", 60, "minutes of audio")
# `gen vary` samples each re-sampled bar from an LSTM primed with the bars before it, at a cost per
# bar and per note (0.01-0.2 s a bar on this project's 2-core CPU): past either limit it tries only
# that many of the bars chosen (an 8-minute song of four pitched tracks at --amount 0.5 chooses
# about 400 bars).
MAX_RESAMPLED_BARS = Limit("GEN_MAX_RESAMPLED_BARS", 600, "re-sampled bars")
MAX_RESAMPLED_NOTES = Limit("GEN_MAX_RESAMPLED_NOTES", 12_000, "notes in re-sampled bars")
# A tempo outside these quarter notes per minute is a damaged event, not music (a tempo event of 1
# microsecond per quarter note is 60 million).
TEMPO_RANGE = (1.0, 2000.0)  # MIDI cannot write a tempo below 3.6: the low end only stops negative ones
MAX_NUMERATOR = 64
DENOMINATORS = (1, 2, 4, 8, 16, 32, 64)


def check_render_length(sequence: NoteSequence, name: str) -> None:
    """A `BadInputFile` when `sequence` plays longer than MAX_RENDER_MINUTES."""
    end = max((n.end_time for n in sequence.notes), default=0.0)
    if end > MAX_RENDER_MINUTES.value * 60:
        raise MAX_RENDER_MINUTES.refuse(name, f"it plays for {end / 60:,.1f} minutes",
                                        "render it in shorter parts")


def check_piece(sequence: NoteSequence, name: str) -> None:
    """A `BadInputFile` naming `name`, the rule and the value when `sequence` is past a limit."""
    for limit, count in ((MAX_NOTES, len(sequence.notes)), (MAX_TEMPO_EVENTS, len(sequence.tempos)),
                         (MAX_METER_EVENTS, len(sequence.time_signatures))):
        if count > limit.value:
            raise limit.refuse(name, f"it has {count:,} {limit.unit}")
    low, high = TEMPO_RANGE
    for tempo in sequence.tempos:
        if not low <= tempo.qpm <= high:
            raise BadInputFile(name, f"a tempo of {tempo.qpm:g} quarter notes per minute at {tempo.time:.3f} s; "
                                     f"tempos from {low:g} to {high:g} are accepted")
    for signature in sequence.time_signatures:
        if not (1 <= signature.numerator <= MAX_NUMERATOR and signature.denominator in DENOMINATORS):
            raise BadInputFile(name, f"a time signature of {signature.numerator}/{signature.denominator} at "
                                     f"{signature.time:.3f} s; numerators 1 to {MAX_NUMERATOR} over "
                                     f"{', '.join(map(str, DENOMINATORS))} are accepted")
    end = max((n.end_time for n in sequence.notes), default=0.0)
    if end > MAX_MINUTES.value * 60:
        raise MAX_MINUTES.refuse(name, f"its last note ends at {end / 60:,.1f} minutes")
