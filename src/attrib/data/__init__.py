"""attrib.data: see the README for what lands here."""
