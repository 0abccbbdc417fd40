"""The Ray job that drives one search: `python -m spellray.tune.driver SEARCH_ID`.

It reads the search from the server, runs a Ray Tune Tuner whose trials are spellray runs
(spellray/tune/trial.py), and reports how the search ended. Tune's own result files,
loggers and checkpoints are off: the runs keep everything (outputs, logs, metrics).
"""

from __future__ import annotations

import math
import os
import random
import sys
import tempfile
import threading
from typing import Any

# Before Ray Tune is imported: its JSON/CSV/TensorBoard loggers would write files no one
# reads, for every result of every trial.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
# A trial that ends without reporting the search's metric (a failed run) is not an error.
os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")

from ray import tune

from spellray.client import Client
from spellray.errors import SpellrayError
from spellray.tune.space import ParamSpec, grid_size
from spellray.tune.trial import SpellTrial

# How often the driver asks the server whether `spell hyper stop` was requested.
STOP_POLL_SECONDS = 1.0


def _reverse_log(low: float, high: float, as_int: bool) -> Any:
    """Spell's reverse_log: log-spaced from the top (dense near MAX), e.g. for momentum."""
    def sample(_: Any) -> float | int:
        value = low + high - math.exp(random.uniform(math.log(low), math.log(high)))
        return round(value) if as_int else value
    return tune.sample_from(sample)


def domain(spec: ParamSpec, kind: str) -> Any:
    if spec.values is not None:
        return tune.grid_search(spec.values) if kind == "grid" else tune.choice(spec.values)
    assert spec.min is not None and spec.max is not None
    low, high, as_int = spec.min, spec.max, spec.type == "int"
    if spec.scale == "reverse_log":
        return _reverse_log(low, high, as_int)
    if as_int:  # Tune's integer upper bounds are exclusive; Spell's MAX is included
        return (tune.lograndint if spec.scale == "log" else tune.randint)(int(low), int(high) + 1)
    return (tune.loguniform if spec.scale == "log" else tune.uniform)(low, high)


class StopRequested(tune.Stopper):
    """Ends the search gracefully when `spell hyper stop` asks: Tune stops each running
    trial, and each trial's cleanup saves its run's outputs.

    The server is asked from a thread of its own: Tune calls ``stop_all`` on every pass of
    its loop, and a request there would hold up every trial's results behind it."""

    def __init__(self, server_url: str, token: str, search_id: int) -> None:
        self.server_url, self.token, self.search_id = server_url, token, search_id
        self._start()

    def _start(self) -> None:
        self._stop = threading.Event()
        self._ended = threading.Event()
        threading.Thread(target=self._poll, name="stop-poll", daemon=True).start()

    def __getstate__(self) -> dict[str, Any]:
        # Tune saves its stopper with the experiment's state: threads and events won't pickle.
        return {"server_url": self.server_url, "token": self.token,
                "search_id": self.search_id}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start()

    def _poll(self) -> None:
        client = Client(self.server_url, self.token)
        while not self._ended.wait(STOP_POLL_SECONDS):
            try:
                if client.hyper.get(self.search_id).status == "stopping":
                    self._stop.set()
                    return
            except Exception:  # the server restarting: ask again next time
                continue

    def close(self) -> None:
        self._ended.set()

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self._stop.is_set()


class SearchEnd(tune.Callback):
    """Reports the search complete the moment its last trial has ended. Tune's own end
    comes later: it stops the trial actors it kept for reuse and then reads every trial's
    result files (which spellray turns off), seconds in all, during which the search and
    all of its runs are done."""

    def __init__(self, client: Client, search_id: int, expected: int,
                 stopper: StopRequested) -> None:
        self.client, self.search_id, self.expected = client, search_id, expected
        self.stopper = stopper
        self.ended = 0
        self.reported = False

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config with the experiment: an HTTP client won't pickle,
        # and a copy never reports.
        return {**self.__dict__, "client": None, "stopper": None, "reported": True}

    def _trial_ended(self) -> None:
        self.ended += 1
        if self.ended >= self.expected and not self.reported and not self.stopper.stop_all():
            self.stopper.close()
            # Not if `spell hyper stop` came meanwhile: main() then reports it stopped, as
            # it reports the search's end whenever this could not.
            try:
                if self.client.hyper.get(self.search_id).status == "running":
                    self.client.hyper.report(self.search_id, "complete")
                    self.reported = True
            except SpellrayError:
                pass

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._trial_ended()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._trial_ended()


