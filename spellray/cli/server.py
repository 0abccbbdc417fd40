"""spell server ...: the local spellray server's lifecycle (start | stop | status, with no
NAME) and model servers on Ray Serve (serve | list | describe | logs | predict | healthcheck
| start NAME | stop NAME | update | rm). Model-server commands: cli/model_servers.py."""

from __future__ import annotations

from typing import Annotated

import typer

from spellray.cli import model_servers
from spellray.cli.output import console

app = typer.Typer(help="The local spellray server (start | stop | status without a NAME), and "
                       "model servers on Ray Serve (serve, list, describe, logs, predict, "
                       "healthcheck, start NAME, stop NAME, update, rm).",
                  no_args_is_help=True)
model_servers.register(app)

ServerName = Annotated[str | None, typer.Argument(
    help="A model server's name; without one, the local spellray server (and Ray head)")]


@app.command()
def start(
    name: ServerName = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="With NAME: return at once rather than wait until the model server answers")] = False,  # noqa: E501
) -> None:
    """Start the local server and Ray head; with NAME, deploy that model server again.

    Without NAME: the local spellray server, and a Ray head if none is reachable. With NAME:
    waits until the model server answers."""
    if name:
        model_servers.start_server(name, no_wait)
        return
    from spellray.cluster.local import ensure_local_server, read_state
    from spellray.settings import get_settings

    settings = get_settings()
    url = ensure_local_server(settings)
    state = read_state(settings)
    ray = "started by spellray" if state.get("ray_pid") else "already running"
    console.print(f"spellray server at {url} · Ray at {settings.ray_address} ({ray})")


@app.command()
def stop(name: ServerName = None) -> None:
    """Stop the local server and Ray head; with NAME, take that model server off Serve.

    Without NAME: the local spellray server, and the Ray head if spellray started it. With
    NAME the model server's record stays: spell server start NAME deploys it again."""
    if name:
        model_servers.stop_server(name)
        return
    from spellray.cluster.local import stop_local
    from spellray.settings import get_settings

    stopped = stop_local(get_settings())
    console.print("stopped " + " and ".join(stopped) if stopped else "nothing was running")


@app.command()
def status() -> int:
    """Show whether the local server and Ray are up."""
    from spellray.cluster.local import local_server_url, ray_reachable, read_state
    from spellray.settings import get_settings

    settings = get_settings()
    url = local_server_url(settings)
    state = read_state(settings)
    ray_up = ray_reachable(settings.ray_address)
    who = " (started by spellray)" if state.get("ray_pid") else ""
    console.print(f"server  {'up at ' + url if url else 'down'}")
    console.print(f"ray     {'up' if ray_up else 'down'} at {settings.ray_address}{who}")
    console.print(f"home    {settings.home}")
    return 0 if url else 1
