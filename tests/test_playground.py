"""`playground:` tasks: MuJoCo Playground's MJX ports as one batched JAX state (issue 14).

All on JAX's CPU backend with CartpoleBalance (no contacts: fast under MJX on a CPU). XLA
compiles each (task, batch size) once per machine (the persistent cache ~/.cache/gorl-bench/jax
makes later processes load it), so every env set here has the smoke preset's 8 envs.
"""
import json

import numpy as np
import pytest
import torch

from conftest import cli, cli_here, kill_after_iterations, strip_wall, through_checkpoint

jax = pytest.importorskip("jax", reason="the playground extra is not installed (pip install -e '.[playground]')")
pytest.importorskip("mujoco_playground", reason="the playground extra is not installed")

from gorl.envs import check_task, env_dims, make_envs  # noqa: E402
from gorl.envs.playground import PlaygroundEnvs, _compiled  # noqa: E402

TASK = "playground:CartpoleBalance"
N = 8
SEEDS = list(range(11, 11 + N))
BOUNDED = dict(action_semantics="bounded", latent_bounded=True)
"""GoRL's humanoid profile's act rule (spec 14): a bounded latent, the env action = the decoder's
output clipped to [-1, 1] (its other switches do not change how it acts)."""


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
    """The state passes through a checkpoint read with weights_only=True (every leaf a tensor)."""
    envs.reset([s + 100 for s in SEEDS])
    acts = [torch.rand(N, 1) * 2 - 1 for _ in range(10)]
    for a in acts[:5]:
        envs.step(a)
    st = through_checkpoint(envs.get_state())
    first = [envs.step(a)[0].clone() for a in acts[5:]]
    envs.set_state(st)
    again = [envs.step(a)[0].clone() for a in acts[5:]]
    for x, y in zip(first, again):
        assert torch.equal(x, y)


def test_task_names_and_dims():
    from gorl.envs import playground
    from gorl.envs.names import SUITE_NAMES

    assert set(SUITE_NAMES) <= set(playground.task_names())  # check_task accepts these without Playground
    check_task(TASK)
    assert env_dims(TASK) == (5, 1)
    # a task's sizes are read once per process: Playground's observation_size traces the env's
    # whole reset each time it is read, and every env set (train, eval, each collection) needs it
    traced = playground._sizes.cache_info().misses
    assert (PlaygroundEnvs(TASK, SEEDS).obs_dim, env_dims(TASK)[0]) == (5, 5)
    assert playground._sizes.cache_info().misses == traced
    with pytest.raises(ValueError, match=r"^unknown Playground task 'playground:CartpoleBalanc' "
                                         r"\(did you mean 'playground:CartpoleBalance'\?\);"):
        check_task("playground:CartpoleBalanc")


