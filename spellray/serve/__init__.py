"""Ray Serve: the application every model server is (app.py), and how a replica finds and
builds the user's predictor (predictor.py). Imported by Serve on the cluster, never by the
CLI or the spellray server."""
