"""dm_control envs sharded over worker processes (shared-memory buffers): same results as in-process."""
import json

import numpy as np

from conftest import cli
from gorl.envs import VectorEnv, make_env
from gorl.envs.sharded import ShardedVectorEnv


def test_sharded_steps_like_in_process_and_states_cross_over():
    seeds = [3, 4, 5, 6, 7]
    ref = VectorEnv([lambda s=s: make_env("cheetah-run", s) for s in seeds])
    ref.reset(seeds)
    sh = ShardedVectorEnv("cheetah-run", seeds, workers=2)
    try:
        np.testing.assert_array_equal(sh.obs, ref.obs)
        rng = np.random.default_rng(0)
        for t in range(30):
            a = rng.uniform(-1, 1, (5, 6)).astype(np.float32)
            for x, y in zip(sh.step(a), ref.step(a)):
                np.testing.assert_array_equal(x, y)
        st = sh.get_state()  # an in-process env continues from a sharded state, and back
        ref2 = VectorEnv([lambda s=s: make_env("cheetah-run", s) for s in seeds])
        ref2.set_state(st)
        sh.set_state(ref.get_state())
        a = rng.uniform(-1, 1, (5, 6)).astype(np.float32)
        for x, y, z in zip(sh.step(a), ref.step(a), ref2.step(a)):
            np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(y, z)
    finally:
        sh.close()


def test_a_run_does_not_depend_on_the_worker_count(tmp_path, ppo_smoke_run):
    from conftest import PPO_SMOKE
    cli(*PPO_SMOKE, "--set", "env_workers=2", "--out", tmp_path / "b")  # the same run, envs in 2 workers
    strip = lambda p: [line.rsplit(",", 1)[0] for line in p.read_text().splitlines()]  # noqa: E731
    assert strip(ppo_smoke_run / "evals.csv") == strip(tmp_path / "b" / "evals.csv")
    # the workers' memory is the job's too: provenance counts it (each worker holds dm_control, > 50 MiB)
    memory = json.loads((tmp_path / "b" / "provenance.json").read_text())["memory"]
    assert memory["peak_rss_children_mib"] > 100


def test_sharded_fixed_initial_states_and_no_time_limit():
    """reset_mode fixed_initial and a removed time limit behave in worker processes as in-process."""
    seeds = [5, 6, 7]
    local = VectorEnv([lambda s=s: make_env("cartpole-balance", s) for s in seeds])
    local.reset(seeds)
    sharded = ShardedVectorEnv("cartpole-balance", seeds, 2)
    try:
        first = sharded.obs
        for venv in (local, sharded):
            venv.fix_initial_states()
        zero = np.zeros((3, 1), np.float32)
        for _ in range(1000):
            a, b = local.step(zero), sharded.step(zero)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
        assert a[3].all() and np.array_equal(b[0], first)  # truncated, back at the first states
        sharded.remove_time_limit()
        for _ in range(1001):
            assert not sharded.step(zero)[3].any()
    finally:
        sharded.close()


def test_a_closed_trainer_stops_its_env_workers_at_once(tmp_path):
    """OnPolicyTrainer.close() (a GoRL stage's end) stops the worker processes of its training and
    evaluation envs and drops the envs, even while the trainer itself is still held."""
    import torch

    from baselines.ppo import make_agent
    from gorl import registry
    from gorl.config import build_config
    from gorl.core.onpolicy import OnPolicyTrainer
    from gorl.core.run import Run
    algo = registry.get("ppo")
    cfg = build_config(algo.config_cls, algo.presets_file, "smoke", "cartpole-balance", {"env_workers": 2})
    run = Run(algo="ppo", task="cartpole-balance", seed=0, preset="smoke", dir=tmp_path, config={}, quiet=True)
    torch.manual_seed(0)
    trainer = OnPolicyTrainer(cfg, run, make_agent(cfg, *run.env_dims()))
    trainer.evaluate(0)  # builds the evaluation envs: workers of their own
    procs = [p for envs in (trainer.envs, trainer.eval_envs) for p in envs.host._procs]
    assert len(procs) == 4 and all(p.is_alive() for p in procs)
    trainer.close()
    assert trainer.envs is None and not any(p.is_alive() for p in procs)
