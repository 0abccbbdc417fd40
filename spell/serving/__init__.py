"""Spell's predictor interface: ``from spell.serving import BasePredictor``.

A Spell model server script, unchanged::

    from spell.serving import BasePredictor

    class Predictor(BasePredictor):
        def __init__(self):                 # keys of --config FILE arrive as keyword arguments
            self.model = load("/model/weights.json")   # or self.model_path("weights.json")

        def predict(self, payload):         # the JSON body; or (self, request: Request)
            return {"answer": ...}

spellray's Ray Serve application (spellray/serve/app.py) builds it in each replica, with the
model's files at ``/model`` where the replica may make that path (and always at
``MODEL_PATH``), and answers at the endpoint itself, at ``<endpoint>/predict`` and (GET) at
``<endpoint>/health``. See docs/model-servers.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

__all__ = ["MODEL_MOUNT", "BasePredictor", "HTTPException", "Request"]

# Where Spell mounted a model server's model.
MODEL_MOUNT = "/model"


class BasePredictor:
    """The base of a Spell predictor. Override ``predict``; optionally ``health`` and, with
    batching on (``--enable-batching`` or ``--request-timeout``), ``prepare``.

    - ``predict(self, payload)``: the decoded JSON body in, something JSON-serializable (or a
      starlette ``Response``) out. Annotate the parameter as ``starlette.requests.Request``
      to get the raw request instead (``async def`` works too). Raise starlette's
      ``HTTPException(status, detail)`` to answer with that status.
    - With batching, ``prepare(self, payload)`` runs once per request (it may take the raw
      ``Request`` the same way) and ``predict(self, prepared)`` gets a list of what
      ``prepare`` returned and returns one answer per item, in order.
    - ``health(self)``: falsy or raising means unhealthy (503 at ``<endpoint>/health``).
    """

    def model_path(self, *parts: str) -> str:
        """A path inside this replica's model folder (``MODEL_PATH``, else ``/model``)."""
        return str(Path(os.environ.get("MODEL_PATH") or MODEL_MOUNT, *parts))

    def prepare(self, payload: Any) -> Any:
        return payload

    def predict(self, payload: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define predict(self, payload)")

    def health(self) -> bool:
        return True
