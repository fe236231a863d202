"""Monitoring stations (sites + observations for the assessment year) for air, surface water, drinking-water
sources, soil, noise and ecology plots. Deliberate gaps: the last county has no air station, one water section
misses a month, and one surface-water section (the outflow section) lies just outside the study area."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyproj import Transformer
from scipy import ndimage

from ecoassess.sample import landcover as lcm
from ecoassess.sample.world import GEO_EPSG, RES_M, UTM_EPSG, World

#: station ids placed outside every county on purpose (a downstream outflow section)
DESIGNED_OUTSIDE = {"surface_water": ["W99"]}


class _Picker:
    def __init__(self, world: World, counties, rng):
        self.world, self.counties, self.rng = world, counties, rng
        self.tr = Transformer.from_crs(UTM_EPSG, GEO_EPSG, always_xy=True)
        self.interior = np.zeros(world.shape, dtype=bool)
        for k in range(1, len(counties.codes) + 1):
            self.interior |= ndimage.binary_erosion(counties.labels == k, iterations=int(180 / RES_M))
        self.used = np.zeros(world.shape, dtype=bool)

    def pick(self, mask, county: int | None, k: int = 1, min_sep_px: int = 5):
        m = mask & ~self.used
        if county is not None:
            m &= self.interior & (self.counties.labels == county)
        rr, cc = np.nonzero(m)
        out = []
        if rr.size == 0:
            return out
        for j in self.rng.permutation(rr.size)[: 50 * k]:
            r, c = int(rr[j]), int(cc[j])
            if self.used[r, c]:
                continue
            out.append((r, c))
            self.used[max(r - min_sep_px, 0): r + min_sep_px + 1, max(c - min_sep_px, 0): c + min_sep_px + 1] = True
            if len(out) >= k:
                break
        return out

    def lonlat(self, r, c):
        x, y = self.world.xy(r, c)
        lon, lat = self.tr.transform(float(x), float(y))
        return round(lon, 6), round(lat, 6)


def _site(p: _Picker, sid, name, county_code, r, c, **extra):
    lon, lat = p.lonlat(r, c)
    return {"station_id": sid, "name": name, "county_code": county_code, "lon": lon, "lat": lat, **extra}


def _days(year):
    return pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")


def air(p: _Picker, land, year, rng):
    sites = []
    ncty = len(p.counties.codes)
    for k in range(1, ncty):                       # the last county has no automatic air station (a gap)
        code = p.counties.codes[k - 1]
        seat = next(t for t in land.towns if t.seat and t.county == k)
        near_seat = np.zeros(p.world.shape, dtype=bool)
        near_seat[max(seat.row - 12, 0): seat.row + 13, max(seat.col - 12, 0): seat.col + 13] = True
        for r, c in p.pick(near_seat & (land.lucc == lcm.URBAN), k, 1):
            sites.append(_site(p, f"A{len(sites) + 1:02d}", f"{seat.name}空气自动站", code, r, c,
                               station_class="城市点", automatic=True))
        if k == 1:
            for r, c in p.pick(land.lucc == lcm.FOREST, k, 1):
                sites.append(_site(p, f"A{len(sites) + 1:02d}", f"{p.counties.names[k - 1]}背景站", code, r, c,
                                   station_class="背景点", automatic=True))
    days = _days(year)
    doy = days.day_of_year.values
    winter = 0.5 * (1 + np.cos(2 * np.pi * (doy - 15) / 366))          # 1 in mid-January
    regional = np.zeros(len(days))
    e = rng.normal(0, 0.35, len(days))
    for i in range(1, len(days)):
        regional[i] = 0.7 * regional[i - 1] + e[i]
    rows = []
    for s in sites:
        bg = 0.75 if s["station_class"] == "背景点" else 1.0
        local = rng.normal(0, 0.15, len(days))
        f = np.exp(regional + local)
        pm25 = bg * (22 + 60 * winter) * f
        rec = pd.DataFrame({
            "station_id": s["station_id"], "date": days.strftime("%Y-%m-%d"),
            "so2_ugm3": np.round(bg * (6 + 5 * winter) * np.exp(0.5 * local + 0.3 * regional)),
            "no2_ugm3": np.round(bg * (18 + 16 * winter) * np.exp(local + 0.5 * regional)),
            "co_mgm3": np.round(bg * (0.55 + 0.5 * winter) * np.exp(0.5 * local + 0.4 * regional), 1),
            "o3_8h_ugm3": np.round((70 + 85 * (1 - winter) ** 1.5) * np.exp(0.6 * local - 0.25 * regional)
                                   * (1.05 if bg < 1 else 1.0)),
            "pm10_ugm3": np.round(pm25 * rng.uniform(1.35, 1.7, len(days))),
            "pm25_ugm3": np.round(pm25),
        })
        miss = rng.random(len(days)) < 0.02                            # instrument outages
        rec.loc[miss, ["so2_ugm3", "no2_ugm3", "co_mgm3", "o3_8h_ugm3", "pm10_ugm3", "pm25_ugm3"]] = np.nan
        rows.append(rec)
    return pd.DataFrame(sites), pd.concat(rows, ignore_index=True)


WATER_COLS = ["ph", "do_mgl", "codmn_mgl", "cod_mgl", "bod5_mgl", "nh3n_mgl", "tp_mgl", "tn_mgl"]


def _water_obs(sites, year, rng, lake_ids, dirty_ids, drop=None):
    rows = []
    for s in sites:
        sid = s["station_id"]
        lake = sid in lake_ids
        q = 1.8 if sid in dirty_ids else (0.7 if lake else 1.0)
        for m in range(1, 13):
            if drop and drop == (sid, m):
                continue
            wet = 1.0 + 0.35 * np.sin(np.pi * (m - 4) / 6) if 4 <= m <= 10 else 1.0   # storm runoff in summer
            ln = lambda s_: np.exp(rng.normal(0, s_))  # noqa: E731
            rows.append({
                "station_id": sid, "date": f"{year}-{m:02d}-15",
                "ph": round(float(rng.normal(7.8, 0.25)), 2),
                "do_mgl": round(float(np.clip(rng.normal(8.6 - 1.6 * (m in (6, 7, 8)) - 1.2 * (q > 1.5), 0.6), 2, 12)), 2),
                "codmn_mgl": round(3.2 * q * wet * ln(0.2), 2),
                "cod_mgl": round(13.0 * q * wet * ln(0.2), 1),
                "bod5_mgl": round(2.4 * q * wet * ln(0.25), 1),
                "nh3n_mgl": round(0.35 * q * wet * ln(0.35), 3),
                "tp_mgl": round((0.035 if lake else 0.12) * q * wet * ln(0.3), 3),
                "tn_mgl": round((0.9 if lake else 1.6) * q * ln(0.2), 2),
            })
    return pd.DataFrame(rows)


def surface_water(p: _Picker, land, terrain, name_raster, name_list, year, rng):
    up = terrain.upstream_km2
    sites = []
    for k in range(1, len(p.counties.codes) + 1):
        code = p.counties.codes[k - 1]
        for r, c in p.pick((up >= 8.0) & (name_raster >= 0), k, 2, min_sep_px=60):
            river = name_list[name_raster[r, c]]
            sites.append(_site(p, f"W{len(sites) + 1:02d}", f"{river}{p.counties.names[k - 1][:2]}断面", code, r, c,
                               river=river, water_body="river", target_class="III", section_level="省控"))
    for res in land.reservoirs:
        cells = land.reservoir_labels == res["id"]
        rr, cc = np.nonzero(cells & p.interior)
        if rr.size:
            j = int(np.argmin(np.hypot(rr - res["row"], cc - res["col"])))
            k = int(p.counties.labels[rr[j], cc[j]])
            sites.append(_site(p, f"W{len(sites) + 1:02d}", f"{res['name']}库心", p.counties.codes[k - 1], rr[j], cc[j],
                               river=res["name"], water_body="lake", target_class="II", section_level="市控"))
    # the outflow section: on the largest river, 150–500 m outside the study area
    outside = ndimage.distance_transform_edt(p.counties.labels == 0) * RES_M
    m = (up >= 8.0) & (outside > 150) & (outside < 500) & (name_raster >= 0)
    if m.any():
        rr, cc = np.nonzero(m)
        j = int(np.argmax(up[rr, cc]))
        r, c = int(rr[j]), int(cc[j])
        _, (ir, ic) = ndimage.distance_transform_edt(p.counties.labels == 0, return_indices=True)
        k = int(p.counties.labels[ir[r, c], ic[r, c]])
        river = name_list[name_raster[r, c]]
        sites.append(_site(p, "W99", f"{river}出境断面", p.counties.codes[k - 1], r, c, river=river,
                           water_body="river", target_class="III", section_level="国控"))
    lake_ids = {s["station_id"] for s in sites if s["water_body"] == "lake"}
    dirty = {sites[1]["station_id"]} if len(sites) > 1 else set()       # a section below a town: IV–V class
    drop = (sites[0]["station_id"], 8)                                  # a month of missing data
    return pd.DataFrame(sites), _water_obs(sites, year, rng, lake_ids, dirty, drop)


def drinking_water(p: _Picker, land, terrain, name_raster, name_list, year, rng):
    sites = []
    for res in land.reservoirs:
        rr, cc = np.nonzero((land.reservoir_labels == res["id"]) & p.interior)
        if rr.size:
            j = int(np.argmax(np.hypot(rr - res["row"], cc - res["col"])))    # intake near the head of the lake
            k = int(p.counties.labels[rr[j], cc[j]])
            sites.append(_site(p, f"D{len(sites) + 1:02d}", f"{res['name']}饮用水水源地", p.counties.codes[k - 1],
                               rr[j], cc[j], source_type="湖库型", water_body="lake", river=res["name"],
                               target_class="II", served_population=int(rng.integers(30, 120)) * 1000))
    up = terrain.upstream_km2
    for t in [t for t in land.towns if t.seat][:2]:
        box = np.zeros(p.world.shape, dtype=bool)
        box[max(t.row - 60, 0): t.row + 61, max(t.col - 60, 0): t.col + 61] = True
        for r, c in p.pick(box & (up >= 3.0) & (name_raster >= 0) & (land.lucc != lcm.URBAN), t.county, 1):
            river = name_list[name_raster[r, c]]
            sites.append(_site(p, f"D{len(sites) + 1:02d}", f"{river}取水口", p.counties.codes[t.county - 1], r, c,
                               source_type="河流型", water_body="river", river=river, target_class="III",
                               served_population=int(rng.integers(20, 60)) * 1000))
    lake_ids = {s["station_id"] for s in sites if s["water_body"] == "lake"}
    return pd.DataFrame(sites), _water_obs(sites, year, rng, lake_ids, set())


def soil(p: _Picker, land, year, rng):
    sites, obs = [], []
    farmland = np.isin(land.lucc, (lcm.PADDY, lcm.DRY, lcm.ORCHARD))
    use = {lcm.PADDY: "paddy", lcm.ORCHARD: "orchard"}
    for k in range(1, len(p.counties.codes) + 1):
        for r, c in p.pick(farmland, k, 8, min_sep_px=25):
            sid = f"S{len(sites) + 1:03d}"
            lu = use.get(int(land.lucc[r, c]), "other")
            sites.append(_site(p, sid, f"{p.counties.names[k - 1]}耕地{len(sites) + 1}号点", p.counties.codes[k - 1],
                               r, c, land_use=lu))
            ph = float(np.clip(rng.normal(7.0 if lu == "paddy" else 7.4, 0.7), 4.8, 8.6))
            hot = rng.random() < 0.08                                  # a few Cd hot spots
            obs.append({"station_id": sid, "date": f"{year}-10-{int(rng.integers(8, 28)):02d}", "ph": round(ph, 2),
                        "cd_mgkg": round(float(0.22 * np.exp(rng.normal(0, 0.35)) * (3.0 if hot else 1.0)), 3),
                        "hg_mgkg": round(float(0.06 * np.exp(rng.normal(0, 0.4))), 3),
                        "as_mgkg": round(float(8.5 * np.exp(rng.normal(0, 0.25))), 2),
                        "pb_mgkg": round(float(29.0 * np.exp(rng.normal(0, 0.2))), 1),
                        "cr_mgkg": round(float(78.0 * np.exp(rng.normal(0, 0.15))), 1),
                        "cu_mgkg": round(float(27.0 * np.exp(rng.normal(0, 0.25)) * (3.5 if lu == "orchard" and hot else 1)), 1),
                        "ni_mgkg": round(float(34.0 * np.exp(rng.normal(0, 0.2))), 1),
                        "zn_mgkg": round(float(88.0 * np.exp(rng.normal(0, 0.2))), 1)})
    return pd.DataFrame(sites), pd.DataFrame(obs)


NOISE_LIMITS = {"0": (50, 40), "1": (55, 45), "2": (60, 50), "3": (65, 55), "4a": (70, 55), "4b": (70, 60)}


def noise(p: _Picker, land, year, rng):
    sites, obs = [], []
    classes = ["1", "2", "3", "4a"]
    for t in [t for t in land.towns if t.seat]:
        box = np.zeros(p.world.shape, dtype=bool)
        box[max(t.row - 40, 0): t.row + 41, max(t.col - 40, 0): t.col + 41] = True
        picks = p.pick(box & (land.lucc == lcm.URBAN), t.county, 4, min_sep_px=6)
        for j, (r, c) in enumerate(picks):
            fc = classes[j % 4]
            if t.county == 1 and j == 3:
                fc = "4b"                                              # beside the railway
            sites.append(_site(p, f"N{len(sites) + 1:02d}", f"{t.name}{fc}类区测点", p.counties.codes[t.county - 1],
                               r, c, function_class=fc))
    for r, c in p.pick((land.lucc == lcm.FOREST) & (land.river_dist_m < 600), 2, 1):
        sites.append(_site(p, f"N{len(sites) + 1:02d}", "疗养院0类区测点", p.counties.codes[1], r, c, function_class="0"))
    for s in sites:
        day_lim, night_lim = NOISE_LIMITS[s["function_class"]]
        for qtr, md in enumerate(("02-20", "05-20", "08-20", "11-20"), start=1):
            obs.append({"station_id": s["station_id"], "date": f"{year}-{md}", "quarter": qtr,
                        "leq_day_dba": round(float(day_lim - 3.5 + rng.normal(0, 2.4)), 1),
                        "leq_night_dba": round(float(night_lim - 2.5 + rng.normal(0, 2.8)), 1)})
    return pd.DataFrame(sites), pd.DataFrame(obs)


def ecology(p: _Picker, land, year, rng):
    sites, obs = [], []
    kinds = [(lcm.FOREST, "森林", 400), (lcm.SHRUB, "灌丛", 100), ((lcm.GRASS_HIGH, lcm.GRASS_MID), "草地", 4)]
    for k in range(1, len(p.counties.codes) + 1):
        for cls, eco, size in kinds:
            for r, c in p.pick(np.isin(land.lucc, cls), k, 1, min_sep_px=20):
                sid = f"E{len(sites) + 1:02d}"
                sites.append(_site(p, sid, f"{p.counties.names[k - 1]}{eco}样地", p.counties.codes[k - 1], r, c,
                                   ecosystem=eco, plot_size_m2=size))
                base = {"森林": (78, 42, 95.0), "灌丛": (62, 30, 18.0), "草地": (70, 22, 3.2)}[eco]
                obs.append({"station_id": sid, "date": f"{year}-08-{int(rng.integers(5, 25)):02d}",
                            "canopy_cover_pct": round(float(np.clip(rng.normal(base[0], 8), 10, 98)), 1),
                            "species_richness": int(max(3, rng.normal(base[1], 6))),
                            "biomass_t_ha": round(float(base[2] * np.exp(rng.normal(0, 0.25))), 2)})
    return pd.DataFrame(sites), pd.DataFrame(obs)
