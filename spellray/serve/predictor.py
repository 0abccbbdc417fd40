"""The predictor interface, and loading a user's predictor (or the built-in MLflow one).

A predictor is a class built as ``Predictor(model_path)`` (or ``Predictor()`` when its
``__init__`` takes no argument) with ``predict(self, payload)``: the decoded JSON body in,
something JSON-serializable out. ``health(self)`` is optional: falsy or raising = unhealthy.
"""

from __future__ import annotations

import importlib.util
import inspect
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from spellray.errors import InvalidInput


class PredictorError(Exception):
    """The predictor refused a payload (a 4xx for the client): raise it, or ValueError,
    TypeError or KeyError, from ``predict``."""


# Exceptions from ``predict`` that mean "bad payload" (4xx), not "broken predictor" (500).
CLIENT_ERRORS = (PredictorError, ValueError, TypeError, KeyError)


def load_module(code_dir: Path, entrypoint: str) -> Any:
    """Import the predictor file from the unpacked code package, as its own module."""
    path = (code_dir / entrypoint).resolve()
    if code_dir.resolve() not in path.parents or not path.is_file():
        raise InvalidInput(f"the predictor file {entrypoint} is not in the code package")
    sys.path.insert(0, str(path.parent))  # its sibling modules import as they do locally
    spec = importlib.util.spec_from_file_location(f"spellray_predictor_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def pick_class(module: Any, entrypoint: str, classname: str | None) -> type:
    """``classname``, or the only class defined in the file that has a ``predict`` method."""
    if classname:
        found = getattr(module, classname, None)
        if not inspect.isclass(found) or not callable(getattr(found, "predict", None)):
            raise InvalidInput(f"{entrypoint} has no class {classname} with a predict method")
        return found
    candidates = [obj for _, obj in inspect.getmembers(module, inspect.isclass)
                  if obj.__module__ == module.__name__ and callable(getattr(obj, "predict", None))]
    if len(candidates) != 1:
        names = ", ".join(c.__name__ for c in candidates) or "none"
        raise InvalidInput(f"{entrypoint} must define exactly one class with a predict method "
                           f"(found: {names}); pick one with --classname")
    return candidates[0]


def construct(cls: type, model_path: str) -> Any:
    """``cls(model_path)``, or ``cls()`` when its ``__init__`` takes no argument."""
    params = [p for p in inspect.signature(cls).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return cls(model_path) if params else cls()


class MLflowPredictor:
    """The built-in predictor for a model folder holding an MLmodel file (MLflow pyfunc).
    The payload is what pandas' DataFrame takes: a list of rows, or a dict of columns
    (``{"inputs": ...}`` or ``{"dataframe_split": ...}`` as MLflow's own server reads)."""

    def __init__(self, model_path: str) -> None:
        import mlflow.pyfunc

        # MLflow refuses files that resolve outside the model folder, and a mount of local
        # storage is a tree of symlinks: load from a real copy (MLflow models are small).
        real = Path(tempfile.mkdtemp(prefix="spellray-mlflow-")) / "model"
        shutil.copytree(model_path, real)
        self.model = mlflow.pyfunc.load_model(str(real))

    def predict(self, payload: Any) -> Any:
        import pandas as pd

        if isinstance(payload, dict) and "dataframe_split" in payload:
            data = pd.DataFrame(**payload["dataframe_split"])
        elif isinstance(payload, dict) and "inputs" in payload:
            data = pd.DataFrame(payload["inputs"])
        else:
            data = pd.DataFrame(payload)
        result = self.model.predict(data)
        return result.tolist() if hasattr(result, "tolist") else result
