"""Training-data generation for the surrogates (Dask-parallel, resumable, atomic shards)."""
