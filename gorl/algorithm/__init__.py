"""GoRL (spec 6): latent PPO encoder + generative decoder, trained in stages."""
from gorl.algorithm.decoder import DECODER_KINDS, Decoder, fit_decoder
from gorl.algorithm.gorl import GoRLConfig, GoRLDiffusionConfig, train

__all__ = ["Decoder", "DECODER_KINDS", "fit_decoder", "GoRLConfig", "GoRLDiffusionConfig", "train"]
