from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import through_checkpoint

import toy_envs  # noqa: F401  (registers Test/* envs)
from gorl.envs import PAPER_TASKS, VectorEnv, check_task, make_env


@pytest.mark.parametrize("task", PAPER_TASKS)
def test_paper_tasks_shapes_bounds(task):
    env = make_env(task, seed=0)
    obs, _ = env.reset(seed=3)
    assert obs.dtype == np.float32 and obs.shape == env.observation_space.shape
    assert env.action_space.low.min() == -1.0 and env.action_space.high.max() == 1.0
    assert env.max_episode_steps == 1000
    obs2, r, term, trunc, _ = env.step(np.ones(env.action_space.shape) * 5)  # clipped to [-1, 1]
    assert obs2.shape == obs.shape and np.isfinite(obs2).all() and 0.0 <= r <= 1.0


def test_expected_dims():
    dims = {t: (make_env(t).observation_space.shape[0], make_env(t).action_space.shape[0]) for t in PAPER_TASKS}
    assert dims == {"cheetah-run": (17, 6), "finger-spin": (9, 2), "finger-turn_hard": (12, 2),
                    "fish-swim": (24, 5), "hopper-stand": (15, 4), "walker-walk": (24, 6),
                    "humanoid-stand": (67, 21), "humanoid-run": (67, 21)}


