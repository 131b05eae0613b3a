"""The summary of a run, from tables built here whose right answers are derived by hand."""

from __future__ import annotations

import json
import math

import pytest

pa = pytest.importorskip("pyarrow")

from attrib.core.errors import SettingError  # noqa: E402
from attrib.runs.schema import (  # noqa: E402
    RANDOM_MAP,
    samples_schema,
    sanity_schema,
    scores_schema,
)
from attrib.runs.summary import RANKING, RunSummary, Stat, summarize  # noqa: E402

IDS = [f"s{i}" for i in range(6)]


def samples_table(
    ok: list[str] = IDS,
    errors: dict[str, str | None] | None = None,
    labels: dict[str, int | None] | None = None,
    predictions: dict[str, int] | None = None,
):
    rows = []
    for i, sample in enumerate(ok):
        rows.append(
            {
                "index": i,
                "id": sample,
                "source": f"{sample}.png",
                "label": (labels or {}).get(sample),
                "prediction": (predictions or {}).get(sample, 0),
                "top_classes": [0],
                "top_probabilities": [1.0],
                "status": "ok",
                "error": None,
                "shard": 0,
            }
        )
    for j, (sample, message) in enumerate((errors or {}).items()):
        rows.append(
            {
                "index": len(ok) + j,
                "id": sample,
                "source": f"{sample}.png",
                "status": "error",
                "error": message,
                "shard": 0,
            }
        )
    return pa.Table.from_pylist(rows, schema=samples_schema())


def scores_table(values: dict[tuple[str, str], list[float]], ids: list[str] = IDS):
    """(method, metric) -> one value per sample of ``ids``."""
    rows = [
        {"id": sample, "index": i, "method": method, "metric": metric, "value": value}
        for (method, metric), per_sample in values.items()
        for i, (sample, value) in enumerate(zip(ids, per_sample, strict=True))
    ]
    return pa.Table.from_pylist(rows, schema=scores_schema())


def sanity_table(curves: dict[str, list[float]], ids: list[str] = IDS[:3], measure="spearman_abs"):
    """method -> the similarity at each step (the same for every sample of ``ids``)."""
    rows = [
        {
            "method": method,
            "step": step,
            "layer": "" if step == 0 else f"layer{step}",
            "id": sample,
            "measure": measure,
            "similarity": similarity,
        }
        for method, per_step in curves.items()
        for step, similarity in enumerate(per_step)
        for sample in ids
    ]
    return pa.Table.from_pylist(rows, schema=sanity_schema())


RANDOM_DEL = [0.50, 0.40, 0.60, 0.55, 0.45, 0.50]
RANDOM_INS = [0.30, 0.35, 0.25, 0.30, 0.40, 0.20]
PASSING = [1.0, 0.5, 0.1, 0.0]  # kept (0.5 + 0.1 + 0) / 3 = 0.2 < 0.5 * 1.0
CONSTANT = [1.0, 1.0, 1.0, 1.0]  # kept 1.0: the map does not change as the model is randomized


def plus(values: list[float], constant: float) -> list[float]:
    return [v + constant for v in values]


# ---- means and standard errors


def test_mean_standard_error_and_n_of_known_values():
    # 1, 2, 3, 4: mean 2.5; sample variance (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3;
    # se = sqrt(5/3) / sqrt(4) = 0.6455; the fifth sample's NaN is missing, not a value
    values = {("A", "insertion"): [1.0, 2.0, 3.0, 4.0, math.nan, 7.0]}
    samples = samples_table(errors={"s5": "boom"}, ok=IDS[:5])
    summary = summarize(samples, scores_table(values))  # s5 is an error row: its 7 is ignored
    stat = summary.stats["A"]["insertion"]
    assert stat.n == 4
    assert stat.mean == pytest.approx(2.5)
    assert stat.se == pytest.approx(math.sqrt(5 / 3) / 2)
    # one value: a mean and no standard error
    one = summarize(samples_table(), scores_table({("A", "deletion"): [0.3]}, ids=["s0"]))
    assert one.stats["A"]["deletion"] == Stat(
        pytest.approx(0.3), pytest.approx(math.nan, nan_ok=True), 1
    )
    assert "0.300 (n=1)" in one.text()


