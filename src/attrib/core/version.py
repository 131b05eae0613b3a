"""The library's version (one place: the facade and run manifests read it; pyproject.toml
holds the same string, and a test checks they agree)."""

VERSION = "0.1.0"
