"""attrib.viz: see the README for what lands here."""
