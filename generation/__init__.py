"""gen: a Magenta-style music generation toolkit.

NoteSequence protos (from note-seq) are the one in-memory music type; TFRecord files of serialized
NoteSequences are the one dataset format. Heavy dependencies are imported by the modules that need
them, so `import generation` stays cheap.
"""

__version__ = "0.1.0"
