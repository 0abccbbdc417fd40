"""`spell keys add | list | rm`: users' public SSH keys, and their lines in the head's
authorized_keys (server/authorized_keys.py) when this server manages that file.

A member sees and removes their own keys; an admin lists everyone's and may remove anyone's
(``user``). A change is written to the file before it is committed: a file that cannot be
written leaves the database as it was, and the answer says why."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select
from sqlalchemy.orm import Session

from spellray.errors import Conflict, Forbidden, InternalError, InvalidInput, NotFound
from spellray.schemas import SshKey, SshKeyAdded, SshKeyRequest
from spellray.server import authorized_keys, db
from spellray.server.auth import Principal
from spellray.server.context import ServerContext
from spellray.ssh_keys import BadKey, as_title, parse_public_key

log = logging.getLogger(__name__)
# One change at a time, from the database read to the commit: two changes at once must not
# leave the file with the older list.
_changing = threading.Lock()


def _user_id(principal: Principal) -> int:
    if principal.user_id is None:
        raise Forbidden(f"a {principal.kind} token has no SSH keys; use a user's token "
                        "(spell login)")
    return principal.user_id


def _to_schema(key: db.SshKey) -> SshKey:
    return SshKey(title=key.title, user=key.user.name, key_type=key.key_type,
                  fingerprint=key.fingerprint, created_at=key.created_at)


def _install(ctx: ServerContext, session: Session) -> str | None:
    """Every key's line into the managed file; its path, or None when there is none."""
    path = ctx.settings.authorized_keys_file
    if path is None:
        return None
    if ctx.listen_port is None:
        raise InternalError("SPELLRAY_AUTHORIZED_KEYS_FILE is set but this server was "
                            "started without a port: start it with python -m "
                            "spellray.server --port N")
    rows = session.scalars(select(db.SshKey).order_by(db.SshKey.id))
    authorized_keys.write(path, [authorized_keys.key_line(
        row.public_key, row.user.name, row.title, ctx.listen_port) for row in rows])
    return str(path)


def install_keys_at_start(ctx: ServerContext) -> None:
    """Bring the file in line with the database (keys changed while the server was down, or
    a file someone replaced). A file that cannot be written is logged, not fatal: runs and
    the API work without it."""
    if ctx.settings.authorized_keys_file is None:
        return
    with _changing, ctx.sessions() as session:
        try:
            _install(ctx, session)
        except InternalError as exc:
            log.error("users' SSH keys are not installed: %s", exc.message)


class KeyService:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def add(self, principal: Principal, request: SshKeyRequest) -> SshKeyAdded:
        user_id = _user_id(principal)
        try:
            key = parse_public_key(request.key)
        except BadKey as exc:
            raise InvalidInput(str(exc)) from None
        title = request.title or as_title(key.comment)
        if not title:
            raise InvalidInput("this key has no comment to title it by: give one with "
                               "--title T")
        with _changing, self.ctx.sessions() as session:
            if session.scalar(select(db.SshKey).where(db.SshKey.user_id == user_id,
                                                      db.SshKey.title == title)):
                raise Conflict(f"you have a key titled {title!r} already; choose another "
                               f"--title, or spell keys rm {title!r} first")
            same = session.scalar(select(db.SshKey).where(
                db.SshKey.fingerprint == key.fingerprint))
            if same is not None:
                whose = f"yours, titled {same.title!r}" if same.user_id == user_id \
                    else "another user's"
                raise Conflict(f"this key ({key.fingerprint}) is registered already "
                               f"({whose}); each key belongs to one user")
            path = self.ctx.settings.authorized_keys_file
            if path is not None and key.body in authorized_keys.foreign_keys(path):
                raise Conflict(f"this key is in {path} already, outside spellray's keys (the "
                               "launcher's?): it may do more there; use another key")
            row = db.SshKey(user_id=user_id, title=title, key_type=key.key_type,
                            public_key=key.line, fingerprint=key.fingerprint)
            session.add(row)
            session.flush()
            installed_in = _install(self.ctx, session)
            session.commit()
            return SshKeyAdded(**_to_schema(row).model_dump(), installed_in=installed_in)

    def list(self, principal: Principal) -> list[SshKey]:
        """The caller's keys; an admin's answer has everyone's."""
        query = select(db.SshKey).join(db.SshKey.user).order_by(db.User.name,
                                                                db.SshKey.created_at)
        if not principal.is_admin:
            query = query.where(db.SshKey.user_id == _user_id(principal))
        with self.ctx.sessions() as session:
            return [_to_schema(row) for row in session.scalars(query)]

    def remove(self, principal: Principal, title: str, user: str | None = None) -> None:
        """The caller's key ``title``; an admin names another user's with ``user``. Someone
        else's key is not found for a member, as if it did not exist."""
        own = user is None or user == principal.user_name
        missing = NotFound(f"you have no key titled {title!r}; spell keys list lists them"
                           if own else f"{user} has no key titled {title!r}; spell keys "
                           "list lists everyone's for an admin")
        if not own and not principal.is_admin:
            raise missing
        with _changing, self.ctx.sessions() as session:
            query = select(db.SshKey).where(db.SshKey.title == title)
            if own:
                query = query.where(db.SshKey.user_id == _user_id(principal))
            else:
                query = query.join(db.SshKey.user).where(db.User.name == user)
            row = session.scalar(query)
            if row is None:
                raise missing
            session.delete(row)
            session.flush()
            _install(self.ctx, session)
            session.commit()
