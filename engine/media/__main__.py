"""``python -m engine.media probe PATH [SECONDS]``: the child process behind ``probe``."""

import sys

from .probing import probe_main

if len(sys.argv) >= 3 and sys.argv[1] == "probe":
    sys.exit(probe_main(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 20))
print("usage: python -m engine.media probe PATH [SECONDS]", file=sys.stderr)
sys.exit(2)
