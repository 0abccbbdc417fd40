"""Searches from Python: ``spellray.hyper.grid(command, params={...}, **run_options)``.

    search = spellray.hyper.grid("python train.py --rate :rate:",
                                 params={"rate": [0.001, 0.01, 0.1]}, pip=["scikit-learn"])
    search.wait()
    best = search.best_run("accuracy", mode="max")

``run_options`` are those of ``client.runs.new`` (machine_type, mounts, env, pip, apt, ...).
Inside a run (a workflow) the searches go to the same server, with the run's token.
"""

from __future__ import annotations

from typing import Any

from spellray.hyper_client import Search


def _start(kind: str, command: str, params: dict[str, Any], *, client: Any = None,
           **options: Any) -> Search:
    """``options``: those of ``client.hyper.start`` (the search's, then the run's)."""
    from spellray.client import from_environment

    client = client or from_environment()
    return Search(client, client.hyper.start(kind, command, params, **options))


def grid(command: str, params: dict[str, list[Any]], **options: Any) -> Search:
    """One run per combination of the value lists."""
    return _start("grid", command, params, **options)


def random(command: str, params: dict[str, Any], num_runs: int, **options: Any) -> Search:
    """``num_runs`` runs, each value drawn from its list or range ("MIN:MAX[:scale[:type]]")."""
    return _start("random", command, params, num_runs=num_runs, **options)


def bayesian(command: str, params: dict[str, Any], num_runs: int, metric: str,
             parallel: int = 1, **options: Any) -> Search:
    """``num_runs`` runs chosen by Optuna to make ``metric`` best, ``parallel`` at a time."""
    return _start("bayesian", command, params, num_runs=num_runs, metric=metric,
                  parallel=parallel, **options)
