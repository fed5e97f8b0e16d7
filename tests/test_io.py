import json

import numpy as np
import pytest
import torch

from trustml_ref.claims import start_ledger
from trustml_ref.io import (
    checkpoint_files,
    iter_tensors,
    load_state_dict,
    load_tensors,
    read_tensor,
    record_results,
    save_tensors,
)


def test_safetensors_round_trip(tmp_path):
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(5)}
    path = save_tensors(
        tensors, tmp_path / "sub" / "w.safetensors", metadata={"seed": "0"}
    )
    loaded = load_tensors(path)
    assert loaded.keys() == tensors.keys() and all(
        torch.equal(loaded[k], tensors[k]) for k in tensors
    )


def test_iter_tensors_is_lazy_ordered_and_checks_names(tmp_path):
    path = save_tensors(
        {"x": torch.ones(2), "y": torch.zeros(3), "z": torch.full((1,), 2.0)},
        tmp_path / "w.safetensors",
    )
    assert [n for n, _ in iter_tensors(path)] == ["x", "y", "z"]
    assert [(n, t.tolist()) for n, t in iter_tensors(path, ["z", "x"])] == [
        ("z", [2.0]),
        ("x", [1.0, 1.0]),
    ]
    with pytest.raises(KeyError, match=r"names not in .*\['missing'\]"):
        list(iter_tensors(path, ["x", "missing"]))


def test_load_state_dict_restores_a_module(tmp_path):
    src, dst = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    path = save_tensors(src.state_dict(), tmp_path / "lin.safetensors")
    load_state_dict(dst, path)
    assert torch.equal(src.weight, dst.weight) and torch.equal(src.bias, dst.bias)


@pytest.mark.parametrize("name", ["model.bin", "model.pt", "model.ckpt", "model.pkl"])
def test_pickled_checkpoints_are_refused(tmp_path, name):
    (tmp_path / name).write_bytes(b"not loaded")
    with pytest.raises(ValueError, match="pickled checkpoint"):
        load_tensors(tmp_path / name)


def test_missing_or_misnamed_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no safetensors file"):
        load_tensors(tmp_path / "absent.safetensors")
    with pytest.raises(ValueError, match="must end in .safetensors"):
        save_tensors({"a": torch.ones(1)}, tmp_path / "a.npz")


def test_record_results_writes_json_ready_values(tmp_path):
    start_ledger("smoke")
    path = tmp_path / "r" / "results.json"
    data = record_results(
        path,
        acc=np.float32(0.5),
        curve=torch.tensor([1.0, 2.0]),
        grid=np.arange(3),
        nested={"k": (1, 2)},
        none=None,
    )
    assert (
        json.loads(path.read_text())
        == data
        == {
            "acc": 0.5,
            "curve": [1.0, 2.0],
            "grid": [0, 1, 2],
            "nested": {"k": [1, 2]},
            "none": None,
            "claims": [],
        }
    )
    assert record_results(None, x=1) == {"x": 1, "claims": []}


@pytest.mark.parametrize(
    "bad", [float("nan"), np.array([1.0, np.inf]), torch.tensor(float("nan"))]
)
def test_record_results_refuses_non_finite(bad):
    with pytest.raises(ValueError, match="must be finite"):
        record_results(None, certificate=bad)


def test_record_results_refuses_unknown_types():
    with pytest.raises(TypeError, match="'model' has type Linear"):
        record_results(None, model=torch.nn.Linear(1, 1))


def test_read_tensor_and_checkpoint_files_single_and_sharded(tmp_path):
    a, b = torch.arange(6.0).reshape(2, 3), torch.ones(4)
    single = tmp_path / "single"
    save_tensors({"a": a, "b": b}, single / "model.safetensors")
    where = checkpoint_files(single)
    assert where == {
        "a": single / "model.safetensors",
        "b": single / "model.safetensors",
    }
    assert torch.equal(read_tensor(where["a"], "a"), a)
    with pytest.raises(KeyError, match="names not in"):
        read_tensor(where["a"], "c")
    sharded = tmp_path / "sharded"
    save_tensors({"a": a}, sharded / "model-00001-of-00002.safetensors")
    save_tensors({"b": b}, sharded / "model-00002-of-00002.safetensors")
    (sharded / "model.safetensors.index.json").write_text(
        json.dumps(
            {
                "weight_map": {
                    "a": "model-00001-of-00002.safetensors",
                    "b": "model-00002-of-00002.safetensors",
                }
            }
        )
    )
    where = checkpoint_files(sharded)
    assert torch.equal(read_tensor(where["b"], "b"), b)
    assert where["a"].name == "model-00001-of-00002.safetensors"


def test_checkpoint_files_refuses_empty_or_missing_directories(tmp_path):
    (tmp_path / "pickled").mkdir()
    torch.save({"a": torch.ones(1)}, tmp_path / "pickled" / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="pickled checkpoints are not read"):
        checkpoint_files(tmp_path / "pickled", "base")
    with pytest.raises(FileNotFoundError, match="the aligned checkpoint .* is not a"):
        checkpoint_files(tmp_path / "nowhere", "aligned")
