"""``python -m attrib.cli ...`` runs the ``attrib`` command."""

import sys

from attrib.cli.main import main

sys.exit(main())