# Default suite: GoRL (the route with the most env calls: decoder collection without a time
# limit, stages, the fit); PPO trains on Playground in test_resume_after_kill_matches_uninterrupted.
# FPO and DPPO differ from PPO only in the policy half, which never sees the env (the trainer
# speaks to every env set through one interface): their Playground runs are in `-m slow`.
@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "fpo", "dppo", "gorl_fm", "gorl_diffusion", "gorl_fm-bounded"])
def test_every_algorithm_trains_on_playground(tmp_path, algo):
    """PPO, FPO, DPPO and GoRL (decoder collection and fit included; `-bounded`: the humanoid
    profile's act rule) through the same contract.
    Slow: in the default suite GoRL-FM's run is the reference run of
    test_scan_resume_after_kill_matches_uninterrupted (same checks), and every algorithm's
    rollout is held to the per-step path by test_scan_rollout_matches_the_per_step_path."""
    d = tmp_path / algo
    algo, _, bounded = algo.partition("-")
    stages = ["--set", "stage_steps=[1, 1]"] if algo.startswith("gorl") else []  # two stages fit 3840 steps
    switches = [arg for key, value in (BOUNDED if bounded else {}).items()
                for arg in ("--set", f"{key}={str(value).lower()}")]
    cli("train", algo, TASK, "--preset", "smoke", "--quiet", "--steps", 3840, "--out", d,
        "--set", f"eval_episodes={N}", *stages, *switches)
    assert "completed" in (d / "status.json").read_text()
    lines = (d / "evals.csv").read_text().splitlines()
    assert len(lines) >= 3 and all("nan" not in line for line in lines[1:])
    if algo.startswith("gorl"):
        assert (d / "stages" / "stage1" / "decoder.pt").exists()


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted(tmp_path):
    """The JAX env state and keys are in the checkpoint: a kill -9 resume ends identically.
    Slow: test_scan_resume_after_kill_matches_uninterrupted keeps the guarantee in the default
    suite (the same env state and keys in the checkpoint, through GoRL's stages as well)."""
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    args = ["train", "ppo", TASK, "--seed", 5, "--steps", 9600, "--preset", "smoke", "--quiet",
            "--set", f"eval_episodes={N}", "--set", "num_evals=3"]
    cli(*args, "--out", ref)
    kill_after_iterations(args, killed)
    out = cli(*args, "--out", killed)
    assert "resumed" in out.stdout
    assert strip_wall(killed / "evals.csv") == strip_wall(ref / "evals.csv")


# -- the rollout as one JAX program (issue 20) -------------------------------------------------
def _trainer(algo: str, rollout: str, tmp_path, **over):
    """A trainer of ``algo`` on TASK (smoke preset, N envs), built from torch seed 0."""

    from gorl import registry
    from gorl.config import build_config
    from gorl.core.onpolicy import OnPolicyTrainer
    from gorl.core.run import Run, resolve_device
    if algo.startswith("gorl"):
        over = {"stage_steps": [1, 1], **over}  # smoke's four stages do not fit this budget
    spec = registry.get(algo)
    cfg = build_config(spec.config_cls, spec.presets_file, "smoke", TASK, dict(rollout=rollout, **over))
    run = Run(algo=algo, task=TASK, seed=0, preset="smoke", dir=tmp_path / f"{algo}-{rollout}", config={},
              quiet=True, device=resolve_device(cfg.device))
    run.dir.mkdir(parents=True)
    torch.manual_seed(0)
    obs_dim, act_dim = run.env_dims()
    if algo.startswith("gorl"):  # the encoder through a trained-looking (random, not identity) decoder
        from gorl.algorithm.gorl import make_decoder, make_encoder
        decoder = make_decoder(cfg, obs_dim, act_dim).to(run.device)
        decoder.obs_mean.normal_()
        agent = make_encoder(cfg, 1, obs_dim, act_dim, decoder)
        return OnPolicyTrainer(cfg.stage_config(1), run, agent)
    agent = spec.make_agent(cfg, obs_dim, act_dim)
    return OnPolicyTrainer(cfg, run, agent)


@pytest.mark.parametrize("algo, switches", [
    ("ppo", {}), ("gorl_fm", {}), pytest.param("gorl_fm", BOUNDED, id="gorl_fm-bounded"),
    *(pytest.param(a, {}, marks=pytest.mark.slow) for a in ("fpo", "dppo", "gorl_diffusion")),
    pytest.param("gorl_diffusion", BOUNDED, marks=pytest.mark.slow, id="gorl_diffusion-bounded")])
