"""The NoteSequence proto, from note-seq: the one music type that crosses module borders."""

import warnings

with warnings.catch_warnings():
    # note_seq imports pydub, which warns at import when ffmpeg is absent; nothing here decodes audio.
    warnings.simplefilter("ignore", RuntimeWarning)
    from note_seq.protobuf import music_pb2

NoteSequence = music_pb2.NoteSequence
SourceInfo = music_pb2.NoteSequence.SourceInfo
TextAnnotation = music_pb2.NoteSequence.TextAnnotation

__all__ = ["NoteSequence", "SourceInfo", "TextAnnotation", "music_pb2"]
