"""A run's environment from Spell's flags, as the SDK builds it on the submitting machine.

`--pip-req` and `--conda-file` name files on the laptop, which the cluster never sees: their
contents travel in the request. Everything else about environments (digest, Ray runtime_env,
what the cluster can do) is the server's: spellray/server/services/environments.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spellray.errors import InvalidInput
from spellray.schemas import Environment


def _read(path: str | Path, flag: str) -> str:
    try:
        return Path(path).expanduser().read_text()
    except FileNotFoundError:
        raise InvalidInput(f"{flag} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{flag} {path}: cannot read it ({exc})") from None


def requirement_lines(text: str) -> list[str]:
    """The requirements of a requirements.txt: comments and blank lines dropped."""
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            if line.startswith(("-r ", "-c ", "--requirement", "--constraint")):
                # A nested file would be read on the node, where it does not exist.
                raise InvalidInput(f"--pip-req: {line!r} names another file; put its lines "
                                   "in this one")
            lines.append(line)
    return lines


def read_conda_file(path: str | Path) -> dict[str, Any]:
    import yaml

    try:
        spec = yaml.safe_load(_read(path, "--conda-file"))
    except yaml.YAMLError as exc:
        raise InvalidInput(f"--conda-file {path} is not valid YAML: "
                           f"{str(exc).splitlines()[0]}") from None
    if not isinstance(spec, dict) or "dependencies" not in spec:
        raise InvalidInput(f"--conda-file {path} is not a conda environment file "
                           "(it needs a dependencies: list)")
    return spec


def build_environment(pip: list[str] | None = None, pip_req: str | Path | None = None,
                      apt: list[str] | None = None, conda_file: str | Path | None = None,
                      docker_image: str | None = None,
                      framework: str | None = None) -> Environment:
    return Environment(
        pip=list(pip or []),
        pip_requirements=requirement_lines(_read(pip_req, "--pip-req")) if pip_req else [],
        apt=list(apt or []),
        conda=read_conda_file(conda_file) if conda_file else None,
        docker_image=docker_image or None,
        framework=framework or None,
    )
