"""Event encodings: round trips on real music (Groove drums, a Bach chorale, O'Neill's folk tunes, a
multi-track arrangement), out-of-range notes, Magenta's extraction rules and primers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from generation.io.readers import read_music_file
from generation.lstm.encodings import (
    DrumEncoding,
    MelodyEncoding,
    NoPrimerEvents,
    PerformanceEncoding,
    PolyphonyEncoding,
    STEPS_PER_QUARTER,
)
from generation.protos import NoteSequence

from .conftest import FIXTURES

GROOVE_FILES = sorted((FIXTURES / "groove").rglob("*.mid"))


def read(path: Path) -> NoteSequence:
    return read_music_file(path).sequences[0]


def quantized_pieces(encoding, sequence: NoteSequence) -> list[NoteSequence]:
    return encoding.quantized_pieces(sequence, Counter())


def note_steps(sequence: NoteSequence, seconds_per_step: float) -> Counter:
    return Counter((n.pitch, round(n.start_time / seconds_per_step), round(n.end_time / seconds_per_step))
                   for n in sequence.notes)


def test_polyphony_round_trips_a_chorale_note_for_note() -> None:
    encoding = PolyphonyEncoding()
    sequence = read(FIXTURES / "scores" / "bwv66.6.mxl")
    tracks = encoding.extract(sequence)
    pieces = [p for p in quantized_pieces(encoding, sequence) if p.total_quantized_steps >= encoding.min_steps]
    assert len(tracks) == len(pieces) == 1
    tokens, first_step = tracks[0]
    assert tokens[0] == encoding.start_token and tokens[-1] == encoding.end_token
    expected = Counter((n.pitch, n.quantized_start_step, n.quantized_end_step) for n in pieces[0].notes)
    decoded = encoding.decode(tokens, first_step=first_step, seconds_per_step=0.125)
    assert note_steps(decoded, 0.125) == expected
    # Two voices on one pitch (unisons) come back as two notes.
    sounding = Counter((pitch, step) for pitch, start, end in expected.elements() for step in range(start, end))
    assert max(sounding.values()) == 2
    assert encoding.extract(decoded)[0][0] == tokens


def test_polyphony_marks_chords_and_held_notes_explicitly() -> None:
    sequence = NoteSequence(ticks_per_quarter=220)
    sequence.tempos.add(qpm=120)
    for pitch, start, end in ((60, 0.0, 0.5), (64, 0.0, 0.125), (67, 0.125, 0.25)):
        sequence.notes.add(pitch=pitch, start_time=start, end_time=end, velocity=80)
    sequence.total_time = 1.0
    encoding = PolyphonyEncoding(min_steps=1)
    tokens, _ = encoding.extract(sequence)[0]
    events = encoding.events(tokens)[1:-1]
    names = [(e.event_type, e.pitch) for e in events[:8]]
    # Step 0: both new, highest first; step 1: 67 new and 60 held (highest first); step 2: 60 held.
    assert names == [(3, 64), (3, 60), (2, None), (3, 67), (4, 60), (2, None), (4, 60), (2, None)]


def test_melody_round_trips_monophonic_folk_tunes() -> None:
    encoding = MelodyEncoding(transpose_to_key=None, min_bars=2, min_unique_pitches=1, min_note=0, max_note=128)
    sequence = read(FIXTURES / "scores" / "oneills1850_0001-0008.abc")
    piece = quantized_pieces(encoding, sequence)[0]
    tokens, first_step = encoding.extract(sequence)[0]
    decoded = encoding.decode(tokens, first_step=first_step, seconds_per_step=0.125)
    onsets = [(n.pitch, round(n.start_time / 0.125)) for n in decoded.notes]
    highest: dict[int, int] = {}  # a double stop keeps its highest note (Magenta's rule)
    for note in piece.notes:
        highest[note.quantized_start_step] = max(note.pitch, highest.get(note.quantized_start_step, 0))
    originals = [(pitch, step) for step, pitch in sorted(highest.items())]
    assert onsets == originals[: len(onsets)] and len(onsets) > 50


def test_melody_moves_out_of_range_notes_by_octaves_and_counts_them() -> None:
    sequence = NoteSequence(ticks_per_quarter=220)
    sequence.tempos.add(qpm=120)
    pitches = [60, 62, 64, 65, 67, 69, 71, 72] * 4 + [100]
    for index, pitch in enumerate(pitches):
        sequence.notes.add(pitch=pitch, start_time=index * 0.25, end_time=index * 0.25 + 0.25, velocity=80)
    sequence.total_time = len(pitches) * 0.25
    counts: Counter = Counter()
    encoding = MelodyEncoding(transpose_to_key=None, min_bars=2)
    tokens, first_step = encoding.extract(sequence, counts)[0]
    assert counts["notes_moved_by_octaves_into_range"] == 1
    decoded = encoding.decode(tokens, first_step=first_step)
    assert all(48 <= n.pitch < 84 for n in decoded.notes)
    assert decoded.notes[-1].pitch % 12 == 100 % 12


def test_melody_follows_magentas_extraction_rules() -> None:
    counts: Counter = Counter()
    sequence = read(FIXTURES / "scores" / "bwv66.6.mxl")
    tracks = MelodyEncoding().extract(sequence, counts)
    assert len(tracks) == 4  # the four voices of the main section
    assert counts["melodies_discarded_too_short"] > 0  # the pickup and the 3/4 ending: under 7 bars


@pytest.mark.parametrize("path", GROOVE_FILES, ids=lambda p: p.stem)
def test_drums_round_trip_groove_files_class_by_class(path: Path) -> None:
    encoding = DrumEncoding(min_bars=1)
    sequence = read(path)
    from note_seq.drums_encoder_decoder import DEFAULT_DRUM_TYPE_PITCHES

    class_of = {p: i for i, pitches in enumerate(DEFAULT_DRUM_TYPE_PITCHES) for p in pitches}
    piece = quantized_pieces(encoding, sequence)[0]
    expected = {(class_of[n.pitch], n.quantized_start_step) for n in piece.notes if n.pitch in class_of}
    decoded_hits = set()
    for tokens, first_step in encoding.extract(sequence):
        decoded = encoding.decode(tokens, first_step=first_step, seconds_per_step=0.125)
        decoded_hits |= {(class_of[n.pitch], round(n.start_time / 0.125)) for n in decoded.notes}
        assert all(n.is_drum for n in decoded.notes)
    assert decoded_hits == expected


def test_drums_drop_pitches_outside_the_classes_and_count_them() -> None:
    sequence = NoteSequence(ticks_per_quarter=220)
    sequence.tempos.add(qpm=120)
    for step in range(32):
        sequence.notes.add(pitch=36 if step % 4 == 0 else 20, start_time=step * 0.125, end_time=step * 0.125 + 0.01,
                           velocity=90, is_drum=True, instrument=9)
    sequence.total_time = 4.0
    counts: Counter = Counter()
    tracks = DrumEncoding(min_bars=1).extract(sequence, counts)
    assert counts["drum_notes_dropped_unknown_pitch"] == 24
    assert len(DrumEncoding().decode(tracks[0][0]).notes) == 8


def test_performance_round_trips_a_multitrack_arrangement_at_10_ms() -> None:
    encoding = PerformanceEncoding(num_velocity_bins=32, min_events=1)
    sequence = read(FIXTURES / "multitrack" / "pop_arrangement.mid")
    counts: Counter = Counter()
    tokens, first_step = encoding.extract(sequence, counts)[0]
    assert counts["drum_notes_left_out_of_performances"] == sum(n.is_drum for n in sequence.notes)
    decoded = encoding.decode(tokens, first_step=first_step)
    quantized = encoding.quantized_pieces(sequence, Counter())[0]
    expected = Counter((n.pitch, n.quantized_start_step, n.quantized_end_step) for n in quantized.notes)
    assert note_steps(decoded, 0.01) == expected
    bin_size = 128 // 32
    for original, back in zip(sorted(quantized.notes, key=lambda n: (n.quantized_start_step, n.pitch)),
                              sorted(decoded.notes, key=lambda n: (round(n.start_time * 100), n.pitch))):
        assert abs(original.velocity - back.velocity) < bin_size


def test_every_token_advances_the_steps_its_event_covers() -> None:
    performance = PerformanceEncoding()
    shifts = [performance.token_steps[i] for i in range(performance.num_classes)]
    assert sorted(set(shifts)) == list(range(0, 101))
    assert list(PolyphonyEncoding().token_steps).count(1) == 1
    melody = MelodyEncoding()
    assert melody.token_steps[melody.start_token] == melody.token_steps[melody.end_token] == 0
    assert set(melody.token_steps[: melody.num_classes]) == {1}


def test_a_primer_keeps_its_length_tempo_and_transposition() -> None:
    sequence = read(FIXTURES / "scores" / "oneills1850_0001-0008.abc")
    primed = MelodyEncoding().prime(sequence)
    qpm = sequence.tempos[0].qpm
    assert primed.seconds_per_step == pytest.approx(60 / qpm / STEPS_PER_QUARTER)
    assert primed.continuation_step == round(sequence.total_time / primed.seconds_per_step)
    assert len(primed.tokens) == 1 + primed.continuation_step - primed.first_step
    decoded = MelodyEncoding().decode(primed.tokens, first_step=primed.first_step,
                                      seconds_per_step=primed.seconds_per_step)
    assert [n.pitch - primed.transpose for n in decoded.notes][:9] == [n.pitch for n in sequence.notes][:9]


def test_a_primer_without_the_encodings_material_is_refused() -> None:
    drums_only = read(GROOVE_FILES[0])
    with pytest.raises(NoPrimerEvents, match="no pitched notes"):
        MelodyEncoding().prime(drums_only)
    with pytest.raises(NoPrimerEvents, match="no drum notes"):
        DrumEncoding().prime(read(FIXTURES / "scores" / "bwv66.6.mxl"))


def test_music21_corpus_chorales_and_folk_tunes_round_trip() -> None:
    """Real data beyond the fixtures: chorales and tunes from music21's corpus (installed with music21)."""
    from music21 import corpus

    from generation.io.readers import read_music_file as read_file

    polyphony, melody = PolyphonyEncoding(), MelodyEncoding(transpose_to_key=None)
    chorales = [p for p in corpus.getComposer("bach") if p.suffix in (".mxl", ".xml")][:6]
    checked = 0
    for path in chorales:
        for sequence in read_file(path).sequences:
            for tokens, first_step in polyphony.extract(sequence):
                decoded = polyphony.decode(tokens, first_step=first_step)
                assert polyphony.extract(decoded)[0][0] == tokens
                checked += 1
            for tokens, first_step in melody.extract(sequence):
                again = melody.decode(tokens, first_step=first_step)
                assert melody.tokens(melody_events(melody, again, first_step)) == tokens
    assert checked >= 3


def melody_events(encoding: MelodyEncoding, decoded: NoteSequence, first_step: int) -> list[int]:
    """Melody events re-read from decoded notes (one note at a time, on the 16th grid)."""
    from note_seq import Melody, sequences_lib

    quantized = sequences_lib.quantize_note_sequence(decoded, STEPS_PER_QUARTER)
    melody = Melody()
    melody.from_quantized_sequence(quantized, search_start_step=0, instrument=0, gap_bars=float("inf"),
                                   ignore_polyphonic_notes=True)
    events = [-2] * (melody.start_step - first_step) + list(melody)
    # A melody's trailing rest (NO_EVENTs after the last NOTE_OFF) is not in the decoded notes.
    return events
