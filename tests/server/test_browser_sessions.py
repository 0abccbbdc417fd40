"""Browser sessions: one-time codes, and scoped sessions (a workspace's link opens that
workspace alone, and no unscoped family; an unscoped login opens no workspace)."""

from __future__ import annotations

from spellray.server.browser_sessions import BrowserPath, BrowserSessions


async def _nothing(scope: object, state: object) -> None:
    raise AssertionError("never called here")


WORKSPACES = BrowserPath(prefix="/workspaces", backend=_nothing, command="spell jupyter",
                         refused="", scoped=True)
MLFLOW = BrowserPath(prefix="/mlflow", backend=_nothing, command="spell ui", refused="")


def test_a_code_opens_one_session_once() -> None:
    sessions = BrowserSessions()
    code = sessions.issue_code("/mlflow/")
    session, page, scope = sessions.redeem(code) or ("", "", "")
    assert page == "/mlflow/" and scope is None
    assert sessions.valid(session)
    assert sessions.redeem(code) is None  # used up
    assert not sessions.valid("not-a-session")


def test_scoped_sessions_open_their_own_member_only() -> None:
    sessions = BrowserSessions()
    mine = sessions.redeem(sessions.issue_code("/workspaces/a/lab", scope="/workspaces/a"))
    unscoped = sessions.redeem(sessions.issue_code("/mlflow/"))
    assert mine is not None and unscoped is not None
    assert mine[2] == "/workspaces/a"
    assert sessions.valid(mine[0], WORKSPACES.scope_of("/workspaces/a/api/kernels"))
    assert not sessions.valid(mine[0], WORKSPACES.scope_of("/workspaces/b/api/kernels"))
    assert not sessions.valid(mine[0], WORKSPACES.scope_of("/workspaces/ab/lab"))
    assert not sessions.valid(mine[0], MLFLOW.scope_of("/mlflow/"))  # None: unscoped
    assert not sessions.valid(unscoped[0], WORKSPACES.scope_of("/workspaces/a/lab"))
    assert sessions.valid(unscoped[0], MLFLOW.scope_of("/mlflow/ajax-api"))
    sessions.forget("/workspaces/a")  # the workspace is removed
    assert not sessions.valid(mine[0], "/workspaces/a")
    assert sessions.valid(unscoped[0])


def test_scope_of_a_path() -> None:
    assert WORKSPACES.scope_of("/workspaces/ws/lab/tree") == "/workspaces/ws"
    assert WORKSPACES.scope_of("/workspaces/ws") == "/workspaces/ws"
    assert WORKSPACES.scope_of("/workspaces/") is None
    assert WORKSPACES.scope_of("/workspacesX/ws") is None
    assert MLFLOW.scope_of("/mlflow/x") is None