def test_values_given_twice_are_averaged():
    scores = pa.concat_tables(
        [
            scores_table({("A", "insertion"): [0.2]}, ids=["s0"]),
            scores_table({("A", "insertion"): [0.4]}, ids=["s0"]),
        ]
    )
    stat = summarize(samples_table(), scores).stats["A"]["insertion"]
    assert (stat.mean, stat.n) == (pytest.approx(0.3), 1)


# ---- against the random map


def test_random_plus_a_constant_is_better_and_the_random_map_itself_a_tie():
    # deletion is better lower: B = random - 0.1 has d_i = 0.1 for every sample (sd 0);
    # insertion is better higher: B = random + 0.2, d_i = 0.2; C equals the random map: d_i = 0
    values = {
        (RANDOM_MAP, "deletion"): RANDOM_DEL,
        (RANDOM_MAP, "insertion"): RANDOM_INS,
        ("B", "deletion"): plus(RANDOM_DEL, -0.1),
        ("B", "insertion"): plus(RANDOM_INS, 0.2),
        ("C", "deletion"): RANDOM_DEL,
        ("C", "insertion"): RANDOM_INS,
    }
    summary = summarize(samples_table(), scores_table(values))
    b = summary.comparison("B", "deletion")
    assert b is not None and b.outcome == "better"
    assert b.advantage == pytest.approx(0.1) and b.n == 6
    low, high = summary.interval("B", "deletion")
    assert low > 0 and (low, high) == (pytest.approx(0.1), pytest.approx(0.1))
    assert summary.comparison("B", "insertion").advantage == pytest.approx(0.2)
    c = summary.comparison("C", "insertion")
    assert c.outcome == "tie" and c.advantage == pytest.approx(0.0)
    low, high = summary.interval("C", "insertion")
    assert low <= 0 <= high
    assert summary.judged("C").trust == "undecided"
    text = summary.text()
    assert "+0.100 [+0.100, +0.100] better" in text
    assert "C (no clear difference on deletion, insertion)" in text
    # the random map is shown as the baseline, not judged
    assert RANDOM_MAP not in summary.methods and "random map (baseline)" in text


def test_pairs_are_made_by_sample_id_not_by_row_order():
    # the method's rows come in reverse order: paired by id, d_i = 0.2 everywhere
    method = scores_table({("B", "insertion"): plus(RANDOM_INS, 0.2)[::-1]}, ids=IDS[::-1])
    random = scores_table({(RANDOM_MAP, "insertion"): RANDOM_INS})
    summary = summarize(samples_table(), pa.concat_tables([method, random]))
    c = summary.comparison("B", "insertion")
    assert c.advantage == pytest.approx(0.2) and c.sem == pytest.approx(0.0)


def test_a_noisy_difference_within_two_standard_errors_is_a_tie_with_its_interval():
    # d = 0.3, -0.1, 0.1: mean 0.1, sd 0.2, se 0.2 / sqrt(3); interval 0.1 ± 2 se holds 0
    random = [0.3, 0.3, 0.3]
    values = {(RANDOM_MAP, "insertion"): random, ("A", "insertion"): [0.6, 0.2, 0.4]}
    summary = summarize(samples_table(IDS[:3]), scores_table(values, ids=IDS[:3]))
    se = 0.2 / math.sqrt(3)
    assert summary.interval("A", "insertion") == (
        pytest.approx(0.1 - 2 * se),
        pytest.approx(0.1 + 2 * se),
    )
    assert summary.comparison("A", "insertion").outcome == "tie"
    got = summary.to_json()["methods"][0]["comparisons"]["insertion"]
    assert got["outcome"] == "tie" and got["low"] < 0 < got["high"]


