"""Build the book in one profile, never from another profile's execution cache.

Jupyter Book's execution cache keys notebooks by their code, and Sphinx's environment by
the sources' times; neither knows ``TRUSTML_PROFILE``, so a build after a build in
another profile would serve the old profile's results. This script stamps the build
folder with its profile (``<build>/.profile``) and empties the folder when the stamp is
missing or differs.

Jupyter Book executes one chapter at a time, and a chapter runs torch on one thread
(``DEFAULT_CPU_THREADS``), so a build leaves all but one core idle. Before it renders,
this script executes the chapters that the execution cache does not hold yet,
``--jobs`` at a time (default: the machine's cores), longest first (the last build's
times, else the committed runtime table's), the way myst-nb's cache mode does (same
kernel, working directory, timeout and cache entry), so Jupyter Book finds every chapter
cached. A chapter that fails stops the build with its traceback before rendering starts.

    python tools/build_book.py [--profile book] [--root .] [--jobs N]  # `make book`
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import nbformat
import yaml
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# the script's folder is on the path, as for check_budgets.py
from runtime_table import published_times  # noqa: E402

from trustml_ref.config import PROFILE_ENV, resolve_profile  # noqa: E402
from trustml_ref.teaching.colab import toc_documents  # noqa: E402


def prepare_build_dir(build: Path, profile: str) -> bool:
    """Empty ``build`` unless it was made in ``profile``; stamp it. Returns whether it
    was emptied."""
    stamp = build / ".profile"
    stale = build.exists() and (
        not stamp.is_file() or stamp.read_text().strip() != profile
    )
    if stale:
        shutil.rmtree(build)
    build.mkdir(parents=True, exist_ok=True)
    stamp.write_text(profile + "\n")
    return stale


def execute(path: Path, timeout: int) -> tuple[Path, object, float, str | None]:
    """Execute one chapter as myst-nb's cache mode does (in its own folder, errors not
    allowed); returns the executed notebook, its time and the traceback of a failure."""
    notebook = nbformat.read(path, as_version=4)
    result = single_nb_execution(
        notebook, cwd=str(path.parent), timeout=timeout, allow_errors=False
    )
    return path, result.nb, result.time, result.exc_string


def execute_uncached(root: Path, build: Path, jobs: int) -> list[str]:
    """Fill ``build``'s execution cache with every chapter it lacks, ``jobs`` at a
    time, the longest first (by the cache's times, else the committed runtime table's);
    returns the failed chapters."""
    cache = get_cache(str(build / ".jupyter_cache"))
    last = published_times(root) | {
        Path(r.uri).stem: r.data.get("execution_seconds") or 0.0
        for r in cache.list_cache_records()
    }
    todo, cached = [], []
    for doc in toc_documents(root):
        path = (root / doc).with_suffix(".ipynb")
        if not path.is_file():
            continue
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
            cached.append(path)
        except KeyError:
            todo.append(path.resolve())
    todo.sort(key=lambda p: -last.get(p.stem, 1e9))  # unknown chapters first
    config = yaml.safe_load((root / "_config.yml").read_text())
    timeout = int(config.get("execute", {}).get("timeout", 1200))
    failed = []
    print(
        f"build_book: executing {len(todo)} chapters ({len(cached)} cached), "
        f"{jobs} at a time",
        flush=True,
    )
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(execute, path, timeout) for path in todo]
        for future in as_completed(futures):
            path, notebook, seconds, error = future.result()
            if error is not None:
                print(f"build_book: {path.name} failed:\n{error}", flush=True)
                failed.append(path.stem)
                continue
            record = cache.add_nb_to_project(str(path))
            cache.cache_notebook_bundle(
                CacheBundleIn(
                    notebook, record.uri, data={"execution_seconds": seconds}
                ),
                check_validity=False,
                overwrite=True,
            )
            print(f"build_book: {path.name} executed in {seconds:.0f} s", flush=True)
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profile",
        default=None,
        help=f"smoke, book or colab (default: ${PROFILE_ENV} or book)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("."),
        help="the book's root (holds _config.yml)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="chapters executed at once before rendering (default: the cores)",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.profile:
        os.environ[PROFILE_ENV] = args.profile
    profile = resolve_profile(None)  # validated; the chapters' kernels inherit it
    os.environ[PROFILE_ENV] = profile
    build = args.root / "_build"
    if prepare_build_dir(build, profile):
        print(
            f"build_book: {build} held another profile's build; emptied it", flush=True
        )
    print(f"build_book: profile={profile}", flush=True)
    failed = execute_uncached(args.root, build, args.jobs)
    if failed:
        print(f"build_book: failed chapters: {', '.join(failed)}", flush=True)
        return 1
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [
        str(jupyter_book),
        "build",
        str(args.root),
        "--warningiserror",
        "--keep-going",
    ]
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())
