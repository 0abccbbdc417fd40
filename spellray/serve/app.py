"""The Ray Serve application every model server is: ``spellray.serve.app:build``.

The spellray server deploys it over Serve's REST API with the server's options as ``args``;
each replica materializes the model from storage (the same code as a run's ``-m``), unpacks
the predictor's code package and builds the predictor with the model's path (and ``/model``
for Spell's ``BasePredictor``). The request path is kept lean (a plain ``__call__`` ingress,
no FastAPI app): a constant-time compare of the token's hash, the JSON body (or the raw
request), ``predict``.

Routes below the server's endpoint ``/<name>``: ``POST /`` and ``POST /predict`` predict;
``GET /`` and ``GET /health`` ask ``health()``; ``GET /metrics`` is the replica's
prometheus_client registry (``spell.serving.metrics.prometheus``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import tempfile
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray import serve
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from spellray.serve.names import DEPLOYMENT
from spellray.serve.predictor import (
    CLIENT_ERRORS,
    MLflowPredictor,
    check_class,
    construct,
    load_module,
    model_mounted,
    pick_class,
    takes_request,
    unmount_model,
)

# Spell's default batch wait (--request-timeout) when batching is on.
DEFAULT_BATCH_WAIT_S = 0.5


def _json(body: Any, status: int = 200, model: str = "",
          headers: Mapping[str, str] | None = None) -> Response:
    # X-Spellray-Model: which model version answered (an update rolls replicas over).
    extra = {**(headers or {}), **({"X-Spellray-Model": model} if model else {})}
    return Response(json.dumps(body), status_code=status, media_type="application/json",
                    headers=extra or None)


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error": {"code": code, "message": message}}, status)


def _unpack_code(storage: Any, sha256: str, dest: Path) -> Path:
    from spellray.storage.code_package import unpack

    unpack(storage.read_bytes(f"code/{sha256}.zip"), dest)
    return dest


def _storage(args: dict[str, Any]) -> Any:
    from spellray.storage.store import Storage

    return Storage(args["storage_uri"])


def predictor_class(args: dict[str, Any], workdir: Path) -> type:
    """The predictor's class: the user's (imported from its code package) or MLflow's."""
    if not args.get("entrypoint"):
        return MLflowPredictor
    code_dir = _unpack_code(_storage(args), args["code_sha256"], workdir / "code")
    module = load_module(code_dir, args["entrypoint"])
    return pick_class(module, args["entrypoint"], args.get("classname"))


async def _call(method: Any, arg: Any, in_thread: bool) -> Any:
    """A predictor method, sync or ``async def``; sync ones in a thread when asked (so an
    answer deadline or a slow batch does not block the replica's event loop)."""
    if inspect.iscoroutinefunction(method):
        return await method(arg)
    if in_thread:
        return await asyncio.to_thread(method, arg)
    return method(arg)


def _subpath(request: Request) -> str:
    """The path below the server's route (``/<name>``): "", "predict", "health", ..."""
    path, root = request.url.path, request.scope.get("root_path") or ""
    if root and path.startswith(root):
        path = path[len(root):]
    return path.strip("/")


