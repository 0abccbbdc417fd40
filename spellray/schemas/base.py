"""The base of every wire model, and the name patterns several share."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class Schema(BaseModel):
    # Build each model's validator on first use, not at import: the CLI imports this module
    # in every command and most commands touch two or three of the models.
    model_config = ConfigDict(defer_build=True)
