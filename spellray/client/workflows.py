"""The SDK's workflows: ``client.workflows`` (create, get, list, stop, kill, rm). A
workflow's runs are runs: inside its manager, ``client.runs.new(..., commit_label=LABEL)``
starts one on the snapshot ``--repo LABEL=...`` named."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from spellray.client._http import ResourceGroup, checked
from spellray.client._run_request import build_run_request, upload_code
from spellray.errors import InvalidInput
from spellray.schemas import GitSource, Workflow, WorkflowList, WorkflowRepo, WorkflowRequest
from spellray.schemas.workflows import REPO_LABEL


def _label(spec: str, flag: str, example: str) -> tuple[str, str]:
    label, sep, rest = spec.partition("=")
    if not sep or not label.strip() or not rest.strip():
        raise InvalidInput(f"{flag} {spec!r} is malformed: write it as {flag} {example}")
    label = label.strip()
    if not REPO_LABEL.match(label):
        raise InvalidInput(f"{flag} {spec!r}: {label!r} is not a valid label; use letters, "
                           "digits, '_', '.', '-'")
    return label, rest.strip()


def parse_repo(spec: str) -> tuple[str, Path, str]:
    """``LABEL=PATH[:COMMIT]`` -> (label, the repository's folder, the commit), checked
    here: a wrong path or commit is an error before anything is uploaded."""
    label, rest = _label(spec, "--repo", "LABEL=PATH[:COMMIT], e.g. --repo code=.")
    path, _, commit = rest.partition(":")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InvalidInput(f"--repo {spec}: {path} is not a folder")
    inside = subprocess.run(["git", "rev-parse", "--git-dir"], cwd=folder,
                            capture_output=True, text=True, check=False)
    if inside.returncode != 0:
        raise InvalidInput(f"--repo {spec}: {path} is not a git repository (git init and "
                           "commit it, or give the path of one)")
    commit = commit or "HEAD"
    found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"],
                           cwd=folder, capture_output=True, text=True, check=False)
    if commit.startswith("-") or found.returncode != 0:
        raise InvalidInput(f"--repo {spec}: {commit!r} is not a commit of the repository at "
                           f"{path} (git log shows them)")
    return label, folder, found.stdout.strip()


def parse_github_repo(spec: str) -> tuple[str, GitSource]:
    """``LABEL=URL[:REF]``: the server resolves REF (default HEAD) to a commit at creation.
    The ref is what follows the URL's last ':' when that is not part of the URL itself."""
    label, rest = _label(spec, "--github-repo", "LABEL=URL[:REF]")
    url, ref = rest, None
    head, sep, tail = rest.rpartition(":")
    if sep and head and "/" not in tail and not tail.isdigit():  # not scp-style or a port
        url, ref = head, tail or None
    return label, GitSource(url=url, ref=ref)


class Workflows(ResourceGroup):
    def build_request(self, command: str, *, repos: list[str] | None = None,
                      github_repos: list[str] | None = None, local: bool = False,
                      **run_options: Any) -> WorkflowRequest:
        """Every check first (labels, paths, commits), then the snapshots are uploaded."""
        parsed = [parse_repo(spec) for spec in repos or []]
        remote = [parse_github_repo(spec) for spec in github_repos or []]
        labels = [label for label, *_ in parsed] + [label for label, _ in remote]
        if len(set(labels)) != len(labels):
            raise InvalidInput("a repo label is given twice; give each label once")
        run = build_run_request(self._api, command, **run_options)
        snapshots = [WorkflowRepo(label=label, code=upload_code(self._api, folder,
                                                                 commit_ref=commit))
                     for label, folder, commit in parsed]
        snapshots += [WorkflowRepo(label=label, git=git) for label, git in remote]
        return checked(WorkflowRequest, run=run, repos=snapshots, local=local)

    def create(self, command: str, **options: Any) -> Workflow:
        """Start a workflow: its manager runs ``command`` (with ``client.runs.new``'s run
        options: code, environment, machine type...). ``repos``: ``LABEL=PATH[:COMMIT]``
        git repositories snapshotted now; ``github_repos``: ``LABEL=URL[:REF]``; the
        manager's ``runs.new(commit_label=LABEL)`` runs on them. ``local``: the manager
        runs on this machine (``Workflow.token`` is its token); its children on the
        cluster."""
        body = self.build_request(command, **options)
        return self.submit(body)

    def submit(self, body: WorkflowRequest) -> Workflow:
        return Workflow.model_validate(
            self._api.request("POST", "/api/workflows", json=body.model_dump(mode="json")))

    def get(self, workflow_id: int) -> Workflow:
        return Workflow.model_validate(self._api.request("GET", f"/api/workflows/{workflow_id}"))

    def list(self, limit: int = 50) -> WorkflowList:
        return WorkflowList.model_validate(
            self._api.request("GET", "/api/workflows", params={"limit": limit}))

    def stop(self, workflow_id: int) -> Workflow:
        return Workflow.model_validate(
            self._api.request("POST", f"/api/workflows/{workflow_id}/stop"))

    def kill(self, workflow_id: int) -> Workflow:
        return Workflow.model_validate(
            self._api.request("POST", f"/api/workflows/{workflow_id}/kill"))

    def rm(self, workflow_id: int) -> None:
        self._api.request("DELETE", f"/api/workflows/{workflow_id}")
