"""Names the spellray server and the Serve application share, importable without Ray."""

IMPORT_PATH = "spellray.serve.app:build"
DEPLOYMENT = "ModelServer"
