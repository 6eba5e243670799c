"""customer360: Customer 360 identity resolution as a Dagster asset graph.

``core`` holds the Dagster-free functions (spec, normalizers, linking, clustering,
survivorship, storage); ``defs`` wires them into assets, checks and sensors;
``definitions`` builds the project from the spec; ``service`` answers one record at a
time over the published graph; ``cli`` is the `customer360` command.
"""
