"""One trial of a search: a spellray run, executed by the runner inside a Ray Tune trial actor.

A class Trainable rather than a function one, for its ``cleanup``: when Tune stops a trial
(ASHA's early stop, `spell hyper stop`), cleanup stops the run's command the way `spell
stop` does and waits until its outputs are saved, before Tune ends the actor.

Each ``step`` returns when the run reports a metric (the search's metric, if it has one),
ends, or a second has passed: the actor runs one task at a time, and Tune's request to
stop a trial waits behind the step in progress. ASHA counts in ``spellray_metric_count``
(values of the search's metric), so these heartbeats are not progress to it.

The trial's run number comes from the server when the trial starts: trials Tune never
starts get no number.
"""

from __future__ import annotations

import math
import os
import queue
import statistics
import threading
from typing import Any

from ray import tune

from spellray.runner.main import Runner
from spellray.storage.store import Storage
from spellray.tune.space import ParamSpec, format_value

DONE = object()
# The longest a step waits for news before returning a heartbeat (see above).
STEP_SECONDS = 1.0
AGGREGATIONS = {"last": lambda v: v[-1], "avg": statistics.fmean, "min": min, "max": max}


class SpellTrial(tune.Trainable):
    def setup(self, config: dict[str, Any], *, search: dict[str, Any], server_url: str,
              token: str) -> None:
        from spellray.client import Client

        self.search = search
        self.client = Client(server_url, token)
        self.specs = {p["name"]: ParamSpec.model_validate(p) for p in search["params"]}
        self.metric: str | None = search.get("metric")
        self.aggregate = AGGREGATIONS[search.get("aggregation") or "last"]
        self.config = config
        self.thread: threading.Thread | None = None
        self.storage = Storage(search["storage_uri"])  # one for all the actor's trials

    def _start(self, config: dict[str, Any]) -> None:
        """Make the trial's run and start it. At the first step, not in setup or
        reset_config: Tune also sets up and resets actors it then never steps (a cached
        actor at the end of a search), and each of those would be a run that never ran."""
        params = {name: format_value(spec, config[name]) for name, spec in self.specs.items()}
        created = self.client.hyper.start_trial(self.search["id"], params)
        self.run_id: int = created["run_id"]
        # One trial at a time in this actor's process: the runner and the user's command
        # read who they are from the environment.
        os.environ.update(SPELLRAY_RUN_ID=str(self.run_id), SPELLRAY_TOKEN=created["token"],
                          SPELL_RUN=str(self.run_id), SPELL_TOKEN=created["token"])
        self.values: list[float] = []
        self.last: dict[str, float] = {}
        self.events: queue.Queue[Any] = queue.Queue()
        self.runner = Runner(self.run_id, self.storage, created["record"],
                             created.get("tracking"))
        self.runner.metric_listeners.append(self.events.put)
        self.exit_code: int | None = None
        self.thread = threading.Thread(target=self._run, name=f"run-{self.run_id}",
                                       daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.exit_code = self.runner.run(handle_signals=False)
        finally:
            self.events.put(DONE)

    def _result(self, done: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = {"spellray_run_id": self.run_id, **self.last,
                                  "spellray_metric_count": len(self.values)}
        if self.metric and self.values:
            result["spellray_latest"] = self.values[-1]
            result["spellray_objective"] = self.aggregate(self.values)
        if done:
            result["done"] = True
        return result

    def step(self) -> dict[str, Any]:
        if self.thread is None:
            self._start(self.config)
        while True:
            try:
                event = self.events.get(timeout=STEP_SECONDS)
            except queue.Empty:
                return self._result()
            if event is DONE:
                return self._result(done=True)
            value = float(event["value"])
            if not math.isfinite(value):
                continue
            self.last[event["name"]] = value
            if self.metric is None or event["name"] == self.metric:
                if event["name"] == self.metric:
                    self.values.append(value)
                return self._result()

    def _finish(self, reason: str) -> None:
        if self.thread is None:
            return
        if self.thread.is_alive():
            self.runner.request_stop(reason)
        self.thread.join()
        self.thread = None

    def cleanup(self) -> None:
        self._finish("stopped by the search (early stop or spell hyper stop)")

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        # Tune reuses this actor for the next trial: the last one is over, start the next.
        self._finish("stopped by the search")
        self.config = new_config
        return True
