"""GB 15618-2018 screening/control values and point classes (STANDARDS §7.4, §8 item 16); the values in the comments
are STANDARDS §7.4's tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecoassess.errors import InputError
from ecoassess.network.soil import control_value, ph_band, screening_value, soil_class


def test_ph_band_boundaries():
    """≤ 5.5 | 5.5 < pH ≤ 6.5 | 6.5 < pH ≤ 7.5 | > 7.5: each bound belongs to the lower band."""
    assert list(ph_band([4.0, 5.5, 5.51, 6.5, 6.51, 7.5, 7.51, 9.0, np.nan])) == [0, 0, 1, 1, 2, 2, 3, 3, -1]
    # Cd other land: 0.3, 0.3, 0.3, 0.6 — pH 7.5 is still 0.3, 7.51 is 0.6
    assert screening_value("cd", 7.5, "旱地") == 0.3 and screening_value("cd", 7.51, "旱地") == 0.6
    # Pb paddy 80/100/140/240: pH 5.5 → 80, 5.6 → 100
    assert screening_value("pb", 5.5, "水田") == 80 and screening_value("pb", 5.6, "水田") == 100


def test_paddy_vs_other_and_orchard_cu():
    """Cd at pH 7.0: paddy 0.6, other 0.3. Cu at pH 7.0: orchard 200, other 100; a paddy takes the 其他 Cu row
    (100), and an orchard takes the 其他 row of Cd (0.3), never the paddy one."""
    assert screening_value("cd", 7.0, "水田") == 0.6 and screening_value("cd", 7.0, "其他") == 0.3
    assert screening_value("cu", 7.0, "果园") == 200 and screening_value("cu", 7.0, "旱地") == 100
    assert screening_value("cu", 7.0, "水田") == 100
    assert screening_value("cd", 7.0, "果园") == 0.3
    # Hg paddy 0.5 vs other 1.3 at pH 5; As paddy 25 vs other 30 at pH 7; Ni/Zn the same for all
    assert screening_value("hg", 5.0, "paddy") == 0.5 and screening_value("hg", 5.0, "other") == 1.3
    assert screening_value("as", 7.0, "水田") == 25 and screening_value("as", 7.0, "水浇地") == 30
    assert screening_value("ni", 8.0, "水田") == screening_value("ni", 8.0, "果园") == 190
    # 水旱轮作: the smaller of paddy and other (Hg pH 5: 0.5; Cd pH 7: 0.3)
    assert screening_value("hg", 5.0, "水旱轮作") == 0.5 and screening_value("cd", 7.0, "水旱轮作") == 0.3


def test_control_values_only_five_metals():
    """As control decreases with pH: 200/150/120/100; Cu, Ni, Zn have none."""
    assert [control_value("as", p) for p in (5.0, 6.0, 7.0, 8.0)] == [200, 150, 120, 100]
    assert control_value("cd", 5.5) == 1.5 and control_value("cr", 8.0) == 1300
    assert all(np.isnan(control_value(m, 7.0)) for m in ("cu", "ni", "zn"))


def test_point_classes():
    """pH 8 dryland: As screening 25, control 100.
    P1 As 25 → ≤ screening → 优先保护类; P2 As 60 → between → 安全利用类; P3 As 101 → above control → 严格管控类;
    P4 Cu 120 (> 100, no control) and As 10 → 安全利用类, not 严格管控类; P5 no metal value → no class."""
    df = pd.DataFrame({"ph": ["8.0", 8, 8, 8, 8], "land_use": ["旱地"] * 5,
                       "as_mgkg": [25, "60", 101, 10, "—"], "cu_mgkg": [20, 20, 20, "120 mg/kg", ""]})
    out = soil_class(df)
    assert list(out["as_status"][:4]) == ["below_screening", "between", "above_control", "below_screening"]
    assert pd.isna(out["as_status"][4]) and pd.isna(out["soil_class"][4])
    assert list(out["cu_status"][:4]) == ["below_screening"] * 3 + ["above_screening"]
    assert list(out["soil_class"][:4]) == ["优先保护类", "安全利用类", "严格管控类", "安全利用类"]
    assert out["as_pi"][1] == pytest.approx(60 / 25) and out["as_control_mgkg"][0] == 100
    assert list(out["n_metals"]) == [2, 2, 2, 2, 0]


def test_paddy_point_same_values_other_class():
    """Cd 0.5 at pH 7.0: paddy screening 0.6 → 优先保护类; dryland 0.3 → 安全利用类 (control 3.0)."""
    df = pd.DataFrame({"ph": [7.0, 7.0], "land_use": ["水田", "旱地"], "cd_mgkg": [0.5, 0.5]})
    assert list(soil_class(df)["soil_class"]) == ["优先保护类", "安全利用类"]


def test_bad_points():
    with pytest.raises(InputError, match=r"ph.*row 1"):
        soil_class(pd.DataFrame({"ph": [7, "—"], "land_use": ["旱地", "旱地"], "cd_mgkg": [0.1, 0.1]}))
    with pytest.raises(InputError, match="land use"):
        soil_class(pd.DataFrame({"ph": [7], "land_use": ["林地"], "cd_mgkg": [0.1]}))
    with pytest.raises(InputError, match=r"cd_mgkg.*negative"):
        soil_class(pd.DataFrame({"ph": [7], "land_use": ["旱地"], "cd_mgkg": [-0.1]}))
    with pytest.raises(InputError, match="no metal"):
        soil_class(pd.DataFrame({"ph": [7], "land_use": ["旱地"], "cd": [0.1]}))
