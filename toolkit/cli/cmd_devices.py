"""`medtk devices`: the device profiles `medtk bench --device` accepts."""

from __future__ import annotations


def devices() -> None:
    """List device profiles: name, aliases, CPU cores, memory, delegates, default threads."""
    from rich.console import Console
    from rich.table import Table

    from medtk.devices import list_profiles

    table = Table(title="medtk device profiles (medtk bench --device NAME)")
    for column in ("name", "aliases", "cpu", "cores", "memory", "delegates", "threads"):
        table.add_column(column, justify="right" if column in ("cores", "memory", "threads") else "left")
    for profile in list_profiles():
        table.add_row(
            profile.name,
            ", ".join(profile.aliases),
            f"{profile.cpu.model} @ {profile.cpu.freq_ghz:g} GHz",
            str(profile.cpu.cores),
            f"{profile.memory_mb / 1024:g} GB",
            " > ".join(profile.delegates),
            str(profile.default_threads),
        )
    Console(width=200).print(table)
