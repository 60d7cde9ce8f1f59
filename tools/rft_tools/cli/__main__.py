"""``python -m rft_tools.cli``: the ``rft`` command without the installed script."""

import sys

from rft_tools.cli.main import main

sys.exit(main())
