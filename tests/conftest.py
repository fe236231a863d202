"""Shared fixtures: the path of ../shared/data (tests that need it skip with a reason when it is absent), and the
bundled sample area and one full run on it, made once per test process (each xdist worker makes its own).

Generating the sample takes tens of seconds and a full run on it more; a dozen modules each made their own. The
shared folders are read-only by agreement, and checked: after every test they are compared with what they held
when made (names, sizes, modification times), and a test that wrote, added or removed a file there fails, naming
the files. (Not chmod: the tests run as root here, where it stops nothing, and ``shutil.copytree`` would carry
read-only modes into the copies tests make to change.) A test that changes the sample's inputs works on
``sample_copy`` (a copy for its module) or copies the few files it changes."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

_READ_ONLY: dict[Path, dict[str, tuple[int, int]]] = {}   # shared folder -> {relative path: (size, mtime_ns)}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} is absent (it sits beside the checkout in CI)")
    return SHARED_DATA


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(folder))] = (st.st_size if p.is_file() else -1, st.st_mtime_ns)
    return out


def _freeze(folder: Path) -> None:
    """Remember ``folder``'s listing; the autouse check below compares it after each test."""
    _READ_ONLY[folder] = _listing(folder)


@pytest.fixture(autouse=True)
def _shared_folders_stay_unchanged():
    yield
    for folder, before in _READ_ONLY.items():
        after = _listing(folder)
        if after != before:
            changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
            _READ_ONLY[folder] = after   # name the culprit once, not every test after it
            pytest.fail(f"this test changed the shared read-only folder {folder}: {changed[:10]} (work on "
                        "sample_copy, or copy the files you change)", pytrace=False)


@pytest.fixture(scope="session")
def shared_sample(tmp_path_factory) -> Path:
    """``assessment.yaml`` of the sample area (seed 0, scale 1), generated once per process. Read-only."""
    from ecoassess.sample import write_sample

    folder = tmp_path_factory.mktemp("shared_sample") / "sample"
    config_path = write_sample(folder, seed=0, scale=1)
    _freeze(folder)
    yield config_path
    _READ_ONLY.pop(folder, None)


@pytest.fixture(scope="module")
def sample_copy(shared_sample, tmp_path_factory) -> Path:
    """``assessment.yaml`` in a copy of the shared sample, one per module, for tests that add or remove files
    beside it (configs of their own, a broken raster). Its files are hard links to the shared ones (177 MB need
    not be copied per module): replace a file (unlink, then write) rather than write into it; writing into one
    changes the shared sample, which the check after the test reports."""
    from tests.builders import link_copy

    folder = link_copy(shared_sample.parent, tmp_path_factory.mktemp("sample_copy") / "sample")
    return folder / shared_sample.name


# -- the report step of a run ---------------------------------------------------------------------------------------
# A whole run ends with the county report (17 maps, the PDF, Word, Excel, the web map: about 40 s on the sample).
# The tests of the report render it (fixture `report_rendering`: test_report_command, test_report_demo), and so does
# the shared full run `sample_run` (the pipeline's resume test compares a command-line run with it byte for byte);
# every other run in the suite skips that one step, so that the suite does not draw the same maps dozens of times.
# The step itself is `ecoassess.pipeline.render_run_report`.

import ecoassess.pipeline as _pipeline  # noqa: E402

_RENDER_RUN_REPORT = _pipeline.render_run_report


def _report_not_rendered_in_this_test(config, store, result) -> None:
    """Stands in for the report step outside the report's tests (see above)."""


@pytest.fixture(scope="session", autouse=True)
def _report_only_in_the_report_tests():
    _pipeline.render_run_report = _report_not_rendered_in_this_test
    yield
    _pipeline.render_run_report = _RENDER_RUN_REPORT


@pytest.fixture(scope="module")
def report_rendering():
    """Runs made while this fixture is active end with their report, as outside the tests."""
    previous, _pipeline.render_run_report = _pipeline.render_run_report, _RENDER_RUN_REPORT
    yield
    _pipeline.render_run_report = previous


@pytest.fixture(scope="session")
def sample_run(shared_sample, tmp_path_factory):
    """The full run (every stage, default config, maps and report included) on the shared sample, once per
    process; its results folder is read-only. Tests that only read a run's tables, layers and manifest share it."""
    import ecoassess

    out = tmp_path_factory.mktemp("shared_run") / "results"
    previous, _pipeline.render_run_report = _pipeline.render_run_report, _RENDER_RUN_REPORT  # with its report
    try:
        result = ecoassess.run(ecoassess.load_config(shared_sample), out=out)
    finally:
        _pipeline.render_run_report = previous
    _freeze(out)
    yield result
    _READ_ONLY.pop(out, None)


# -- a browser for the report's checks ------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (Debian's package, driven by Python playwright: no browser download);
    skipped, saying why, without it. The flags keep Chromium from calling home (the machine has no network)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not installed (scripts/install_system_packages.sh installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        yield chromium
        chromium.close()
