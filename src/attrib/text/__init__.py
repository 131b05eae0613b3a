"""attrib.text: see the README for what lands here."""
