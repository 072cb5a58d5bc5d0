"""Music files -> NoteSequences: MIDI, MusicXML, ABC and Humdrum kern.

Each reader fills the fields Magenta's `convert_dir_to_note_sequences` fills: `id`
('/id/<type>/<collection>/<sha1 of filename>'), `filename` (relative to the collection's root),
`collection_name`, `ticks_per_quarter`, tempos, time and key signatures, per-note instrument,
program, is_drum and velocity, `total_time` and `source_info`. Every failure is a `BadInputFile`
naming the file and the problem; an ABC tunebook whose individual tunes fail still yields the rest,
with a warning per failed tune.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from generation.errors import BadInputFile
from generation.io.midi import midi_to_note_sequence
from generation.protos import NoteSequence, SourceInfo

# Suffix -> source type, as Magenta names it in sequence ids.
SOURCE_TYPES: dict[str, str] = {
    ".mid": "midi",
    ".midi": "midi",
    ".xml": "musicxml",
    ".mxl": "musicxml",
    ".musicxml": "musicxml",
    ".abc": "abc",
    ".krn": "kern",
}
MUSIC_SUFFIXES = frozenset(SOURCE_TYPES)


@dataclass
class FileContents:
    """What one file yields: its sequences, and the parts of it that could not be read."""

    sequences: list[NoteSequence]
    warnings: list[str] = field(default_factory=list)


def generate_note_sequence_id(filename: str, collection_name: str, source_type: str) -> str:
    """Magenta's sequence id: '/id/<source type>/<collection name>/<sha1 of filename>'."""
    fingerprint = hashlib.sha1(filename.encode("utf-8")).hexdigest()
    return f"/id/{source_type.lower()}/{collection_name}/{fingerprint}"


def source_type_of(path: str | os.PathLike[str]) -> str | None:
    return SOURCE_TYPES.get(Path(path).suffix.lower())


def read_music_file(
    path: str | os.PathLike[str], *, collection_name: str = "", filename: str | None = None,
    on_tune: Callable[[], object] | None = None,
) -> FileContents:
    """Reads one file into NoteSequences, choosing the reader by suffix.

    `filename` is the name recorded in the sequence (default: the file's base name) and, with
    `collection_name`, what the id is derived from, as in Magenta. `on_tune()` is called after each
    tune of an ABC tunebook, read or not (progress: one tune can take music21 seconds).
    """
    path = Path(path)
    source_type = source_type_of(path)
    if source_type is None:
        raise BadInputFile(path, f"unsupported file type {path.suffix or '(no suffix)'!r}; "
                                 f"readable: {', '.join(sorted(MUSIC_SUFFIXES))}")
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise BadInputFile(path, "is a directory") from None
    except OSError as error:
        raise BadInputFile(path, f"cannot read: {error.strerror or error}") from None
    if not data:
        raise BadInputFile(path, "empty file (0 bytes)")
    filename = filename if filename is not None else path.name
    if source_type == "midi":
        contents = FileContents([midi_to_note_sequence(data, path)])
    elif source_type == "musicxml":
        contents = FileContents([_read_musicxml(path)])
    elif source_type == "abc":
        contents = _read_abc(path, data, filename, collection_name, on_tune)
    else:
        contents = FileContents([_read_kern(path)])
    for sequence in contents.sequences:
        sequence.filename = filename
        sequence.collection_name = collection_name
        if source_type != "abc":  # ABC ids carry the tune's reference number, set by _read_abc
            sequence.id = generate_note_sequence_id(filename, collection_name, source_type)
    return contents


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    text = re.sub(r",? ?id\(\)=\d+| 0x[0-9a-f]+", "", text)  # music21 prints object ids and addresses
    return text[:200] if text else type(error).__name__


def _read_musicxml(path: Path) -> NoteSequence:
    from note_seq import musicxml_reader

    try:
        return musicxml_reader.musicxml_file_to_sequence_proto(str(path))
    except Exception as error:  # note_seq's MusicXML parser raises many types on odd scores
        note_seq_reason = _one_line(error)
    # note_seq reads a subset of MusicXML; music21 reads most of the rest.
    try:
        sequence = _music21_to_note_sequence(path, "musicxml")
    except BadInputFile:
        raise BadInputFile(path, f"not readable as MusicXML: {note_seq_reason}") from None
    sequence.source_info.encoding_type = SourceInfo.MUSIC_XML
    return sequence


def count_abc_tunes(data: bytes) -> int:
    """How many tunes `_read_abc` will try in a tunebook's bytes (its units of work)."""
    return len(split_abc_tunebook(_decode_abc(data))[1])


