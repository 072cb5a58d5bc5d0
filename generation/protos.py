"""The NoteSequence proto, from note-seq: the one music type that crosses module borders.

note-seq's package imports its notebook helpers (bokeh, IPython, pandas) and its audio reader
(librosa, pydub) on first import: 3 s of every `gen` command's start, for code no command runs.
Stand-ins for those two modules are registered first; each loads the real module the first time
one of its functions is used, so `note_seq.plot_sequence`, `note_seq.audio_io.wav_data_to_samples`
and the rest still work.
"""

import importlib.util
import sys
import types
import warnings
from pathlib import Path


_real: dict[str, types.ModuleType] = {}


def _load_real(name: str) -> types.ModuleType:
    if name in _real:
        return _real[name]
    import note_seq

    stem = name.rsplit(".", 1)[1]
    spec = importlib.util.spec_from_file_location(name, Path(note_seq.__file__).parent / f"{stem}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pydub: no ffmpeg; nothing here decodes audio
        spec.loader.exec_module(module)
    sys.modules[name] = _real[name] = module
    setattr(sys.modules["note_seq"], stem, module)
    return module


def _deferred(name: str, functions: tuple[str, ...]) -> types.ModuleType:
    """A stand-in for note_seq module `name`: named functions and any attribute load the real one."""
    stand_in = types.ModuleType(name, f"Loaded on first use (see {__name__}).")

    def forward(function: str):
        def call(*args, **kwargs):
            return getattr(_load_real(name), function)(*args, **kwargs)

        call.__name__ = function
        return call

    for function in functions:
        setattr(stand_in, function, forward(function))
    def attribute_of_real(attribute: str):
        if attribute.startswith("__"):  # the import system probes __path__ and friends: not a use
            raise AttributeError(attribute)
        return getattr(_load_real(name), attribute)

    stand_in.__getattr__ = attribute_of_real  # type: ignore[attr-defined]
    return stand_in


if "note_seq" not in sys.modules:
    sys.modules.setdefault("note_seq.notebook_utils", _deferred("note_seq.notebook_utils", ("play_sequence", "plot_sequence")))
    sys.modules.setdefault("note_seq.audio_io", _deferred("note_seq.audio_io", ()))

with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    from note_seq.protobuf import music_pb2

for _stem in ("notebook_utils", "audio_io"):  # `note_seq.audio_io` must name the module, as after a real import
    if not hasattr(sys.modules["note_seq"], _stem):
        setattr(sys.modules["note_seq"], _stem, sys.modules[f"note_seq.{_stem}"])

NoteSequence = music_pb2.NoteSequence
SourceInfo = music_pb2.NoteSequence.SourceInfo
TextAnnotation = music_pb2.NoteSequence.TextAnnotation

__all__ = ["NoteSequence", "SourceInfo", "TextAnnotation", "music_pb2"]
