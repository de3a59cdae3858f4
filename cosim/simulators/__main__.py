"""``python -m cosim.simulators NAME HOST:PORT``: one simulator in its own process."""

import signal
import sys

# Ctrl-C in a terminal reaches every process of the group: the parent (mosaik) handles it and
# shuts this process down by closing the connection, so here it is ignored (no second
# traceback from a child process). Set before the imports, which take a moment.
signal.signal(signal.SIGINT, signal.SIG_IGN)

from cosim.simulators.remote import main  # noqa: E402

sys.exit(main())
