"""Stable entry point of the bench worker; the worker itself is `medtk.runtime.bench.worker`.

    python -m medtk.runtime.bench_worker MODEL --threads T --runs N --warmup W [--delegate D] [--image FILE]

`medtk bench` runs exactly this module name, locally and over SSH (`--host`) on devices that may have
an older medtk installed, so the name and its JSON result line stay (docs/ARCHITECTURE.md).
"""

import sys

from medtk.runtime.bench.worker import main

if __name__ == "__main__":
    sys.exit(main())
