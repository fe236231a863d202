"""Issue 16, finding 4: the results of a run must not depend on ``grid.chunk``.

NDVI differed in nearly every pixel between ``chunk: 256`` and ``chunk: 1024`` (max 0.19; FVC up to 0.55; county
tables up to 0.17 %), because each chunk was reprojected on its own. The bundled sample (its sources are in UTM, the
grid in China Albers: every imagery band is warped) is run with a chunk size that is no multiple of the warp's
block size and with one chunk larger than the grid; every layer and table must be the same.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio

import ecoassess

CHUNKS = (200, 1024)


@pytest.fixture(scope="module")
def runs(shared_sample, sample_run, tmp_path_factory):
    """The small chunk runs here; the large one is the sample's default run (conftest's ``sample_run``: chunk
    1024, the default, with maps, which are drawn from the layers compared here and change none of them)."""
    assert ecoassess.load_config(shared_sample).grid.chunk == CHUNKS[1]
    config = ecoassess.load_config(shared_sample)
    config.grid.chunk = CHUNKS[0]
    config.outputs.maps = False
    small = ecoassess.run(config, out=tmp_path_factory.mktemp("runs") / f"chunk{CHUNKS[0]}", quiet=True)
    return {CHUNKS[0]: small, CHUNKS[1]: sample_run}


def test_every_layer_is_identical_for_two_chunk_sizes(runs):
    small, large = (runs[c] for c in CHUNKS)
    assert small.layers and set(small.layers) == set(large.layers)
    assert small.grid == large.grid and max(small.grid.shape) < CHUNKS[1] < 2 * CHUNKS[0] * 4
    for name in sorted(small.layers):
        with rasterio.open(small.layers[name]) as a, rasterio.open(large.layers[name]) as b:
            va, vb = a.read(), b.read()
        assert va.dtype == vb.dtype and va.shape == vb.shape, name
        if va.dtype.kind == "f":
            differ = ~((va == vb) | (np.isnan(va) & np.isnan(vb)))
        else:
            differ = va != vb
        assert not differ.any(), (f"{name}: {differ.sum()} of {differ.size} cells differ between chunk {CHUNKS[0]} "
                                  f"and {CHUNKS[1]}")


def test_every_table_is_the_same_for_two_chunk_sizes(runs):
    """Same values; floating-point sums over chunks (areas, zonal sums) add in another order, which leaves residue
    (largest 2e-13 relative on the sample, in county_ei's areas), hence rtol 1e-12 rather than exact equality."""
    small, large = (runs[c] for c in CHUNKS)
    assert small.tables and set(small.tables) == set(large.tables)
    worst = 0.0
    for name in sorted(small.tables):
        a, b = small.tables[name], large.tables[name]
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=1e-12, obj=f"table {name}")
        numeric = a.select_dtypes("number").columns
        x, y = a[numeric].to_numpy(float), b[numeric].to_numpy(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.abs(x - y) / np.maximum(np.abs(x), np.abs(y))
        worst = max(worst, float(np.nanmax(rel, initial=0.0)))
    print(f"largest relative difference of a table value between chunk {CHUNKS[0]} and {CHUNKS[1]}: {worst:.2g}")
