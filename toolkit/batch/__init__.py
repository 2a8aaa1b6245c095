"""medtk.batch: a deployed model over a whole archive (`medtk predict MODEL --data SRC --out RESULTS`).

Items in (items.py), one row per image (rows.py), a resumable Parquet results folder (store.py), on a
local pool of interpreters (local.py) or on Ray Data (on_ray.py); `run_batch` (job.py) ties them.
Needs the `medtk[scale]` extra (pyarrow, Ray Data); the base install never imports it.
"""
