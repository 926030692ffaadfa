"""examples/train_hybridxc.ipynb runs end to end ([train] issue): executed with nbclient at its
small setting (SMALL = True: one training solid, one held-out, one epoch)."""
from __future__ import annotations

import os
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("torch")
pytest.importorskip("ipykernel")

NOTEBOOK = pathlib.Path(__file__).resolve().parents[2] / "examples" / "train_hybridxc.ipynb"


def test_training_notebook_executes(tmp_path, monkeypatch):
    monkeypatch.delenv("SOLIDXC_NOTEBOOK_FULL", raising=False)
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", []))
    assert "skipped entries: 0" in outputs
    assert "Al" in outputs and "test" in outputs
    # The figure cell produced an image.
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
               for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", []))
    assert (tmp_path / "hybridxc_model").is_dir()
