"""nbtrack's own artifacts SDK: the manifest (manifest.py, shared with the server and the store)
and the `nbtrack.Artifact` object (artifact.py). Nothing is imported here, so that the store and
the server can use manifest.py without loading the SDK."""
