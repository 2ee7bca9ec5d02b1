"""``python -m rtstyle``: the ``rtstyle`` command."""
import sys

from .cli import main

sys.exit(main())
