"""What the ``avengers`` command tests share: the pool of ``fixtures/small.jsonl`` and the
options of the small routers they fit on it.
"""

from __future__ import annotations

MODELS = {"acme/tiny", "acme/medium", "acme/large"}
ROUTER_OPTIONS = ["--n-clusters", "4", "--nearest-clusters", "2"]
