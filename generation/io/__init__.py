"""Bytes in and out: TFRecord framing, music file readers and writers. Nothing musical is decided here."""
