"""``validate``'s checks of the red-line inputs (issue 19 part 1): the ``redline`` section, the units of
``zones.redline``, the activity table and last year's ledger — read, not computed.

Overlapping units: a patch in the overlap would belong to two units (the detection gives it to the first, so the
second's disturbed share is silently low). An overlap larger than one grid cell is refused, naming both units and
the overlap in m² (red-line units partition the red line; a real overlap is an error in the layer); smaller ones
are digitising slivers and only a warning.
"""

from __future__ import annotations

import numpy as np
import shapely

from ecoassess.errors import InputError


def _grid_crs(config):
    from ecoassess.grid import china_albers_crs

    from pyproj import CRS

    return CRS.from_user_input(config.grid.crs) if config.grid.crs else china_albers_crs()


def _units(config):
    from ecoassess.readers import read_vector

    zone = config.zones["redline"]
    return read_vector(zone.path, zone.layer, key="zones.redline", crs=zone.crs, transformation=zone.transformation)


def unit_problems(gdf, id_field: str, path, cell_m2: float, crs) -> tuple[list[str], list[str]]:
    """(problems, warnings) of a red-line unit layer: ids missing or duplicated (1-based feature numbers), units
    overlapping by more than ``cell_m2`` (problems) or less (warnings); areas in ``crs`` (equal-area)."""
    problems, warnings = [], []
    ids = gdf[id_field]
    blank = ids.isna() | (ids.astype(str).str.strip().isin(["", "nan", "None"]))
    if blank.any():
        rows = np.flatnonzero(blank.to_numpy()) + 1
        problems.append(f"zones.redline.id_field: {int(blank.sum())} unit(s) of {path} have no id in '{id_field}' "
                        f"(feature(s) {', '.join(map(str, rows[:10]))}{' ...' if len(rows) > 10 else ''}); every "
                        "unit needs an id (the ledger and the summaries name units by it)")
    text = ids.astype(str).str.strip()
    dup = text[text.duplicated(keep=False) & ~blank]
    for value in sorted(set(dup))[:10]:
        rows = np.flatnonzero((text == value).to_numpy()) + 1
        problems.append(f"zones.redline.id_field: unit id '{value}' occurs {len(rows)} times in {path} (features "
                        f"{', '.join(map(str, rows))}); expected unique unit ids")
    geoms = shapely.make_valid(np.asarray(gdf.to_crs(crs.to_wkt()).geometry.values, dtype=object))
    tree = shapely.STRtree(geoms)
    for i, j in zip(*tree.query(geoms, predicate="intersects")):
        if i >= j:
            continue
        area = shapely.intersection(geoms[i], geoms[j]).area
        if area <= 0:
            continue
        pair = f"units '{text.iloc[i]}' and '{text.iloc[j]}' of {path} overlap by {area:,.0f} m²"
        if area > cell_m2:
            problems.append(f"zones.redline: {pair} (expected units that do not overlap: a patch there would "
                            f"belong to both; fix the layer, e.g. QGIS 'Difference')")
        else:
            warnings.append(f"zones.redline: {pair}, less than one grid cell ({cell_m2:g} m²): a digitising sliver, "
                            "counted with the first unit")
    return problems, warnings


def redline_problems(config) -> list[str]:
    """Every problem of the red-line inputs (empty when the stage is off and not asked for)."""
    from ecoassess.stages.redline import redline_problem

    problems = []
    spec = config.redline_spec
    why = redline_problem(config)
    if why is not None:
        return [f"redline: {why}"] if config.redline is not None else []
    cell_m2 = config.grid.resolution_m ** 2
    if spec.mmu_m2 is not None and spec.mmu_m2 < cell_m2:
        problems.append(f"redline.mmu_m2: {spec.mmu_m2:g} m² is below one grid cell ({config.grid.resolution_m:g} m × "
                        f"{config.grid.resolution_m:g} m = {cell_m2:g} m²); expected at least one cell (default: 9 "
                        f"cells = {9 * cell_m2:g} m²)")
    zone = config.zones["redline"]
    if zone.id_field is not None:
        try:
            gdf = _units(config)
        except InputError as exc:
            problems.append(f"zones.redline.path: {exc}")
        else:
            if zone.id_field in gdf.columns and gdf.crs is not None:
                problems += unit_problems(gdf, zone.id_field, zone.path, cell_m2, _grid_crs(config))[0]
    if spec.activity_table is not None:
        from ecoassess.redline.activity import load_activity_table

        try:
            load_activity_table(spec.activity_table)
        except InputError as exc:
            problems.append(f"redline.activity_table: {exc}")
    if spec.ledger is not None:
        from ecoassess.redline.ledger import read_ledger

        try:
            read_ledger(spec.ledger)
        except InputError as exc:
            problems.append(f"redline.ledger: {exc}")
    return problems


def redline_warnings(config) -> list[str]:
    """Doubts that do not stop the run: unit overlaps smaller than one grid cell."""
    from ecoassess.stages.redline import redline_problem

    zone = config.zones.get("redline")
    if zone is None or zone.id_field is None or redline_problem(config) is not None:
        return []
    try:
        gdf = _units(config)
    except InputError:
        return []
    if zone.id_field not in gdf.columns or gdf.crs is None:
        return []
    return unit_problems(gdf, zone.id_field, zone.path, config.grid.resolution_m ** 2, _grid_crs(config))[1]


__all__ = ["redline_problems", "redline_warnings", "unit_problems"]
