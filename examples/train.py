"""A real, small training run: a linear classifier on the digits data set (8x8 images).

    spell run -m public/digits:data "python train.py --data data/digits.csv --epochs 5"

The data comes from spellray's public/ tree, mounted at data/; without --data it falls back
to the copy that ships with scikit-learn.

Prints the accuracy after each epoch, records it as the run's `accuracy` metric (a no-op
outside a run), and saves the model to model/, which becomes the run's output
(runs/<id>/model) for later runs to mount. A search over the learning rate:

    spell hyper grid --param rate=0.001,0.01,0.1,1 "python train.py --rate :rate:"
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split

from spellray.metrics import send_metric


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=0.01)
    parser.add_argument("--output", default="model")
    parser.add_argument("--data", help="digits.csv: 64 pixel columns, then the target")
    args = parser.parse_args()

    if args.data:
        table = np.loadtxt(args.data, delimiter=",", skiprows=1)
        pixels, target = table[:, :-1], table[:, -1].astype(int)
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        pixels, target = digits.data, digits.target
    print(f"{len(target)} images from {args.data or 'scikit-learn'}", flush=True)
    x_train, x_test, y_train, y_test = train_test_split(
        pixels / 16.0, target, test_size=0.25, random_state=0)
    model = SGDClassifier(learning_rate="constant", eta0=args.rate, random_state=0)
    classes = np.unique(target)
    history = []
    for epoch in range(1, args.epochs + 1):
        model.partial_fit(x_train, y_train, classes=classes)
        accuracy = float(model.score(x_test, y_test))
        history.append({"epoch": epoch, "accuracy": accuracy})
        send_metric("accuracy", accuracy, index=epoch)
        print(f"epoch {epoch}: accuracy {accuracy:.4f}", flush=True)

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.pkl").write_bytes(pickle.dumps(model))
    (out / "metrics.json").write_text(json.dumps(history, indent=2))
    print(f"saved the model to {out}/ (final accuracy {history[-1]['accuracy']:.4f})")


if __name__ == "__main__":
    main()
