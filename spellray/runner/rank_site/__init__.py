"""A folder put first on PYTHONPATH for each rank of a distributed run, so every Python the
rank's command starts loads its ``sitecustomize`` (see there for why)."""

from pathlib import Path

RANK_SITE_DIR = Path(__file__).resolve().parent


def pythonpath_with_rank_site(current: str) -> str:
    """``current`` (a PYTHONPATH value) with this folder first."""
    import os

    return os.pathsep.join([str(RANK_SITE_DIR), *(p for p in current.split(os.pathsep) if p)])
