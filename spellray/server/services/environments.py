"""Run environments on the server: one digest per environment, Ray's runtime_env for it, and
a refusal at submission for what the cluster cannot do.

Python packages become a runtime_env field of spellray's own plugin
(spellray/cluster/venv_plugin.py): on each node, once per distinct package list, a virtualenv
holding only those packages (built with uv, hard-linked from its cache) that sees the node's
own packages after its own, reused by every later job with the same list and evicted by Ray's
URI cache. Not Ray's ``uv`` field: on a node whose Python is a virtualenv, Ray clones that
whole virtualenv for every environment (gigabytes, where the packages are kilobytes).
The digest is over the same normalized spec, so two runs
with one digest share Ray's cached environment. apt packages are the runner's job
(spellray/runner/apt.py); they are in the digest but not in the runtime_env.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from typing import Any

from spellray.cluster import venv_field
from spellray.errors import InvalidInput
from spellray.schemas import Environment

# `--framework NAME[==VERSION]` (older Spell scripts): the pip packages it stands for.
FRAMEWORKS: dict[str, list[str]] = {
    "pytorch": ["torch"],
    "torch": ["torch"],
    "tensorflow": ["tensorflow"],
    "keras": ["keras"],
    "jax": ["jax"],
    "sklearn": ["scikit-learn"],
    "scikit-learn": ["scikit-learn"],
    "xgboost": ["xgboost"],
    "lightgbm": ["lightgbm"],
    "fastai": ["fastai"],
    "transformers": ["transformers"],
}
# A pip requirement as pip reads it on one line; anything starting with "-" is an option,
# and options on the node (--index-url, -e ., -r file) are not what a package list means.
_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-\[\],<>=!~*;:/@+ '\"()]*$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._\-/:@]*$")


def framework_packages(framework: str) -> list[str]:
    name, sep, version = framework.partition("==")
    packages = FRAMEWORKS.get(name.strip().lower())
    if packages is None:
        raise InvalidInput(f"--framework {framework!r} is not one spellray knows; use one of "
                           f"{', '.join(sorted(FRAMEWORKS))}, or --pip PACKAGE")
    return [f"{packages[0]}=={version.strip()}", *packages[1:]] if sep else list(packages)


def pip_packages(env: Environment) -> list[str]:
    """Every Python requirement of the environment, in a canonical order."""
    packages = [*env.pip, *env.pip_requirements]
    if env.framework:
        packages += framework_packages(env.framework)
    for package in packages:
        if not _REQUIREMENT.match(package.strip()):
            raise InvalidInput(f"{package!r} is not a pip requirement spellray accepts "
                               "(package names and version specifiers only, no pip options)")
    return sorted({p.strip() for p in packages})


def normalize(env: Environment) -> Environment:
    """The canonical form: the framework folded into pip, lists sorted and deduplicated.
    Two requests that mean the same environment normalize to equal specs."""
    image = env.docker_image.strip() if env.docker_image else None
    if image and not _IMAGE.match(image):
        raise InvalidInput(f"--docker-image {image!r} is not an image reference "
                           "(e.g. python:3.11 or ghcr.io/org/image:tag)")
    return Environment(pip=pip_packages(env), apt=sorted({p.strip() for p in env.apt}),
                       conda=env.conda, docker_image=image)


def digest(env: Environment) -> str | None:
    """sha256 of the normalized spec; None for the empty environment (the node's own)."""
    canonical = normalize(env)
    if canonical.is_empty:
        return None
    text = json.dumps(canonical.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ClusterAbilities:
    """What the nodes can build, as seen on the head node, where the server runs (a cloud
    cluster's nodes share the head's image)."""

    conda: bool
    container_runtime: bool

    @classmethod
    def detect(cls) -> ClusterAbilities:
        # Ray's conda support runs `conda` (or $CONDA_EXE); its image_uri support runs podman.
        return cls(conda=bool(os.environ.get("CONDA_EXE") or shutil.which("conda")),
                   container_runtime=shutil.which("podman") is not None)


def runtime_env(env: Environment, abilities: ClusterAbilities) -> dict[str, Any]:
    """Ray's runtime_env fields for ``env`` (env_vars are the caller's); refuses, with what to
    do instead, what this cluster cannot build."""
    canonical = normalize(env)
    fields: dict[str, Any] = {}
    if canonical.conda is not None:
        if not abilities.conda:
            raise InvalidInput("--conda-file needs conda on the cluster's nodes, and this "
                               "cluster has none; use --pip/--pip-req, or a node image with "
                               "conda")
        if canonical.pip:
            raise InvalidInput("give Python packages in the conda file's pip: section, not "
                               "with --pip/--pip-req, when using --conda-file")
        fields["conda"] = canonical.conda
    if canonical.docker_image:
        if canonical.pip or canonical.conda is not None:
            # Ray runs an image_uri job in the image as it is: no runtime_env beside it.
            raise InvalidInput("--docker-image takes its Python packages from the image: "
                               "drop --pip/--pip-req/--conda-file/--framework, or build an "
                               "image with them")
        if not abilities.container_runtime:
            raise InvalidInput(f"--docker-image {canonical.docker_image} needs a container "
                               "runtime (podman) on the cluster's nodes, and this cluster has "
                               "none; use --pip/--apt instead, or a cluster whose nodes run "
                               "containers")
        fields["image_uri"] = canonical.docker_image
    if canonical.pip:
        fields[venv_field.FIELD] = venv_field.field(canonical.pip)
    return fields


# Said, and the job ended, when a node's Ray ignored the field (Ray only warns about fields
# no plugin claims, and the run would go on without its packages).
_NO_PLUGIN = ("spellray: this Ray cluster's nodes do not load spellray's environment plugin, "
              "so --pip cannot be installed; start each node's Ray with "
              f"{venv_field.shell_assignments()}")


def python_command(fields: dict[str, Any]) -> str:
    """The start of a job's entrypoint, up to the Python that runs spellray's module: exec'd
    (the job's process is spellray's, not a shell around it); in an environment, that env's
    `python` (first on PATH), once the shell has seen the plugin's mark."""
    marker = setup_marker(fields)
    if marker is None:
        return f"exec {shlex.quote(sys.executable)}"
    return (f'[ "${venv_field.MARK_VAR}" = {marker} ] || '
            f"{{ echo {shlex.quote(_NO_PLUGIN)} >&2; exit 97; }}; exec python")


def setup_marker(fields: dict[str, Any]) -> str | None:
    """The hash the plugin names an environment's folder by (runtime_resources/spellray_venv/
    <hash>), which is how its lines in Ray's shared set-up log are told apart."""
    value = fields.get(venv_field.FIELD)
    return venv_field.env_hash(value) if value else None
