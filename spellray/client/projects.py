"""The SDK's projects: ``client.projects`` (`spell project create | list | get | edit |
add-runs | remove-runs | archive | unarchive`). A run goes in one with ``runs.new(...,
project=NAME)``; ``runs.list(project=NAME)`` lists its runs."""

from __future__ import annotations

from urllib.parse import quote

from spellray.client._http import ResourceGroup, checked
from spellray.schemas import Project, ProjectRequest, ProjectRuns, ProjectUpdate


def _path(name: str, rest: str = "") -> str:
    return f"/api/projects/{quote(name, safe='')}{rest}"


class Projects(ResourceGroup):
    def create(self, name: str, description: str | None = None) -> Project:
        body = checked(ProjectRequest, name=name, description=description)
        return Project.model_validate(self._api.request("POST", "/api/projects",
                                                        json=body.model_dump()))

    def list(self, archived: bool = False) -> list[Project]:
        """The projects the caller sees, by name; the archived ones with ``archived``."""
        params = {"archived": True} if archived else {}
        return [Project.model_validate(p)
                for p in self._api.request("GET", "/api/projects", params=params)]

    def get(self, name: str) -> Project:
        return Project.model_validate(self._api.request("GET", _path(name)))

    def edit(self, name: str, new_name: str | None = None,
             description: str | None = None) -> Project:
        body = checked(ProjectUpdate, name=new_name, description=description)
        return Project.model_validate(self._api.request(
            "PATCH", _path(name), json=body.model_dump(exclude_none=True)))

    def add_runs(self, name: str, run_ids: list[int]) -> list[int]:
        """Move runs into the project (all or none); the numbers of those that moved."""
        body = checked(ProjectRuns, runs=list(run_ids))
        return self._api.request("POST", _path(name, "/runs"), json=body.model_dump())

    def remove_runs(self, name: str, run_ids: list[int]) -> list[int]:
        """Take runs out of the project (uncategorized again); all or none."""
        body = checked(ProjectRuns, runs=list(run_ids))
        return self._api.request("POST", _path(name, "/runs/remove"), json=body.model_dump())

    def archive(self, name: str) -> Project:
        return Project.model_validate(self._api.request("POST", _path(name, "/archive")))

    def unarchive(self, name: str) -> Project:
        return Project.model_validate(self._api.request("POST", _path(name, "/unarchive")))
