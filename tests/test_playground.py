"""`playground:` tasks: MuJoCo Playground's MJX ports as one batched JAX state (issue 14).

All on JAX's CPU backend with CartpoleBalance (no contacts: fast under MJX on a CPU). XLA
compiles each (task, batch size) once per machine (the persistent cache ~/.cache/gorl-bench/jax
makes later processes load it), so every env set here has the smoke preset's 8 envs.
"""
import numpy as np
import pytest
import torch

from conftest import cli, kill_after_iterations, strip_wall

jax = pytest.importorskip("jax", reason="the playground extra is not installed (pip install -e '.[playground]')")
pytest.importorskip("mujoco_playground", reason="the playground extra is not installed")

from gorl.envs import check_task, env_dims, make_envs  # noqa: E402
from gorl.envs.playground import PlaygroundEnvs, _compiled  # noqa: E402

TASK = "playground:CartpoleBalance"
N = 8
SEEDS = list(range(11, 11 + N))


@pytest.fixture(scope="module")
def envs():
    return PlaygroundEnvs(TASK, SEEDS)


def test_playground_steps_exactly_as_playground_itself(envs):
    """Same keys and actions through Playground's own env.step: identical obs, rewards, done."""
    env = _compiled("CartpoleBalance")[0]
    seeds = np.arange(21, 21 + N, dtype=np.uint32)
    obs = envs.reset(seeds)
    keys = jax.vmap(jax.random.PRNGKey)(jax.numpy.asarray(seeds))
    subs = jax.vmap(lambda k: jax.random.split(k)[1])(keys)
    ref = jax.jit(jax.vmap(env.reset))(subs)
    ref_step = jax.jit(jax.vmap(env.step))
    np.testing.assert_array_equal(obs.numpy(), np.asarray(ref.obs))
    rng = np.random.default_rng(0)
    for _ in range(30):
        a = rng.uniform(-1, 1, (N, envs.action_dim)).astype(np.float32)
        obs, reward, term, trunc, final_obs = envs.step(torch.from_numpy(a))
        ref = ref_step(ref, jax.numpy.asarray(a))
        np.testing.assert_allclose(obs.numpy(), np.asarray(ref.obs), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(reward.numpy(), np.asarray(ref.reward), rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(term.numpy(), np.asarray(ref.done) > 0)
        assert not trunc.any()
        np.testing.assert_array_equal(final_obs.numpy(), obs.numpy())


def test_time_limit_truncates_and_resets_on_device_like_the_dm_control_path(envs):
    """1000 steps: the last is a truncation (not a termination) for every env, final_obs is the
    true last observation, the obs to act on is a fresh reset, and the dm_control path (the
    suite's cartpole-balance) reports the same flags at the same steps."""
    dmc = make_envs("cartpole-balance", SEEDS)
    pg_obs = envs.reset(SEEDS)
    flags = {"pg": [], "dmc": []}
    zero = torch.zeros(N, envs.action_dim)
    for t in range(1001):
        prev = pg_obs
        pg_obs, _, te, tr, final = envs.step(zero)
        _, _, dte, dtr, _ = dmc.step(zero)
        flags["pg"].append((te.clone(), tr.clone()))
        flags["dmc"].append((dte.clone(), dtr.clone()))
        if t == 999:
            assert tr.all() and not te.any()
            assert not torch.equal(final, pg_obs)          # acted-on obs comes from a reset
            assert torch.allclose(final, prev, atol=0.2)  # true next obs continues the episode
            # a fresh start: the cart near the centre, the pole upright, small velocities
            assert pg_obs[:, 0].abs().max() <= 0.1 and (pg_obs[:, 1] > 0.99).all()
    for (a, b), (c, d) in zip(flags["pg"], flags["dmc"]):
        assert torch.equal(a, c) and torch.equal(b, d)
    ends = [t for t, (_, tr) in enumerate(flags["pg"]) if tr.any()]
    assert ends == [999]
    assert envs.physics_errors == 0


def test_fixed_initial_states_and_no_time_limit_on_device():
    """reset_mode fixed_initial (spec 2.3): at the time limit every env restores its own first
    state; with the time limit removed as well (GoRL's reference collector, spec 6.3) nothing
    truncates."""
    fixed = PlaygroundEnvs(TASK, SEEDS)
    first = fixed.obs.clone()
    fixed.fix_initial_states()
    zero = torch.zeros(N, fixed.action_dim)
    for t in range(1000):
        obs, _, te, tr, final = fixed.step(zero)
        assert not te.any() and bool(tr.all()) == (t == 999)
    assert torch.equal(obs, first) and not torch.equal(final, first)
    fixed.remove_time_limit()
    for _ in range(1001):
        _, _, te, tr, _ = fixed.step(zero)
        assert not (te | tr).any()


def test_tensors_cross_without_copies(envs):
    """DLPack: the torch view of a step's output is JAX's own buffer (same address)."""
    x = jax.numpy.arange(12.0).reshape(3, 4)
    t = envs._torch(x)
    assert t.data_ptr() == x.unsafe_buffer_pointer()
    a = torch.arange(8.0).reshape(4, 2)
    assert envs._jax(a).unsafe_buffer_pointer() == a.data_ptr()


def test_state_round_trip_continues_identically(envs):
    envs.reset([s + 100 for s in SEEDS])
    acts = [torch.rand(N, 1) * 2 - 1 for _ in range(10)]
    for a in acts[:5]:
        envs.step(a)
    st = envs.get_state()
    first = [envs.step(a)[0].clone() for a in acts[5:]]
    envs.set_state(st)
    again = [envs.step(a)[0].clone() for a in acts[5:]]
    for x, y in zip(first, again):
        assert torch.equal(x, y)


def test_task_names_and_dims():
    check_task(TASK)
    assert env_dims(TASK) == (5, 1)
    with pytest.raises(ValueError, match="playground:CartpoleBalanc"):
        check_task("playground:CartpoleBalanc")


# Default suite: GoRL (the route with the most env calls: decoder collection without a time
# limit, stages, the fit); PPO trains on Playground in test_resume_after_kill_matches_uninterrupted.
# FPO and DPPO differ from PPO only in the policy half, which never sees the env (the trainer
# speaks to every env set through one interface): their Playground runs are in `-m slow`.
@pytest.mark.parametrize("algo", [pytest.param("ppo", marks=pytest.mark.slow),
                                  pytest.param("fpo", marks=pytest.mark.slow),
                                  pytest.param("dppo", marks=pytest.mark.slow), "gorl_fm"])
def test_every_algorithm_trains_on_playground(tmp_path, algo):
    """PPO, FPO, DPPO and GoRL (decoder collection and fit included) through the same contract."""
    d = tmp_path / algo
    cli("train", algo, TASK, "--preset", "smoke", "--quiet", "--steps", 3840, "--out", d,
        "--set", f"eval_episodes={N}")
    assert "completed" in (d / "status.json").read_text()
    lines = (d / "evals.csv").read_text().splitlines()
    assert len(lines) >= 3 and all("nan" not in line for line in lines[1:])
    if algo == "gorl_fm":
        assert (d / "stages" / "stage1" / "decoder.pt").exists()


def test_resume_after_kill_matches_uninterrupted(tmp_path):
    """The JAX env state and keys are in the checkpoint: a kill -9 resume ends identically."""
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    args = ["train", "ppo", TASK, "--seed", 5, "--steps", 9600, "--preset", "smoke", "--quiet",
            "--set", f"eval_episodes={N}", "--set", "num_evals=3"]
    cli(*args, "--out", ref)
    kill_after_iterations(args, killed)
    out = cli(*args, "--out", killed)
    assert "resumed" in out.stdout
    assert strip_wall(killed / "evals.csv") == strip_wall(ref / "evals.csv")
