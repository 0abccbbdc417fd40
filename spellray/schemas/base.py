"""The base of every wire model, and the name patterns several share."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# A run's, search's or workflow's number as a client sends it: within the DB's INTEGER column
# (32 bits on Postgres), so a huge number is a 400, not an overflow deep in the driver.
DbId = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
# A byte offset into a file (a log): never negative, and within a file position's 64 bits.
ByteOffset = Annotated[int, Field(ge=0, le=2**63 - 1)]


class Schema(BaseModel):
    # Build each model's validator on first use, not at import: the CLI imports this module
    # in every command and most commands touch two or three of the models.
    model_config = ConfigDict(defer_build=True)
