"""Loaded by every Python process of a distributed run's rank (its folder leads PYTHONPATH).

Why: a script that ends without ``torch.distributed.destroy_process_group()`` leaves gloo's
worker threads running into interpreter shutdown. A worker thread that drops the last
reference to a finished collective's tensors must take the GIL to free them; during
finalization that thread is ended with pthread_exit, whose forced unwind crosses a C++
destructor and calls std::terminate: "terminate called without an active exception", exit
134, although every collective succeeded. It is a race, about 1 exit in 5 on two busy cores,
and torchrun's workers have it too. Destroying the process group from an atexit hook joins
those threads while the interpreter is still whole.

Nothing here imports torch: the hook only acts if the script itself initialized
torch.distributed. A ``sitecustomize`` this one shadows (the environment's own) still runs.
"""

from __future__ import annotations

import atexit
import importlib.machinery
import importlib.util
import os
import sys


def _destroy_process_group() -> None:
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return
    try:
        dist.destroy_process_group()
    except Exception as exc:  # the script's own exit status stands; say why we could not
        print(f"spellray: destroy_process_group at exit failed: {exc}", file=sys.stderr)


def _run_shadowed_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[__name__] = module
    spec.loader.exec_module(module)


atexit.register(_destroy_process_group)
_run_shadowed_sitecustomize()
