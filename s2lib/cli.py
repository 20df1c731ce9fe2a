"""The ``s2book`` command: thin click front end over s2lib (DESIGN.md section 3.1).

Every subcommand imports its module lazily so that ``s2book inspect`` does not pay for matplotlib or papermill.
Errors of s2lib (``S2BookError``) are printed as one line on stderr (``s2book: error: ...``); warnings as one line
each (``s2book: warning: <file>: <key>: ...``, no source line); no Python traceback reaches the user for a bad
file, key or value. Exit status: :data:`EXIT_CODES`.
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from .errors import ConfigError, ProjectError, S2BookError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 75
EXIT_CODES = {EXIT_OK: "success (every selected stage ok or up to date)",
              EXIT_FAILED: "a run, stage or command failed (the error line says which and why)",
              EXIT_USAGE: "usage or configuration error (unknown option, bad key or value in a run YAML, "
                          "no book project)",
              EXIT_BUSY: "busy: another s2book run holds the lock of a run (use --wait)"}
"""Documented exit statuses of ``s2book`` (README, ``s2book --help``); 75 is EX_TEMPFAIL of sysexits.h."""


def _fail(err: Exception) -> None:
    click.echo(f"s2book: error: {err}", err=True)
    sys.exit(EXIT_USAGE if isinstance(err, (ConfigError, ProjectError)) else EXIT_FAILED)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: Any = None, line: str | None = None) -> None:
    """``warnings.showwarning`` for the command line: ``s2book: warning: <message>`` on one line, no source."""
    text = " ".join(str(message).split())
    print(f"s2book: warning: {text}", file=sys.stderr if file is None else file, flush=True)


def _book_option(command: Any) -> Any:
    """The ``--book DIR`` option of the commands that act on a book project."""
    return click.option("--book", "book", type=click.Path(path_type=Path), default=None,
                        help="The book project (default: the current folder, or the nearest parent folder "
                             "holding _config.yml and _toc.yml).")(command)


def _project(book: Path | None) -> Path:
    """The book project of a command (:func:`s2lib.report.project.find_project`); exit 2 with a one-line error."""
    from s2lib.report.project import find_project

    try:
        return find_project(book)
    except ProjectError as err:
        _fail(err)
    raise AssertionError("unreachable")  # pragma: no cover


_EPILOG = "\b\nExit status:\n" + "\n".join(f"  {code:<3} {text}" for code, text in EXIT_CODES.items())


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EPILOG)
@click.version_option(package_name="s2book")
def main() -> None:
    """s2book: S2 / X-ray / recombination reports from Tektronix FastFrame runs."""
    warnings.showwarning = _one_line_warning


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the header facts and checks as one JSON object.")
def inspect(file: Path, as_json: bool) -> None:
    """Print the header facts of a Tektronix WFM FILE (frames, points, sampling, scale, timestamps)."""
    from s2lib.io.wfm_inspect import format_summary, inspect_summary

    try:
        summary = inspect_summary(file)
    except (S2BookError, OSError) as err:
        _fail(err if isinstance(err, S2BookError) else S2BookError(f"{file}: {err.strerror or err}"))
    if summary.get("partial"):
        click.echo(f"s2book: warning: {file}: curve buffer: truncated; read the {summary['frames']} complete frames "
                   f"of the {summary['frames_promised']} the header promises", err=True)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(format_summary(summary))


@main.command()
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--profile", type=click.Choice(["tiny", "demo", "realistic"]), default="tiny", show_default=True,
              help="tiny: seconds, for tests; demo: the demo book's run; realistic: 5 GS/s, 250 000 samples, 49 frames/file.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed (same seed, same files).")
@click.option("--force", is_flag=True, help="Overwrite an existing non-empty OUTDIR.")
@click.option("--alpha", type=click.Choice(["old", "new"]), default=None,
              help="Alpha-tagged run (silicon channel, Th-228 chain) in the old (Ch1/Ch4) or new DAQ layout (CH3/CH4, "
                   "988 frames per file), with the closure test's settings (s2lib.validate.alpha_closure).")
def simulate(outdir: Path, profile: str, seed: int, force: bool, alpha: str | None) -> None:
    """Write a synthetic run to OUTDIR: WFM#003 FastFrame files per set, truth.json and run.yaml."""
    from s2lib.sim.simulate import simulate_run

    try:
        if alpha is not None:
            from .sim._sim_alpha_pmt import simulate_alpha_run
            from .validate.alpha_closure import CLOSURE_OVERRIDES

            layout = {} if alpha == "old" else {"n_files": 1, "frames_per_file": 988}
            result = simulate_alpha_run(outdir, profile=profile, seed=seed, overwrite=force, layout=alpha,
                                        **{**CLOSURE_OVERRIDES, **layout})
        else:
            result = simulate_run(outdir, profile=profile, seed=seed, overwrite=force)
    except S2BookError as err:
        _fail(err)
    click.echo(f"simulated run written to {result}")
    click.echo(f"  configuration: {Path(result) / 'run.yaml'}")
    click.echo(f"  truth:         {Path(result) / 'truth.json'}")


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite the project files DIRECTORY already has (they are listed "
              "otherwise); other files are never touched.")
