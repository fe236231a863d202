"""Command line: ``ecoassess sample | validate | run | network | redline | demo | report``. Errors print one clear message, no traceback."""

from __future__ import annotations

import json
import logging
import signal
import sys
import warnings
from pathlib import Path

import click

from ecoassess import __version__
from ecoassess.errors import ConfigError, EcoassessError

#: exit codes: 0 complete; 1 ``validate`` found problems; 2 an error stopped the command (one line says why);
#: 3 the run completed with failed parts (listed; earlier complete results are kept, see ``run``)
EXIT_INCOMPLETE = 3


def _setup_logging(quiet: bool, verbose: bool) -> None:
    from rich.console import Console
    from rich.logging import RichHandler

    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False,
                                              markup=False)], force=True)
    for noisy in ("rasterio", "fiona", "pyogrio", "matplotlib", "distributed", "asyncio", "PIL", "fontTools",
                  "weasyprint"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.showwarning = _warning_as_log_line


def _warning_as_log_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Python warnings (zone overlaps, RSEI sanity checks, ...) as one log line, without source file and code."""
    logging.getLogger("ecoassess").warning("%s", message)


def _terminate(signum, frame) -> None:
    """SIGTERM ends the command like Ctrl-C: the half-written results folder is removed, earlier results kept."""
    raise SystemExit(128 + signum)


class _Group(click.Group):
    """Turns ecoassess errors into a one-line message and exit code 2 (``--debug`` shows the traceback)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EcoassessError as exc:
            if ctx.params.get("debug"):
                raise
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)
        except OSError as exc:  # a results folder that cannot be written, a disk that is full, ...
            if ctx.params.get("debug"):
                raise
            from ecoassess.errors import space_errno, space_message

            where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f)
            code = space_errno(exc)
            if code is not None:  # a disk that is full: which file, which folder, how much space is left there
                folder = (ctx.obj or {}).get("out")
                text = space_message(code, exc.filename or folder or "the results", folder, "results folder")
            else:
                text = f"{where + ': ' if where else ''}{exc.strerror or exc}"
            click.secho(f"error: {text}", fg="red", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="ecoassess")
@click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors (for scripts).")
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
@click.option("--debug", is_flag=True, help="Show the Python traceback of errors.")
@click.pass_context
def main(ctx, quiet, verbose, debug):
    """ecoassess: ecological assessment from remote sensing and GIS."""
    ctx.ensure_object(dict)
    ctx.obj["quiet"] = quiet
    _setup_logging(quiet, verbose)
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (an embedding application): its own handlers stay
        pass


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=0, show_default=True, help="Random seed (same seed = identical files).")
@click.option("--scale", default=1, show_default=True, help="Pixel-count multiplier for benchmarks.")
def sample(directory, seed, scale):
    """Write the bundled synthetic sample area (inputs + assessment.yaml) into DIRECTORY."""
    from ecoassess.sample import write_sample

    config_path = write_sample(directory, seed=seed, scale=scale)
    click.echo(f"sample area written; config: {config_path}")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def validate(config, as_json):
    """Check CONFIG and its inputs without computing; list every problem."""
    from ecoassess.validate import validate_config

    try:
        cfg = validate_config(config)
    except ConfigError as exc:
        if as_json:
            click.echo(json.dumps({"config": str(config), "ok": False, "problems": exc.problems}, ensure_ascii=False,
                                  indent=2))
            sys.exit(1)
        click.secho(str(exc), fg="red", err=True)
        sys.exit(1)
    summary = {"config": str(config), "ok": True, "problems": [], "years": cfg.years,
               "scenes": {str(y): len(s) for y, s in cfg.imagery.items()}, "zones": sorted(cfg.zones),
               "stations": sorted(cfg.stations)}
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        click.secho(f"{config}: OK — years {cfg.years}, scenes {summary['scenes']}, zone sets {summary['zones']}, "
                    f"station types {summary['stations']}", fg="green")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Results folder: a new or empty folder, or earlier ecoassess results (replaced only when the run "
                   "succeeds; a stopped run is resumed by the same command).")
@click.option("--force", is_flag=True,
              help="When OUT holds files that are not earlier ecoassess results, write into a new subfolder "
                   "OUT/ecoassess-results instead of refusing (nothing of yours is ever deleted).")
@click.option("--scheduler", default=None, help="Address of a dask.distributed scheduler (default: local threads).")
@click.option("--stop-on-error", is_flag=True, help="Stop at the first failing year instead of reporting it.")
@click.option("--memory-budget-mb", type=click.FloatRange(min=0), default=None,
              help="Memory (MiB) for layers kept between passes; more is spilled to disk (overrides run.memory_budget_mb).")
