"""Auto-resume (docs/spot.md): a run with auto-resume that ended `interrupted` (its machine
was lost or taken back) is made again as a new run with the same command, code, environment,
mounts and options, whose working folder starts with the outputs the interrupted run saved
(the runner copies them in: runner/workdir.py). Up to its max_resumes times along a chain.
A workflow's child is resumed as a child of the same workflow (and of the same parent run),
while the workflow is active; a workflow that stopped or ended starts no runs, and says so.

The reconciler looks at recently interrupted runs every pass (``resume_interrupted``), so a
run interrupted by the reconciler's own verdict, by its runner's report, or while the server
was down is resumed alike. The new run and the old run's ``resumed_as`` are committed in one
transaction, so a run is never resumed twice.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spellray.errors import RayUnavailable, SpellrayError
from spellray.schemas import (
    DEFAULT_MAX_RESUMES,
    CodeRef,
    Environment,
    GitSource,
    Mount,
    RunRequest,
    RunStatus,
)
from spellray.server import db
from spellray.server.context import ServerContext
from spellray.server.services.resume_rule import LOOK_BACK, resume_pending
from spellray.server.services.workflow_membership import Membership

log = logging.getLogger(__name__)



def resume_request(run: db.Run) -> RunRequest:
    """The interrupted run's request again: its command (parameters already in it), code,
    environment, mounts and options."""
    spec: dict[str, Any] = run.spec or {}
    code = CodeRef(sha256=run.code_sha256, git_commit=run.git_commit,
                   git_dirty=run.git_dirty) if run.code_sha256 else None
    return RunRequest(
        command=run.command, machine_type=run.machine_type, env=spec.get("env", {}),
        params=spec.get("params", {}), description=run.description,
        labels=[label.label for label in run.labels], code=code,
        git=GitSource.model_validate(spec["git"]) if spec.get("git") else None,
        mounts=[Mount(resource=m["resource"], path=m["path"]) for m in spec.get("mounts", [])],
        environment=Environment.model_validate(spec.get("environment") or {}),
        timeout_minutes=spec.get("timeout_minutes"),
        stop_conditions=spec.get("stop_conditions") or [],
        distributed=spec.get("distributed"), tensorboard_dir=spec.get("tensorboard_dir"),
        auto_resume=True, max_resumes=spec.get("max_resumes", DEFAULT_MAX_RESUMES))


def _refuse(session: Session, run: db.Run, why: str) -> None:
    """No new run: said on the run itself, so `spell info` and `spell ps` show why."""
    run.spec = {**(run.spec or {}), "resume_refused": True}
    run.status_reason = f"{run.status_reason or 'interrupted'}; not resumed: {why}"
    session.commit()


def _waiting(ctx: ServerContext) -> list[int]:
    """The runs a pass resumes (``resume_pending``)."""
    now = db.utcnow()
    with ctx.sessions() as session:
        rows = session.scalars(select(db.Run).where(
            db.Run.status == RunStatus.interrupted.value, db.Run.kind == "run",
            db.Run.ended_at >= now - LOOK_BACK)).all()
        return [run.id for run in rows if resume_pending(run, now)]


def resume_interrupted(ctx: ServerContext) -> list[int]:
    """Resume every interrupted run waiting for it; the new runs' numbers."""
    from spellray.server.services.runs import RunService

    made = []
    waiting = _waiting(ctx)
    if waiting:  # asked first: an unreachable Ray leaves them for a later pass, not failed
        ctx.ray.reachable()
    for run_id in waiting:
        with ctx.sessions() as session:
            run = session.get(db.Run, run_id)
            spec = dict(run.spec or {})
            count, most = spec.get("resume_count", 0), spec.get("max_resumes",
                                                                 DEFAULT_MAX_RESUMES)
            if count >= most:
                _refuse(session, run, f"its chain was resumed {count} time(s), "
                                      f"--max-resumes {most}")
                continue
            request, owner = resume_request(run), run.owner
            member = (Membership(workflow_id=run.workflow_id, parent_run_id=run.parent_run_id)
                      if run.workflow_id is not None else None)
        try:  # the owner's, as the run it resumes: its team still sees it
            new = RunService(ctx).submit(request, member, owner=owner,
                                         resumed_from=(run_id, count + 1))
        except RayUnavailable:
            raise  # the next pass tries again
        except SpellrayError as exc:  # its machine type or code is gone: it never will be
            with ctx.sessions() as session:
                _refuse(session, session.get(db.Run, run_id), exc.message)
            continue
        except Exception:  # one run's trouble must not stop the others; the next pass retries
            log.exception("resume: run %s could not be resumed", run_id)
            continue
        log.info("resume: run %s resumed as run %s", run_id, new.id)
        made.append(new.id)
    return made

