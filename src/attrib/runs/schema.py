"""The tables of a run directory, as Arrow schemas (Parquet files any Arrow reader opens).

- ``samples``: one row per sample of the source: where it came from, its label, the model's
  prediction and top classes, and whether it could be explained (``status``, ``error``).
- ``scores``: one row per sample, method and metric: the metric's value (``method`` is
  ``"random map"`` for the random baseline every faithfulness metric is compared with).
- ``sanity``: the model-randomization check on a subsample: per method, randomization step
  (step 0 is the unchanged model: two explanations of it, the method's noise floor) and
  sample, the similarity of the map with the trained model's map.

Maps are stored beside them, one file per shard and method (``attrib.runs.maps``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "RANDOM_MAP",
    "STATUS",
    "samples_schema",
    "sanity_schema",
    "scores_schema",
    "tokens_schema",
]

RANDOM_MAP = "random map"
STATUS = ("ok", "error")


def _pa() -> Any:
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - the runs extra brings it
        from attrib.core.errors import SettingError

        raise SettingError(
            "pyarrow",
            "pyarrow (dataset runs store Parquet tables)",
            None,
            "pip install 'attrib[runs]'",
        ) from None
    return pa


def samples_schema() -> Any:
    pa = _pa()
    return pa.schema(
        [
            ("index", pa.int64()),  # position in the source; sample i is in shard i // size
            ("id", pa.string()),
            ("source", pa.string()),
            ("label", pa.int64()),  # null where the source has no labels
            ("prediction", pa.int64()),  # null for an error row
            ("top_classes", pa.list_(pa.int64())),
            ("top_probabilities", pa.list_(pa.float32())),
            ("status", pa.string()),  # "ok" or "error"
            ("error", pa.string()),  # null where ok
            ("shard", pa.int64()),
        ]
    )


def scores_schema() -> Any:
    pa = _pa()
    return pa.schema(
        [
            ("id", pa.string()),
            ("index", pa.int64()),
            ("method", pa.string()),
            ("metric", pa.string()),
            ("value", pa.float64()),
        ]
    )


def sanity_schema() -> Any:
    pa = _pa()
    return pa.schema(
        [
            ("method", pa.string()),
            ("step", pa.int64()),  # 0: the unchanged model (the floor); k: k layers randomized
            ("layer", pa.string()),  # the layer randomized at this step ("" at step 0)
            ("id", pa.string()),
            ("measure", pa.string()),
            ("similarity", pa.float64()),
        ]
    )


def tokens_schema() -> Any:
    """A text run's maps: each sample's tokens and one score per token."""
    pa = _pa()
    return pa.schema(
        [
            ("id", pa.string()),
            ("tokens", pa.list_(pa.string())),
            ("scores", pa.list_(pa.float32())),
        ]
    )