def expected_trials(search: dict[str, Any]) -> int:
    """How many trials the search runs if nothing stops it."""
    if search["kind"] == "grid":
        return grid_size([ParamSpec.model_validate(p) for p in search["params"]])
    return search["num_runs"]


def build_tuner(search: dict[str, Any], server_url: str, token: str,
                stopper: StopRequested | None = None,
                callbacks: list[Any] | None = None) -> Any:
    kind, mode = search["kind"], search.get("mode") or "max"
    specs = [ParamSpec.model_validate(p) for p in search["params"]]
    searcher = scheduler = None
    if kind == "bayesian":
        from ray.tune.search import ConcurrencyLimiter
        from ray.tune.search.optuna import OptunaSearch

        class OptunaOnMetric(OptunaSearch):
            """Optuna's searcher, skipping the results (heartbeats) that carry no value of
            the metric yet: Ray's would raise KeyError on them."""

            def on_trial_result(self, trial_id: str, result: dict) -> None:
                if self.metric in result:
                    super().on_trial_result(trial_id, result)

        searcher = ConcurrencyLimiter(
            OptunaOnMetric(metric="spellray_objective", mode=mode),
            max_concurrent=search.get("parallel") or 1)
    if search.get("early_stop"):
        from ray.tune.schedulers import ASHAScheduler

        # On the metric's latest value, counted in values of it (not Tune's iterations,
        # which include the trials' heartbeats).
        scheduler = ASHAScheduler(metric="spellray_latest", mode=mode,
                                  time_attr="spellray_metric_count", grace_period=1)
    resources = search["resources"]
    trainable = tune.with_resources(
        tune.with_parameters(SpellTrial, search=search, server_url=server_url, token=token),
        {"cpu": resources["num_cpus"], "gpu": resources["num_gpus"],
         **resources.get("resources", {})})
    return tune.Tuner(
        trainable,
        param_space={s.name: domain(s, kind) for s in specs},
        tune_config=tune.TuneConfig(
            num_samples=1 if kind == "grid" else search["num_runs"],
            search_alg=searcher, scheduler=scheduler,
            max_concurrent_trials=search.get("max_concurrent") or None,
            # Trials are runs: a finished actor starts the next trial, saving an actor
            # start (about a second here) per trial.
            reuse_actors=True),
        run_config=tune.RunConfig(
            name=f"search-{search['id']}", storage_path=tempfile.mkdtemp(prefix="spellray-tune-"),
            stop=stopper or StopRequested(server_url, token, search["id"]), verbose=0,
            callbacks=callbacks,
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False)),
    )


def main(argv: list[str] | None = None) -> int:
    search_id = int((argv or sys.argv[1:])[0])
    server_url, token = os.environ["SPELLRAY_SERVER_URL"], os.environ["SPELLRAY_TOKEN"]
    client = Client(server_url, token)
    search = client.hyper.spec(search_id)
    stopper = StopRequested(server_url, token, search_id)
    end = SearchEnd(client, search_id, expected_trials(search), stopper)
    try:
        build_tuner(search, server_url, token, stopper, [end]).fit()
    except Exception as exc:
        if not end.reported:
            client.hyper.report(search_id, "failed", f"the search driver failed: "
                                                      f"{type(exc).__name__}: {exc}")
        raise
    finally:
        stopper.close()
    if not end.reported:  # stopped, or fewer trials than expected
        stopping = client.hyper.get(search_id).status == "stopping"
        client.hyper.report(search_id, "stopped" if stopping else "complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
