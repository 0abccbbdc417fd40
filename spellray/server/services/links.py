"""Links (`spell link NAME PATH`): names for resource paths, and the one resolver that turns
whatever a user typed (a storage path, or a path that starts with a link) into a storage path."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from spellray.errors import Conflict, InvalidInput, NotFound
from spellray.schemas import Link
from spellray.server import db
from spellray.server.context import ServerContext
from spellray.server.ownership import FIRST_ADMIN, owned_by
from spellray.server.services.run_archive import refuse_archived
from spellray.storage.paths import ROOTS, clean_resource_path, validate_alias


def resolve(session: Session, path: str) -> str:
    """The storage path for ``path``: itself under runs/, uploads/, workspaces/ or public/,
    or a link's target with the rest of the path appended."""
    clean = clean_resource_path(path)
    head, _, rest = clean.partition("/")
    if not clean or head in ROOTS:
        return clean
    link = session.get(db.Link, head)
    if link is None:
        raise NotFound(f"{path!r} is neither under runs/, uploads/, workspaces/ or public/ "
                       "nor a link; see `spell ls` and `spell link`")
    # A link into an archived run leads nowhere until the run is unarchived.
    refuse_archived(session, link.path, f"link {head!r} points into {link.path}")
    return clean_resource_path(f"{link.path}/{rest}" if rest else link.path)


def _to_schema(link: db.Link) -> Link:
    return Link(alias=link.alias, path=link.path, created_at=link.created_at)


class LinkService:
    def __init__(self, ctx: ServerContext) -> None:
        self.sessions = ctx.sessions
        self.storage = ctx.storage

    def list(self, owners: frozenset[str] | None = None) -> list[Link]:
        """The links ``owners`` see (None: everyone's)."""
        with self.sessions() as session:
            return [_to_schema(link) for link in session.scalars(
                select(db.Link).where(owned_by(db.Link.owner, owners)).order_by(db.Link.alias))]

    def get(self, alias: str) -> Link:
        with self.sessions() as session:
            link = session.get(db.Link, validate_alias(alias))
            if link is None:
                raise NotFound(f"there is no link {alias!r}; `spell link` lists them")
            return _to_schema(link)

    def create(self, alias: str, path: str, owner: str = FIRST_ADMIN) -> Link:
        with self.sessions() as session:
            validate_alias(alias)
            existing = session.get(db.Link, alias)
            if existing is not None:
                raise Conflict(f"the link {alias!r} already points to {existing.path}; "
                               f"`spell unlink {alias}` first")
            target = resolve(session, path)
            if not target or target in ROOTS:
                raise InvalidInput("link a resource inside runs/, uploads/, workspaces/ or "
                                   "public/, e.g. runs/42/model")
            if not self.storage.exists(target):
                raise NotFound(f"there is no resource {target} to link; `spell ls` shows "
                               "what there is")
            refuse_archived(session, target, f"cannot link {target}")
            link = db.Link(alias=alias, path=target, owner=owner)
            session.add(link)
            session.commit()
            return _to_schema(link)

    def delete(self, alias: str) -> None:
        with self.sessions() as session:
            link = session.get(db.Link, validate_alias(alias))
            if link is None:
                raise NotFound(f"there is no link {alias!r}; `spell link` lists them")
            session.delete(link)
            session.commit()
