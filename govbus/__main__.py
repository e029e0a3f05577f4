"""``python -m govbus`` runs the govbus CLI."""

import sys

from govbus.cli import main

sys.exit(main())
