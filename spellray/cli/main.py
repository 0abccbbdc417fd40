"""`spell`: the command line. Ray is never imported here, and a command's module only when
that command runs (`spell --help` and `spell run` stay fast; see cli/lazy_group.py)."""

from __future__ import annotations

import os
import sys
from typing import ClassVar

import typer

from spellray.cli.lazy_group import Lazy, LazyGroup


class SpellGroup(LazyGroup):
    lazy: ClassVar[dict[str, Lazy]] = {
        "run": Lazy("spellray.cli.runs",
                    'Run a command on the cluster: spell run "python train.py".'),
        "ps": Lazy("spellray.cli.runs", "List runs, newest first."),
        "info": Lazy("spellray.cli.runs", "Everything about a run."),
        "logs": Lazy("spellray.cli.runs", "Print a run's log."),
        "kill": Lazy("spellray.cli.runs", "End runs now; their outputs are not saved."),
        "stop": Lazy("spellray.cli.runs", "End runs and save their outputs."),
        "label": Lazy("spellray.cli.runs", "Add a label to a run (or remove it)."),
        "ls": Lazy("spellray.cli.resources",
                   "List the storage tree: runs, uploads, public data sets and links."),
        "cp": Lazy("spellray.cli.resources",
                   "Copy a file or folder out of storage: spell cp runs/42/model ."),
        "upload": Lazy("spellray.cli.resources", "Upload a file or folder to uploads/NAME."),
        "rm": Lazy("spellray.cli.resources",
                   "Remove uploads (runs keep their outputs; public/ is read-only)."),
        "link": Lazy("spellray.cli.resources", "List links, show one, or create one: "
                     "spell link best-model runs/42/model."),
        "unlink": Lazy("spellray.cli.resources",
                       "Remove a link (the resource it names stays)."),
        "metrics": Lazy("spellray.cli.metrics", "Show a run's metrics: each one's count, last, "
                        "min, max and trend; or one's values."),
        "ui": Lazy("spellray.cli.metrics", "Open MLflow's UI (every run's metrics and params) "
                   "in a browser, logged in."),
        "tensorboard": Lazy("spellray.cli.tensorboard", "Open TensorBoard on runs (named by "
                            "number) in a browser, logged in."),
        "jupyter": Lazy("spellray.cli.workspaces", "Workspaces (Jupyter on the cluster): not "
                        "built yet; says what to use meanwhile."),
        "server": Lazy("spellray.cli.server", "The local spellray server (start | stop | "
                       "status without a NAME), and model servers on Ray Serve (serve, list, "
                       "describe, logs, predict, healthcheck, start NAME, stop NAME, update, "
                       "rm).", sub_app="app"),
        "hyper": Lazy("spellray.cli.hyper",
                      "Hyperparameter searches: one run per trial, on Ray Tune.", sub_app="app"),
        "model": Lazy("spellray.cli.models",
                      "Models: names and versions for run outputs and uploads."),
        "model-servers": Lazy("spellray.cli.model_servers", "Older Spell's model-server "
                              "commands (spell server ... is the current form).",
                              sub_app="legacy"),
        "cluster": Lazy("spellray.cli.cluster", "Clusters on AWS or GCP (Ray cluster "
                        "launcher), and which one is in use.", sub_app="app"),
        "workflow": Lazy("spellray.cli.workflows", "Workflows: a manager run that starts "
                         "runs, waits for them and chains their outputs.", sub_app="app"),
    }


app = typer.Typer(
    name="spell",
    cls=SpellGroup,
    help="Run machine-learning work on a Ray cluster, the Spell way.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: typer's rich help imports rich's markdown renderer, which alone is several
    # times Python's own start-up (`spell --help` is meant to cost < 3x `python -c pass`).
    rich_markup_mode=None,
    # Command summaries whole on a wide terminal (click cuts them to fit its 80 columns).
    context_settings={"max_content_width": 120},
)


@app.callback()
def spell() -> None:
    """Run machine-learning work on a Ray cluster, the Spell way."""


def main() -> None:
    # httpcore imports trio, when installed, only to detect whether it runs under trio; the
    # CLI never does, and that import costs ~95 ms of every command's start-up.
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type]
    # httpx imports its own command line (click, pygments, rich's progress bars) when it can;
    # without it httpx works the same, and every command starts faster.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    try:
        # Not standalone: errors come back here to be printed as one line each.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except KeyboardInterrupt:
        _exit_detached()
    except typer.TyperException as exc:  # usage errors, in non-standalone mode
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        _exit_detached()
    except Exception as exc:  # ours (one line) or a bug of ours: still one line
        _exit_for(exc)


def _exit_detached() -> None:
    from spellray.cli import exit_codes

    sys.exit(exit_codes.DETACHED)


def _exit_for(exc: Exception) -> None:
    # Imported here, not above: a command that succeeds never pays for them.
    from rich.markup import escape

    from spellray.cli import exit_codes
    from spellray.cli.output import err
    from spellray.errors import NotFound, SpellrayError

    if os.environ.get("SPELLRAY_DEBUG"):
        raise exc
    if isinstance(exc, SpellrayError):
        err.print(f"[red]error:[/] {escape(exc.message)}")  # the message is not markup
        sys.exit(exit_codes.NOT_FOUND if isinstance(exc, NotFound) else exit_codes.ERROR)
    text = " ".join(str(exc).split())[:300]
    err.print(f"[red]error:[/] {escape(f'spell failed unexpectedly: {type(exc).__name__}: ')}"
              f"{escape(text)} (SPELLRAY_DEBUG=1 shows the traceback)")
    sys.exit(exit_codes.ERROR)


if __name__ == "__main__":
    main()
