"""``python -m anonchat.daemon``: the daemon."""

import sys

from .cli import daemon_main

sys.exit(daemon_main())
