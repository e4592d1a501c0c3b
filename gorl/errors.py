"""The suite's exceptions, in a leaf module (imports nothing from gorl/).

``BadInput`` and its subclasses are user errors: the CLI prints their message as one line
and exits 2, before any training starts. ``Diverged`` is data, not an error: the run ends
with status ``diverged``.
"""
from __future__ import annotations


class BadInput(Exception):
    """Bad user input (arguments, task, run directory); one line, exit 2."""


class ConfigError(BadInput, ValueError):
    """Bad hyperparameter input (unknown key, bad value, unknown preset). Raised before any env is built."""


class TaskError(BadInput, ValueError):
    """A task name or env the suite cannot train on (unknown id, unsupported action space)."""


class RunDirError(BadInput):
    """The run directory cannot be used as asked (foreign files, locked, no usable checkpoint)."""


class Diverged(RuntimeError):
    """Raised by an algorithm when losses or parameters become non-finite."""


class Gated(RuntimeError):
    """Raised by GoRL when its teacher's data set misses the floor (``teacher_min_return``): data,
    not an error; the run ends with status ``gated`` and the reason."""


class Interrupted(Exception):
    """SIGTERM/SIGINT reached a run: it stopped at a safe point with its checkpoint written
    (no status.json); rerunning the same command resumes it. ``signum`` is the signal."""

    def __init__(self, signum: int, signame: str, env_step: int):
        self.signum, self.env_step = signum, env_step
        super().__init__(f"stopped by {signame} at env step {env_step}")


class ExperimentError(BadInput):
    """A pipeline experiment config (config/*.yaml) the suite cannot run; names the key."""


def did_you_mean(name: str, options, prefix: str = "") -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``options`` to ``name``, else ``""``;
    the suggestion is written as ``prefix + x`` (e.g. ``playground:`` before a Playground name)."""
    import difflib

    hint = difflib.get_close_matches(str(name), [str(o) for o in options], n=1)
    return f" (did you mean {prefix + hint[0]!r}?)" if hint else ""
