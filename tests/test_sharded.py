"""dm_control envs sharded over worker processes (shared-memory buffers): same results as in-process."""
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


def test_a_run_does_not_depend_on_the_worker_count(tmp_path):
    common = ["train", "ppo", "cartpole-balance", "--preset", "smoke", "--quiet", "--steps", 3840]
    cli(*common, "--out", tmp_path / "a")
    cli(*common, "--set", "env_workers=2", "--out", tmp_path / "b")
    strip = lambda p: [line.rsplit(",", 1)[0] for line in p.read_text().splitlines()]  # noqa: E731
    assert strip(tmp_path / "a" / "evals.csv") == strip(tmp_path / "b" / "evals.csv")