def test_localization_is_compared_only_where_the_random_map_has_values():
    values = {
        ("A", "pointing_game"): [1.0, 1.0, 0.0, 1.0, 1.0, 1.0],
        ("A", "relevance_mass"): [0.6, 0.7, 0.5, 0.6, 0.7, 0.5],
        (RANDOM_MAP, "relevance_mass"): [0.2, 0.3, 0.1, 0.2, 0.3, 0.1],
    }
    summary = summarize(samples_table(), scores_table(values))
    assert summary.comparison("A", "pointing_game") is None
    assert summary.comparison("A", "relevance_mass").outcome == "better"  # d = 0.4 each
    assert summary.stats["A"]["pointing_game"].mean == pytest.approx(5 / 6)
    assert summary.compared_metrics == ("relevance_mass",)


def test_a_metric_of_unknown_direction_is_summarized_not_compared_unless_given():
    values = {(RANDOM_MAP, "my_score"): [1.0, 2.0, 3.0], ("A", "my_score"): [0.0, 1.0, 2.0]}
    samples, scores = samples_table(IDS[:3]), scores_table(values, ids=IDS[:3])
    summary = summarize(samples, scores)
    assert summary.comparison("A", "my_score") is None
    assert any("my_score" in note and "metrics_directions" in note for note in summary.notes)
    lower = summarize(samples, scores, metrics_directions={"my_score": "lower"})
    assert lower.comparison("A", "my_score").outcome == "better"  # d = r - v = 1 each
    with pytest.raises(SettingError, match="higher"):
        summarize(samples, scores, metrics_directions={"my_score": "up"})


def test_the_directions_come_from_attrib_metrics():
    from attrib.metrics import METRICS

    values = {("A", name): [0.5] for name in ("deletion", "insertion", "road_morf")}
    summary = summarize(samples_table(), scores_table(values, ids=["s0"]))
    assert summary.directions == {m: METRICS[m][1] for m in ("deletion", "insertion", "road_morf")}
    assert summary.directions["deletion"] == "lower"
    assert "deletion ↓" in summary.text() and "insertion ↑" in summary.text()


# ---- the sanity check


def test_a_constant_similarity_fails_the_sanity_check_and_a_decaying_one_passes():
    values = {
        (RANDOM_MAP, "insertion"): RANDOM_INS,
        ("Decays", "insertion"): plus(RANDOM_INS, 0.2),
        ("Constant", "insertion"): plus(RANDOM_INS, 0.2),
    }
    sanity = sanity_table({"Decays": PASSING, "Constant": CONSTANT})
    summary = summarize(samples_table(), scores_table(values), sanity)
    decays, constant = summary.judged("Decays"), summary.judged("Constant")
    assert decays.sanity.passed is True and decays.sanity.kept == pytest.approx(0.2)
    assert decays.sanity.floor == pytest.approx(1.0) and decays.sanity.steps == 3
    assert constant.sanity.passed is False and constant.sanity.kept == pytest.approx(1.0)
    assert (decays.trust, constant.trust) == ("trust", "distrust")
    text = summary.text()
    assert "Trust on this model and data (6 samples): Decays." in text
    assert "Failed the sanity check (the map survives randomizing the model): Constant." in text
    assert "passed: kept 0.200 of 1.000" in text and "failed: kept 1.000 of 1.000" in text


def test_the_sanity_check_reads_one_measure_and_only_explained_samples():
    # ssim rows say the opposite and are ignored; s1's rows are dropped with the error sample
    rows = pa.concat_tables(
        [
            sanity_table({"A": PASSING}, ids=["s0"]),
            sanity_table({"A": CONSTANT}, ids=["s0"], measure="ssim"),
            sanity_table({"A": CONSTANT}, ids=["s1"]),
        ]
    )
    samples = samples_table(ok=["s0"], errors={"s1": "boom"})
    summary = summarize(samples, scores_table({}), rows)
    assert summary.judged("A").sanity.passed is True
    ssim = summarize(samples, scores_table({}), rows, measure="ssim")
    assert ssim.judged("A").sanity.passed is False
    none = summarize(samples, scores_table({}), rows, measure="pearson")
    assert none.judged("A").sanity is None
    assert any("'pearson'" in note and "ssim" in note for note in none.notes)


