"""Hand-computed checks of the PPO machinery."""
import math

import pytest
import torch

from gorl.core.advantages import brax_gae
from gorl.core.gaussian_policy import GaussianPolicy, clipped_surrogate
from gorl.core.networks import gaussian_entropy, gaussian_log_prob
from gorl.core.normalizer import RunningNormalizer
from gorl.core.onpolicy import eval_iterations


def col(*v):
    return torch.tensor(v, dtype=torch.float64).unsqueeze(1)


def test_gae_hand_computed():
    vs, adv = brax_gae(col(1, 2, 3), col(.5, .5, .5), torch.tensor([1.0], dtype=torch.float64),
                       col(1, 1, 1), col(0, 0, 0), gamma=0.9, lam=0.5)
    assert torch.allclose(vs.squeeze(1), torch.tensor([3.016, 3.98, 3.9], dtype=torch.float64))
    assert torch.allclose(adv.squeeze(1), torch.tensor([4.082, 5.01, 3.4], dtype=torch.float64))


def test_gae_truncated_row_is_masked():
    vs, adv = brax_gae(col(1, 2, 3), col(.5, .5, .5), torch.tensor([1.0], dtype=torch.float64),
                       col(1, 1, 1), col(0, 1, 0), gamma=0.9, lam=0.5)
    assert torch.allclose(vs.squeeze(1), torch.tensor([1.45, 0.5, 3.9], dtype=torch.float64))
    assert torch.allclose(adv.squeeze(1), torch.tensor([0.95, 0.0, 3.4], dtype=torch.float64))


def test_gae_termination_cuts_bootstrap():
    vs, adv = brax_gae(col(1.0), col(0.5), torch.tensor([10.0], dtype=torch.float64), col(0.0), col(0.0),
                       gamma=0.9, lam=0.5)
    assert torch.allclose(adv, col(0.5)) and torch.allclose(vs, col(1.0))


def reference_gae(rewards, values, bootstrap_value, discount, truncation, gamma, lam):
    """Brax's recursion step by step over T (the implementation before the vectorised scan)."""
    m = 1.0 - truncation
    g = gamma * discount
    values_next = torch.cat([values[1:], bootstrap_value.unsqueeze(0)], 0)
    deltas = m * (rewards + g * values_next - values)
    acc = torch.zeros_like(bootstrap_value)
    vs_minus_v = torch.empty_like(values)
    for t in range(rewards.shape[0] - 1, -1, -1):
        acc = deltas[t] + g[t] * lam * m[t] * acc
        vs_minus_v[t] = acc
    vs = values + vs_minus_v
    vs_next = torch.cat([vs[1:], bootstrap_value.unsqueeze(0)], 0)
    return vs, m * (rewards + g * vs_next - values)


@pytest.mark.parametrize("T", [1, 2, 3, 7, 8, 30, 33])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_vectorised_gae_matches_the_step_by_step_recursion(T, dtype):
    """The log2(T)-round scan equals the recursion up to float rounding (not bit-equal: the
    sums are added in another order), with terminations and truncations anywhere, including
    the last row and a row that is both."""
    g = torch.Generator().manual_seed(T)
    B = 97
    rewards, values = torch.randn(T, B, generator=g, dtype=dtype), torch.randn(T, B, generator=g, dtype=dtype)
    boot = torch.randn(B, generator=g, dtype=dtype)
    discount = (torch.rand(T, B, generator=g) > 0.15).to(dtype)
    truncation = (torch.rand(T, B, generator=g) < 0.15).to(dtype)
    discount[-1, :5], truncation[-1, 5:10], discount[0, 10:15], truncation[0, 10:15] = 0, 1, 0, 1
    got = brax_gae(rewards, values, boot, discount, truncation, gamma=0.97, lam=0.9)
    want = reference_gae(rewards, values, boot, discount, truncation, 0.97, 0.9)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    for a, b in zip(got, want):
        assert a.dtype == dtype and a.shape == (T, B)
        torch.testing.assert_close(a, b, **tol)


def test_clipped_surrogate_hand_computed():
    ratio = torch.tensor([1.2, 0.8, 1.2, 0.8])
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    # min(1.2, 1.1)=1.1; min(.8, .9)=.8; min(-1.2, -1.1)=-1.2; min(-.8, -.9)=-.9
    assert math.isclose(clipped_surrogate(ratio, adv, 0.1).item(), -(1.1 + 0.8 - 1.2 - 0.9) / 4, rel_tol=1e-6)


