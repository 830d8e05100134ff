from recordings_service.cli import main
import sys
sys.exit(main())