def test_a_missing_floor_makes_the_sanity_check_inconclusive():
    rows = sanity_table({"A": PASSING}).filter(pa.compute.not_equal(pa.compute.field("step"), 0))
    summary = summarize(samples_table(), scores_table({}), rows)
    assert summary.judged("A").sanity.passed is None
    assert "Sanity check inconclusive" in summary.text() and "A." in summary.text()


# ---- what is missing


def test_missing_sanity_and_random_rows_are_said_not_crashed_on():
    values = {("A", "deletion"): RANDOM_DEL, ("B", "deletion"): plus(RANDOM_DEL, 0.1)}
    summary = summarize(samples_table(), scores_table(values))
    assert [m.trust for m in summary.verdict.methods] == ["undecided", "undecided"]
    assert summary.judged("A").reason == (
        "not sanity-checked; no faithfulness metric against a random map"
    )
    sentences = " ".join(summary.sentences())
    assert "No method earned trust on this model and data (6 samples)." in sentences
    assert "Not sanity-checked: the run has no sanity check of any method." in sentences
    assert "Not compared with a random map" in sentences
    assert "no sanity table" in " ".join(summary.notes)
    assert "no random-map rows" in " ".join(summary.notes)
    assert "sanity" in summary.text() and "not checked" in summary.text()
    # one method checked and compared, the other neither: named
    values[(RANDOM_MAP, "deletion")] = RANDOM_DEL
    values[("A", "deletion")] = plus(RANDOM_DEL, -0.1)
    sanity = sanity_table({"A": PASSING})
    partial = summarize(samples_table(), scores_table(values), sanity).sentences()
    assert "Trust on this model and data (6 samples): A." in partial
    assert "Not sanity-checked: B." in partial
    assert "Do not trust: B (worse than a random map on deletion)." in partial


def test_a_sanity_checked_method_without_scores_is_judged_too():
    summary = summarize(samples_table(), scores_table({}), sanity_table({"A": CONSTANT}))
    assert summary.methods == ("A",) and summary.judged("A").trust == "distrust"


# ---- errors and an empty run


def test_error_rows_are_ignored_counted_and_their_messages_listed():
    errors = {
        "e0": "cannot open image",
        "e1": "out of memory",
        "e2": "cannot open image",
        "e3": "truncated file",
        "e4": "cannot open image",
        "e5": "out of memory",
        "e6": None,
        "e7": "bad size",
        "e8": "wrong mode",
    }
    values = {("A", "insertion"): [0.5, 0.5, 9.0, 9.0]}  # the 9s are error samples'
    scores = scores_table(values, ids=["s0", "s1", "e0", "e1"])
    summary = summarize(samples_table(ok=["s0", "s1"], errors=errors), scores)
    assert (summary.ok, summary.errors) == (2, 9)
    assert summary.stats["A"]["insertion"] == Stat(pytest.approx(0.5), 0.0, 2)
    # the most common 5, ties in the order they first appear
    assert summary.top_errors == (
        ("cannot open image", 3),
        ("out of memory", 2),
        ("truncated file", 1),
        ("(no message)", 1),
        ("bad size", 1),
    )
    text = summary.text()
    assert "Run summary: 2 samples explained, 9 errors" in text
    assert "3      cannot open image" in text
    assert summary.to_json()["samples"]["top_errors"][0] == {
        "message": "cannot open image",
        "count": 3,
    }


def test_an_empty_run_says_so():
    samples = samples_table(ok=[], errors={"e0": "cannot open image", "e1": "cannot open image"})
    scores = scores_table({("A", "insertion"): [0.5]}, ids=["e0"])
    summary = summarize(samples, scores, sanity_table({"A": PASSING}, ids=["e0"]), by_class=True)
    assert (summary.ok, summary.errors, summary.methods, summary.ranking) == (0, 2, (), ())
    assert summary.sentences() == ["No sample was explained (2 errors): there is nothing to judge."]
    assert "No sample was explained" in summary.text()
    assert "cannot open image" in summary.text()
    json.dumps(summary.to_json(), allow_nan=False)
    # tables with no rows at all, not even columns
    nothing = summarize({}, {}, {})
    assert (nothing.ok, nothing.errors) == (0, 0)
    assert "Run summary: 0 samples explained" in nothing.text()


