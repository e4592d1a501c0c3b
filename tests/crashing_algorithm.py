"""An algorithm whose training raises (a bug in a plug-in's code), for the pipeline's
failed-run handling (tests/test_workflow.py): registered when imported (`imports:`)."""
from baselines.config import PRESETS, PPOConfig
from gorl.registry import Algorithm, register

CRASH = "deliberate crash in the algorithm's own code"


def train(cfg, run):
    raise RuntimeError(CRASH)


ALGORITHM = register(Algorithm(name="crasher", config_cls=PPOConfig, presets_file=PRESETS, train=train,
                               label="Crasher", description="raises in train() (tests only)"))
