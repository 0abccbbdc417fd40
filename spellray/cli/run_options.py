"""`spell run --from-file FILE` and `--save-command FILE`: every run option through YAML.

The file uses the long flag names (`machine-type: CPU`, `pip: [numpy]`, `command: python
train.py`). An option given on the command line wins over the file; the file fills in the
rest. JSON is YAML, so a JSON file reads too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer._click.core import ParameterSource
from typer._click.exceptions import TyperException

from spellray.errors import InvalidInput

# Options that belong to this invocation, not to the run.
_NOT_SAVED = {"from_file", "save_command", "force", "verbose", "background"}
_PATHS = {"pip_req", "conda_file", "config"}  # config: `spell server serve --config`


def _key(name: str) -> str:
    return name.replace("_", "-")


def _params(ctx: typer.Context) -> dict[str, Any]:
    return {p.name: p for p in ctx.command.params if p.name and p.name not in _NOT_SAVED}


def read_yaml(flag: str, path: Path) -> Any:
    """A YAML (and so JSON) file a flag names; a missing or unreadable one is one line."""
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InvalidInput(f"{flag} {path}: no such file") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInput(f"{flag} {path}: cannot read it ({first})") from None


def _from_file(ctx: typer.Context, path: Path) -> dict[str, Any]:
    data = read_yaml("--from-file", path)
    if not isinstance(data, dict):
        raise InvalidInput(f"--from-file {path}: expected a mapping of option names to values")
    params = _params(ctx)
    values: dict[str, Any] = {}
    for raw, value in data.items():
        name = str(raw).lstrip("-").replace("-", "_")
        param = params.get(name)
        if param is None:
            known = ", ".join(sorted(_key(n) for n in params))
            raise InvalidInput(f"--from-file {path}: unknown option {raw!r}; known: {known}")
        if param.multiple or name == "command":
            value = [] if value is None else value if isinstance(value, list) else [value]
            value = [str(v) for v in value]
        try:  # the same conversion and checks as on the command line
            values[name] = param.process_value(ctx, value)
        except TyperException as exc:
            raise InvalidInput(f"--from-file {path}: {raw}: {exc}") from None
        if isinstance(values[name], tuple):
            values[name] = list(values[name])
        if name in _PATHS and values[name] is not None:
            values[name] = (path.parent / values[name]).resolve()  # relative to the file
    return values


def merge_options(ctx: typer.Context, from_file: Path | None) -> dict[str, Any]:
    """The run's options: the command line's, then the file's for what the line left out."""
    options = {name: ctx.params[name] for name in _params(ctx)}
    if from_file is None:
        return options
    for name, value in _from_file(ctx, from_file).items():
        if ctx.get_parameter_source(name) in (ParameterSource.DEFAULT, None):
            options[name] = value
    return options


def save_options(path: Path, options: dict[str, Any]) -> None:
    """Write every option that is not at its default, as `--from-file` reads it back."""
    import yaml

    out: dict[str, Any] = {}
    for name, value in options.items():
        if value in (None, [], False) or (name == "machine_type" and value == "CPU"):
            continue
        if name == "command":
            value = value[0] if len(value) == 1 else list(value)
        elif name in _PATHS:
            value = str(Path(value).resolve())
        out[_key(name)] = value
    try:
        path.write_text(yaml.safe_dump(out, sort_keys=False, default_flow_style=False))
    except OSError as exc:
        raise InvalidInput(f"--save-command {path}: cannot write it ({exc.strerror})") from None
