"""``compile_update``: a training step through torch.compile, the one place that says how.

Two steps compile this way: the on-policy minibatch step (:class:`gorl.core.onpolicy.OnPolicyTrainer`)
and GoRL's decoder-fit step (:func:`gorl.algorithm.decoder.fit_decoder`). On CUDA the step runs as
CUDA graphs (PyTorch's cudagraph trees, what ``mode="reduce-overhead"`` sets), elsewhere in
inductor's default mode. Random ops run as eager ATen ones (inductor's ``fallback_random``), so a
compiled step draws the same numbers from torch's generators as the eager one.
"""
from __future__ import annotations

from typing import Callable

import torch


def adam_options(device: torch.device, compiled: bool) -> dict:
    """Keyword arguments of a step's ``torch.optim.Adam``. Eager: fused on CUDA (one kernel for all
    parameters), foreach on a CPU (a few list ops instead of ~10 ops per parameter; bit-equal to
    the default loop there). Compiled: foreach and capturable on every device (capturable: the
    step count a tensor on the parameters' device, which a CUDA graph needs; torch.compile does
    not trace the fused implementation and fuses foreach's ops itself), so a CPU compiles the
    optimizer code a GPU captures (capturable's device check is skipped while compiling)."""
    if compiled:
        return {"foreach": True, "capturable": True}
    return {"fused": True} if device.type == "cuda" else {"foreach": True}


def uses_cuda_graphs(device: torch.device, backend: str = "inductor") -> bool:
    """Whether :func:`compile_step` captures CUDA graphs: inductor on a CUDA device."""
    return backend == "inductor" and device.type == "cuda"


def compile_step(fn: Callable, device: torch.device, backend: str = "inductor") -> Callable:
    """``fn`` compiled (static shapes). Call :func:`step_begin` before each call: with CUDA graphs a
    call's outputs live in the graph's memory until the next call, so copy what is kept."""
    options = None
    if backend == "inductor":
        options = {"fallback_random": True}
        if uses_cuda_graphs(device, backend):
            options["triton.cudagraphs"] = True
    return torch.compile(fn, backend=backend, dynamic=False, options=options)


def step_begin(device: torch.device, backend: str = "inductor") -> None:
    """Mark a new step for the CUDA graphs (the previous call's outputs may be overwritten)."""
    if uses_cuda_graphs(device, backend):
        torch.compiler.cudagraph_mark_step_begin()


def describe(device: torch.device, backend: str = "inductor") -> str:
    """How a step compiles, for the run's log."""
    return "torch.compile" + (" with CUDA graphs" if uses_cuda_graphs(device, backend) else "")