@serve.deployment(name=DEPLOYMENT)
class ModelServer:
    def __init__(self, args: dict[str, Any]) -> None:
        from spellray.settings import get_settings
        from spellray.storage.cache import NodeCache
        from spellray.storage.mounts import materialize

        workdir = Path(tempfile.mkdtemp(prefix="spellray-serve-"))
        settings = get_settings()
        cache = NodeCache(settings.resolved_cache_dir(), settings.cache_limit_bytes)
        model_dir = workdir / "model"
        files = args.get("model_files") or {}
        if files:  # `spell model create --file`: only those files, at their paths
            for path, mount in files.items():
                materialize(_storage(args), f"{args['model_resource']}/{path}",
                            model_dir / mount, cache)
        else:
            materialize(_storage(args), args["model_resource"], model_dir, cache)
        cls = predictor_class(args, workdir)
        self._model_dir = model_dir
        with model_mounted(model_dir):
            self.predictor = construct(cls, str(model_dir), args.get("config") or {})
        self.model = args["model"]
        self._revision = args.get("revision")  # health tells it: `serve`/`update` wait for it
        token_hash = args.get("token_hash")
        self._token_hash = token_hash.encode() if token_hash else None
        self._timeout = args.get("answer_timeout_s")
        self._batching = bool(args.get("batching"))
        # With batching, prepare (when the predictor has one) gets each request alone.
        self._prepare = getattr(self.predictor, "prepare", None) if self._batching else None
        self._raw = takes_request(self._prepare or self.predictor.predict)
        if self._batching:
            self._predict_batch.set_max_batch_size(int(args.get("max_batch_size") or 10))
            self._predict_batch.set_batch_wait_timeout_s(
                float(args.get("batch_wait_s") or DEFAULT_BATCH_WAIT_S))

    def __del__(self) -> None:  # Serve calls it when it stops the replica
        if (model_dir := getattr(self, "_model_dir", None)) is not None:
            unmount_model(model_dir)

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        given = hashlib.sha256(header[7:].strip().encode()).hexdigest().encode()
        return hmac.compare_digest(given, self._token_hash)  # type: ignore[arg-type]

    @serve.batch(max_batch_size=10, batch_wait_timeout_s=DEFAULT_BATCH_WAIT_S)
    async def _predict_batch(self, payloads: list[Any]) -> list[Any]:
        # With batching the predictor's predict takes (and returns) a list; in a thread, so
        # a slow batch blocks neither other requests nor the answer deadline.
        return list(await _call(self.predictor.predict, payloads, in_thread=True))

    async def _predict(self, arg: Any) -> Any:
        if not self._batching:
            return await _call(self.predictor.predict, arg, in_thread=bool(self._timeout))
        if self._prepare is not None:
            arg = await _call(self._prepare, arg, in_thread=bool(self._timeout))
        return await self._predict_batch(arg)

    async def __call__(self, request: Request) -> Response:
        if self._token_hash is not None and not self._authorized(
                request.headers.get("authorization")):
            return _error(401, "unauthorized", "send this server's token as 'Authorization: "
                                               "Bearer TOKEN' (spell server describe shows it)")
        route = _subpath(request)
        if request.method == "GET" and route in ("", "health"):
            return await self._health()
        if request.method == "GET" and route == "metrics":
            return self._metrics()
        if request.method != "POST" or route not in ("", "predict"):
            return _error(404, "not_found", f"{request.method} /{route}: a model server "
                                            "answers POST at its endpoint or /predict, GET "
                                            "/health and /metrics")
        if self._raw:
            arg: Any = request
        else:
            try:
                arg = json.loads(await request.body())
            except ValueError as exc:
                return _error(400, "invalid_input", f"the body is not JSON: {exc}")
        try:
            call = self._predict(arg)
            result = await (asyncio.wait_for(call, self._timeout) if self._timeout else call)
        except asyncio.TimeoutError:
            return _error(504, "timeout", f"the prediction took longer than {self._timeout} s "
                                          "(--answer-timeout)")
        except HTTPException as exc:  # the predictor's own answer (Spell's predictors raise it)
            return _json({"detail": exc.detail, "error": {"code": f"http_{exc.status_code}",
                                                          "message": str(exc.detail)}},
                         exc.status_code, self.model, exc.headers)
        except CLIENT_ERRORS as exc:
            return _error(400, "invalid_input", f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            traceback.print_exc()  # into the replica's log: `spell server logs`
            return _error(500, "predictor_error", f"{type(exc).__name__}: {exc}")
        if isinstance(result, Response):
            return result
        return _json(result, model=self.model)

    async def _health(self) -> Response:
        check = getattr(self.predictor, "health", None)
        try:
            healthy = True if check is None else check()
            if inspect.isawaitable(healthy):
                healthy = await healthy
        except Exception as exc:
            return _json({"healthy": False, "model": self.model, "reason": str(exc)}, 503,
                         self.model)
        return _json({"healthy": bool(healthy), "model": self.model,
                      "revision": self._revision}, 200 if healthy else 503, self.model)

    def _metrics(self) -> Response:
        import prometheus_client

        return Response(prometheus_client.generate_latest(),
                        media_type=prometheus_client.CONTENT_TYPE_LATEST)


def build(args: dict[str, Any]) -> Any:
    """Serve's application builder. The predictor is imported here first, so a file that
    fails to import fails the deployment at once (DEPLOY_FAILED, with the traceback) rather
    than after Serve has retried replicas."""
    with tempfile.TemporaryDirectory(prefix="spellray-build-") as workdir:
        cls = predictor_class(args, Path(workdir))
        check_class(cls, args.get("config") or {}, args.get("entrypoint") or "the predictor")
    return ModelServer.bind(args)
