"""Tiny stand-ins for OpenML data sets, written into scikit-learn's OpenML cache layout.

``fetch_openml(name, version=1, data_home=H)`` reads
``H/openml/openml.org/<url path>.gz`` when it exists instead of downloading: the name
lookup, the data description (with the ARFF file's md5), the feature list, the qualities
and the ARFF file itself. Writing those files for a few hundred images lets the colab
profile's real loading path run offline: scikit-learn's parser, pandas, the md5 check
and ``trustml_ref.data.openml``. The images are learnable (one random prototype per
class plus noise), so a chapter's training reaches the margins real data give.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np

# OpenML's ids and feature counts of the data sets the colab profile downloads
DATASETS = {"mnist_784": (554, 52667, 784), "CIFAR_10": (40927, 16797612, 3072)}


def _write(cache: Path, path: str, payload: bytes) -> None:
    target = (
        cache / "openml" / "openml.org" / f"{path}.gz"
    )  # fetch_openml adds "openml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(gzip.compress(payload))


def save_tiny_openml(data_home: Path, name: str, n: int, seed: int = 0) -> None:
    """Cache ``n`` 8-bit images with labels 0-9 (a class prototype plus noise) under
    OpenML data set ``name`` (``"mnist_784"`` or ``"CIFAR_10"``) in ``data_home``."""
    data_id, file_id, n_features = DATASETS[name]
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    prototypes = rng.uniform(0, 255, size=(10, n_features))
    noise = rng.normal(0, 40, size=(n, n_features))
    pixels = np.clip(prototypes[labels] + noise, 0, 255).round().astype(int)
    lines = [f"@RELATION {name}", ""]
    lines += [f"@ATTRIBUTE pixel{j + 1} NUMERIC" for j in range(n_features)]
    lines += ["@ATTRIBUTE class {0,1,2,3,4,5,6,7,8,9}", "", "@DATA"]
    lines += [",".join(map(str, row)) + f",{y}" for row, y in zip(pixels, labels)]
    arff = ("\n".join(lines) + "\n").encode()
    url_path = f"data/v1/download/{file_id}/{name}.arff"
    _write(data_home, url_path, arff)

    listing = {
        "data": {
            "dataset": [
                {
                    "did": data_id,
                    "name": name,
                    "version": 1,
                    "status": "active",
                    "format": "ARFF",
                    "file_id": file_id,
                }
            ]
        }
    }
    search = (
        f"api/v1/json/data/list/data_name/{name.lower()}/limit/2"  # as sklearn asks
    )
    _write(data_home, f"{search}/data_version/1", json.dumps(listing).encode())
    description = {
        "data_set_description": {
            "id": str(data_id),
            "name": name,
            "version": "1",
            "format": "ARFF",
            "file_id": str(file_id),
            "default_target_attribute": "class",
            "status": "active",
            "url": f"https://api.openml.org/{url_path}",
            "md5_checksum": hashlib.md5(arff).hexdigest(),
            "description": "a random stand-in written by the test suite",
        }
    }
    _write(data_home, f"api/v1/json/data/{data_id}", json.dumps(description).encode())
    flags = {"is_ignore": "false", "is_row_identifier": "false"}
    features = [
        {
            "index": str(j),
            "name": f"pixel{j + 1}",
            "data_type": "numeric",
            "is_target": "false",
            "number_of_missing_values": "0",
            **flags,
        }
        for j in range(n_features)
    ]
    features.append(
        {
            "index": str(n_features),
            "name": "class",
            "data_type": "nominal",
            "nominal_value": [str(c) for c in range(10)],
            "is_target": "true",
            "number_of_missing_values": "0",
            **flags,
        }
    )
    _write(
        data_home,
        f"api/v1/json/data/features/{data_id}",
        json.dumps({"data_features": {"feature": features}}).encode(),
    )
    qualities = [{"name": "NumberOfInstances", "value": f"{float(n)}"}]
    _write(
        data_home,
        f"api/v1/json/data/qualities/{data_id}",
        json.dumps({"data_qualities": {"quality": qualities}}).encode(),
    )
