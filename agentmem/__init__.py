"""agentmem: an agent that learns (retrieval, a memory log, and LoRA consolidation into its own weights)."""

import os

# Must be set before torch is imported anywhere: with OpenMP's default busy-waiting, torch threads spin against
# each other and against the embedder and server threads on small CPUs; measured on a busy 2-core machine,
# search p95 went from 720 ms to 31 ms with PASSIVE. Users can still override it in the environment.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
