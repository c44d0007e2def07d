"""Resumable training: what a checkpoint holds, how a run is refused or resumed, and preemption.

A run writes ``checkpoint.pt`` (atomically: temp file, then rename) at the end of every epoch:
the model, optimiser, scheduler, the method's and the weighting's state, the random streams
(Python, NumPy, torch, CUDA and the trainer's own generators), the history and the elapsed time.
A restarted run with the same output directory resumes from it without being told; one whose
config differs in anything but ``CAN_DIFFER`` is refused. Checkpoints load with
``torch.load(weights_only=True)``: tensors and plain containers only, nothing is unpickled.

SIGTERM and SIGUSR1 (what SLURM sends before preemption or the time limit) ask the run to stop at
the next safe point, the end of the current epoch, once its checkpoint is written; it then exits
with ``PREEMPTED_EXIT_CODE`` so that Snakemake's retries resume it. A second such signal, or
SIGINT (Ctrl-C) at any time, stops the run at once: the checkpoint of the last completed epoch is
already on disk (files are only ever replaced by a rename, so none is half-written), and the exit
code is the same.
"""

from __future__ import annotations

import logging
import os
import random
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from auxbench.foundations.errors import ConfigError

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: try again
CAN_DIFFER = ("epochs", "patience", "device", "data_root")
"""Config keys a resumed run may change: train longer, stop differently, move device or data."""
FAULT_AFTER_EPOCH = "AUXBENCH_FAULT_AFTER_EPOCH"
"""Fault injection for tests: ``N`` makes the process die (exit 1, no clean-up) right after
epoch N's checkpoint, once per output directory."""


class Preempted(Exception):
    """The run was asked to stop (SIGTERM/SIGUSR1) and did so after checkpointing ``epoch``."""

    def __init__(self, epoch: int, path: Path | None):
        super().__init__(f"stopped after epoch {epoch} on request; checkpoint: {path}")
        self.epoch = epoch


class StoppedNow(BaseException):
    """The run was stopped at once (Ctrl-C, or a second SIGTERM/SIGUSR1) during epoch
    ``epoch + 1``; the checkpoint of ``epoch``, the last completed one, stays on disk.

    A ``BaseException``, as ``KeyboardInterrupt`` is: it is raised from a signal handler, wherever
    the main thread happens to be, and code that catches ``Exception`` (``logging``'s handlers
    do, around every write) must not swallow it."""

    def __init__(self, signal_name: str, epoch: int = 0, path: Path | None = None):
        super().__init__(
            f"stopped at once on {signal_name} during epoch {epoch + 1}; "
            + (
                f"checkpoint of epoch {epoch}: {path}"
                if epoch and path
                else "no checkpoint written"
            ),
        )
        self.signal_name, self.epoch = signal_name, epoch


class NonFiniteLoss(RuntimeError):
    """A training loss became NaN or infinite; the message names epoch, batch and loss term."""


def rng_state() -> dict[str, Any]:
    """The global random streams of Python, NumPy, torch (and CUDA), as plain data."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    random.setstate(_tuples(state["python"]))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value: Any) -> Any:
    """Lists back to the tuples ``random.setstate`` insists on."""
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


def load_checkpoint(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Read ``path`` safely and check it was written by a run of ``config``."""
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:  # a truncated or foreign file: say which and what to do
        raise ConfigError(
            f"checkpoint {path} cannot be read ({error}); delete it to start the run afresh"
        ) from error
    saved = state.get("config", {})
    for key in sorted(set(saved) | set(config)):
        if key not in CAN_DIFFER and saved.get(key) != config.get(key):
            raise ConfigError(
                f"checkpoint {path} belongs to a different run: '{key}' is {saved.get(key)!r} "
                f"there but {config.get(key)!r} here; use another output directory or delete "
                "the checkpoint to start afresh"
            )
    return state


@contextmanager
def preemption_requests() -> Iterator[list[int]]:
    """While active, SIGTERM and SIGUSR1 are recorded (in the yielded list) instead of killing
    the process, and a warning says how to stop at once; a second one, or SIGINT (Ctrl-C),
    raises ``StoppedNow`` there and then. The previous handlers come back afterwards. Outside the
    main thread, where Python cannot install handlers, nothing is recorded."""
    received: list[int] = []

    def request(number: int, frame: Any) -> None:
        name = signal.Signals(number).name
        if number == signal.SIGINT or received:
            raise StoppedNow(name)
        received.append(number)
        log.warning(
            "received %s: stopping after this epoch, once its checkpoint is written; send it "
            "again or press Ctrl-C to stop now (the last epoch's checkpoint is already on disk)",
            name,
        )

    signals = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
    try:
        previous = {sig: signal.signal(sig, request) for sig in signals}
    except ValueError:  # not the main thread
        yield received
        return
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def inject_fault(out_dir: Path, epoch: int) -> None:
    """Die like a killed process after ``epoch`` when ``AUXBENCH_FAULT_AFTER_EPOCH`` says so
    (once per output directory: a marker file remembers it)."""
    if os.environ.get(FAULT_AFTER_EPOCH) != str(epoch):
        return
    marker = out_dir / f".fault-injected-after-epoch-{epoch}"
    if marker.exists():
        return
    marker.touch()
    log.error("fault injection: dying after epoch %d", epoch)
    os._exit(1)
