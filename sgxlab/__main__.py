"""``python -m sgxlab``: the same as the ``sgxlab`` command."""

import sys

from sgxlab.cli import main

sys.exit(main())
