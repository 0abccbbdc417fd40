"""A model server's options as Ray Serve's declarative config (ServeDeploySchema), built
from the DB each time: Serve's REST PUT replaces every application at once.

Scaling, as Spell's flags map onto Serve's deployment options:

- ``--min-pods N`` alone (or equal to ``--max-pods``): ``num_replicas: N``.
- ``--max-pods M`` above N, or ``--target-requests-per-second R``: ``autoscaling_config``
  with ``min_replicas: N``, ``initial_replicas: N``, ``max_replicas: M`` (N when not given)
  and, from R, ``target_ongoing_requests = max(1, R * 0.1)``: Serve scales on requests in
  flight per replica, which by Little's law is R times the time a request takes, taken to
  be 100 ms. Without R, Serve's default target applies.
- Rolling updates start new replicas before old ones stop (``max_surge_percent: 100``), so
  `spell server update` never leaves a moment without a ready replica.
"""

from __future__ import annotations

from typing import Any

from spellray.schemas import MachineType, ServingOptions
from spellray.serve.names import DEPLOYMENT, IMPORT_PATH

# Seconds a request is assumed to take, to turn requests per second into requests in flight.
ASSUMED_REQUEST_SECONDS = 0.1


def scaling(options: ServingOptions) -> dict[str, Any]:
    low = options.min_pods
    high = max(options.max_pods or low, low)
    if high == low and options.target_requests_per_second is None:
        return {"num_replicas": low}
    autoscaling: dict[str, Any] = {"min_replicas": low, "initial_replicas": low,
                                   "max_replicas": high}
    if options.target_requests_per_second is not None:
        autoscaling["target_ongoing_requests"] = max(
            1.0, options.target_requests_per_second * ASSUMED_REQUEST_SECONDS)
    return {"autoscaling_config": autoscaling}


def actor_options(machine_type: MachineType) -> dict[str, Any]:
    found: dict[str, Any] = {"num_cpus": machine_type.num_cpus}
    if machine_type.num_gpus:
        found["num_gpus"] = machine_type.num_gpus
    if machine_type.resources:
        found["resources"] = machine_type.resources
    return found


def application(name: str, args: dict[str, Any], options: ServingOptions,
                machine_type: MachineType, runtime_env: dict[str, Any]) -> dict[str, Any]:
    """One ServeApplicationSchema: the app ``name`` at ``/<name>``."""
    deployment = {"name": DEPLOYMENT, "ray_actor_options": actor_options(machine_type),
                  "max_surge_percent": 100, **scaling(options)}
    return {"name": name, "route_prefix": f"/{name}", "import_path": IMPORT_PATH,
            "runtime_env": runtime_env, "args": args, "deployments": [deployment]}


def deploy_config(applications: list[dict[str, Any]], port: int) -> dict[str, Any]:
    """The whole ServeDeploySchema. The proxy's options only count when this PUT starts
    Serve: a Serve already running keeps its own (ask ``http_options`` for the real port)."""
    return {"proxy_location": "HeadOnly",
            "http_options": {"host": "127.0.0.1", "port": port},
            "applications": applications}
