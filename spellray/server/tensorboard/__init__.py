"""TensorBoard in the server: one TensorBoard subprocess per set of runs (boards.py), on a
mirror of the runs' event files from storage (mirror.py), proxied under /tensorboard/<set>
behind the API's tokens and browser sessions (gate.py)."""
