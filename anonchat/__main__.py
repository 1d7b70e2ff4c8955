"""``python -m anonchat``: the client."""

import sys

from .cli import client_main

sys.exit(client_main())
