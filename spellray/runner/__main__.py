import sys

from spellray.runner.main import main

sys.exit(main())