def test_scan_rollout_matches_the_per_step_path(algo, switches, tmp_path):
    """Same weights, env state and torch seed: the scan rollout (one JAX program) and the
    per-step path give the same observations, actions (stored samples), log-probs, rewards and
    flags over 1050 steps per env (a time-limit reset inside). XLA and torch sum a matmul in
    different orders (1e-7 apart) and the dynamics amplify that (to ~1e-2 by step 500): equal to
    1e-4 over the first 200 steps and again after the reset at step 1000 (the same per-env keys
    give the same fresh states), identical flags throughout. With GoRL's bounded actions the
    decoder (random weights) outputs actions outside [-1, 1], which the env receives clipped."""
    over = dict(num_minibatches=35, batch_size=N, **switches)  # 35 x 8 x 30 / 8 = 1050 steps per env
    step, scan = _trainer(algo, "step", tmp_path, **over), _trainer(algo, "scan", tmp_path, **over)
    assert step._scan is None and scan._scan is not None
    assert scan._scan.env_action == ("clip" if switches else "tanh")
    scan.agent.load_state_dict(step.agent.state_dict())
    scan.critic.load_state_dict(step.critic.state_dict())
    step.normalizer.update(torch.randn(64, 5) * 2 + 1)
    scan.normalizer.load_state_dict(step.normalizer.state_dict())
    torch.manual_seed(10)
    a = step.collect()
    torch.manual_seed(10)
    b = scan.collect()
    pairs = [(k, a[k], b[k]) for k in ("obs", "next_obs", "reward")] + \
        [(k, a["stored"][k], b["stored"][k]) for k in a["stored"]]
    assert set(a["stored"]) == set(b["stored"])
    for k, x, y in pairs:
        assert torch.isfinite(y).all(), k
        torch.testing.assert_close(y[:200], x[:200], rtol=1e-4, atol=1e-4, msg=k)
        if k != "next_obs":  # next_obs[999] is the last one of the old episode
            torch.testing.assert_close(y[1000:], x[1000:], rtol=1e-4, atol=1e-4, msg=k)
    for k in ("discount", "truncation"):
        assert torch.equal(a[k], b[k]), k
    assert a["truncation"].sum() == N and a["truncation"][999].all()  # the time limit
    if switches:  # the clip mattered: the decoded actions leave [-1, 1]
        decoded = scan.agent.decode(b["obs"][:200].reshape(-1, 5), b["stored"]["x"][:200].reshape(-1, 1))
        assert decoded.abs().max() > 1.0
    np.testing.assert_allclose(b["train_return"], a["train_return"], rtol=1e-3)
    torch.testing.assert_close(scan._episode_return, step._episode_return, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(scan.envs.obs, step.envs.obs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("identity", [False, "zero_network", "exact"])
@pytest.mark.parametrize("kind, form", [("fm", "v1"), ("diffusion", "v1"), ("diffusion", "release")])
def test_every_decoder_translates_to_what_it_decodes(kind, form, identity):
    """The scan's JAX decoder (jax_rollout.decoder_fn) gives what ``Decoder.forward`` gives, for
    every decoder GoRL builds: FM, v1 DDIM and the release's epsilon-delta DDIM (the default of
    `gorl_diffusion`), fitted (random weights) or stage 0's identity (v1's zero network, whose
    DDIM chain scales z, or the exact map z -> z)."""
    from gorl.algorithm.decoder import Decoder
    from gorl.core import jax_rollout
    torch.manual_seed(0)
    dec = Decoder(kind, 5, 2, [16, 16], 10, identity=identity, output_scale=0.25, diffusion_form=form)
    if not identity:
        for p in dec.parameters():
            p.data.normal_(0.0, 0.3)
    P = jax_rollout.Params()
    g = jax_rollout.decoder_fn(dec.forward, P)
    obs, z = torch.randn(6, 5) * 2, torch.randn(6, 2)
    got = np.asarray(g([jax.numpy.asarray(t.numpy()) for t in P.tensors], jax.numpy.asarray(obs.numpy()),
                       jax.numpy.asarray(z.numpy())))
    want = dec(obs, z).numpy()
    assert identity or not np.allclose(want, z.numpy(), atol=1e-2)  # a decoder that does something
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind, form", [("fm", "v1"), ("diffusion", "release")])
def test_a_bounded_latent_translates_to_the_decoder_of_its_tanh(kind, form):
    """GoRL's bounded latent (``latent_bounded``): the encoder's decode is
    ``Decoder.forward_bounded_latent``, whose JAX translation decodes tanh of the sample."""
    from gorl.algorithm.decoder import Decoder
    from gorl.core import jax_rollout
    torch.manual_seed(0)
    dec = Decoder(kind, 5, 2, [16, 16], 10, output_scale=0.25, diffusion_form=form)
    for p in dec.parameters():
        p.data.normal_(0.0, 0.3)
    P = jax_rollout.Params()
    g = jax_rollout.decoder_fn(dec.forward_bounded_latent, P)
    obs, x = torch.randn(6, 5) * 2, torch.randn(6, 2) * 3
    got = np.asarray(g([jax.numpy.asarray(t.numpy()) for t in P.tensors], jax.numpy.asarray(obs.numpy()),
                       jax.numpy.asarray(x.numpy())))
    want = dec(obs, torch.tanh(x)).numpy()
    assert not np.allclose(want, dec(obs, x).numpy(), atol=1e-2)  # the tanh changes what it decodes
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_agents_of_one_structure_share_one_scan_program_and_each_acts_with_its_own_weights(tmp_path):
    """A GoRL stage's new encoder (new weights, a new act function) over a decoder of the same
    structure finds the compiled scan of the stage before; another structure (PPO's policy, or
    stage 0's encoder over the identity decoder) gets its own. The shared program acts with the new agent's weights: a
    second agent's rollout through the first one's program equals its rollout through a program
    of its own (compiled afresh), bit for bit."""
    from gorl.envs import playground
    from gorl.core import jax_rollout

    def rollout(trainer):
        torch.manual_seed(10)
        return jax_rollout.collect(trainer, trainer._scan)

    saved = dict(playground._SCANS)  # the programs other tests made stay for them
    playground._SCANS.clear()
    try:
        first, second = (_trainer("gorl_fm", "scan", tmp_path / str(i)) for i in range(2))
        for p in second.agent.parameters():  # other weights, same structure
            p.data.normal_()
        rollout(first)
        assert len(playground._SCANS) == 1
        shared = rollout(second)
        assert len(playground._SCANS) == 1  # found, not compiled again
        playground._SCANS.clear()
        third = _trainer("gorl_fm", "scan", tmp_path / "2")
        third.agent.load_state_dict(second.agent.state_dict())
        own = rollout(third)  # the same weights and env seeds through a program of its own
        assert len(playground._SCANS) == 1
        for k in ("obs", "reward", "discount"):
            assert torch.equal(shared[k], own[k]), k
        for k in shared["stored"]:
            assert torch.equal(shared["stored"][k], own["stored"][k]), k
        assert not torch.equal(shared["stored"]["x"], rollout(first)["stored"]["x"])  # it used its own weights
        rollout(_trainer("ppo", "scan", tmp_path / "ppo"))  # no decoder: another program
        assert len(playground._SCANS) == 2
    finally:
        playground._SCANS.clear()
        playground._SCANS.update(saved)


def test_episode_sums_match_the_per_step_loop():
    from gorl.core.jax_rollout import episode_sums
    g = torch.Generator().manual_seed(0)
    reward, done = torch.rand(50, 6, generator=g), torch.rand(50, 6, generator=g) < 0.1
    done[:, 0] = False
    ep = torch.rand(6, generator=g, dtype=torch.float64)
    loop, s, n = ep.clone(), 0.0, 0
    for r, d in zip(reward, done):
        loop += r
        s += float(torch.where(d, loop, 0.0).sum())
        n += int(d.sum())
        loop.masked_fill_(d, 0.0)
    total, count = episode_sums(reward, done, ep)
    assert int(count) == n
    np.testing.assert_allclose(float(total), s, rtol=1e-12)
    torch.testing.assert_close(ep, loop)


def test_rollout_key_is_checked_and_plugins_fall_back(tmp_path):
    from gorl.errors import ConfigError
    with pytest.raises(ConfigError, match="rollout"):
        _trainer("ppo", "fast", tmp_path)
    from gorl.core.gaussian_policy import GaussianPolicy
    from gorl.core.jax_rollout import select

    class Plugin(GaussianPolicy):
        pass
    notes = []
    agent = Plugin(5, 1, [8], clip_eps=0.1, entropy_coef=0.0, entropy_tanh_correction=False)
    envs = PlaygroundEnvs(TASK, SEEDS)
    assert select("auto", envs, agent, notes.append) is None and len(notes) == 1 and "Plugin" in notes[0]
    with pytest.raises(ValueError, match="rollout=scan"):
        select("scan", envs, agent, notes.append)
    with pytest.raises(ValueError, match="rollout=scan needs a playground"):
        select("scan", make_envs("cartpole-balance", SEEDS), agent, notes.append)


def test_scan_resume_after_kill_matches_uninterrupted(tmp_path):
    """The scan rollout draws torch's noise as the per-step path does: kill -9 resume is exact."""
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    args = ["train", "gorl_fm", TASK, "--seed", 3, "--steps", 7680, "--preset", "smoke", "--quiet",
            "--set", f"eval_episodes={N}", "--set", "num_evals=2", "--set", "rollout=scan",
            "--set", "stage_steps=[1, 1]"]  # two stages of two iterations: the kill lands in the stage machinery
    cli_here(*args, "--out", ref)  # the reference in this process; the killed run and its resume in fresh ones
    # the reference run is also the default suite's "GoRL trains on playground" check
    assert "completed" in (ref / "status.json").read_text()
    lines = (ref / "evals.csv").read_text().splitlines()
    assert len(lines) >= 3 and all("nan" not in line for line in lines[1:])
    assert (ref / "stages" / "stage1" / "decoder.pt").exists()
    assert json.loads((ref / "provenance.json").read_text())["rollout"] == {"setting": "scan", "used": "scan"}
    kill_after_iterations(args, killed)
    out = cli(*args, "--out", killed)
    assert "resumed" in out.stdout
    assert strip_wall(killed / "evals.csv") == strip_wall(ref / "evals.csv")


# -- CUDA correctness, the parts a CPU can check (issue 20) ----------------------------------------
def test_jax_device_matches_torch_device_or_fails_clearly():
    from types import SimpleNamespace

    from gorl.envs.playground import jax_device_for
    cpu = SimpleNamespace(id=0, platform="cpu")
    gpus = [SimpleNamespace(id=i, local_hardware_id=i, platform="gpu") for i in range(2)]

    def devices(backend):
        return {"cpu": [cpu], "cuda": gpus}[backend]
    assert jax_device_for(torch.device("cpu"), devices) is cpu
    assert jax_device_for(torch.device("cuda", 1), devices) is gpus[1]
    assert jax_device_for(torch.device("cuda"), devices) is gpus[0]
    with pytest.raises(ValueError, match="device=cuda:2"):
        jax_device_for(torch.device("cuda", 2), devices)

    def cpu_only(backend):
        if backend != "cpu":
            raise RuntimeError("Unknown backend cuda")
        return [cpu]
    with pytest.raises(ValueError, match="JAX has no CUDA device 0"):
        jax_device_for(torch.device("cuda", 0), cpu_only)
    assert jax_device_for(torch.device("cpu"), jax.devices) is jax.devices("cpu")[0]


@pytest.mark.parametrize("switches", [{}, pytest.param(BOUNDED, id="bounded")])
def test_decoder_data_collection_through_the_scan_matches_the_per_step_path(switches, tmp_path):
    """GoRL's collector (spec 6.3, 'reference': fixed first states, no time limit) gives the same
    rows through the scan as step by step (to 1e-4 over the first 200 steps; see above); with
    bounded actions the targets are the env actions (the decoded actions clipped to [-1, 1])."""
    from gorl.algorithm.gorl import collect_decoder_data
    rows = {}
    # v1's collector (no episode ids: split by transition), on smoke's release settings otherwise
    over = dict(collect_envs=N, collect_steps=300 * N, collect_episodes=None, decoder_collection="reference",
                decoder_split="transition", **switches)
    for rollout in ("step", "scan"):
        t = _trainer("gorl_fm", rollout, tmp_path, **over)
        from gorl import registry
        from gorl.config import build_config
        spec = registry.get("gorl_fm")
        cfg = build_config(spec.config_cls, spec.presets_file, "smoke", TASK,
                           dict(rollout=rollout, stage_steps=[1, 1], **over))
        t.normalizer.update(torch.randn(64, 5) * 2 + 1)
        rows[rollout] = collect_decoder_data(cfg, t.run, 1, t.agent, t.normalizer)
    (o1, a1, s1), (o2, a2, s2) = rows["step"], rows["scan"]
    assert o1.shape == o2.shape == (300 * N, 5) and a1.shape == a2.shape == (300 * N, 1)
    np.testing.assert_allclose(o2[:200 * N], o1[:200 * N], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(a2[:200 * N], a1[:200 * N], rtol=1e-4, atol=1e-4)
    assert s1["episodes_finished"] == s2["episodes_finished"] and s1["rows"] == s2["rows"]
    if switches:  # clipped targets, some at the bounds
        assert np.abs(a2).max() == 1.0 and (np.abs(a2) == 1.0).any()


@pytest.mark.parametrize("switches, episodes", [({}, 3), pytest.param(BOUNDED, 2, id="bounded")])
def test_release_collection_through_the_scan_matches_the_per_step_loop(switches, episodes, tmp_path):
    """The release's decoder data (complete episodes from fresh resets, `collect_envs` at a time,
    the last batch with an env that is not recorded) through one scan per batch: the rows of every
    episode (to 1e-4 over each episode's first 200 steps; see above), its ids, lengths and the
    number of env steps as step by step, and torch's generator left where the loop leaves it; the
    summary times each batch. Bounded (one batch): the targets are the clipped env actions, the latents tanh of the samples."""
    from gorl import registry
    from gorl.algorithm.gorl import collect_release_data
    from gorl.config import build_config
    out = {}
    for rollout in ("step", "scan"):
        counts = dict(collect_envs=2, collect_episodes=episodes, **switches)
        t = _trainer("gorl_fm", rollout, tmp_path, **counts)
        spec = registry.get("gorl_fm")
        cfg = build_config(spec.config_cls, spec.presets_file, "smoke", TASK,
                           dict(rollout=rollout, stage_steps=[1, 1], **counts))
        t.normalizer.update(torch.randn(64, 5) * 2 + 1)
        data = collect_release_data(cfg, t.run, 1, t.agent, t.normalizer)
        out[rollout] = data, torch.randn(3)  # the next draws: where the generator was left
    (a, next_a), (b, next_b) = out["step"], out["scan"]
    assert torch.equal(next_a, next_b)
    np.testing.assert_array_equal(a["episode"], b["episode"])
    assert a["obs"].shape == b["obs"].shape == (1000 * episodes, 5)
    for ep in range(episodes):
        rows = slice(1000 * ep, 1000 * ep + 200)
        for key in ("obs", "action", "latent"):
            np.testing.assert_allclose(b[key][rows], a[key][rows], rtol=1e-4, atol=1e-4, err_msg=key)
    for key in ("rows", "env_steps", "episodes_finished", "episode_length_mean"):
        assert a["summary"][key] == b["summary"][key], key
    for summary in (a["summary"], b["summary"]):  # each batch's seconds (the gorl GPU part projects from them)
        assert len(summary["batch_s"]) == -(-episodes // 2) and min(summary["batch_s"]) > 0
    if switches:
        assert np.abs(b["action"]).max() == 1.0 and np.abs(b["latent"]).max() < 1.0


@pytest.mark.parametrize("chunk", [1000, 300])
def test_teacher_data_through_the_scan_match_the_per_step_loop(chunk, tmp_path, monkeypatch):
    """GoRL's teacher data (spec 14: `teacher_episodes` whole episodes of the teacher, the
    targets clipped env actions) through scans of `chunk` steps give the rows, episode ids and
    summary of the per-step loop, and leave torch's generator where it leaves it: the first 3
    episodes of 8 envs end at step 1000, inside the fourth 300-step scan, whose extra draws are
    given back (or at the end of the first 1000-step scan, the default length).
    (The return statistics to 0.1: the dynamics amplify float rounding, see above.)"""
    compare_teacher_data(chunk, tmp_path, monkeypatch)


def compare_teacher_data(chunk: int, tmp_path, monkeypatch, device: str = "cpu"):
    """The check above on ``device`` (tests/test_cuda.py: on CUDA, CUDA's generator)."""
    from gorl import registry
    from gorl.algorithm import teacher as tp
    from gorl.config import build_config
    from gorl.core.gaussian_policy import GaussianPolicy
    from gorl.core.normalizer import RunningNormalizer
    from gorl.core.run import Run
    from gorl.provenance import set_matmul_precision
    default = tp.teacher_rows_through_the_scan
    monkeypatch.setattr(tp, "teacher_rows_through_the_scan", lambda *a: default(*a[:4], chunk, a[5]))
    dev = torch.device(device)
    set_matmul_precision("fp32", dev)
    out = {}
    for rollout in ("step", "scan"):
        over = dict(rollout=rollout, stage_steps=[1, 1], teacher="ppo_teacher", teacher_episodes=3,
                    collect_envs=N, **BOUNDED)
        spec = registry.get("gorl_fm")
        cfg = build_config(spec.config_cls, spec.presets_file, "smoke", TASK, over)
        run = Run(algo="gorl_fm", task=TASK, seed=0, preset="smoke", dir=tmp_path / rollout, config={}, quiet=True,
                  device=dev)
        torch.manual_seed(3)
        agent = GaussianPolicy(5, 1, [8], clip_eps=0.3, entropy_coef=0.0, entropy_tanh_correction=True).to(dev)
        norm = RunningNormalizer(5, "welford").to(dev)
        norm.update(torch.randn(64, 5, device=dev) * 2 + 1)
        teacher = {"agent": agent, "normalizer": norm, "dir": "t", "env_steps": 7}
        out[rollout] = tp.collect_teacher_data(cfg, run, teacher), torch.randn(3, device=dev)
    ((o1, a1, e1, s1), next1), ((o2, a2, e2, s2), next2) = out["step"], out["scan"]
    assert torch.equal(next1, next2)
    np.testing.assert_array_equal(e1, e2)
    assert o1.shape == o2.shape == (3000, 5) and s1 == s2 | {k: s1[k] for k in s1 if k.startswith("episode_return")}
    np.testing.assert_allclose([s2[k] for k in s2 if k.startswith("episode_return")],
                               [s1[k] for k in s1 if k.startswith("episode_return")], rtol=1e-3, atol=0.1)
    assert np.abs(a2).max() <= 1.0 and s1["env_steps"] == 1000 * N
    for ep in range(3):
        rows = slice(1000 * ep, 1000 * ep + 200)
        np.testing.assert_allclose(o2[rows], o1[rows], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(a2[rows], a1[rows], rtol=1e-4, atol=1e-4)


def test_a_release_batch_that_ends_early_leaves_the_generator_as_the_loop_does(envs):
    """Where every episode of a batch has ended before the scan's last check (here: no env is
    recorded, so the loop stops at its first check), the scan has drawn more noise than the loop:
    torch's generator is set back and advanced by the loop's steps."""
    from gorl.algorithm.gorl import _release_batch_through_the_scan
    from gorl.core import jax_rollout
    from gorl.core.gaussian_policy import GaussianPolicy
    from gorl.core.normalizer import RunningNormalizer
    agent = GaussianPolicy(5, 1, [8], clip_eps=0.2, entropy_coef=0.0, entropy_tanh_correction=True)
    prog = jax_rollout.program(agent)
    envs.reset(SEEDS)
    torch.manual_seed(4)
    rows, ret, n = _release_batch_through_the_scan(envs, prog, RunningNormalizer(5), torch.zeros(N, dtype=torch.bool),
                                                   50, False, False)
    after = torch.randn(3)
    torch.manual_seed(4)
    jax_rollout.draw_noises(prog, 50, N, torch.device("cpu"))
    assert n == 50 and not rows["active"].any() and torch.equal(ret, torch.zeros(N, dtype=torch.float64))
    assert rows["obs"].shape == (N, 50, 5) and torch.equal(after, torch.randn(3))


@pytest.mark.parametrize("algo, eval_mode", [("ppo", None), ("fpo", "stochastic"), ("dppo", "zero_noise"),
                                             *(pytest.param(*case, marks=pytest.mark.slow)
                                               for case in (("gorl_fm", None), ("dppo", "stochastic"),
                                                            ("gorl_fm-bounded", None)))])
def test_evaluation_through_the_scan_matches_the_per_step_path(algo, eval_mode, tmp_path):
    """An evaluation's 1000-step episodes as one scan give what the per-step loop gives, acting
    stochastically (act) and deterministically (act_eval: the mean for PPO and GoRL's encoder;
    FPO's and DPPO's sampler from x_1 = 0 without noise (zero_noise) or from act's own draws
    (stochastic)): the same returns (rtol 1e-3, as the training return above), the same probe
    pool (every 50th observation of env 0: to 1e-4 over the first 200 steps, see above) and the
    same number of torch draws. Slow cases, whose parts the default ones keep: GoRL's encoder
    (PPO's zero-noise act_eval; the decoder's translation is checked by the rollout test above)
    and DPPO's stochastic act_eval (FPO's draws plus DPPO's per-step noise, which its stochastic
    evaluation here draws), and GoRL's encoder with bounded actions (the humanoid profile's act)."""
    algo, _, bounded = algo.partition("-")
    compare_evaluations(algo, eval_mode, tmp_path, **(BOUNDED if bounded else {}))


def compare_evaluations(algo: str, eval_mode: str | None, tmp_path, **over):
    """The check above on trainers built with ``over`` (tests/test_cuda.py: on CUDA)."""
    from gorl.core import jax_rollout
    if eval_mode is not None:
        over["eval_mode"] = eval_mode
    step, scan = (_trainer(algo, r, tmp_path, eval_episodes=N, **over) for r in ("step", "scan"))
    cuda = scan.device.type == "cuda"

    def rng():  # the generators the draws come from (CUDA's on CUDA; the CPU's is checked as well)
        return [torch.get_rng_state(), *([torch.cuda.get_rng_state(scan.device)] if cuda else [])]
    assert scan._scan.eval_noise == ("drawn" if eval_mode == "stochastic" else "zero")
    scan.agent.load_state_dict(step.agent.state_dict())
    step.normalizer.update(torch.randn(64, 5, device=step.device) * 2 + 1)
    scan.normalizer.load_state_dict(step.normalizer.state_dict())
    for deterministic in (True, False):
        assert jax_rollout.evaluates(scan._scan, scan.eval_envs, deterministic)
        out = []
        for t in (step, scan):
            torch.manual_seed(10)
            seen = []
            returns = t._episodes(2, deterministic, seen)
            out.append((returns, seen, rng()))
        (r1, seen1, rng1), (r2, seen2, rng2) = out
        assert r1.shape == r2.shape == (N,) and np.isfinite(r2).all()
        np.testing.assert_allclose(r2, r1, rtol=1e-3, err_msg=f"deterministic={deterministic}")
        assert len(seen1) == len(seen2) == 20
        torch.testing.assert_close(torch.stack(seen2[:4]), torch.stack(seen1[:4]), rtol=1e-4, atol=1e-4)
        assert all(torch.equal(a, b) for a, b in zip(rng1, rng2))
        if deterministic and scan._scan.eval_noise == "zero":  # act_eval draws nothing
            torch.manual_seed(10)
            assert all(torch.equal(a, b) for a, b in zip(rng2, rng()))