@click.option("--templates", is_flag=True, help="Also copy the notebook templates into DIRECTORY/notebooks/, "
              "to edit them for this book only.")
def init(directory: Path, force: bool, templates: bool) -> None:
    """Create a book project in DIRECTORY: _config.yml, _toc.yml, the chapters, runs/ and a README."""
    from s2lib.report.project import init_project

    try:
        written = init_project(directory, force=force, templates=templates)
    except ProjectError as err:
        _fail(err)
    root = directory.expanduser().resolve()
    click.echo(f"book project created in {root} ({len(written)} files); next steps: {root / 'README.md'}")
    click.echo(f"  cd {directory} && s2book demo          # the whole chain on a simulated run")
    click.echo(f"  put run configurations into {directory / 'runs'}/, then s2book run runs/*.yaml && s2book build")


@main.command()
@click.argument("configs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@_book_option
@click.option("--stages", default=None,
              help="Comma-separated stages to run (integration,alpha,fitting,calibration,summary; alpha only for "
                   "runs with multi_isotope.enabled).")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=1, show_default=True, help="Runs executed in parallel.")
@click.option("--force", is_flag=True, help="Re-run stages even when up to date.")
@click.option("--keep-going", is_flag=True, help="After a failure, finish the other runs before exiting non-zero.")
@click.option("--strict", is_flag=True, help="Fail at the first raw file that cannot be read completely (default: "
              "skip it, use a truncated file's complete frames, and report them; also the config key 'strict').")
@click.option("--wait", is_flag=True, help="If another s2book run is running one of these runs, wait for it "
              "(default: exit 75 at once, naming the run and the holder of its lock).")
@click.option("--executor", type=click.Choice(["local", "dask"]), default=None,
              help="Where the pass over the raw files runs (default: the config key compute.executor, else local): "
              "local process pool, or Dask (a LocalCluster, or the scheduler of --dask-address). Same results.")
@click.option("--dask-address", default=None, metavar="ADDR",
              help="Join the Dask scheduler at ADDR (tcp://host:8786), e.g. one started by dask-jobqueue on "
              "SLURM/HTCondor; its workers must see the raw folder at the same path. Implies --executor dask.")
