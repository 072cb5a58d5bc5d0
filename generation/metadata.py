"""Dataset metadata (style, bpm, drummer ...) carried inside a NoteSequence, so later steps can filter on it.

NoteSequence has no free key-value field. Each column is stored as a text annotation at time 0 with
annotation type UNKNOWN and text 'metadata:<column>=<value>', which Magenta's pipelines ignore (they
read CHORD_SYMBOL and BEAT annotations only). The columns Magenta's SequenceMetadata knows are also
set there: title, artist (or drummer), composer, and genre (or style).
"""

from __future__ import annotations

from collections.abc import Mapping

from generation.protos import NoteSequence, TextAnnotation

PREFIX = "metadata:"
_GENRE_COLUMNS = ("genre", "style")
_ARTIST_COLUMNS = ("artist", "drummer")


def set_metadata(sequence: NoteSequence, columns: Mapping[str, str]) -> None:
    """Stores every (column, value) pair in `sequence`, replacing metadata stored before."""
    kept = [a for a in sequence.text_annotations if not _is_metadata(a)]
    del sequence.text_annotations[:]
    sequence.text_annotations.extend(kept)
    for column, value in columns.items():
        sequence.text_annotations.add(time=0.0, text=f"{PREFIX}{column}={value}", annotation_type=TextAnnotation.UNKNOWN)
    known = sequence.sequence_metadata
    if columns.get("title"):
        known.title = columns["title"]
    if columns.get("composer"):
        known.composers[:] = [columns["composer"]]
    artist = next((columns[c] for c in _ARTIST_COLUMNS if columns.get(c)), None)
    if artist:
        known.artist = artist
    genres = [columns[c] for c in _GENRE_COLUMNS if columns.get(c)]
    if genres:
        known.genre[:] = genres


def get_metadata(sequence: NoteSequence) -> dict[str, str]:
    """The columns stored by `set_metadata`, in their original order."""
    columns = {}
    for annotation in sequence.text_annotations:
        if _is_metadata(annotation):
            column, _, value = annotation.text[len(PREFIX):].partition("=")
            columns[column] = value
    return columns


def _is_metadata(annotation: TextAnnotation) -> bool:
    return annotation.annotation_type == TextAnnotation.UNKNOWN and annotation.text.startswith(PREFIX)
