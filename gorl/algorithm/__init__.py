"""GoRL (spec 6): latent PPO encoder + generative decoder, trained in stages.

gorl/algorithm/config.py holds its settings (no torch), gorl.py the algorithm, decoder.py the
decoder and its fit, episode_filter.py the collector's episode filter, teacher.py the teacher."""
