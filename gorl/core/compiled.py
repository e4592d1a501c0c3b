"""``compile_update`` and ``cuda_graph``: a training step through torch.compile and CUDA graphs, the
one place that says how.

Two steps compile this way: the on-policy minibatch step (:class:`gorl.core.onpolicy.OnPolicyTrainer`)
and GoRL's decoder-fit step (:func:`gorl.algorithm.decoder.fit_decoder`). On CUDA the step runs as
CUDA graphs (PyTorch's cudagraph trees, what ``mode="reduce-overhead"`` sets), elsewhere in
inductor's default mode. Random ops run as eager ATen ones (inductor's ``fallback_random``), so a
compiled step draws the same numbers from torch's generators as the eager one.

:class:`Captured` is the other way to run CUDA graphs (``cuda_graph: epoch``): a whole loop of steps
(an epoch's minibatches of the update; a run of decoder-fit steps between two validations) captured
once as one graph and replayed, so that the host launches one graph where it launched the steps'
kernels or graphs one by one.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.utils._pytree as pytree


def adam_options(device: torch.device, compiled: bool, captured: bool = False) -> dict:
    """Keyword arguments of a step's ``torch.optim.Adam``. Eager: fused on CUDA (one kernel for all
    parameters), foreach on a CPU (a few list ops instead of ~10 ops per parameter; bit-equal to
    the default loop there). Compiled: foreach and capturable on every device (capturable: the
    step count a tensor on the parameters' device, which a CUDA graph needs; torch.compile does
    not trace the fused implementation and fuses foreach's ops itself), so a CPU compiles the
    optimizer code a GPU captures (capturable's device check is skipped while compiling).
    ``captured`` (a :class:`Captured` loop) and eager: fused and capturable on CUDA."""
    if compiled:
        return {"foreach": True, "capturable": True}
    if device.type != "cuda":
        return {"foreach": True}
    return {"fused": True, "capturable": True} if captured else {"fused": True}


def uses_cuda_graphs(device: torch.device, backend: str = "inductor") -> bool:
    """Whether :func:`compile_step` captures CUDA graphs: inductor on a CUDA device."""
    return backend == "inductor" and device.type == "cuda"


def compile_step(fn: Callable, device: torch.device, backend: str = "inductor", graphs: bool = True) -> Callable:
    """``fn`` compiled (static shapes). Call :func:`step_begin` before each call: with CUDA graphs a
    call's outputs live in the graph's memory until the next call, so copy what is kept.
    ``graphs=False``: no CUDA graphs of its own (a :class:`Captured` loop captures its kernels).

    Every trainer and decoder fit compiles its own step: its parameters and optimizer are new
    objects, which dynamo's guards match by identity. Dynamo keeps counting the cache entries of
    freed ones against ``recompile_limit`` (8 per code object, and ``Adam.step``'s is shared by every
    optimizer of the process), so the ninth compiled step of a process would silently run eager
    (and on a CPU fail in capturable Adam). The limit is raised to the accumulated one (256 per code
    object), which stays the cap; within a trainer a step compiles once (the tests check it)."""
    import torch._dynamo  # here, not at the top: ~2.5 s of every process's start on a CPU, which
    # only a compiled step needs (torch.compile imports it itself)

    dynamo = torch._dynamo.config
    dynamo.recompile_limit = max(dynamo.recompile_limit, dynamo.accumulated_recompile_limit)
    options = None
    if backend == "inductor":
        options = {"fallback_random": True}
        if graphs and uses_cuda_graphs(device, backend):
            options["triton.cudagraphs"] = True
    return torch.compile(fn, backend=backend, dynamic=False, options=options)


def step_begin(device: torch.device, backend: str = "inductor") -> None:
    """Mark a new step for the CUDA graphs (the previous call's outputs may be overwritten)."""
    if uses_cuda_graphs(device, backend):
        torch.compiler.cudagraph_mark_step_begin()


def describe(device: torch.device, backend: str = "inductor", graphs: bool = True) -> str:
    """How a step compiles (``graphs`` as :func:`compile_step`'s), for the run's log."""
    return "torch.compile" + (" with CUDA graphs" if graphs and uses_cuda_graphs(device, backend) else "")


def static_copy(tree):
    """A :class:`Captured` loop's static inputs: ``tree`` (tensors in tuples, lists, dicts) with
    tensors of its own (a batch's tensors may be views of buffers that others reuse)."""
    return pytree.tree_map(lambda x: x.clone(), tree)


def copy_into(static, new) -> None:
    """The next inputs into the static tensors a graph reads, in place, leaf by leaf."""
    for s, n in zip(pytree.tree_leaves(static), pytree.tree_leaves(new), strict=True):
        s.copy_(n)


class Captured:
    """``fn()`` (no arguments: it reads and writes tensors it holds, its *static* inputs and outputs)
    as one CUDA graph. The first call runs it as it is, on a side stream (the warm-up: it compiles,
    makes the optimizer's state); the second captures it (nothing runs) and replays the graph, as
    does every later call: each replay computes on whatever the static inputs then hold, with the
    numbers the uncaptured code would draw from the CUDA generator at that point. ``fn`` must not
    wait on the host (``.item()``, a host tensor copied in) nor replace a tensor it reads
    (:func:`static_copy` makes them, :func:`copy_into` fills them). If the
    capture fails, the run logs why and ``fn`` runs uncaptured from then on. Off CUDA, ``fn()`` runs
    as it is (the static inputs and outputs still work as on a GPU)."""

    def __init__(self, fn: Callable[[], None], device: torch.device, log: Callable[[str], None]):
        self.fn, self.device, self.log = fn, device, log
        # one side stream for the warm-up and the capture: libraries that set up per stream (cuBLAS's
        # workspace, hipBLASLt's handle) do it in the warm-up, not mid-capture (PyTorch's
        # make_graphed_callables does the same since pytorch#187745)
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.graph: torch.cuda.CUDAGraph | None = None
        self.calls = 0
        self.failed = False

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def __call__(self) -> None:
        self.calls += 1
        if self.graph is not None:
            self.graph.replay()
        elif self.device.type != "cuda" or self.failed:
            self.fn()
        elif self.calls == 1:  # the warm-up, on a side stream as PyTorch's whole-network capture does
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.stream):
                self.fn()
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
        else:
            self._capture()
            if self.graph is not None:
                self.graph.replay()
            else:  # what the failed capture left out
                self.fn()

    def _capture(self) -> None:
        graph = torch.cuda.CUDAGraph()
        try:
            # thread_local: JAX's runtime threads may call CUDA meanwhile (cudagraph trees capture so too)
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                self.fn()
        except Exception as e:  # noqa: BLE001  (any capture error: run uncaptured, said in the log)
            self.failed = True
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            self.log(f"cuda_graph epoch: the capture failed ({type(e).__name__}: {msg}); "
                     f"the loop runs uncaptured from here on")
            return
        self.graph = graph
