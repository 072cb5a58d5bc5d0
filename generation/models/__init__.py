"""Bundled models, one folder each (see `generation.bundled`)."""
