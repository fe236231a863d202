"""The worked-example notebooks run top to bottom (their code cells, in order, in one namespace)."""

import json
import tempfile
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _sample_from_the_shared_one(request):
    """``write_sample`` for the notebooks: seed 0 at scale 1 (what they write) is conftest's shared sample, linked
    into place instead of generated again (the generator is deterministic: test_sample checks identical files);
    any other sample is generated."""
    import ecoassess.sample

    from tests.builders import link_copy

    real = ecoassess.sample.write_sample

    def write_sample(out_dir, *, seed: int = 0, scale: int = 1, _imagery: str = "all") -> Path:
        if (seed, scale, _imagery) != (0, 1, "all"):
            return real(out_dir, seed=seed, scale=scale, _imagery=_imagery)
        shared = request.getfixturevalue("shared_sample")
        return link_copy(shared.parent, Path(out_dir)) / shared.name
    return write_sample


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch, request):
    import ecoassess.sample

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the notebook's mkdtemp work folder lands here
    monkeypatch.setattr(ecoassess.sample, "write_sample", _sample_from_the_shared_one(request))
    nb = json.loads(path.read_text(encoding="utf-8"))
    namespace: dict = {"__name__": "__notebook__"}
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        exec(compile(source, f"{path.name}[cell {i}]", "exec"), namespace)  # noqa: S102 - our own notebook
    assert NOTEBOOKS
