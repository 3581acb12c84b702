"""`latbench import-lut`: a published latency model of a space, as a `latbench-lut/1` table.

The space owns its published model (`SearchSpace.published_table`, e.g. TuNAS's Pixel-1 cost model);
this module only adds the table header and the import provenance."""
from __future__ import annotations

from ..spaces import SearchSpace, get_space, space_names
from .table import make_lut, provenance

SOURCES = ("tunas",)


def import_published(source: str, space_name: str, data_path=None) -> dict:
    """The table dict of `source`'s published model of `space_name` (BadInput when it has none)."""
    from ..errors import BadInput

    if source not in SOURCES:
        raise BadInput(f"import-lut: unknown source {source!r} (known: {', '.join(SOURCES)})")
    space = get_space(space_name)
    if type(space).published_table is SearchSpace.published_table:
        have = [n for n in space_names() if type(get_space(n)).published_table is not SearchSpace.published_table]
        raise BadInput(f"--space: {space_name} has no published latency table to import (spaces with one: "
                       f"{', '.join(have)})")
    fields = space.published_table(data_path)
    return make_lut(device=fields["device"], runtime=fields["runtime"], batch=fields["batch"],
                    granularity=fields["granularity"], method="imported", spaces=fields["spaces"],
                    base_ms=fields["base_ms"], entries=fields["entries"],
                    provenance_info=provenance(**fields["provenance"]))
