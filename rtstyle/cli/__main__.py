"""``python -m rtstyle.cli``."""
import sys

from . import main

sys.exit(main())
