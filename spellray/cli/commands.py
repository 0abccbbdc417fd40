"""What `spell` can do, without importing any of it: each command's module and the line
`spell --help` shows for it. Imports nothing but the standard library, so the root help
(cli/root_help.py) and the lazy group (cli/lazy_group.py) both read it at no cost."""

from __future__ import annotations

from dataclasses import dataclass

# `spell --help`'s description, and the root command's own docstring.
SPELL_HELP = "Run machine-learning work on a Ray cluster, the Spell way."
# The root help's width cap (click cuts text to 80 columns otherwise), shared with typer.
MAX_CONTENT_WIDTH = 120


@dataclass(frozen=True)
class Lazy:
    """Where a command lives, and the line `spell --help` shows for it (kept equal to the
    command's own help by tests/cli/test_lazy_commands.py)."""

    module: str  # spellray.cli.<module>
    summary: str
    # The module's Typer of the group's subcommands; None: the module's register(app) adds
    # the command (and its siblings) to the root.
    sub_app: str | None = None


# Name -> where it lives, in `spell --help` order. A new command goes here.
COMMANDS: dict[str, Lazy] = {
    "run": Lazy("spellray.cli.runs",
                'Run a command on the cluster: spell run "python train.py".'),
    "ps": Lazy("spellray.cli.runs", "List runs, newest first."),
    "info": Lazy("spellray.cli.runs", "Everything about a run."),
    "logs": Lazy("spellray.cli.runs", "Print a run's log."),
    "kill": Lazy("spellray.cli.runs", "End runs now; their outputs are not saved."),
    "stop": Lazy("spellray.cli.runs", "End runs and save their outputs."),
    "label": Lazy("spellray.cli.runs", "Add a label to a run (or remove it)."),
    "archive": Lazy("spellray.cli.projects", "Archive ended runs: out of spell ps, spell "
                    "ls runs/, links and mounts (their files stay; spell cp still reads "
                    "them)."),
    "unarchive": Lazy("spellray.cli.projects", "Bring archived runs back."),
    "project": Lazy("spellray.cli.projects", "Projects: groups of runs (each also an MLflow "
                    "experiment).", sub_app="app"),
    "ls": Lazy("spellray.cli.resources",
               "List the storage tree: runs, uploads, public data sets and links."),
    "cp": Lazy("spellray.cli.resources",
               "Copy a file or folder out of storage: spell cp runs/42/model ."),
    "upload": Lazy("spellray.cli.resources", "Upload a file or folder to uploads/NAME."),
    "rm": Lazy("spellray.cli.resources",
               "Remove uploads (runs keep their outputs; public/ is read-only)."),
    "link": Lazy("spellray.cli.resources", "List links, show one, or create one: "
                 "spell link best-model runs/42/model."),
    "unlink": Lazy("spellray.cli.resources",
                   "Remove a link (the resource it names stays)."),
    "metrics": Lazy("spellray.cli.metrics", "Show a run's metrics: each one's count, last, "
                    "min, max and trend; or one's values."),
    "stats": Lazy("spellray.cli.stats", "Show a run's hardware stats (CPU, memory, "
                  "network, disk, GPUs): latest values and a sparkline each; -f follows."),
    "ui": Lazy("spellray.cli.metrics", "Open the web console (or MLflow's UI) in a "
               "browser, logged in."),
    "tensorboard": Lazy("spellray.cli.tensorboard", "Open TensorBoard on runs (named by "
                        "number) in a browser, logged in."),
    "jupyter": Lazy("spellray.cli.workspaces", "Start a workspace (JupyterLab on the "
                    "cluster, with this folder's code) and open it."),
    "workspaces": Lazy("spellray.cli.workspaces", "Workspaces: list them (the default), "
                       "stop one (saving it), remove one.", sub_app="app"),
    "server": Lazy("spellray.cli.server", "The local spellray server (start | stop | "
                   "status without a NAME), and model servers on Ray Serve (serve, list, "
                   "describe, logs, predict, healthcheck, start NAME, stop NAME, update, "
                   "rm).", sub_app="app"),
    "hyper": Lazy("spellray.cli.hyper",
                  "Hyperparameter searches: one run per trial, on Ray Tune.", sub_app="app"),
    "model": Lazy("spellray.cli.models",
                  "Models: names and versions for run outputs and uploads."),
    "model-servers": Lazy("spellray.cli.model_servers", "Older Spell's model-server "
                          "commands (spell server ... is the current form).",
                          sub_app="legacy"),
    "cluster": Lazy("spellray.cli.cluster", "Clusters on AWS, GCP or your own hosts (Ray "
                    "cluster launcher), and which one is in use.", sub_app="app"),
    "login": Lazy("spellray.cli.login", "Log in: keep a lasting token for a server (mode "
                  "0600) that later commands use."),
    "logout": Lazy("spellray.cli.login",
                   "Log out: revoke this server's login token and forget it here."),
    "whoami": Lazy("spellray.cli.login",
                   "Who this CLI speaks as: user, owner, server and role."),
    "users": Lazy("spellray.cli.users", "Users of this server: add one (admins only), list "
                  "them.", sub_app="app"),
    "owner": Lazy("spellray.cli.teams", "List the owners you may use, the active one marked "
                  "*; with NAME, make it the active one: what you make from now on (runs, "
                  "uploads, models, ...) is that owner's."),
    "teams": Lazy("spellray.cli.teams", "Teams: create one and add members (admins only), "
                  "list them.", sub_app="app"),
    "access-tokens": Lazy("spellray.cli.access_tokens", "Your access tokens for scripts and "
                          "CI: create (shown once), list, delete.", sub_app="app"),
    "keys": Lazy("spellray.cli.keys", "Your public SSH keys for a cluster's tunnel: add, "
                 "generate, list, rm.", sub_app="app"),
    "workflow": Lazy("spellray.cli.workflows", "Workflows: a manager run that starts "
                     "runs, waits for them and chains their outputs.", sub_app="app"),
}
