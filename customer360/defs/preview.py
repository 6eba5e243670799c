"""The preview group: a dry run that shows what the next real run would change and
writes nothing else — no published table, no state, no sensor cursor."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from customer360.core.batch_cache import BatchCache
from customer360.core.forget import suppressed_keys
from customer360.core.inbox import realtime_assignments
from customer360.core.ingest import ingest_source
from customer360.core.matching import reusable_model
from customer360.core.preview import preview_changes
from customer360.core.spec import Spec
from customer360.core.storage import ArtifactStore
from customer360.defs.metadata import figures
from customer360.defs.resolution import ID_REGISTRY_STATE

GROUP = "preview"
PREVIEW_JOB = "preview_changes"


def build_preview_assets(spec: Spec, store: ArtifactStore) -> list[dg.AssetsDefinition]:
    out = {
        "group_name": GROUP,
        "kinds": {"polars", "parquet", "duckdb"},
        "owners": [spec.settings.owner],
    }

    @dg.multi_asset(
        name="dry_run",
        outs={
            "dry_run_results": dg.AssetOut(
                description=(
                    "What the next real run would do to each record: current and proposed "
                    "resolved_id, change_type, current and proposed cluster size. Computed "
                    "from the source files and the published tables, which it never changes."
                ),
                **out,
            ),
            "dry_run_summary": dg.AssetOut(
                description=(
                    "The dry run in figures: new, moved, merged, split, removed and unchanged "
                    "records, edges to create and remove, largest proposed cluster, identifier "
                    "groups that would be skipped."
                ),
                **out,
            ),
        },
    )
    def dry_run(context: AssetExecutionContext):
        forgotten = suppressed_keys(store)
        kept = BatchCache(store, writable=False)  # reads what runs kept, keeps nothing
        extracts = {
            source.name: ingest_source(spec, source, forgotten, kept).frame
            for source in spec.sources
        }
        published_edges = [t for t in ("identity_edges", "match_edges") if store.exists(t)]
        persisted = reusable_model(store, spec.matching) if spec.matching else None
        result = preview_changes(
            spec,
            extracts,
            store.read("membership") if store.exists("membership") else None,
            pl.concat([store.read(t) for t in published_edges]) if published_edges else None,
            store.read_state(ID_REGISTRY_STATE),
            datetime.now(UTC).replace(tzinfo=None),
            realtime_assignments(spec),
            persisted[0] if persisted else None,
        )
        counts = dict(result.summary.iter_rows())
        context.log.info(", ".join(f"{k} {v}" for k, v in counts.items()))
        yield dg.Output(result.results, "dry_run_results")
        yield dg.Output(
            result.summary,
            "dry_run_summary",
            metadata={**counts, "summary": figures(result.summary)},
        )

    return [dry_run]