@click.option("--stage", "stages", multiple=True,
              help="Run only this stage (repeatable) and the stages it needs; default: every stage the config enables.")
@click.pass_context
def run(ctx, config, out, force, scheduler, stop_on_error, memory_budget_mb, stages):
    """Run the assessment of CONFIG into OUT."""
    from ecoassess.store import usable_out_dir
    from ecoassess.validate import validate_config

    if stages:  # an unknown stage name is said before anything is read
        from ecoassess.pipeline import STAGES
        from ecoassess.stages.base import select_stages

        select_stages(STAGES, stages)
    ctx.obj["out"] = out  # named when the disk fills up
    # before the inputs are checked: a folder that cannot be used is said at once; with --force, the subfolder
    # chosen here is the one the run writes (so that the choice is made, and said, once)
    out = usable_out_dir(out, force=force, stages=list(stages) or None)
    ctx.obj["out"] = out
    cfg = validate_config(config)
    if stop_on_error:
        cfg.run.on_error = "stop"
    if memory_budget_mb is not None:
        cfg.run.memory_budget_mb = memory_budget_mb
    _run_and_report(cfg, out, scheduler, ctx.obj["quiet"], stages=list(stages) or None)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Results folder (as for run: a new or empty folder, or earlier ecoassess results).")
@click.option("--force", is_flag=True,
              help="When OUT holds files that are not earlier ecoassess results, write into a new subfolder "
                   "OUT/ecoassess-results instead of refusing (nothing of yours is ever deleted).")
@click.pass_context
def network(ctx, config, out, force):
    """The monitoring network of CONFIG into OUT: station tables graded to the standards, coverage audit,
    proposed sites, warnings (the run limited to the network stage)."""
    from ecoassess.store import usable_out_dir
    from ecoassess.validate import validate_config

    ctx.obj["out"] = out
    out = usable_out_dir(out, force=force, stages=["network"])
    ctx.obj["out"] = out
    cfg = validate_config(config)
    if not cfg.stations:
        raise ConfigError(config, ["stations: none configured (the network stage grades and audits stations.<type>: "
                                   "air, surface_water, drinking_water, soil, noise, ecology_plots)"])
    _run_and_report(cfg, out, None, ctx.obj["quiet"], stages=["network"])


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Results folder (as for ``run``): the ledger, chips and red-line tables are written there.")
@click.option("--ledger", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Last year's ledger as staff filled it in (redline_ledger.xlsx or .csv); overrides redline.ledger.")
@click.option("--force", is_flag=True,
              help="When OUT holds files that are not earlier ecoassess results, write into a new subfolder "
                   "OUT/ecoassess-results instead of refusing (nothing of yours is ever deleted).")
@click.option("--scheduler", default=None, help="Address of a dask.distributed scheduler (default: local threads).")
@click.pass_context
def redline(ctx, config, out, ledger, force, scheduler):
    """Red-line encroachment patches of CONFIG into OUT (the run limited to the redline stage)."""
    from ecoassess.config import RedlineSpec, load_config
    from ecoassess.errors import InputError
    from ecoassess.stages.redline import redline_problem
    from ecoassess.store import usable_out_dir
    from ecoassess.validate import validate_config

    ctx.obj["out"] = out
    out = usable_out_dir(out, force=force, stages=["redline"])
    ctx.obj["out"] = out
    cfg = load_config(config)
    if ledger is not None:
        if not ledger.is_file():
            raise InputError("file not found", path=ledger, field="--ledger",
                             expected="last year's redline_ledger.xlsx or .csv")
        spec = cfg.redline or RedlineSpec()
        cfg.redline = spec.model_copy(update={"ledger": ledger.resolve()})
    why = redline_problem(cfg)
    if why is not None:
        raise ConfigError(config, [f"redline: {why}"])
    cfg = validate_config(cfg)
    _run_and_report(cfg, out, scheduler, ctx.obj["quiet"], stages=["redline"])


@main.command()
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--sample-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the sample area is written (default: OUT-sample beside OUT).")
@click.option("--seed", default=0, show_default=True)
@click.option("--scale", default=1, show_default=True)
@click.option("--force", is_flag=True,
              help="When OUT holds files that are not earlier ecoassess results, write into a new subfolder "
                   "OUT/ecoassess-results instead of refusing (nothing of yours is ever deleted).")
@click.option("--scheduler", default=None)
@click.pass_context
def demo(ctx, out, sample_dir, seed, scale, force, scheduler):
    """Write the sample area and run the assessment on it (``sample`` + ``run``)."""
    from ecoassess.sample import write_sample
    from ecoassess.validate import validate_config

    ctx.obj["out"] = out
    sample_dir = sample_dir or out.parent / f"{out.name}-sample"
    config_path = write_sample(sample_dir, seed=seed, scale=scale)
    click.echo(f"sample area: {sample_dir}")
    _run_and_report(validate_config(config_path), out, scheduler, ctx.obj["quiet"], force)


@main.command()
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--lang", "langs", default=None,
              help="Language(s) of the report, comma-separated: zh, en (default: the run's report.languages, else zh).")
