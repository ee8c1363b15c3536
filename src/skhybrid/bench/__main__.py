"""``python -m skhybrid.bench``: the same as ``skhybrid bench``."""

import sys

from . import main

sys.exit(main())
