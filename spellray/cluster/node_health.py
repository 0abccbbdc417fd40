"""How fast a head's GCS declares a worker node dead: Ray's node health check, as every head
spellray starts sets it (the cloud configs' head start commands, the embedded local head,
the fake cluster of the tests and benchmarks). Standard library only: the CLI imports it.

The GCS asks each raylet's gRPC health service every ``period``; a node that fails
``threshold`` checks in a row is dead, and its runs' jobs fail (a spot run ends
`interrupted`, docs/spot.md). Ray's defaults (3 s, 5 in a row, 10 s timeout) take 15 s to
notice a raylet that is gone (each check refused at once), most of the wait before a lost
spot run is resumed (docs/benchmarks.md#spot-resume).

Ours: every second, 3 in a row, 5 s timeout. A killed raylet is noticed in about 3 s. A
machine that vanished from the network (no refusal: each check times out) in about 18 s,
under the 30 s issue 22 asks for. A node that is only busy is not declared dead: the
health check is answered by gRPC's own threads, not the raylet's event loop, and only a
node that answers nothing for 3 x 5 s in a row is lost. The timeout, not the period, is
what guards against a slow answer counting as a failure, and 5 s stays far above a loaded
machine's scheduling delay.
"""

from __future__ import annotations

import shlex

# Ray reads RAY_<name> as its system config (ray_config_def.h); the GCS is what uses these.
HEAD_ENV = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_timeout_ms": "5000",
}


def shell_assignments() -> str:
    """The same, for a cluster launcher's head start command (``export ...``)."""
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in HEAD_ENV.items())
