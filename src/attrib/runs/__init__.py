"""attrib.runs: explain and evaluate a whole dataset into a run directory that survives a crash.

    from attrib.runs import run
    done = run(model, "photos/", methods="gradcam,saliency", metrics="deletion", out="runs/r")
    done.samples            # a pyarrow table: id, source, label, prediction, status, ...
    done.maps("GradCAM", ids)
    done.summary()          # which method to trust on this model and data

The pieces: ``sources`` (image folders, manifests, datasets, texts), ``store`` (the run
directory: a manifest, tables and maps in shards committed atomically), ``work`` (what one
shard of samples becomes), ``engines`` (local, Ray) and ``summary`` (the verdict).
"""

from attrib.runs.run import ENGINES, Run, RunFailedError, open_run, run
from attrib.runs.summary import RunSummary, summarize

__all__ = ["ENGINES", "Run", "RunFailedError", "RunSummary", "open_run", "run", "summarize"]
