"""MusicVAE in PyTorch, mirroring `magenta.models.music_vae`: `configs.CONFIG_MAP`, the converters of
`data` (`GrooveConverter` for GrooVAE; `OneHotMelodyConverter` and `DrumsConverter` for 2-bar
melodies and drum patterns), `trained_model.TrainedModel`. Code written against Magenta runs here
after changing its imports."""

from generation.music_vae import configs
from generation.music_vae.trained_model import TrainedModel

__all__ = ["TrainedModel", "configs"]
