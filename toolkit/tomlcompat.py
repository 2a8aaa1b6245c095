"""`tomllib` on Python 3.11+, its backport `tomli` on 3.10 (what JetPack 6 and Ubuntu 22.04 ship): one import
for every module that reads TOML (run configurations, device profiles, serve rules)."""

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the `tomli` dependency pyproject declares for it
    import tomli as tomllib

__all__ = ["tomllib"]
