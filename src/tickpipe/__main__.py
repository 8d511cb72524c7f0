import sys

from tickpipe.cli.main import main

sys.exit(main())
