"""The benchmark's modules. The helpers it shares with the e2e tests
(warren's command line in tests/e2e/warren.py, processes and namespaces
in tests/e2e/nsproc.py, the applications in tests/e2e/netapp.py) live
with the tests; this puts that directory on the import path."""

import os
import sys

E2E = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "tests", "e2e")
if E2E not in sys.path:
    sys.path.insert(0, E2E)
