"""The printed table of one configuration: its limits, then one row per method."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.limits import kind_label
from benchmarks.results import ConfigResult

__all__ = ["format_config", "text_table"]

# Other processes' CPU share above which a configuration's timings are flagged: a neighbour
# on one of two cores stalls torch's threads far more than its share suggests.
NEIGHBOUR_WARNING = 0.10


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:  # None or NaN: not measured / not applicable
        return "-"
    return f"{value:.{digits}f}"


def text_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  "
) -> list[str]:
    """Lines of a plain-text table: first column left-aligned (labels), the rest right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [cells[0].ljust(widths[0])]
        parts += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return indent + "  ".join(parts).rstrip()

    return [line(header), *[line(r) for r in rows]]


def format_config(result: ConfigResult, threads: int) -> str:
    """The limits and the method rows of one (model, batch) configuration, as text."""
    n = result.batch
    where = result.device if result.device != "cpu" else f"cpu, {threads} threads"
    out = [f"== {result.model} | batch {n} | 3x{result.size}x{result.size} | {where} =="]

    rows_per_forward = sorted({r for curve in result.ms_per_row.values() for r in curve})
    out.append(f"limits: median ms per row at r rows per forward; best over r <= {n}")
    header = ["pass", *[f"r={r}" for r in rows_per_forward], "best"]
    limit_rows = []
    for kind, curve in result.ms_per_row.items():
        cells = [kind_label(kind, result.layer_name)]
        cells += [_num(curve.get(r)) for r in rows_per_forward]
        best = result.best.get(kind)
        cells.append(f"{_num(best[1])} (r={best[0]})" if best else "-")
        limit_rows.append(cells)
    out += text_table(header, limit_rows)

    header = [
        "method",
        "peer",
        "ours ms",
        "peer ms",
        "ours/peer",
        "limit ms",
        "ours/limit",
        "curve ms",
        "ours/curve",
        "ours MiB",
        "peer MiB",
        "bare MiB",
    ]
    method_rows = [
        [
            c.name,
            c.peer_name or "-",
            _num(c.ours_ms),
            _num(c.peer_ms),
            _num(c.ours_over_peer, 2),
            _num(c.limit_ms),
            _num(c.ours_over_limit, 2),
            _num(c.curve_limit_ms),
            _num(c.ours_over_curve_limit, 2),
            _num(c.ours_mib),
            _num(c.peer_mib),
            _num(c.bare_mib),
        ]
        for c in result.cases
    ]
    out += text_table(header, method_rows)
    for c in result.cases:
        if c.max_rel_diff is not None:
            out.append(f"  {c.name}: max|ours - peer| / max|peer| = {c.max_rel_diff:.1e}")
        if c.limit_schedule is not None:
            others = "".join(
                f"; {name.removeprefix('limit ')}: {ms:.1f} ms"
                for name, ms in c.other_schedules_ms.items()
            )
            out.append(f"  {c.name}: {c.limit_schedule.removeprefix('limit ')} timed{others}")
    shares = (result.neighbours_limits, result.neighbours_methods)
    if all(s is not None for s in shares):
        busy = max(shares) > NEIGHBOUR_WARNING
        note = "  (timings may be skewed: compare curve ms with limit ms)" if busy else ""
        out.append(
            f"  other processes used {shares[0]:.0%} (limits) / {shares[1]:.0%} (methods) "
            f"of the CPU meanwhile{note}"
        )
    return "\n".join(out)