def test_ppo_policy_loss_hand_computed():
    torch.manual_seed(0)
    pol = GaussianPolicy(3, 2, [8], clip_eps=0.2, entropy_coef=0.01, entropy_tanh_correction=False)
    obs = torch.randn(4, 5, 3)
    mean, scale = pol.actor(obs)
    x = mean + scale * torch.randn_like(mean)
    logp_new = gaussian_log_prob(x, mean, scale)
    shift = torch.linspace(-0.5, 0.5, 20).reshape(4, 5)
    adv = torch.randn(4, 5)
    loss, info = pol.policy_loss(obs, {"x": x, "logp": logp_new.detach() + shift}, adv)
    ratio = torch.exp(-shift)
    expected = -torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv).mean() - 0.01 * gaussian_entropy(scale).mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    # and the log-density itself matches torch.distributions
    ref = torch.distributions.Normal(mean, scale).log_prob(x).sum(-1)
    assert torch.allclose(logp_new, ref, atol=1e-5)


def test_normalizer_modes():
    x = torch.randn(1000, 3) * 2 + 1
    w = RunningNormalizer(3, "welford")
    for chunk in x.split(100):
        w.update(chunk)
    assert torch.allclose(w.mean, x.mean(0), atol=1e-5)
    assert torch.allclose(w.std, x.std(0, unbiased=False), atol=1e-4)
    legacy = RunningNormalizer(3, "legacy")
    for chunk in x.split(100):
        legacy.update(chunk)
    # the reference's quirk: std shrinks like 1/sqrt(k) after k equal batches (spec 2.2)
    assert torch.allclose(legacy.std * math.sqrt(10), x.std(0, unbiased=False), rtol=0.15)


def test_eval_schedule_spans_the_run():
    assert eval_iterations(183, 31)[0] == 0 and eval_iterations(183, 31)[-1] == 183
    assert len(eval_iterations(183, 31)) == 31
    assert eval_iterations(5, 3) == [0, 2, 5] or eval_iterations(5, 3) == [0, 3, 5]


def test_reference_eval_schedule_matches_the_reference_iterations():
    """spec 1.4: baselines at {0, 5, 11, ..., 179} of 183 iterations; GoRL stages at
    int(linspace(0, n - 1, 10)); all before the update, none after the last one."""
    base = eval_iterations(183, 31, "reference")
    assert base == [0] + list(range(5, 180, 6)) and len(base) == 31
    assert eval_iterations(61, 10, "reference", staged=True) == [0, 6, 13, 20, 26, 33, 40, 46, 53, 60]
    assert eval_iterations(30, 10, "reference", staged=True) == [0, 3, 6, 9, 12, 16, 19, 22, 25, 29]
    for n, k in [(10, 3), (195, 16), (5, 2), (7, 31)]:
        for staged in (False, True):
            its = eval_iterations(n, k, "reference", staged)
            assert its[0] == 0 and its[-1] < n and its == sorted(set(its))
    # the default schedule does not depend on the GoRL flag
    assert eval_iterations(61, 10, staged=True) == eval_iterations(61, 10)
    # paper follows the release, paper-v1 the reference; small and smoke score the policy after the last update
    from gorl.config import build_config
    from gorl.registry import get
    for algo in ("ppo", "fpo", "dppo", "gorl_fm", "gorl_diffusion"):
        a = get(algo)
        for preset, want in (("paper", "release"), ("paper-v1", "reference"), ("small", "linspace_inclusive"),
                             ("smoke", "linspace_inclusive")):
            assert build_config(a.config_cls, a.presets_file, preset, "cheetah-run").eval_schedule == want


def test_a_vanishing_ratio_is_not_divergence():
    """Stored samples that became ~impossible under the new policy (ratio underflows to 0)
    give a finite loss and finite diagnostics, so the trainer does not call it divergence."""
    import torch

    from gorl.core.gaussian_policy import GaussianPolicy
    torch.manual_seed(0)
    pol = GaussianPolicy(3, 2, [8], clip_eps=0.1, entropy_coef=0.01, entropy_tanh_correction=False)
    obs = torch.randn(4, 5, 3)
    stored = {"x": torch.full((4, 5, 2), 50.0), "logp": torch.zeros(4, 5)}  # log-ratio ~ -1000s
    loss, info = pol.policy_loss(obs, stored, torch.randn(4, 5))
    assert torch.isfinite(loss) and all(torch.isfinite(torch.as_tensor(v)) for v in info.values())
