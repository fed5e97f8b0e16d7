import os

import matplotlib

# Tests never reach a model hub and never open a window (Agg in this process only:
# notebook
# kernels keep their inline backend, or their figures would vanish).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
matplotlib.use("Agg")

import torch  # noqa: E402

# One thread: tiny models run faster that way on 2 cores (benchmarks/torch_threads.py).
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Long work first, in collected order otherwise: tests sharing an expensive fixture
    on one worker (``xdist_group``: about ten minutes of installs and chapter runs),
    then chapter runs and unit tests marked slow, then the rest. On pytest-xdist's
    workers the short tests fill the gaps at the end instead of one long test
    finishing the run alone."""

    def rank(item) -> int:
        if item.get_closest_marker("xdist_group"):
            return 0
        long = item.get_closest_marker("notebook") or item.get_closest_marker("slow")
        return 1 if long else 2

    items.sort(key=rank)
