import random

import numpy as np
import pytest
import torch

import trustml_ref
from trustml_ref import config
from trustml_ref.claims import ClaimFailed


def test_profile_defaults_to_book_and_env_overrides(monkeypatch):
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    assert config.resolve_profile(None) == "book"
    assert config.resolve_profile("colab") == "colab"
    monkeypatch.setenv(config.PROFILE_ENV, "smoke")
    assert config.resolve_profile("colab") == "smoke"


@pytest.mark.parametrize("bad", ["Book", "fast", "gpu"])
def test_unknown_profile_is_rejected_with_its_source(monkeypatch, bad):
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    with pytest.raises(
        ValueError, match=r"profile must be one of \('smoke', 'book', 'colab'\)"
    ):
        config.resolve_profile(bad)
    monkeypatch.setenv(config.PROFILE_ENV, bad)
    with pytest.raises(ValueError, match="TRUSTML_PROFILE must be one of"):
        config.resolve_profile("book")


def test_by_profile_picks_and_requires_all():
    assert [
        config.by_profile(p, smoke=1, book=2, colab=3) for p in config.PROFILES
    ] == [1, 2, 3]
    with pytest.raises(TypeError):
        config.by_profile("book", smoke=1, book=2)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="profile must be one of"):
        config.by_profile("huge", smoke=1, book=2, colab=3)


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_seed_everything_is_deterministic_and_seed_dependent():
    config.seed_everything(7)
    first = draws()
    g = config.seed_everything(7)
    assert draws() == first
    assert torch.equal(
        torch.rand(3, generator=g),
        torch.rand(3, generator=torch.Generator().manual_seed(7)),
    )
    config.seed_everything(8)
    assert draws() != first
    assert torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "0", True])
def test_seed_must_be_a_32_bit_integer(bad):
    with pytest.raises(ValueError, match="seed must be an integer"):
        config.seed_everything(bad)


def test_device_resolution():
    assert config.resolve_device("auto").type == (
        "cuda" if torch.cuda.is_available() else "cpu"
    )
    assert config.resolve_device("cpu") == torch.device("cpu")
    assert config.resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be 'auto'"):
        config.resolve_device("tpu-9")
    with pytest.raises(TypeError, match="device must be a string"):
        config.resolve_device(0)  # type: ignore[arg-type]


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the error raised where CUDA is absent"
)
def test_cuda_request_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        config.resolve_device("cuda")


def test_threads_default_to_one_on_cpu_and_env_overrides(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv(config.THREADS_ENV, raising=False)
        assert (
            config.set_torch_threads(torch.device("cpu"))
            == config.DEFAULT_CPU_THREADS
            == torch.get_num_threads()
        )
        monkeypatch.setenv(config.THREADS_ENV, "2")
        assert (
            config.set_torch_threads(torch.device("cpu"))
            == 2
            == torch.get_num_threads()
        )
        with pytest.raises(ValueError, match="threads must be >= 1"):
            config.set_torch_threads(torch.device("cpu"), 0)
    finally:
        torch.set_num_threads(before)


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv(config.CACHE_ENV, str(tmp_path / "c"))
    assert config.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()


def test_setup_applies_everything(monkeypatch, tmp_path, capsys):
    import matplotlib.pyplot as plt

    from trustml_ref.plotting import STYLE

    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    monkeypatch.setenv(config.CACHE_ENV, str(tmp_path))
    before = torch.get_num_threads()
    try:
        run = trustml_ref.setup("smoke", seed=3, device="cpu")
    finally:
        torch.set_num_threads(before)
    assert (run.profile, run.seed, run.device, run.cache) == (
        "smoke",
        3,
        torch.device("cpu"),
        tmp_path,
    )
    assert run.pick(smoke="s", book="b", colab="c") == "s"
    assert plt.rcParams["axes.spines.top"] is STYLE["axes.spines.top"]
    assert "profile=smoke seed=3 device=cpu" in capsys.readouterr().out
    with pytest.raises(ValueError):
        trustml_ref.setup("nope")


def test_sizes_of_another_profile_keep_the_code_path_and_follow_its_claim_rule(
    monkeypatch,
):
    from trustml_ref.claims import claim

    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    monkeypatch.setenv("TRUSTML_SIZES", "smoke")
    run = trustml_ref.setup("colab", 0, "cpu", style=False)
    assert run.profile == "colab" and run.sizes == "smoke"
    assert run.pick(smoke=1, book=2, colab=3) == 1
    assert not claim("a false conclusion at smoke sizes", False).checked  # recorded
    monkeypatch.setenv("TRUSTML_SIZES", "huge")
    with pytest.raises(ValueError, match="TRUSTML_SIZES must be one of"):
        trustml_ref.setup("colab", 0, "cpu", style=False)
    monkeypatch.delenv("TRUSTML_SIZES")
    assert (
        trustml_ref.setup("colab", 0, "cpu", style=False).pick(smoke=1, book=2, colab=3)
        == 3
    )


def test_toy_sizes_apply_to_the_colab_profile_only_and_the_tests_knob_wins(
    monkeypatch,
):
    from trustml_ref.claims import claim

    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    monkeypatch.delenv("TRUSTML_SIZES", raising=False)
    run = trustml_ref.setup("colab", 0, "cpu", toy_sizes="book", style=False)
    assert run.profile == "colab" and run.sizes == "book"
    assert run.pick(smoke=1, book=2, colab=3) == 2
    with pytest.raises(ClaimFailed):  # book sizes check claims
        claim("a false conclusion at book sizes", False)
    for profile, picked in (("smoke", 1), ("book", 2)):  # other profiles ignore it
        run = trustml_ref.setup(profile, 0, "cpu", toy_sizes="colab", style=False)
        assert run.pick(smoke=1, book=2, colab=3) == picked and run.sizes == ""
    monkeypatch.setenv("TRUSTML_SIZES", "smoke")
    run = trustml_ref.setup("colab", 0, "cpu", toy_sizes="book", style=False)
    assert run.pick(smoke=1, book=2, colab=3) == 1
    with pytest.raises(ValueError, match="toy_sizes must be one of"):
        trustml_ref.setup("colab", 0, "cpu", toy_sizes="big", style=False)
