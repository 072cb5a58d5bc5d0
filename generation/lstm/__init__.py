"""LSTM note models (Magenta's melody_rnn, drums_rnn, polyphony_rnn and performance_rnn) in PyTorch:
event encodings from note-seq, one LSTM model, generation with a primer, beam search and scoring."""

from generation.lstm.generate import LSTMModel, SamplingOptions

__all__ = ["LSTMModel", "SamplingOptions"]
