"""A predictor for the digits model that examples/train.py saves (model/model.pkl).

    spell run -m public/digits:data "python train.py --data data/digits.csv"   # run 1
    spell model create digits runs/1/model
    spell server serve digits:v1 predictor.py
    spell server predict digits '{"images": [[0, 0, 5, 13, ...64 pixels..., 0]]}'

spellray builds the class with the model's folder and calls ``predict`` with each request's
JSON payload: ``{"images": [[64 pixel values 0-16], ...]}`` -> ``{"digits": [...]}``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np


class DigitsPredictor:
    def __init__(self, model_path: str) -> None:
        self.model = pickle.loads((Path(model_path) / "model.pkl").read_bytes())

    def predict(self, payload: dict[str, Any]) -> dict[str, Any]:
        images = np.asarray(payload["images"], dtype=float)
        if images.ndim != 2 or images.shape[1] != 64:
            raise ValueError(f"images must be a list of 64-pixel rows, got shape {images.shape}")
        return {"digits": self.model.predict(images / 16.0).tolist()}

    def health(self) -> bool:
        return hasattr(self.model, "predict")
