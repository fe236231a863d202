"""Before/after image chips of ledger patches for field checks (issue 19 part 4): one PNG per patch.

Each chip shows the patch's surroundings on the two dates side by side in true colour, every chip and both dates
stretched with the same limits (the 2nd and 98th percentiles of both images, all three bands together, from a
sample of at most 3 M values each), so that a change of colour is a change on the ground, not of the stretch, and
chips of different patches compare. Both show the patch outline, drawn one pixel outside the patch (a road one
pixel wide stays visible), a scale bar, and the patch's id, activity, area (m² and 亩), periods and sensors.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ecoassess.errors import InputError
from ecoassess.files import atomic_path

log = logging.getLogger(__name__)

#: the window around a patch: its bounding box grown by this share of its larger side on every side, at least
#: ``MIN_PAD_PIXELS`` pixels
PAD_SHARE = 0.75
MIN_PAD_PIXELS = 20
OUTLINE = "#ffff00"
#: beyond the images' edges (as the maps' no-data face)
NO_DATA = "#d9d9d9"
#: red-line unit boundaries, dashed
UNIT_LINE = "#e8003d"


def chip_window(geom, res_m: float) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of a square window centred on ``geom``'s bounding box (map units)."""
    x0, y0, x1, y1 = geom.bounds
    side = max(x1 - x0, y1 - y0)
    half = side / 2 + max(PAD_SHARE * side, MIN_PAD_PIXELS * res_m)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return cx - half, cy - half, cx + half, cy + half


def _cut(rgb, window):
    """The (band, y, x) values of ``rgb`` inside ``window``, as float64, and their extent."""
    xmin, ymin, xmax, ymax = window
    ys = rgb["y"].values
    ysl = slice(ymax, ymin) if ys[0] > ys[-1] else slice(ymin, ymax)
    part = rgb.sel(x=slice(xmin, xmax), y=ysl)
    if part.sizes["x"] == 0 or part.sizes["y"] == 0:
        return None, None
    values = np.asarray(part.values, dtype="float64")
    nodata = rgb.rio.nodata if hasattr(rgb, "rio") else None
    if nodata is not None and not np.isnan(nodata):
        values[values == nodata] = np.nan
    xs, yv = part["x"].values, part["y"].values
    dx = abs(float(xs[1] - xs[0])) if len(xs) > 1 else _res(rgb)
    dy = abs(float(yv[1] - yv[0])) if len(yv) > 1 else _res(rgb)
    extent = (xs.min() - dx / 2, xs.max() + dx / 2, yv.min() - dy / 2, yv.max() + dy / 2)
    if ys[0] < ys[-1]:  # rows south to north: turn them to north-up for imshow
        values = values[:, ::-1, :]
    return values, extent


def _sample(rgb, max_values: int = 3_000_000) -> np.ndarray:
    """Every k-th row and column of a (band, y, x) image (at most ``max_values`` values), as float64 with nodata
    NaN: enough for its percentiles, without reading all of a county at 10 m."""
    step = max(1, int(np.ceil(np.sqrt(rgb.size / max_values))))
    values = np.asarray(rgb[:, ::step, ::step].values, dtype="float64")
    nodata = rgb.rio.nodata
    if nodata is not None and not np.isnan(nodata):
        values[values == nodata] = np.nan
    return values


def _res(rgb) -> float:
    return abs(float(rgb["x"].values[1] - rgb["x"].values[0]))


def common_stretch(before: np.ndarray, after: np.ndarray, percent=(2, 98)) -> tuple[float, float]:
    """(low, high): the ``percent`` percentiles of the finite values of both (band, y, x) arrays, all bands
    together — one linear stretch for red, green and blue keeps the colour balance (a stretch per band turned
    the grey-green of a real Landsat window into cyan and orange), and one for both dates keeps their colours
    comparable."""
    both = np.concatenate([before.ravel(), after.ravel()])
    both = both[np.isfinite(both)]
    if not both.size:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(both, percent))
    return lo, (hi if hi > lo else lo + 1e-12)