def _decode_abc(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _read_abc(path: Path, data: bytes, filename: str, collection_name: str,
              on_tune: Callable[[], object] | None = None) -> FileContents:
    """Every tune of a tunebook becomes its own sequence; Magenta's parser first, music21 where it fails."""
    from note_seq import abc_parser

    header, tunes = split_abc_tunebook(_decode_abc(data))
    if not tunes:
        raise BadInputFile(path, "not readable as ABC: no tunes found (an ABC tune starts with an 'X:' line)")
    sequences: list[NoteSequence] = []
    warnings: list[str] = []
    seen_reference_numbers: set[int] = set()
    for lines in tunes:
        try:
            try:
                sequence = abc_parser.ABCTune(header + lines).note_sequence
            except Exception as error:  # note_seq supports a subset of ABC (no grace notes, some rests ...)
                try:
                    sequence = _music21_abc_tune("\n".join(header + lines), path)
                except BadInputFile as fallback_error:
                    warnings.append(f"tune {_abc_reference(lines)}: {_one_line(error)}; music21: {fallback_error.reason}")
                    continue
            if not sequence.notes:
                warnings.append(f"tune {_abc_reference(lines)}: no notes")
                continue
            if sequence.reference_number in seen_reference_numbers:
                warnings.append(f"tune {sequence.reference_number}: reference number used twice; the first is kept")
                continue
            seen_reference_numbers.add(sequence.reference_number)
            sequence.id = generate_note_sequence_id(f"{filename}_{sequence.reference_number}", collection_name, "abc")
            sequences.append(sequence)
        finally:
            if on_tune is not None:
                on_tune()
    if not sequences:
        raise BadInputFile(path, f"not readable as ABC: {warnings[0]}")
    return FileContents(sequences, warnings)


def split_abc_tunebook(text: str) -> tuple[list[str], list[list[str]]]:
    """(header lines, lines of each tune), split as note_seq splits a tunebook: on blank lines."""
    sections: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            current.append(line)
        elif current:
            sections.append(current)
            current = []
    if current:
        sections.append(current)
    header: list[str] = []
    if len(sections) > 1 and not any(line.startswith("X:") for line in sections[0]):
        header = sections.pop(0)
    # A tune starts with its reference number (X:); other sections are free text between tunes.
    return header, [section for section in sections if any(line.startswith("X:") for line in section)]


def _abc_reference(lines: list[str]) -> str:
    return next((line[2:].strip() for line in lines if line.startswith("X:")), "?")


def _music21_abc_tune(tune_text: str, path: Path) -> NoteSequence:
    import music21
    from music21.midi import translate

    try:
        score = music21.converter.parse(tune_text, format="abc")
        _drop_shared_signatures(score)
        midi_bytes = translate.streamToMidiFile(score).writestr()
    except Exception as error:  # music21 raises a wide variety of parser errors
        raise BadInputFile(path, _one_line(error)) from None
    sequence = midi_to_note_sequence(midi_bytes, path)
    if not sequence.notes:
        raise BadInputFile(path, "no notes")
    reference = _abc_reference(tune_text.splitlines())
    if reference.isdigit():
        sequence.reference_number = int(reference)
    title = next((line[2:].strip() for line in tune_text.splitlines() if line.startswith("T:")), "")
    if title:
        sequence.sequence_metadata.title = title
    sequence.source_info.source_type = SourceInfo.SCORE_BASED
    sequence.source_info.encoding_type = SourceInfo.ABC
    sequence.source_info.parser = SourceInfo.MUSIC21
    return sequence


def _drop_shared_signatures(score) -> None:
    """Removes repeats of one signature object from a music21 stream.

    music21's ABC parser can put the same TimeSignature (or KeySignature) object into two measures,
    which its own MIDI translation then refuses ("already found in this Stream").
    """
    import music21

    signature_classes = (music21.meter.TimeSignature, music21.key.KeySignature)
    seen: set[int] = set()
    for container in [score, *score.recurse(streamsOnly=True)]:
        for element in list(container.getElementsByClass(signature_classes)):
            if id(element) in seen:
                container.remove(element)
            seen.add(id(element))


def _read_kern(path: Path) -> NoteSequence:
    sequence = _music21_to_note_sequence(path, "humdrum")
    sequence.source_info.encoding_type = SourceInfo.UNKNOWN_ENCODING_TYPE  # the proto has no kern type
    return sequence


def _music21_to_note_sequence(path: Path, music21_format: str) -> NoteSequence:
    """Reads a score with music21 and takes its MIDI rendering (tempo, meter, key, parts) as the sequence."""
    import music21
    from music21.midi import translate

    try:
        score = music21.converter.parse(str(path), format=music21_format)
        midi_bytes = translate.streamToMidiFile(score).writestr()
    except Exception as error:  # music21 raises a wide variety of parser errors
        raise BadInputFile(path, f"not readable as {music21_format}: {_one_line(error)}") from None
    sequence = midi_to_note_sequence(midi_bytes, path)
    if not sequence.notes:
        raise BadInputFile(path, f"no notes in this {music21_format} score")
    sequence.source_info.source_type = SourceInfo.SCORE_BASED
    sequence.source_info.parser = SourceInfo.MUSIC21
    return sequence
