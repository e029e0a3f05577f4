"""``python -m bus`` runs the govbus CLI."""

import sys

from bus.cli import main

sys.exit(main())
