import sys

from sgxlab.cli import main

sys.exit(main())
