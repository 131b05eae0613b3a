"""attrib.metrics: see the README for what lands here."""
