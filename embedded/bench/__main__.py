"""`python -m embedded.bench [--json] [--quick]`: see embedded.bench.run."""

import sys

from embedded.bench.run import main

sys.exit(main())
