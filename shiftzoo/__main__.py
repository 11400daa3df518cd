"""``python -m shiftzoo``: the ``shiftzoo`` command (see :mod:`shiftzoo.cli`)."""
import sys

from .cli import main

sys.exit(main())
