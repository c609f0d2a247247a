"""`python -m ksdk` is the `ksdk` command."""

import sys

from ksdk.cli.main import main

sys.exit(main())