def test_seeding_is_reproducible():
    a = make_env("finger-turn_hard").reset(seed=7)[0]
    b = make_env("finger-turn_hard").reset(seed=7)[0]
    c = make_env("finger-turn_hard").reset(seed=8)[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_time_limit_is_truncation_not_termination():
    env = make_env("cartpole-balance", seed=0)
    env.reset(seed=0)
    for t in range(1, 1001):
        _, _, term, trunc, _ = env.step(np.zeros(1))
        assert not term
        if t < 1000:
            assert not trunc
    assert trunc


def test_termination_is_reported_and_vector_env_keeps_final_obs():
    venv = VectorEnv([lambda: make_env("gym:Test/TerminatesAt-v0") for _ in range(2)])
    venv.reset([0, 1])
    for _ in range(4):
        obs, r, term, trunc, final = venv.step(np.zeros((2, 1)))
        assert not term.any()
    obs, r, term, trunc, final = venv.step(np.zeros((2, 1)))
    assert term.all() and not trunc.any()
    assert np.all(final == 5) and np.all(obs == 0)  # final_obs is the real next obs; obs is the reset one


def test_state_restore_is_exact():
    env = make_env("fish-swim", seed=2)
    env.reset(seed=2)
    for _ in range(10):
        env.step(np.full(5, 0.3))
    st = env.get_state()
    a = [env.step(np.full(5, -0.2))[0] for _ in range(20)]
    env.set_state(st)
    b = [env.step(np.full(5, -0.2))[0] for _ in range(20)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("task, workers", [("cartpole-balance", 0), ("cartpole-balance", 2),
                                           ("point_mass-hard", 0),
                                           ("gym:GoRLBench/TwoModes-v0", 0), ("gym:Pendulum-v1", 0),
                                           ("gym:Test/NaNAfter-v0", 0), ("gym:Hopper-v5", 0)])
def test_env_state_through_a_weights_only_checkpoint_continues_exactly(task, workers):
    """Every host backend's state (dm_control in process and sharded over workers, the toy
    bandit, a classic-control and a user's gym env) is tensors and plain data: it passes
    through torch.load(weights_only=True) and a new env set continues from it exactly, across
    episode ends (seeded auto-resets). The new set was reset with other seeds, as a resumed
    run's envs are in a later episode than their first: whatever an episode start randomises
    (point_mass-hard: the actuation directions, model.wrap_prm) comes from the state."""
    from gorl.envs import make_envs
    seeds = [3, 4]
    a = make_envs(task, seeds, workers=workers, imports=("toy_envs",))
    b = make_envs(task, [s + 100 for s in seeds], workers=workers, imports=("toy_envs",))
    try:
        g = torch.Generator().manual_seed(0)
        acts = [torch.rand(2, a.action_dim, generator=g) * 2 - 1 for _ in range(260)]
        for x in acts[:30]:
            a.step(x)
        st = through_checkpoint(a.get_state())
        first = [torch.cat([t.reshape(2, -1).float() for t in a.step(x)], 1) for x in acts[30:]]
        b.set_state(st)
        again = [torch.cat([t.reshape(2, -1).float() for t in b.step(x)], 1) for x in acts[30:]]
        assert all(torch.equal(x, y) for x, y in zip(first, again))
    finally:
        a.close()
        b.close()


def test_a_state_with_an_object_that_is_not_plain_data_is_named():
    from gorl import plaindata
    with pytest.raises(plaindata.NotPlain, match=r"state\['envs'\]\[0\]: .*Path"):
        plaindata.encode({"envs": [Path("x")]})


def test_gym_box_env_rescales_actions():
    env = make_env("gym:Pendulum-v1", seed=0)
    assert env.action_space.low[0] == -1 and env.observation_space.dtype == np.float32
    env.reset(seed=0)
    env.step(np.ones(1))


def test_bad_task_names_the_culprit():
    with pytest.raises(ValueError, match="cheetah-rnu"):
        check_task("cheetah-rnu")
    with pytest.raises(ValueError, match="NoSuchEnv"):
        check_task("gym:NoSuchEnv-v0")


def test_env_memory_is_small_and_physics_untouched():
    """The skybox texture is shrunk (2048 paper envs must fit in memory); trajectories are
    bit-identical to a dm_control process without the patch."""
    import subprocess
    import sys

    from gorl.envs import make_env
    env = make_env("cheetah-run", 0)
    assert env._physics.model.nbuffer < 2_000_000
    code = ("import sys, numpy as np\n"
            "if sys.argv[1] == 'ours':\n    import gorl.envs.dmc\n"
            "from dm_control import suite\n"
            "e = suite.load('cheetah', 'run', task_kwargs={'random': 0}); e.reset()\n"
            "rng = np.random.default_rng(0)\n"
            "for _ in range(200):\n    ts = e.step(rng.uniform(-1, 1, 6))\n"
            "print(repr(e.physics.data.qpos.tolist()))\n")
    out = [subprocess.run([sys.executable, "-c", code, k], capture_output=True, text=True, check=True).stdout
           for k in ("raw", "ours")]
    assert out[0] == out[1] and out[0]


def _run(tmp_path, task="cartpole-balance"):
    from gorl.core.run import Run
    return Run(algo="ppo", task=task, seed=0, preset="smoke", dir=tmp_path, config={})


def test_reset_mode_fixed_initial_restores_each_envs_first_state(tmp_path):
    """reset_mode fixed_initial (spec 2.3): after its time limit every env starts again from its
    own first state; with random resets (the default) it does not."""
    import torch
    run = _run(tmp_path)
    after = {}
    for fixed in (True, False):
        envs = run.make_envs(2, fixed_initial=fixed)
        first = envs.obs.clone()
        assert not torch.equal(first[0], first[1])  # each env its own state
        for _ in range(999):
            _, _, term, trunc, _ = envs.step(torch.zeros(2, envs.action_dim))
            assert not (term | trunc).any()
        obs, _, _, trunc, final = envs.step(torch.zeros(2, envs.action_dim))
        assert trunc.all() and not torch.equal(final, first)
        after[fixed] = (obs, first)
        if fixed:  # the full physics state too: the next step is the first episode's first step
            again, *_ = envs.step(torch.full((2, envs.action_dim), 0.5))
            fresh = run.make_envs(2)
            expect, *_ = fresh.step(torch.full((2, envs.action_dim), 0.5))
            assert torch.equal(again, expect)
    obs, first = after[True]
    assert torch.equal(obs, first)
    obs, first = after[False]
    assert not torch.equal(obs[0], first[0]) and not torch.equal(obs[1], first[1])


def test_removed_time_limit_never_truncates(tmp_path):
    import torch
    envs = _run(tmp_path).make_envs(1, fixed_initial=True, time_limit=False)
    for _ in range(1100):
        _, _, term, trunc, _ = envs.step(torch.zeros(1, envs.action_dim))
        assert not (term | trunc).any()
