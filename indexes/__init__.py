"""Knowledge in: ingestion of files into Chroma, per-pool retrieval with scores and sources, taught-fact memory.

Start from `indexes.store.open_store(settings)`, which returns a `KnowledgeBase`. Importing this package loads
nothing heavy; Chroma and the embedding model load when a store is opened or first searched.
"""
