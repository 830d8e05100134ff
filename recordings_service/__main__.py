import sys

from recordings_service.cli import main

sys.exit(main())
