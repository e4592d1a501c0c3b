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


class ExperimentError(BadInput):
    """A pipeline experiment config (config/*.yaml) the suite cannot run; names the key."""


def did_you_mean(name: str, options) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``options`` to ``name``, else ``""``."""
    import difflib

    hint = difflib.get_close_matches(str(name), [str(o) for o in options], n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""
