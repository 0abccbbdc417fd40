"""The predictor interface, and loading a user's predictor (or the built-in MLflow one).

A predictor is a class built as ``Predictor(model_path, **config)`` (or ``Predictor(**config)``
when its ``__init__`` takes no other positional argument, as Spell's ``BasePredictor``
subclasses do: they find the model at ``/model`` or ``MODEL_PATH``) with
``predict(self, payload)``: the decoded JSON body in, something JSON-serializable out.
``health(self)`` is optional: falsy or raising = unhealthy. ``config`` is ``--config FILE``.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import inspect
import os
import shutil
import sys
import tempfile
import typing
from collections.abc import Iterator
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


def _takes_model_path(cls: type, config: dict[str, Any]) -> bool:
    """Whether ``__init__`` has a positional parameter left once ``config`` is given (Spell's
    ``BasePredictor`` subclasses never get the path: they read ``/model``)."""
    from spell.serving import BasePredictor

    if issubclass(cls, BasePredictor):
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in config
               for p in inspect.signature(cls).parameters.values())


def check_class(cls: type, config: dict[str, Any], where: str) -> None:
    """What can be told without building it: ``predict`` is there and the ``--config`` keys
    fit ``__init__``. A clear InvalidInput otherwise (`spell server serve --validate`)."""
    from spell.serving import BasePredictor

    predict = getattr(cls, "predict", None)
    if not callable(predict) or (issubclass(cls, BasePredictor)
                                 and predict is BasePredictor.predict):
        raise InvalidInput(f"{where}: {cls.__name__} has no predict(self, payload) method")
    args = ("model_path",) if _takes_model_path(cls, config) else ()
    try:
        inspect.signature(cls).bind(*args, **config)
    except TypeError as exc:
        keys = ", ".join(sorted(config)) or "none"
        raise InvalidInput(f"{where}: {cls.__name__}.__init__ does not fit the --config keys "
                           f"({keys}): {exc}") from None


def construct(cls: type, model_path: str, config: dict[str, Any] | None = None) -> Any:
    """``cls(model_path, **config)``, or ``cls(**config)`` when ``__init__`` takes no other
    positional argument."""
    config = config or {}
    return cls(model_path, **config) if _takes_model_path(cls, config) else cls(**config)


def takes_request(method: Any) -> bool:
    """Whether ``method``'s first parameter is annotated as starlette's ``Request``: it gets
    the raw request rather than the JSON body (Spell's predictors may ask for it)."""
    from starlette.requests import Request

    params = list(inspect.signature(method).parameters.values())
    if not params:
        return False
    try:
        annotation = typing.get_type_hints(method).get(params[0].name, params[0].annotation)
    except Exception:  # an annotation that does not resolve: read it as written
        annotation = params[0].annotation
    if isinstance(annotation, str):
        return annotation.rsplit(".", 1)[-1] == "Request"
    return inspect.isclass(annotation) and issubclass(annotation, Request)


# Every replica on a node points /model at its own model while its predictor is built; the
# lock keeps two replicas starting at once from building on each other's model.
_MODEL_LOCK = Path(tempfile.gettempdir()) / "spellray-model-mount.lock"


@contextlib.contextmanager
def model_mounted(model_dir: Path) -> Iterator[None]:
    """While the predictor is built: ``MODEL_PATH`` is this replica's model folder (for the
    replica's life), and ``/model`` points to it where the replica may make it (Spell's
    predictors open ``/model/...`` in ``__init__``). ``/model`` is one path per node: a later
    replica of another server re-points it, so read it in ``__init__``, or use
    ``self.model_path(...)``."""
    from spell.serving import MODEL_MOUNT

    os.environ["MODEL_PATH"] = str(model_dir)
    mount = Path(MODEL_MOUNT)
    with open(_MODEL_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if mount.exists() and not mount.is_symlink():
                raise PermissionError(f"{mount} is a real folder on this node")
            link = mount.with_name(f".model-{os.getpid()}")
            link.unlink(missing_ok=True)
            link.symlink_to(model_dir, target_is_directory=True)
            os.replace(link, mount)  # atomic: a reader sees the old model or the new one
        except OSError as exc:
            print(f"spellray: the model is at MODEL_PATH={model_dir}; {mount} cannot be made "
                  f"here ({exc}); use self.model_path(...) or os.environ['MODEL_PATH']",
                  flush=True)
        yield


def unmount_model(model_dir: Path) -> None:
    """A replica going away takes ``/model`` with it, if it still points to its model."""
    from spell.serving import MODEL_MOUNT

    mount = Path(MODEL_MOUNT)
    with contextlib.suppress(OSError):
        if mount.is_symlink() and Path(os.readlink(mount)) == model_dir:
            mount.unlink()


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
