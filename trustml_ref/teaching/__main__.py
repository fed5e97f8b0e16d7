"""Command line: ``make-student``, ``grade`` and ``colab-edition`` (``python -m
trustml_ref.teaching --help``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trustml_ref.teaching.colab import write_colab_edition
from trustml_ref.teaching.grader import grade, table
from trustml_ref.teaching.student import make_student_edition


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trustml_ref.teaching", description=__doc__
    )
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser(
        "make-student", help="write the student edition of the chapters"
    )
    make.add_argument(
        "--root", type=Path, default=Path("."), help="the repository root (default: .)"
    )
    make.add_argument("--out", type=Path, required=True)
    make.add_argument(
        "--chapters",
        nargs="*",
        help="chapter stems, e.g. 05_weight_perturbation (default: all)",
    )
    make.add_argument(
        "--book",
        action="store_true",
        help="also write _config.yml, _toc.yml and book/ for jupyter-book (implies "
        "every chapter)",
    )
    make.add_argument(
        "--colab-repository",
        metavar="OWNER/NAME[@BRANCH]",
        help="the GitHub repository that will host the edition: its notebooks are "
        "written for Colab (Markdown without MyST, install cell first) with an "
        "Open-in-Colab badge pointing at OUT's notebooks there",
    )
    colab = sub.add_parser(
        "colab-edition", help="write the Colab edition of the chapters (colab/)"
    )
    colab.add_argument("--root", type=Path, default=Path("."))
    colab.add_argument("--out", type=Path, default=Path("colab"))
    gr = sub.add_parser("grade", help="run submitted notebooks and score each exercise")
    gr.add_argument("notebooks", nargs="+", type=Path)
    gr.add_argument("--chapter", help="the chapter stem, if the file was renamed")
    gr.add_argument("--json", type=Path, help="write all reports to this JSON file")
    gr.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args(argv)
    if args.command == "make-student":
        written = make_student_edition(
            args.root, args.out, args.chapters, args.book, args.colab_repository
        )
        for path in written:
            print(path)
        return 0
    if args.command == "colab-edition":
        written = write_colab_edition(args.root, args.out)
        print(f"wrote {len(written)} notebooks to {args.out}")
        return 0
    reports = [grade(nb, args.chapter, args.seed) for nb in args.notebooks]
    for report in reports:
        print(table(report), end="\n\n")
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
