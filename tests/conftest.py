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
