"""Docstrings render in the API reference: no control characters from unescaped LaTeX
(\\t in \\top...)."""

import importlib
import inspect
import pkgutil

import trustml_ref

CONTROL = {
    "\t": "\\t",
    "\r": "\\r",
    "\x08": "\\b",
    "\x0c": "\\f",
    "\x07": "\\a",
    "\x0b": "\\v",
}


def test_docstrings_have_no_control_characters():
    bad = []
    for info in pkgutil.walk_packages(trustml_ref.__path__, "trustml_ref."):
        module = importlib.import_module(info.name)
        for name, obj in [(info.name, module), *inspect.getmembers(module)]:
            doc = getattr(obj, "__doc__", None) or ""
            if getattr(obj, "__module__", info.name) == info.name and any(
                c in doc for c in CONTROL
            ):
                bad.append(f"{info.name}.{name}" if name != info.name else name)
    assert not bad, (
        "docstrings with control characters (use a raw string r'''...''' for LaTeX): "
        f"{sorted(set(bad))}"
    )
