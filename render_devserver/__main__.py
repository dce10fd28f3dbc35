"""``python -m render_devserver [options] -- COMMAND...``"""

from render_devserver.cli import main

raise SystemExit(main())