def test_a_table_without_the_columns_of_a_run_is_refused():
    with pytest.raises(SettingError, match="status"):
        summarize({"id": ["s0"]}, scores_table({}))


def test_pandas_frames_are_accepted():
    pd = pytest.importorskip("pandas")
    samples = samples_table().to_pandas()
    scores = pd.DataFrame(
        {"id": ["s0", "s1"], "method": ["A", "A"], "metric": ["insertion"] * 2, "value": [1, 2]}
    )
    summary = summarize(samples, scores)
    assert summary.stats["A"]["insertion"].mean == pytest.approx(1.5)


# ---- per class


def test_the_breakdown_per_class():
    labels = {"s0": 0, "s1": 0, "s2": 1, "s3": 1, "s4": 1, "s5": None}
    values = {
        ("A", "insertion"): [0.1, 0.3, 0.5, 0.6, 0.7, 0.9],
        (RANDOM_MAP, "insertion"): [0.0, 0.0, 0.1, 0.1, 0.1, 0.0],
    }
    summary = summarize(samples_table(labels=labels), scores_table(values), by_class=True)
    assert summary.class_column == "label"
    assert list(summary.by_class) == [0, 1, None]
    assert summary.by_class[0]["A"]["insertion"].mean == pytest.approx(0.2)
    assert summary.by_class[0]["A"]["insertion"].n == 2
    assert summary.by_class[1]["A"]["insertion"].mean == pytest.approx(0.6)
    assert summary.by_class[1][RANDOM_MAP]["insertion"].mean == pytest.approx(0.1)
    assert summary.by_class[None]["A"]["insertion"].n == 1
    assert "By class (label)" in summary.text() and "0.600 (n=3)" in summary.text()
    classes = summary.to_json()["by_class"]["classes"]
    assert [c["class"] for c in classes] == [0, 1, None]
    # by prediction; and True falls back to the prediction where the source has no labels
    predictions = {"s0": 2, "s1": 2, "s2": 2, "s3": 3, "s4": 3, "s5": 3}
    unlabelled = samples_table(predictions=predictions)
    by_prediction = summarize(unlabelled, scores_table(values), by_class=True)
    assert by_prediction.class_column == "prediction"
    assert by_prediction.by_class[2]["A"]["insertion"].mean == pytest.approx(0.3)
    assert by_prediction.by_class[3]["A"]["insertion"].mean == pytest.approx(2.2 / 3)
    assert summarize(samples_table(), scores_table(values)).by_class is None
    with pytest.raises(SettingError, match="by_class"):
        summarize(samples_table(), scores_table(values), by_class="colour")


# ---- the ranking


