"""Helpers shared by the case modules (registers no case).

- ``best_rows``: the rows per forward at which the limit curve of a pass is cheapest, for
  giving a peer its best batch setting.
- ``peer_fits``: whether a peer that runs all its rows in one forward fits in memory here.
  Captum's defaults put every step (or noise sample) of every image into one forward; on
  resnet50 with 8 images and 32 steps that is 256 rows, about 25 GiB on CPU. Rather than let
  the machine (shared with others) swap or kill the run, such a peer is skipped, and the
  table says so.
"""

from __future__ import annotations

import warnings

from benchmarks.limits import frozen, pass_fn
from benchmarks.memory import peak_memory_mib
from benchmarks.models import Setup, make_inputs, make_targets

__all__ = ["FALLBACK_ROWS", "best_rows", "peer_fits", "quiet_captum"]

# Rows per forward used when no limit curve is known (about the best on 2 CPU cores).
FALLBACK_ROWS = 16
# A peer may use at most this share of the memory available when it is built.
MEMORY_SHARE = 0.5
# Rows of the pass whose peak memory is measured to estimate the memory of one row.
PROBE_ROWS = 4

_ROW_MIB: dict[tuple[str, str, int], float] = {}


def best_rows(setup: Setup, total_rows: int, kind: str = "input") -> int:
    """The cheapest rows per forward (``r <= total_rows``) of ``kind`` on the setup's curves."""
    best = setup.curves.best(kind, total_rows) if setup.curves is not None else None
    return best[0] if best is not None else min(FALLBACK_ROWS, total_rows)


def _available_mib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _row_mib(setup: Setup) -> float:
    """Peak memory of one ``fwd+bwd to input`` row (measured on a few rows, cached)."""
    size = setup.x.shape[-1]
    key = (setup.spec.name, str(setup.device), size)
    if key not in _ROW_MIB:
        x = make_inputs(PROBE_ROWS, size, setup.device)
        fn = pass_fn(setup.spec, "input", x, make_targets(PROBE_ROWS, setup.device))
        with frozen(setup.model):
            _ROW_MIB[key] = peak_memory_mib(fn, setup.device) / PROBE_ROWS
    return _ROW_MIB[key]


def peer_fits(setup: Setup, rows_at_once: int) -> tuple[bool, float]:
    """``(fits, estimated GiB)`` for a peer holding ``rows_at_once`` rows' graphs at once.

    Only checked on CPU (RAM is shared with the rest of the machine); on CUDA an
    out-of-memory error is the peer's own result and is not predicted here.
    """
    if setup.device.type != "cpu":
        return True, float("nan")
    row_mib = _row_mib(setup)
    if row_mib != row_mib:  # NaN: memory cannot be measured here, so do not guess
        return True, float("nan")
    estimate = rows_at_once * row_mib
    available = _available_mib()
    fits = available is None or estimate <= MEMORY_SHARE * available
    return fits, estimate / 1024


def quiet_captum() -> None:
    """Silence Captum's expected warnings (it switches requires_grad on for the input)."""
    warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")
    warnings.filterwarnings("ignore", message=".*required_grads has been set automatically.*")