@click.option("--format", "formats", default=None,
              help="Formats, comma-separated: html, pdf, docx, xlsx, webmap (default: the run's report.formats, "
                   "else all).")
def report(results, langs, formats):
    """Render the report of the results folder RESULTS into RESULTS/report/<lang>/ from its saved results
    (nothing is computed again); prints each file written."""
    from ecoassess.report import FORMATS, check_formats, write_report
    from ecoassess.report.i18n import check_language
    from ecoassess.report.results import ResultsFolder

    folder = ResultsFolder(results)  # a folder that is not results is said before anything else
    given = (folder.config.get("given") or {}).get("report") or {}
    asked = langs if langs is not None else ",".join(given.get("languages") or ["zh"])
    lang_list = [x.strip() for x in asked.split(",") if x.strip()]
    for lang in lang_list:
        check_language(lang)
    chosen = check_formats(formats if formats is not None else (given.get("formats") or list(FORMATS)))
    written = write_report(folder.path, lang_list, chosen, tile_url=given.get("tile_url"),
                           tile_attribution=given.get("tile_attribution"))
    _print_report(written)


def _print_report(written: dict) -> None:
    """One line per report file: ``report zh/pdf: RESULTS/report/zh/report.pdf``."""
    for key, path in written.items():
        click.echo(f"  report {key}: {path}")


def _run_and_report(cfg, out, scheduler, quiet, force=False, stages=None):
    from ecoassess.pipeline import run as run_pipeline

    result = run_pipeline(cfg, out, scheduler=scheduler, quiet=quiet, force=force, stages=stages)
    if not quiet:
        _print_outputs(result)
        if result.warnings:
            click.secho("warnings (also in manifest.json):", fg="yellow", err=True)
            for warning in result.warnings:
                click.secho(f"  - {warning}", fg="yellow", err=True)
    if result.problems:  # even with --quiet: these are the run's failures
        click.secho("problems (the rest of the run completed):", fg="yellow", err=True)
        for problem in result.problems:
            click.secho(f"  - {problem}", fg="yellow", err=True)
        if result.kept_earlier is not None:
            click.secho(f"earlier results in {result.kept_earlier} were kept; this run's results are in "
                        f"{result.out_dir}", fg="yellow", err=True)
        raise SystemExit(EXIT_INCOMPLETE)


def _print_outputs(result) -> None:
    """The run summary: each table where it was written (only the formats ``outputs.tables`` asks for)."""
    out = Path(result.out_dir)
    click.echo(f"results: {out}")
    for name in sorted(result.tables):
        files = [rel for rel in result.table_files.get(name, []) if (out / rel).is_file()]
        click.echo(f"  table  {name}: {', '.join(files) or 'not written (outputs.tables lists no format)'}")
    for name, path in sorted(result.layers.items()):
        click.echo(f"  layer  {name}: {path}")
    for name, path in sorted(result.maps.items()):
        click.echo(f"  map    {name}: {path}")
    for name, path in sorted(result.files.items()):
        if not name.startswith("report "):
            click.echo(f"  file   {name}: {path}")
    _print_report({name.removeprefix("report "): path for name, path in result.files.items()
                   if name.startswith("report ")})
    click.echo(f"  manifest: {Path(result.out_dir) / 'manifest.json'}")


@main.group()
def indices():
    """The spectral index catalog (indices/spectral.yaml)."""


_CATALOG_OPTION = click.option(
    "--catalog", "catalog_path", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
    help="An index catalog YAML of your own (default: the shipped indices/spectral.yaml; see indices/README.md).")


