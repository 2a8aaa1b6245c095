"""Error types every layer can raise; a leaf module with no imports.

The CLI turns a `MedtkError` into one line on stderr and the exit code the class carries, so a message
must stand alone: name the file or argument, quote the value received, and say what would be valid.
"""


class MedtkError(Exception):
    """A problem the user can act on (bad input, missing file, wrong option)."""

    exit_code = 1


class ConfigError(MedtkError):
    """An invalid option, spec-file key or value."""

    exit_code = 2


class DataError(MedtkError):
    """A data source that cannot be used: missing, empty, corrupt, inconsistent."""


class ImageDecodeError(DataError):
    """One image file that cannot be read; a dataset skips it, a single prediction fails on it."""


class ModelError(MedtkError):
    """A model file or run folder that is missing, truncated, or not a medtk model."""


class RuntimeInputError(MedtkError):
    """Bad input to the on-device runtime; the `Classifier` stays usable after it."""


class MissingExtraError(MedtkError):
    """A command needs an optional dependency set that is not installed."""


class QualityGateError(MedtkError):
    """A measured quality gate failed (e.g. `--max-auc-drop`); artifacts stay for inspection."""

    exit_code = 3