def test_the_ranking_on_a_constructed_case():
    # T2 is trusted and beats both metrics; T1 is trusted and beats one (ties on deletion);
    # Ua and Ub are not sanity-checked (undecided) and beat both, Ua by a constant difference
    # (effect capped at 10), Ub with noise (d = 0.15, 0.25, 0.2, ...: effect about 4.5);
    # Uc passed the sanity check but ties everything; D beats both but failed the sanity check
    noise = [0.05, -0.05, 0.0, 0.05, -0.05, 0.0]
    values = {
        (RANDOM_MAP, "deletion"): RANDOM_DEL,
        (RANDOM_MAP, "insertion"): RANDOM_INS,
        ("D", "deletion"): plus(RANDOM_DEL, -0.3),
        ("D", "insertion"): plus(RANDOM_INS, 0.3),
        ("Uc", "deletion"): RANDOM_DEL,
        ("Uc", "insertion"): RANDOM_INS,
        ("Ub", "deletion"): [r - 0.2 + e for r, e in zip(RANDOM_DEL, noise, strict=True)],
        ("Ub", "insertion"): [r + 0.2 + e for r, e in zip(RANDOM_INS, noise, strict=True)],
        ("Ua", "deletion"): plus(RANDOM_DEL, -0.1),
        ("Ua", "insertion"): plus(RANDOM_INS, 0.1),
        ("T1", "deletion"): RANDOM_DEL,
        ("T1", "insertion"): plus(RANDOM_INS, 0.1),
        ("T2", "deletion"): plus(RANDOM_DEL, -0.05),
        ("T2", "insertion"): plus(RANDOM_INS, 0.05),
    }
    sanity = sanity_table({"D": CONSTANT, "Uc": PASSING, "T1": PASSING, "T2": PASSING})
    summary = summarize(samples_table(), scores_table(values), sanity)
    assert [summary.judged(m).trust for m in ("T1", "T2", "Ua", "Ub", "Uc", "D")] == [
        "trust",
        "trust",
        "undecided",
        "undecided",
        "undecided",
        "distrust",
    ]
    assert summary.ranking == ("T2", "T1", "Ua", "Ub", "Uc", "D")
    assert summary.methods == ("D", "Uc", "Ub", "Ua", "T1", "T2")  # the order of the scores
    ranks = [(m["rank"], m["method"]) for m in summary.to_json()["methods"]]
    assert ranks == [(1, "T2"), (2, "T1"), (3, "Ua"), (4, "Ub"), (5, "Uc"), (6, "D")]
    lines = summary.text().splitlines()
    first = [line.split()[:2] for line in lines if line[:1].isdigit()][:6]
    assert first == [["1", "T2"], ["2", "T1"], ["3", "Ua"], ["4", "Ub"], ["5", "Uc"], ["6", "D"]]
    assert RANKING in summary.text()
    # the sentences name the methods in the table's order, not the scores' (T1 came first)
    assert "Trust on this model and data (6 samples): T2, T1." in summary.text()


def test_the_ranking_puts_uncompared_methods_after_compared_ones():
    values = {
        (RANDOM_MAP, "insertion"): RANDOM_INS,
        ("Tied", "insertion"): RANDOM_INS,
        ("Alone", "pointing_game"): [1.0] * 6,
    }
    summary = summarize(samples_table(), scores_table({**values}))
    assert summary.ranking == ("Tied", "Alone")


# ---- output


def test_write_is_atomic_and_the_json_round_trips(tmp_path):
    values = {
        (RANDOM_MAP, "insertion"): RANDOM_INS,
        ("A", "insertion"): plus(RANDOM_INS, 0.2),
        ("A", "pointing_game"): [1.0] * 6,
    }
    summary = summarize(
        samples_table(errors={"e0": "boom"}),
        scores_table(values),
        sanity_table({"A": PASSING}),
        by_class=True,
    )
    md, js = summary.write(tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["summary.json", "summary.md"]
    assert md.read_text(encoding="utf-8") == summary.markdown() + "\n"
    loaded = json.loads(js.read_text(encoding="utf-8"))
    assert loaded == summary.to_json()
    assert loaded["methods"][0]["trust"] == "trust"
    assert loaded["methods"][0]["stats"]["insertion"]["n"] == 6
    assert loaded["methods"][0]["sanity"]["passed"] is True
    # no labels: by the prediction, 0 for every sample here
    assert [c["class"] for c in loaded["by_class"]["classes"]] == [0]
    # written again over itself: still two files
    summary.write(tmp_path / "run")
    assert len(list((tmp_path / "run").iterdir())) == 2


def test_the_json_holds_no_nan():
    summary = summarize(samples_table(), scores_table({("A", "insertion"): [0.5]}, ids=["s0"]))
    stat = summary.to_json()["methods"][0]["stats"]["insertion"]
    assert stat == {"mean": 0.5, "se": None, "n": 1}
    json.dumps(summary.to_json(), allow_nan=False)


def test_markdown_and_text_say_the_same():
    values = {(RANDOM_MAP, "insertion"): RANDOM_INS, ("A", "insertion"): plus(RANDOM_INS, 0.2)}
    summary = summarize(samples_table(), scores_table(values), sanity_table({"A": PASSING}))
    assert isinstance(summary, RunSummary)
    assert str(summary) == summary.text()
    assert "| 1 | A | 0.500 ± 0.029 |" in summary.markdown()
    for sentence in summary.sentences():
        assert sentence in summary.text() and sentence in summary.markdown()
