"""notebooks/paper_study.ipynb runs from start to end (it needs ../shared/data beside the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
SHARED_DATA = REPO.parent / "shared" / "data"
DATA_FILES = ("routerbench_11models.jsonl", "openrouter_4models.jsonl")


@pytest.mark.requires_shared
@pytest.mark.slow
def test_paper_study_notebook_runs() -> None:
    missing = [name for name in DATA_FILES if not (SHARED_DATA / name).is_file()]
    if missing:
        pytest.skip(
            f"../shared/data is absent: the paper study needs {', '.join(missing)} in "
            f"{SHARED_DATA} (the calibration data sits beside the repository, not inside it)"
        )
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    notebook = nbformat.read(NOTEBOOKS / "paper_study.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "commit the notebook without outputs: python notebooks/build_paper_study.py"
    )
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=600,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError with the failing cell's traceback

    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    markdown = "\n".join(o.get("data", {}).get("text/markdown", "") for o in outputs)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert "| oracle |" in markdown  # the Table-3-like tables
    assert "router α=1" in markdown
    assert "cost-to-match" in markdown  # the headline figures
    assert "| claim (paper) |" in markdown
    assert len(images) == 4  # Pareto and usage plots for both data sets
