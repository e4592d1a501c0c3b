"""The one-step multimodality task family (gorl/envs/toy.py): registration, rewards, modes."""
import gymnasium as gym
import numpy as np
import pytest

from gorl.envs import make_env, toy


def test_every_member_is_registered_and_steps_once():
    assert len(toy.FAMILY) >= 7 and toy.ENV_ID in toy.FAMILY
    for env_id, spec in toy.FAMILY.items():
        assert env_id in gym.registry
        env = make_env(f"gym:{env_id}", 0)
        assert env.action_space.shape == (spec.action_dim,)
        obs, _ = env.reset(seed=0)
        best = np.full(spec.action_dim, toy.EXTRA_CENTER, np.float32)
        best[0] = spec.modes[int(np.argmax(spec.heights))]
        _, r, term, trunc, _ = env.step(best)
        assert term and not trunc
        assert r == pytest.approx(max(spec.heights), abs=0.02)  # the best action earns the higher mode's height


@pytest.mark.parametrize("env_id", list(toy.FAMILY))
def test_reward_has_two_peaks_in_a0_at_the_modes_and_one_in_the_extra_dims(env_id):
    spec = toy.FAMILY[env_id]
    a0 = np.linspace(-1, 1, 2001)
    rest = np.full((a0.size, spec.action_dim - 1), toy.EXTRA_CENTER)
    r = spec.reward(np.column_stack([a0, rest]))
    inner = (r[1:-1] > r[:-2]) & (r[1:-1] > r[2:])
    peaks = a0[1:-1][inner]
    assert peaks.size == 2
    np.testing.assert_allclose(np.sort(peaks), spec.modes, atol=0.02 if spec.widths[0] < 0.2 else 0.06)
    mid = np.mean(spec.modes)
    assert spec.reward(np.r_[mid, rest[0]]) < 0.5 * min(spec.heights)  # a valley between them
    np.testing.assert_allclose(sorted(r[1:-1][inner]), sorted(spec.heights), atol=0.02 if spec.widths[0] < 0.2 else 0.1)
    for j in range(1, spec.action_dim):  # extra dimensions: one peak at EXTRA_CENTER
        a = np.tile(np.r_[spec.modes[0], rest[0]], (201, 1))
        a[:, j] = np.linspace(-1, 1, 201)
        rj = spec.reward(a)
        assert a[np.argmax(rj), j] == pytest.approx(toy.EXTRA_CENTER, abs=0.011)
        assert np.all(np.diff(rj[a[:, j] <= toy.EXTRA_CENTER]) >= 0) and np.all(np.diff(rj[a[:, j] >= toy.EXTRA_CENTER]) <= 0)


def test_members_differ_as_named_and_the_original_is_unchanged():
    f = {k.split("/")[1].split("-")[0]: v for k, v in toy.FAMILY.items()}
    assert f["TwoModes"] == toy.Spec(modes=(-0.7, 0.7), widths=(0.15, 0.15), heights=(1.0, 1.0), action_dim=1)
    assert f["TwoModesAsym"].modes[0] + f["TwoModesAsym"].modes[1] != 0
    assert f["TwoModesNarrow"].widths[0] < 0.15 < f["TwoModesWide"].widths[0]
    assert f["TwoModesUnequal"].heights[0] != f["TwoModesUnequal"].heights[1]
    assert (f["TwoModes2D"].action_dim, f["TwoModes3D"].action_dim) == (2, 3)
    a = np.linspace(-1, 1, 101)
    np.testing.assert_allclose(toy.TwoModes.reward(a), toy.FAMILY[toy.ENV_ID].reward(a))  # old formula
    env = make_env("gym:GoRLBench/TwoModes3D-v0", 0)
    env.reset(seed=0)
    _, r_out, *_ = env.step(np.array([0.7, 3.0, 0.3], np.float32))  # clipped to [-1, 1]
    assert r_out == pytest.approx(toy.FAMILY["GoRLBench/TwoModes3D-v0"].reward([0.7, 1.0, 0.3]))
