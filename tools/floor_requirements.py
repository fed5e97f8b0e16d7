"""Print the ranges ``pyproject.toml`` declares (the package and the extras the chapters
and tests need) as one requirements file, for ``uv pip install --resolution
lowest-direct``: the lowest-versions job of ``.ci/run`` installs the lowest release each
range allows and runs the unit tests and the smoke runs of the chapters they affect.

Every range needs a floor, and a package named twice must have one range. torch is left
out: only the CPU wheel ``requirements.txt`` pins is installable here without a GPU
build's gigabytes, so the job installs that pin first (pip finds the local CPU wheel)
and the resolver keeps it; the job says so.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("llm", "diffusion", "dp", "openml", "teaching", "dev")  # quantum: see below
LEFT_OUT = {"torch"}  # installed from requirements.txt's pin, see the module docstring
REQUIREMENT = re.compile(r"^([A-Za-z0-9_.-]+)\s*>=\s*([^,;\s]+)")


def ranges() -> dict[str, str]:
    """Each package's range, by name (torch left out)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in EXTRAS:
        specs += project["optional-dependencies"][extra]
    found: dict[str, str] = {}
    for spec in specs:
        spec = spec.split("#")[0].strip()
        match = REQUIREMENT.match(spec)
        if not match:
            raise ValueError(f"no lower bound in {spec!r}: every range needs a floor")
        name = match.group(1).lower()
        if found.get(name, spec) != spec:
            raise ValueError(f"{name} has two ranges: {found[name]!r} and {spec!r}")
        found[name] = spec
    return {name: spec for name, spec in sorted(found.items()) if name not in LEFT_OUT}


def main() -> int:
    print("# torch: requirements.txt's pin, installed first (not the floor)")
    for spec in ranges().values():
        print(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
