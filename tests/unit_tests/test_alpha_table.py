"""What each alpha costs (``avengers alphas``): worked out by hand on the three-group router,
and checked against the records' own scores and costs through the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from cli_runs import ROUTER_OPTIONS
from hand_built_router import BIG, MID, SMALL, fit_three_groups

from langchain_avengers import CalibrationData, ClusterRouter
from langchain_avengers.cli.main import main
from langchain_avengers.evaluation.alphas import alpha_table, format_usd

SMALL_JSONL = Path(__file__).resolve().parents[1] / "fixtures" / "small.jsonl"


def test_centroids_give_the_hand_worked_table() -> None:
    # one nearest cluster: each centroid is routed on its own cluster's statistics
    router = fit_three_groups(nearest_clusters=1)
    table = alpha_table(router, [0.0, 1.0])
    cheapest, best = table.points
    # alpha 0: m-small everywhere, mean score (0.5 + 0 + 0.25) / 3 at $0.001 a query
    assert cheapest.shares == {SMALL: pytest.approx(1.0)}
    assert cheapest.expected_accuracy == pytest.approx(0.25)
    assert cheapest.expected_cost == pytest.approx(1.0)
    # alpha 1: m-big on e1 and e3 (score 1), m-mid on e2 (1 against 2/3)
    assert best.shares == {BIG: pytest.approx(2 / 3), MID: pytest.approx(1 / 3)}
    assert best.expected_accuracy == pytest.approx(1.0)
    assert best.expected_cost == pytest.approx(1000 * (0.01 + 0.002 + 0.01) / 3)
    assert best.measured_accuracy is None
    assert table.n_queries == 3
    assert "3 cluster centroids" in table.basis
    assert not table.measured


def test_the_table_prints_one_row_per_alpha() -> None:
    table = alpha_table(fit_three_groups(nearest_clusters=1), [0.0, 0.5, 1.0])
    lines = table.table().splitlines()
    assert lines[0].split("  ")[0] == "alpha"
    assert [line.split()[0] for line in lines[1:]] == ["0", "0.5", "1"]
    assert lines[1].split()[1:3] == ["25.0%", "$1.00"]
    assert lines[3].endswith(f"{BIG} (67%)")


def test_bad_alpha_and_models_are_refused() -> None:
    router = fit_three_groups(nearest_clusters=1)
    with pytest.raises(ValueError, match="alpha"):
        alpha_table(router, [1.5])
    with pytest.raises(ValueError, match="nope"):
        alpha_table(router, [0.5], allowed_models=["nope"])


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0289, "$0.0289"), (0.11, "$0.110"), (12.018, "$12.02"), (0.0, "$0.00"), (math.nan, "n/a")],
)
def test_dollars_keep_three_significant_digits(value: float, text: str) -> None:
    assert format_usd(value) == text


def test_records_add_the_measured_figures(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "router"
    assert main(["fit", str(SMALL_JSONL), "-o", str(out), *ROUTER_OPTIONS]) == 0
    capsys.readouterr()
    assert (
        main(["alphas", str(out), "--data", str(SMALL_JSONL), "--alphas", "0", "1", "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    data = CalibrationData.from_path(SMALL_JSONL)
    router = ClusterRouter.load(out)
    assert report["n_queries"] == len(data.queries)
    for point in report["points"]:
        chosen = router.route_batch(data.queries, point["alpha"])
        columns = [data.models.index(m) for m in chosen]
        rows = np.arange(len(chosen))
        assert point["measured_accuracy"] == pytest.approx(np.nanmean(data.scores[rows, columns]))
        assert point["measured_cost"] == pytest.approx(1000 * np.nanmean(data.costs[rows, columns]))
        assert sum(point["shares"].values()) == pytest.approx(1.0)


def test_the_bundled_router_table_says_what_it_is_computed_on(
    capsys: pytest.CaptureFixture,
) -> None:
    assert main(["alphas", "default", "--alphas", "0", "1"]) == 0
    out = capsys.readouterr().out
    assert "computed on the router's 210 cluster centroids" in out
    rows = [line for line in out.splitlines() if line[:1].isdigit()]
    assert [row.split()[0] for row in rows] == ["0", "1"]
    cheap, dear = (float(row.split()[2].lstrip("$")) for row in rows)
    assert cheap < dear
