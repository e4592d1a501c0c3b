import sys

from gorl.cli import main

sys.exit(main())
