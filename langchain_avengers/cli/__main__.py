"""``python -m langchain_avengers.cli``: the ``avengers`` command."""

import sys

from langchain_avengers.cli.main import main

sys.exit(main())