def stretched(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(y, x, 3) image in 0..1 from (band, y, x) values: (v − lo) / (hi − lo) clipped; nodata light grey."""
    img = (values - lo) / (hi - lo)
    img = np.clip(img, 0.0, 1.0).transpose(1, 2, 0)
    img[~np.isfinite(img).all(axis=2)] = 0.85
    return img


def _check_rgb(rgb, name: str) -> None:
    dims = tuple(getattr(rgb, "dims", ()))
    if dims != ("band", "y", "x") or rgb.sizes["band"] != 3:
        raise InputError(f"the {name} image has dimensions {dims} and {dict(getattr(rgb, 'sizes', {}))}",
                         field=name, expected="a (band, y, x) DataArray of 3 bands in the order red, green, blue")
    if rgb.rio.crs is None:
        raise InputError(f"the {name} image has no CRS", field=name, expected="a georeferenced DataArray (rioxarray)")


def write_chips(ledger, before_rgb, after_rgb, out_dir, *, only_reported: bool = False, dpi: int = 120,
                percent=(2, 98), units=None) -> list[Path]:
    """One PNG per patch, ``<out_dir>/<patch_id>.png``; ``before_rgb`` / ``after_rgb``: (band, y, x) red, green, blue
    reflectance with a CRS. ``only_reported``: only this run's findings (本期上报). ``units``: the red-line units
    (GeoDataFrame), whose boundaries are drawn, so a reviewer sees why a patch is 红线内 or 缓冲区. Patches outside
    the images are left out (logged). Returns the files written."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ecoassess.redline.ledger import ledger_spec, mu_m2
    from ecoassess.report.fonts import font_rc

    _check_rgb(before_rgb, "before")
    _check_rgb(after_rgb, "after")
    if after_rgb.rio.crs != before_rgb.rio.crs:
        after_rgb = after_rgb.rio.reproject_match(before_rgb)
    table = ledger[ledger["reported"]] if only_reported else ledger
    geoms = table.geometry.to_crs(before_rgb.rio.crs)
    boundaries = None if units is None else units.geometry.to_crs(before_rgb.rio.crs).boundary
    res = _res(before_rgb)
    lo, hi = common_stretch(_sample(before_rgb), _sample(after_rgb), percent)
    out_dir = Path(out_dir)
    labels = ledger_spec()["labels"]
    written = []
    with matplotlib.rc_context(font_rc()):
        for (_, row), geom in zip(table.iterrows(), geoms):
            window = chip_window(geom, res)
            before, extent = _cut(before_rgb, window)
            after, _ = _cut(after_rgb, window)
            if before is None or after is None or before.shape != after.shape:
                log.warning("patch %s lies outside the before/after images: no chip", row["patch_id"])
                continue
            fig = Figure(figsize=(9.0, 5.0), dpi=dpi)
            FigureCanvasAgg(fig)
            change = labels["change_type"].get(row["change_type"], row["change_type"])
            where = labels["location"].get(row["location"], row["location"])
            fig.text(0.5, 0.955, f"{row['patch_id']}  {row.get('activity_name') or ''}  {change}  {where}  "
                     f"{row['area_m2']:.0f} m² / {row['area_m2'] / mu_m2():.2f} 亩", ha="center", va="center",
                     fontsize=12)
            fig.text(0.5, 0.905, f"{row.get('unit_name') or ''}  {row.get('county_name') or ''}  "
                     f"中心点 {row['centroid_lon']:.6f}°E {row['centroid_lat']:.6f}°N", ha="center", va="center",
                     fontsize=9, color="#333333")
            for k, (values, period, sensor, what) in enumerate(
                    ((before, row.get("before_period"), row.get("before_sensor"), "前时相"),
                     (after, row.get("after_period"), row.get("after_sensor"), "后时相"))):
                ax = fig.add_axes((0.02 + 0.49 * k, 0.06, 0.47, 0.78), facecolor=NO_DATA)
                ax.imshow(stretched(values, lo, hi), extent=extent, interpolation="nearest")
                if boundaries is not None:
                    _unit_boundaries(ax, boundaries, window)
                _outline(ax, geom.buffer(res, join_style="mitre"))
                ax.set_xlim(window[0], window[2])
                ax.set_ylim(window[1], window[3])
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"{what} {period or ''}  {sensor or ''}", fontsize=10)
                _scale_bar(ax, before_rgb.rio.crs, window)
            _legend(fig, boundaries is not None)
            path = out_dir / f"{row['patch_id']}.png"
            with atomic_path(path, suffix=".png") as tmp:
                fig.savefig(tmp, dpi=dpi, format="png", facecolor="white", metadata={"Software": None})
            written.append(path)
    return written


def _outline(ax, geom) -> None:
    """The patch outline in yellow on a black halo (visible on vegetation and on bright bare ground alike), drawn
    one pixel outside the patch so that a road one pixel wide is not hidden under it."""
    from matplotlib import patheffects

    halo = [patheffects.withStroke(linewidth=3.2, foreground="black")]
    for poly in getattr(geom, "geoms", [geom]):
        for ring in [poly.exterior, *poly.interiors]:
            x, y = ring.xy
            ax.plot(x, y, color=OUTLINE, linewidth=1.6, path_effects=halo)


def _unit_boundaries(ax, boundaries, window) -> None:
    """Red-line unit boundaries in the window, dashed red (the patch outline stays yellow on top)."""
    from shapely.geometry import box

    frame = box(*window)
    for line in boundaries[boundaries.intersects(frame)]:
        for part in getattr(line, "geoms", [line]):
            x, y = part.xy
            ax.plot(x, y, color=UNIT_LINE, linewidth=1.3, linestyle=(0, (4, 2)))


def _legend(fig, with_units: bool) -> None:
    """What the outline, the dashed line and the grey mean, under the two images."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=OUTLINE, linewidth=1.6, label="图斑边界 patch")]
    if with_units:
        handles.append(Line2D([], [], color=UNIT_LINE, linewidth=1.3, linestyle=(0, (4, 2)),
                              label="生态保护红线 red-line unit"))
    handles.append(Patch(facecolor=NO_DATA, edgecolor="#999999", label="未观测 (云/阴影/无数据) not observed"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.005))


def _scale_bar(ax, crs, window) -> None:
    """A black bar of a round length (1, 2 or 5 × 10ⁿ m, ≤ a quarter of the width) in the lower left, labelled."""
    from matplotlib.patches import Rectangle

    from ecoassess.report.maps import ground_m_per_map_unit, nice_scale_length_m

    x0, y0, x1, y1 = window
    w, h = x1 - x0, y1 - y0
    k = ground_m_per_map_unit(crs, (x0 + x1) / 2, (y0 + y1) / 2, step=w / 20)
    length_m = nice_scale_length_m(w * k)
    bx, by = x0 + 0.05 * w, y0 + 0.06 * h
    ax.add_patch(Rectangle((bx - 0.02 * w, by - 0.03 * h), length_m / k + 0.04 * w + 0.12 * w, 0.09 * h,
                           facecolor="white", edgecolor="none", alpha=0.8, zorder=9))
    ax.add_patch(Rectangle((bx, by), length_m / k, 0.015 * h, facecolor="black", edgecolor="black", zorder=10))
    text = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    ax.text(bx + length_m / k + 0.015 * w, by + 0.0075 * h, text, ha="left", va="center", fontsize=8, zorder=11)


__all__ = ["write_chips", "chip_window", "common_stretch", "stretched"]
