"""Build the book in one profile, never from another profile's execution cache.

Jupyter Book's execution cache keys notebooks by their code, and Sphinx's environment by
the sources' times; neither knows ``TRUSTML_PROFILE``, so a build after a build in
another profile would serve the old profile's results. This script stamps the build
folder with its profile (``<build>/.profile``) and empties the folder when the stamp is
missing or differs.

    python tools/build_book.py [--profile book] [--root .]   # what `make book` runs
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trustml_ref.config import PROFILE_ENV, resolve_profile  # noqa: E402


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
    args = parser.parse_args(argv)
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
