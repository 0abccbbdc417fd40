"""`spell`: the command line. Ray is never imported here (`spell --help` stays fast)."""

from __future__ import annotations

import os
import sys

import typer

from spellray.cli import (
    cluster,
    hyper,
    metrics,
    model_servers,
    models,
    resources,
    runs,
    server,
    workflows,
    workspaces,
)

app = typer.Typer(
    name="spell",
    help="Run machine-learning work on a Ray cluster, the Spell way.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runs.register(app)
resources.register(app)
metrics.register(app)
app.add_typer(server.app, name="server")
app.add_typer(hyper.app, name="hyper")
models.register(app)
app.add_typer(model_servers.legacy, name="model-servers")
app.add_typer(cluster.app, name="cluster")
workspaces.register(app)
app.add_typer(workflows.app, name="workflow")


def main() -> None:
    # httpcore imports trio, when installed, only to detect whether it runs under trio; the
    # CLI never does, and that import costs ~95 ms of every command's start-up.
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type]
    from rich.markup import escape

    from spellray.cli import exit_codes
    from spellray.cli.output import err
    from spellray.errors import NotFound, SpellrayError

    try:
        # Not standalone: errors come back here to be printed as one line each.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except SpellrayError as exc:
        if os.environ.get("SPELLRAY_DEBUG"):
            raise
        err.print(f"[red]error:[/] {escape(exc.message)}")  # the message is not markup
        sys.exit(exit_codes.NOT_FOUND if isinstance(exc, NotFound) else exit_codes.ERROR)
    except KeyboardInterrupt:
        sys.exit(exit_codes.DETACHED)
    except typer.TyperException as exc:  # usage errors, in non-standalone mode
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(exit_codes.DETACHED)
    except Exception as exc:  # a bug of ours: still one line, the traceback on request
        if os.environ.get("SPELLRAY_DEBUG"):
            raise
        text = " ".join(str(exc).split())[:300]
        err.print(f"[red]error:[/] {escape(f'spell failed unexpectedly: {type(exc).__name__}: ')}"
                  f"{escape(text)} (SPELLRAY_DEBUG=1 shows the traceback)")
        sys.exit(exit_codes.ERROR)


if __name__ == "__main__":
    main()