@indices.command("list")
@click.option("--json", "as_json", is_flag=True)
@_CATALOG_OPTION
def indices_list(as_json, catalog_path):
    """Show the catalog: name, bands, valid range, reference."""
    from ecoassess.spectral import load_catalog

    catalog = load_catalog(catalog_path)
    rows = [{"name": i.name, "long_name": i.long_name, "formula": i.formula, "bands": list(i.bands),
             "constants": i.constants, "valid_range": list(i.valid_range) if i.valid_range else None,
             "input_level": i.input_level, "reference": i.reference} for i in catalog.indices.values()]
    if as_json:
        click.echo(json.dumps({"version": catalog.version, "indices": rows}, ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ecoassess index catalog {catalog.version} ({len(rows)} indices)")
    for col in ("name", "bands", "valid range", "formula"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], ", ".join(r["bands"]), str(r["valid_range"]), r["formula"])
    Console().print(table)


@indices.command("compute")
@click.argument("names", nargs=-1, required=True)
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--year", type=int, default=None, help="Year of imagery to use (default: the assessment year).")
@_CATALOG_OPTION
def indices_compute(names, config_path, out, year, catalog_path):
    """Compute catalog indices NAMES on the config's composite and write them as COGs into OUT."""
    from ecoassess.pipeline import compute_indices
    from ecoassess.validate import validate_config

    cfg = validate_config(config_path)
    written = compute_indices(cfg, list(names), out, year=year, catalog=catalog_path)
    for name, info in written.items():
        click.echo(f"{name}: {info['path']}  ({info['share_outside_valid_range']:.2%} of pixels outside "
                   f"the valid range {info['valid_range']})")


@main.group()
def landcover():
    """Land-cover classification (issue 21): train a classifier, predict a year's map, assess its accuracy."""


_OUT_OPTION = click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
                           help="Results folder (as for run: a new or empty folder, or earlier ecoassess results).")
_FORCE_OPTION = click.option("--force", is_flag=True,
                             help="When OUT holds files that are not earlier ecoassess results, write into a new "
                                  "subfolder OUT/ecoassess-results instead of refusing.")


@landcover.command("train")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_OUT_OPTION
@_FORCE_OPTION
def landcover_train(config, out, force):
    """Train the classifier of CONFIG (landcover_model) and save it in OUT/model."""
    from ecoassess.landcover.commands import train
    from ecoassess.validate import validate_config

    done = train(validate_config(config), out, force=force)
    model = done["model"]
    click.echo(f"model: {done['out'] / 'model' / 'model.json'} — {len(model.classes)} classes, "
               f"{len(model.feature_names)} features, {model.extra['n_pixels']} training pixels, out-of-bag "
               f"accuracy {model.extra['oob_accuracy']:.3f} (not independent: assess with a validation sample)")
    if len(done["rejected"]):
        click.secho(f"{len(done['rejected'])} sample(s) set aside: {done['out'] / 'tables'} "
                    "landcover_rejected_samples", fg="yellow", err=True)
        for line in done["messages"]:
            click.secho(f"  - {line}", fg="yellow", err=True)


@landcover.command("predict")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_OUT_OPTION
@click.option("--year", type=int, default=None, help="Imagery year to classify (default: the assessment year).")
@click.option("--model", "model_path", type=click.Path(path_type=Path), default=None,
              help="A saved model (its folder or model.json; default landcover_model.model, else train now).")
@_FORCE_OPTION
def landcover_predict(config, out, year, model_path, force):
    """Classify a year of CONFIG's imagery into OUT/layers/landcover_<year>.tif with its class areas."""
    from ecoassess.landcover.commands import predict
    from ecoassess.validate import validate_config

    done = predict(validate_config(config), out, year=year, model_path=model_path, force=force)
    click.echo(f"map: {done['map']}")
    for row in done["areas"].itertuples():
        click.echo(f"  {row.class_code:>4} {row.class_name:<8} {row.area_km2:12.3f} km²")


@landcover.command("assess")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_OUT_OPTION
@click.option("--map", "map_path", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The classified map (e.g. OUT/layers/landcover_2024.tif).")
@click.option("--reference", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Labelled reference sample (default landcover_model.validation).")
@click.option("--class-field", default=None, help="Label column of the reference (default reference_class).")
@_FORCE_OPTION
def landcover_assess(config, out, map_path, reference, class_field, force):
    """Accuracy of a map: confusion matrix, user's/producer's accuracy, error-adjusted areas with 95 % intervals."""
    from ecoassess.landcover.commands import assess
    from ecoassess.validate import validate_config

    done = assess(validate_config(config), out, map_path=map_path, reference=reference, class_field=class_field,
                  force=force)
    summary = done["summary"]
    click.echo(f"overall accuracy {summary.overall:.3f} ({int(done['confusion'].to_numpy().sum())} samples; "
               "area-weighted, Olofsson et al. 2014)")
    adjusted = done["adjusted"]
    click.echo(f"{'class':>6} {'users':>6} {'producers':>9} {'mapped km²':>11} {'adjusted km²':>13} {'95 % interval':>22}")
    for code, row in adjusted.iterrows():
        click.echo(f"{code:>6} {row['users']:6.3f} {row['producers']:9.3f} {row['mapped_area']:11.3f} "
                   f"{row['adjusted_area']:13.3f} {row['ci_low']:10.3f}–{row['ci_high']:<10.3f}")
    click.echo(f"tables: {done['out'] / 'tables'}")
    if done.get("sidecar") is not None:
        click.echo(f"accuracy recorded beside the map: {done['sidecar']}")
