"""The Ray Serve application every model server is: ``spellray.serve.app:build``.

The spellray server deploys it over Serve's REST API with the server's options as ``args``;
each replica materializes the model from storage (the same code as a run's ``-m``), unpacks
the predictor's code package and builds the predictor with the model's path. The request
path is kept lean (a plain ``__call__`` ingress, no FastAPI app): a constant-time compare of
the token's hash, the JSON body, ``predict``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import tempfile
import traceback
from pathlib import Path
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from spellray.serve.names import DEPLOYMENT
from spellray.serve.predictor import (
    CLIENT_ERRORS,
    MLflowPredictor,
    construct,
    load_module,
    pick_class,
)


def _json(body: Any, status: int = 200, model: str = "") -> Response:
    # X-Spellray-Model: which model version answered (an update rolls replicas over).
    return Response(json.dumps(body), status_code=status, media_type="application/json",
                    headers={"X-Spellray-Model": model} if model else None)


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
        materialize(_storage(args), args["model_resource"], model_dir, cache)
        self.predictor = construct(predictor_class(args, workdir), str(model_dir))
        self.model = args["model"]
        token_hash = args.get("token_hash")
        self._token_hash = token_hash.encode() if token_hash else None
        self._timeout = args.get("request_timeout_s")
        self._batching = bool(args.get("batching"))
        if self._batching:
            self._predict_batch.set_max_batch_size(int(args.get("max_batch_size") or 10))

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        given = hashlib.sha256(header[7:].strip().encode()).hexdigest().encode()
        return hmac.compare_digest(given, self._token_hash)  # type: ignore[arg-type]

    @serve.batch(max_batch_size=10, batch_wait_timeout_s=0.01)
    async def _predict_batch(self, payloads: list[Any]) -> list[Any]:
        # With --enable-batching the predictor's predict takes (and returns) a list; in a
        # thread, so a slow batch neither blocks other requests nor --request-timeout.
        return list(await asyncio.to_thread(self.predictor.predict, payloads))

    async def _predict(self, payload: Any) -> Any:
        if self._batching:
            call = self._predict_batch(payload)
        elif self._timeout:
            call = asyncio.to_thread(self.predictor.predict, payload)
        else:
            return self.predictor.predict(payload)
        return await (asyncio.wait_for(call, self._timeout) if self._timeout else call)

    async def __call__(self, request: Request) -> Response:
        if self._token_hash is not None and not self._authorized(
                request.headers.get("authorization")):
            return _error(401, "unauthorized", "send this server's token as 'Authorization: "
                                               "Bearer TOKEN' (spell server describe shows it)")
        if request.method == "GET":
            return self._health()
        try:
            payload = json.loads(await request.body())
        except ValueError as exc:
            return _error(400, "invalid_input", f"the body is not JSON: {exc}")
        try:
            result = await self._predict(payload)
        except asyncio.TimeoutError:
            return _error(504, "timeout", f"the prediction took longer than {self._timeout} s "
                                          "(--request-timeout)")
        except CLIENT_ERRORS as exc:
            return _error(400, "invalid_input", f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            traceback.print_exc()  # into the replica's log: `spell server logs`
            return _error(500, "predictor_error", f"{type(exc).__name__}: {exc}")
        return _json(result, model=self.model)

    def _health(self) -> Response:
        check = getattr(self.predictor, "health", None)
        try:
            healthy = True if check is None else check()
        except Exception as exc:
            return _json({"healthy": False, "model": self.model, "reason": str(exc)}, 503,
                         self.model)
        return _json({"healthy": bool(healthy), "model": self.model},
                     200 if healthy else 503, self.model)


def build(args: dict[str, Any]) -> Any:
    """Serve's application builder. The predictor is imported here first, so a file that
    fails to import fails the deployment at once (DEPLOY_FAILED, with the traceback) rather
    than after Serve has retried replicas."""
    with tempfile.TemporaryDirectory(prefix="spellray-build-") as workdir:
        predictor_class(args, Path(workdir))
    return ModelServer.bind(args)
