"""Installs the `generation` library and the `gen` command.

`configs/` and `train_data/` live at the top of the source tree (the product's layout) and are
installed as `generation.configs` and `generation.train_data`, so named configs and dataset
recipes travel with the package in regular and editable installs alike.
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="gen-music",
    version="0.1.0",
    description="Magenta-style music generation toolkit: NoteSequence/TFRecord data, GrooVAE and LSTM models in PyTorch",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["generation", "generation.*"])
    + ["generation.configs", "generation.train_data"],
    package_dir={
        "generation": "generation",
        "generation.configs": "configs",
        "generation.train_data": "train_data",
    },
    package_data={
        "generation": ["py.typed"],
        "generation.models": ["*/*.json", "*/*.md", "*/checkpoints/*",
                              "transcriber/*.onnx", "transcriber/LICENSE", "transcriber/NOTICE"],
        "generation.configs": ["*.json", "*.md"],
        "generation.train_data": ["*.json", "*.csv", "*.md"],
    },
    py_modules=["cli"],
    install_requires=[
        # A range that the CPU wheel torch==2.13.0 satisfies: with it installed, nothing more is pulled.
        "torch>=2.1,<3",
        "numpy>=1.24",
        "click>=8.1",
        "note-seq>=0.0.5",
        "pretty_midi>=0.2.9",  # writes MT3-style MIDI (generation.transcription); note-seq needs it too
        "symusic>=0.5",
        "music21>=9.1",
        "google-crc32c>=1.5",
        "protobuf>=4.21",
        "safetensors>=0.4",
        "tensorboard>=2.10",  # torch.utils.tensorboard's writer; no TensorFlow
        "tqdm>=4.60",
    ],
    extras_require={
        # setuptools 70.1+ builds wheels itself: a test builds one to check that it carries the models.
        "test": ["pytest>=7", "tfrecord>=1.14", "setuptools>=70.1", "midirenderer>=0.1.3", "soundfile>=0.12",
                 "verovio>=4.3", "onnxruntime>=1.16",
                 # CI tests the Beam runner too: in its fresh venv, Beam's protobuf<7 cap picks protobuf 6.
                 "apache-beam>=2.77,<3"],
        # gen render: a SoundFont synthesizer (MIT, a Rust wheel) and FLAC writing (libsndfile in the wheel).
        "audio": ["midirenderer>=0.1.3", "soundfile>=0.12"],
        # gen score -o X.svg: verovio engraves MusicXML (LGPL-3.0, a wheel); MusicXML needs only music21.
        "score": ["verovio>=4.3"],
        # gen transcribe: the bundled Basic Pitch model (ONNX, Apache-2.0) runs on onnxruntime (MIT, a
        # wheel); soundfile reads WAV, FLAC, OGG and MP3.
        "transcribe": ["onnxruntime>=1.16", "soundfile>=0.12"],
        # gen preprocess --runner beam: the same conversion as an Apache Beam pipeline (Dataflow, Flink,
        # Spark). 2.77.0 is the release it is tested with. It caps protobuf<7 (and python-dateutil<3,
        # pillow<13), so installing it where newer ones are installed downgrades them.
        "beam": ["apache-beam>=2.77,<3"],
    },
    entry_points={"console_scripts": ["gen=cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Multimedia :: Sound/Audio :: MIDI",
    ],
)
