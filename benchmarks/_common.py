"""What the benchmark scripts share: where the shared data lives and how it is loaded."""

from __future__ import annotations

from pathlib import Path

from langchain_avengers import CalibrationData

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
"""``shared/data`` beside the repository."""


def load_data(data_dir: Path, name: str) -> CalibrationData:
    """One shared data set, or a clear exit when it is not there."""
    path = data_dir / f"{name}.jsonl"
    if not path.is_file():
        msg = f"{path}: not found; pass --data-dir pointing at the shared data"
        raise SystemExit(msg)
    return CalibrationData.from_path(path)
