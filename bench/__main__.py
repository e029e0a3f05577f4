"""``make bench``: every benchmark, each printed next to a baseline measured in the same run."""

import sys

from bus.cli import main

sys.exit(main(["bench", "produce", *sys.argv[1:]]))
