"""Models: a name and a version (v1, v2, ...) for a resource path in storage."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from spellray.errors import Conflict, InvalidInput, NotFound
from spellray.schemas import Model, ModelFile, ModelRequest
from spellray.server import db
from spellray.server.context import ServerContext
from spellray.server.ownership import FIRST_ADMIN, model_owner, owned_by, sees
from spellray.server.services.links import resolve
from spellray.storage.paths import join

VERSION = re.compile(r"^v?(\d{1,9})$")


def parse_model_ref(ref: str) -> tuple[str, str | None]:
    """``NAME[:VERSION]`` -> (name, "vN" or None for the newest)."""
    name, _, version = ref.strip().partition(":")
    if not name:
        raise InvalidInput(f"{ref!r} names no model; use NAME[:VERSION], e.g. digits:v1")
    return name, normalize_version(version) if version else None


def normalize_version(version: str) -> str:
    match = VERSION.match(version.strip())
    if not match:
        raise InvalidInput(f"{version!r} is not a model version; use v1, v2, ... (or 1, 2, ...)")
    return f"v{int(match[1])}"


def to_schema(model: db.Model) -> Model:
    return Model(name=model.name, version=model.version, resource=model.resource,
                 files=[ModelFile.model_validate(f) for f in model.files or []],
                 created_at=model.created_at, owner=model.owner)


def find_model(session: Session, ref: str) -> db.Model:
    """A model by ``NAME[:VERSION]``; without VERSION its newest version."""
    name, version = parse_model_ref(ref)
    query = select(db.Model).where(db.Model.name == name)
    if version:
        query = query.where(db.Model.version == version)
    model = session.scalars(query.order_by(db.Model.id.desc()).limit(1)).first()
    if model is None:
        raise NotFound(f"there is no model {ref}; spell model list shows the models")
    return model


class ModelService:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def create(self, request: ModelRequest, owner: str = FIRST_ADMIN,
               owners: frozenset[str] | None = None) -> Model:
        """A new version of a model; every version of a name is its first one's owner's."""
        with self.ctx.sessions() as session:
            first = model_owner(session, request.name)
            if first is not None and not sees(owners, first):
                raise Conflict(f"the model name {request.name} is another owner's; pick "
                               "another name")
            owner = first or owner
            resource = resolve(session, request.resource.strip().rstrip("/"))
            if "/" not in resource or not self.ctx.storage.exists(resource):
                raise NotFound(f"there is no {request.resource} in storage to make a model of "
                               "(`spell ls` shows what there is; e.g. runs/42/model)")
            self._check_files(request, resource)
            version = normalize_version(request.version) if request.version else None
            if version is None:
                versions = session.scalars(select(db.Model.version)
                                           .where(db.Model.name == request.name)).all()
                version = f"v{max((int(v[1:]) for v in versions), default=0) + 1}"
            model = db.Model(name=request.name, version=version, resource=resource,
                             files=[f.model_dump() for f in request.files] or None,
                             owner=owner)
            session.add(model)
            try:
                session.commit()
            except IntegrityError:
                raise Conflict(f"model {request.name}:{version} exists already; give another "
                               "version, or none for the next one") from None
            return to_schema(model)

    def _check_files(self, request: ModelRequest, resource: str) -> None:
        """Every ``--file`` is in the resource, and no two land on one path."""
        mounts = [f.mount_path for f in request.files]
        if len(set(mounts)) != len(mounts):
            raise InvalidInput("two --file options name the same MOUNT_PATH; give each its own")
        for entry in request.files:
            if not self.ctx.storage.exists(join(resource, entry.path)):
                raise NotFound(f"--file {entry.path}: there is no such file in {resource} "
                               f"(`spell ls {resource}` shows what there is)")

    def list(self, owners: frozenset[str] | None = None) -> list[Model]:
        """Every version of every model ``owners`` see (None: everyone's)."""
        with self.ctx.sessions() as session:
            rows = session.scalars(select(db.Model).where(owned_by(db.Model.owner, owners))
                                   .order_by(db.Model.name, db.Model.id))
            return [to_schema(m) for m in rows]

    def get(self, ref: str) -> Model:
        with self.ctx.sessions() as session:
            return to_schema(find_model(session, ref))

    def versions(self, name: str) -> list[Model]:
        models = [m for m in self.list() if m.name == name]
        if not models:
            raise NotFound(f"there is no model {name}; spell model list shows the models")
        return models

    def delete(self, ref: str) -> Model:
        """Remove one version (``NAME:VERSION``); refused while a model server uses it."""
        name, version = parse_model_ref(ref)
        if version is None:
            raise InvalidInput(f"name the version to remove: spell model rm {name}:v1")
        with self.ctx.sessions() as session:
            model = find_model(session, ref)
            users = session.scalars(select(db.ModelServer.name).where(
                db.ModelServer.model_name == name,
                db.ModelServer.model_version == version)).all()
            if users:
                raise Conflict(f"model {ref} is served by {', '.join(users)}; remove or update "
                               "those servers first")
            session.delete(model)
            session.commit()
            return to_schema(model)
