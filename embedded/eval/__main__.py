import sys

from embedded.eval.run import main

sys.exit(main())
