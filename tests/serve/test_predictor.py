"""Finding and building a user's predictor (spellray/serve/predictor.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spellray.errors import InvalidInput
from spellray.serve.predictor import construct, load_module, pick_class


def _module(tmp_path: Path, source: str, name: str = "pred.py"):
    (tmp_path / name).write_text(source)
    return load_module(tmp_path, name)


def test_the_only_class_with_predict_is_picked_and_built_with_the_path(tmp_path: Path) -> None:
    module = _module(tmp_path, "from pathlib import Path\n"
                               "class Helper:\n    pass\n"
                               "class P:\n    def __init__(self, model_path):\n"
                               "        self.path = model_path\n"
                               "    def predict(self, payload):\n        return payload\n")
    cls = pick_class(module, "pred.py", None)
    assert cls.__name__ == "P"
    assert construct(cls, "/models/x").path == "/models/x"


def test_no_argument_init_and_classname(tmp_path: Path) -> None:
    module = _module(tmp_path, "class A:\n    def predict(self, p):\n        return 1\n"
                               "class B:\n    def __init__(self):\n        self.ok = True\n"
                               "    def predict(self, p):\n        return 2\n")
    with pytest.raises(InvalidInput, match=r"found: A, B.*--classname"):
        pick_class(module, "pred.py", None)
    built = construct(pick_class(module, "pred.py", "B"), "/ignored")
    assert built.ok and built.predict(None) == 2
    with pytest.raises(InvalidInput, match="no class C"):
        pick_class(module, "pred.py", "C")


def test_siblings_import_and_files_outside_are_refused(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("VALUE = 41\n")
    module = _module(tmp_path, "import helper\nclass P:\n    def predict(self, p):\n"
                               "        return helper.VALUE + 1\n")
    assert construct(pick_class(module, "pred.py", None), "x").predict(None) == 42
    with pytest.raises(InvalidInput, match="not in the code package"):
        load_module(tmp_path, "../elsewhere.py")
