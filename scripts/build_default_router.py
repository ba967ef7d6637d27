"""Fit the router shipped in the package on the 4-model OpenRouter data.

    python scripts/build_default_router.py [--data ../shared/data/openrouter_4models.jsonl]

Writes ``langchain_avengers/data/default_router/`` with the default ``ClusterRouter()``
configuration and the default embedder. The data comes from the ParetoBandit project
(Apache-2.0); ``langchain_avengers/data/NOTICE`` carries the attribution.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from langchain_avengers import ClusterRouter
from langchain_avengers.routing.bundled import default_router_path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Fit on the data file and save into the package."""
    parser = argparse.ArgumentParser(description="Fit and save the default router.")
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data" / "openrouter_4models.jsonl"
    )
    args = parser.parse_args()
    router = ClusterRouter(show_progress=True).fit(args.data)
    out = router.save(default_router_path())
    (out / ".router.lock").unlink(missing_ok=True)  # a save's lock file is not package data
    print(f"fitted on {router.n_samples_fit_} queries ({router.data_fingerprint_}); wrote {out}")


if __name__ == "__main__":
    main()
