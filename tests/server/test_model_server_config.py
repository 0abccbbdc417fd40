"""Spell's serving options as Ray Serve's declarative config (services/model_server_config.py),
checked against Serve's own schema."""

from __future__ import annotations

from ray.serve.schema import ServeDeploySchema

from spellray.schemas import Environment, MachineType, ServingOptions
from spellray.server.services import environments, model_server_config


def _config(options: ServingOptions, machine_type: MachineType | None = None) -> dict:
    runtime_env = environments.runtime_env(options.environment,
                                           environments.ClusterAbilities(False, False))
    app = model_server_config.application("digits", {"model": "digits:v1"}, options,
                                           machine_type or MachineType(name="CPU"), runtime_env)
    config = model_server_config.deploy_config([app], 8123)
    ServeDeploySchema.model_validate(config)  # Serve would take it
    return config


def test_fixed_replicas_route_and_rolling_update() -> None:
    config = _config(ServingOptions(min_pods=2))
    app = config["applications"][0]
    assert (app["name"], app["route_prefix"]) == ("digits", "/digits")
    assert app["import_path"] == "spellray.serve.app:build"
    deployment = app["deployments"][0]
    assert deployment["num_replicas"] == 2 and "autoscaling_config" not in deployment
    assert deployment["max_surge_percent"] == 100  # new replicas before old ones stop
    assert config["http_options"] == {"host": "127.0.0.1", "port": 8123}


def test_autoscaling_from_pods_and_requests_per_second() -> None:
    deployment = _config(ServingOptions(min_pods=1, max_pods=4, target_requests_per_second=50)
                         )["applications"][0]["deployments"][0]
    assert deployment["autoscaling_config"] == {
        "min_replicas": 1, "initial_replicas": 1, "max_replicas": 4,
        "target_ongoing_requests": 5.0}
    low = _config(ServingOptions(target_requests_per_second=2))
    assert low["applications"][0]["deployments"][0]["autoscaling_config"][
        "target_ongoing_requests"] == 1.0


def test_machine_type_and_pip_environment() -> None:
    gpu = MachineType(name="V100", num_cpus=4, num_gpus=1, resources={"v100": 1})
    app = _config(ServingOptions(environment=Environment(pip=["six", "attrs"])),
                  gpu)["applications"][0]
    assert app["deployments"][0]["ray_actor_options"] == {
        "num_cpus": 4, "num_gpus": 1, "resources": {"v100": 1}}
    assert app["runtime_env"] == {"spellray_venv": {"packages": ["attrs", "six"]}}