def run(configs: tuple[Path, ...], book: Path | None, stages: str | None, jobs: int, force: bool,
        keep_going: bool, strict: bool, wait: bool, executor: str | None, dask_address: str | None) -> None:
    """Execute the report notebooks of each run CONFIG with papermill, skipping what is up to date.

    One runner per run: the run's output folder holds a lock (.s2book.lock: pid, host, start time). Leftover
    temporary files of an interrupted run are removed when the next run starts. The integration stage reads
    only the raw files that are new or changed since its last pass (per-file cache in <set>/.filecache/) and
    prints, per set, "[<run_id>] <set>: <N> files read, <M> reused". The executed notebooks go to the book
    project's book/runs/<run_id>/.
    """
    import os

    from s2lib.report.report import run_reports
    from s2lib.signal.executors import ENV_ADDRESS, ENV_EXECUTOR

    if executor == "local" and dask_address:
        _fail(ConfigError("--dask-address", "needs --executor dask (or no --executor), got --executor local"))
    if executor or dask_address:        # the notebook kernels inherit the environment (s2lib.signal.executors)
        os.environ[ENV_EXECUTOR] = executor or "dask"
    if dask_address:
        os.environ[ENV_ADDRESS] = dask_address
    root = _project(book)
    try:
        code = run_reports(list(configs), stages=_split(stages), jobs=jobs, force=force, keep_going=keep_going,
                           wait=wait, strict=strict, root=root)
    except S2BookError as err:
        _fail(err)
    except OSError as err:              # e.g. the disk filled up while the manifest was written
        _fail(S2BookError(f"{err.filename or 'output'}: {err.strerror or err}"))
    sys.exit(code)


@main.command()
@click.argument("configs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@_book_option
def status(configs: tuple[Path, ...], book: Path | None) -> None:
    """Tell, per run and stage, whether it is up to date or why it would run, and whether a run is in progress."""
    from s2lib.report.report import report_status

    try:
        code = report_status(list(configs), root=_project(book))
    except S2BookError as err:
        _fail(err)
    sys.exit(code)


@main.command()
@click.option("--no-pdf", is_flag=True, help="Build the HTML site only.")
@click.option("--allow-stale", is_flag=True, help="Build even if a run's notebooks are stale or failed (they are marked).")
@_book_option
def build(no_pdf: bool, allow_stale: bool, book: Path | None) -> None:
    """Build the book (HTML, and PDF through XeLaTeX) from the executed runs, into the project's _build/."""
    from s2lib.report.book import build_book

    root = _project(book)
    try:
        code = build_book(pdf=not no_pdf, allow_stale=allow_stale, root=root)
    except S2BookError as err:
        _fail(err)
    sys.exit(code)


@main.command()
@click.option("--no-pdf", is_flag=True, help="Skip the PDF.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=2, show_default=True)
@_book_option
def demo(no_pdf: bool, jobs: int, book: Path | None) -> None:
    """Simulate the demo run into the project's demo/, run its notebooks, build the book and print where it is."""
    from s2lib.report.book import run_demo

    root = _project(book)
    try:
        code = run_demo(pdf=not no_pdf, jobs=jobs, root=root)
    except S2BookError as err:
        _fail(err)
    sys.exit(code)


@main.command()
@click.option("--quick", is_flag=True, help="Only the quick subset (3 points, 300 frames per set, < 2 min).")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Matrix points run in parallel processes.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: validation/ in the book project).")
@click.option("--keep-data", is_flag=True, help="Keep the simulated raw files of every point (large).")
@_book_option
def validate(quick: bool, jobs: int, out_dir: Path | None, keep_data: bool, book: Path | None) -> None:
    """Closure tests: simulate a matrix of runs, analyse each with the default configuration, compare with truth.

    Writes validation.json, validation.csv, validation.md and figures into the output folder; the book's
    Validation chapter is built from them. Exit status 0 only when every point and every pull width passes.
    """
    from s2lib.validate.validate import run_validation

    out = out_dir if out_dir is not None else _project(book) / "validation"
    try:
        doc = run_validation(out, quick=quick, jobs=jobs, keep_data=keep_data)
    except S2BookError as err:
        _fail(err)
    click.echo(doc["summary"])
    click.echo(f"  report: {out / 'validation.md'}")
    sys.exit(0 if doc["passed"] else 1)


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


if __name__ == "__main__":  # pragma: no cover
    main()
