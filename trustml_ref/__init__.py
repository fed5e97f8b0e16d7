"""trustml_ref: tested reference implementations for the trustml book.

The shared core lives in a few modules that every chapter imports:

- :mod:`trustml_ref.config` -- profiles, seeding, device, threads, cache directory,
  ``setup``;
- :mod:`trustml_ref.plotting` -- the one figure style of the book;
- :mod:`trustml_ref.testing` -- ``assert_close`` for numerical checks and graduation
  cells;
- :mod:`trustml_ref.io` -- safetensors-only loading and result recording;
- :mod:`trustml_ref.claims` -- the chapters' conclusions as checked claims, and
  ``glue``;
- :mod:`trustml_ref.tables` -- results as HTML tables in the notebook, aligned text
  when printed;
- :mod:`trustml_ref.training` -- the one training loop of every subpackage, and a plain
  classifier ``fit``.

One subpackage per method sits on top (``trustml_ref.privacy`` first).
"""

from trustml_ref.claims import claim, glue
from trustml_ref.config import (
    RunConfig,
    by_profile,
    resolve_device,
    resolve_profile,
    seed_everything,
    setup,
)
from trustml_ref.testing import assert_close

__version__ = "0.1.0"

__all__ = [
    "RunConfig",
    "__version__",
    "assert_close",
    "by_profile",
    "claim",
    "glue",
    "resolve_device",
    "resolve_profile",
    "seed_everything",
    "setup",
]
