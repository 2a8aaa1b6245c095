"""What the DICOM standard says about a SOP class, read from highdicom's bundled copy of the standard.

highdicom keeps these tables private (`highdicom._standard_utils`). This adapter is the one place that
reaches them, so a highdicom release that moves them breaks here, loudly, and nowhere else:
`tests/serve/test_standard.py` checks both lookups against known answers, and `check()` runs when a
node starts. pyproject pins highdicom below its next major version.
"""

from __future__ import annotations

import functools

from medtk.errors import ConfigError


def _tables():
    try:
        from highdicom import _standard_utils as tables

        tables.does_iod_have_pixel_data, tables.get_iod_module_map  # noqa: B018 - presence check
        tables.get_module_attribute_map, tables.get_sop_class_iod_map  # noqa: B018
    except (ImportError, AttributeError) as error:
        import highdicom

        raise ConfigError(f"highdicom {highdicom.__version__} no longer has the standard's tables medtk serve "
                          f"reads ({error}); install the version pyproject names (\"medtk[serve]\")") from None
    return tables


def check() -> None:
    """Raise `ConfigError` now if the tables are gone (a node must not start and then degrade)."""
    _tables()


@functools.lru_cache(maxsize=64)
def iod_has_pixel_data(sop_class_uid: str) -> bool:
    """Does this SOP class's IOD hold pixels? False for a class the standard's tables do not know."""
    try:
        return bool(_tables().does_iod_have_pixel_data(sop_class_uid))
    except (KeyError, ValueError):
        return False


@functools.lru_cache(maxsize=64)
def patient_study_module_tags(sop_class_uid: str) -> tuple[int, ...]:
    """Root attributes of the Patient and Study modules of the class's IOD (what highdicom's
    `copy_patient_and_study_information` copies into an SR); () for a class the tables do not know."""
    from pydicom.datadict import tag_for_keyword

    tables = _tables()
    iod = tables.get_sop_class_iod_map().get(sop_class_uid)
    if iod is None:
        return ()
    attributes = tables.get_module_attribute_map()
    tags = []
    for module in tables.get_iod_module_map()[iod]:
        if module["ie"] not in ("Patient", "Study"):
            continue
        for item in attributes[module["key"]]:
            if len(item["path"]) == 0 and (tag := tag_for_keyword(str(item["keyword"]))) is not None:
                tags.append(int(tag))
    return tuple(dict.fromkeys(tags))
