"""Running observation statistics (spec 2.2).

Two modes:
- ``legacy``: the reference code's update, which drops the previous variance sum, so the
  std shrinks like 1/sqrt(number of updates) [quirk, default for fidelity].
- ``welford``: the correct cumulative (parallel Welford) update.
"""
from __future__ import annotations

import torch

from gorl.core.onpolicy_config import OBS_NORM_MODES


class RunningNormalizer:
    MODES = OBS_NORM_MODES

    def __init__(self, dim: int, mode: str = "legacy"):
        if mode not in self.MODES:
            raise ValueError(f"obs_norm_mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        self.count = 0.0
        self.mean = torch.zeros(dim)
        self.var_sum = torch.zeros(dim)
        self.std = torch.ones(dim)

    def update(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, self.mean.shape[0]).to(torch.float32)
        n = x.shape[0]
        if n == 0:
            return
        count = self.count + n
        diff_old = x - self.mean
        mean = self.mean + diff_old.sum(0) / count
        batch_var_sum = (diff_old * (x - mean)).sum(0)
        if self.mode == "legacy":
            var_sum = batch_var_sum
        else:
            var_sum = self.var_sum + batch_var_sum
        self.count, self.mean, self.var_sum = count, mean, var_sum
        self.std = torch.sqrt(torch.clamp(var_sum / count, 1e-12, 1e12))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def state_dict(self) -> dict:
        return {"mode": self.mode, "count": self.count, "mean": self.mean.clone(),
                "var_sum": self.var_sum.clone(), "std": self.std.clone()}

    def load_state_dict(self, state: dict) -> None:
        """Load onto this normaliser's device (as ``nn.Module.load_state_dict`` copies into its
        parameters): checkpoints are read onto the CPU, a run may be on a GPU."""
        self.mode = state["mode"]
        self.count = float(state["count"])
        device = self.mean.device
        self.mean, self.var_sum, self.std = (state[k].to(device) for k in ("mean", "var_sum", "std"))

    def to(self, device) -> "RunningNormalizer":
        self.mean, self.var_sum, self.std = (t.to(device) for t in (self.mean, self.var_sum, self.std))
        return self
