"""The resolution group: records → identifiers → identity_edges → membership/clusters.
Each asset loads its inputs, calls one core function and reports what a person checks."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from customer360.core.batch_cache import BatchCache
from customer360.core.edges import EDGE_SCHEMA, skipped_groups
from customer360.core.explain import weakest_links
from customer360.core.forget import suppressed_keys
from customer360.core.identifiers import VALUE_COLUMNS, classify_identifiers
from customer360.core.inbox import realtime_assignments
from customer360.core.incremental_clusters import (
    cluster_record_columns,
    forget_cluster_inputs,
    keep_cluster_inputs,
    kept_clusters,
    resolve_clusters,
)
from customer360.core.incremental_identifiers import (
    classify_mapped,
    forget_identifiers_basis,
    keep_identifiers_basis,
    kept_identifiers,
    mapped_mask,
    mapped_value_keys,
)
from customer360.core.incremental_links import (
    forget_link_inputs,
    inputs_fingerprint,
    keep_link_inputs,
    kept_links,
    link_record_columns,
    update_edges,
)
from customer360.core.incremental_records import (
    basis_fingerprint,
    forget_basis,
    keep_basis,
    kept_basis,
    next_basis,
    plan_records,
    update_records,
)
from customer360.core.ingest import ingest_source
from customer360.core.normalized_values import keep_normalized_values, load_normalized_values
from customer360.core.spec import Spec
from customer360.core.stable_ids import (
    ID_REGISTRY_STATE,
    accumulate_lineage,
    with_realtime_assignments,
)
from customer360.core.storage import ArtifactStore
from customer360.defs.automation import is_full_run
from customer360.defs.gates import evaluate_gates, gate_specs, stop_if_failed
from customer360.defs.io_manager import columns
from customer360.defs.metadata import preview
from customer360.defs.schemas import identifiers_type

GROUP = "resolution"
KINDS = {"polars", "parquet", "duckdb"}


def _out(spec: Spec, description: str, **kwargs: object) -> dg.AssetOut:
    return dg.AssetOut(
        group_name=GROUP,
        kinds=KINDS,
        owners=[spec.settings.owner],
        description=description,
        **kwargs,
    )


def build_resolution_assets(spec: Spec, store: ArtifactStore) -> list[dg.AssetsDefinition]:
    owners = [spec.settings.owner]

    @dg.multi_asset(
        name="map_records",
        # the extracts' partitions are the batches as they landed; this step reads the
        # current ones itself (kept by content), so a removed batch's rows leave at once
        deps=[source.name for source in spec.sources],
        outs={
            "records": _out(
                spec,
                "Every accepted record of the sources' current batch files (read here, "
                "kept by content; the extracts' partitions are the batches as they landed) "
                "with provenance (entity_key = '<source>:<record key>', batch, row, "
                "updated_at, trust) and its identifier and attribute values as mapped by "
                "the spec, trimmed, placeholders nulled. Sorted by trust, then earliest "
                "update: the order that picks resolved ids.",
            ),
            "quarantine": _out(
                spec,
                "Rows that could not be accepted — malformed line, unreadable batch file, "
                "missing or duplicate record key, unparseable timestamp or number — with "
                "the reason and the raw row (as JSON, or the line as read). "
                "rows in = records + quarantine.",
            ),
        },
    )
    def map_records(context: AssetExecutionContext):
        full = is_full_run(context)
        cache = BatchCache(store, reuse=not full)
        forgotten = suppressed_keys(store)
        fingerprint = basis_fingerprint(spec, forgotten)
        plan = plan_records(spec, store, None if full else kept_basis(store, fingerprint))
        forget_basis(store)  # until the outputs it describes are written
        ingested = {
            name: ingest_source(spec, spec.source(name), forgotten, cache)
            for name in plan.to_read(spec)
        }
        for name, result in ingested.items():  # the sources' tables: their current batches
            # one batch kept as read, nothing dropped: the kept file holds these very rows
            kept = cache.single_file(spec.source(name))
            if kept is not None and not result.forgotten_rows_dropped:
                store.share(name, kept)
            else:
                store.write(name, result.frame)
        basis = next_basis(spec, cache, fingerprint, plan, ingested)
        # the unchanged sources' tables hold the rows they were mapped from last run
        rows_in = sum(result.frame.height for result in ingested.values()) + sum(
            store.row_count(name) for name in plan.unchanged
        )
        unchanged = [plan.basis.sources[name] for name in plan.unchanged] if plan.basis else []
        hashed_dropped = {
            name: result.hashed_values_dropped
            for name, result in ingested.items()
            if result.hashed_values_dropped  # invalid or excluded: not hashed, not kept
        }
        figures = {
            "sources": len(spec.sources),
            "batches": cache.batches + sum(len(source.batches) for source in unchanged),
            "batches_read_from_files": cache.files_read,
            "forgotten_rows_dropped": sum(r.forgotten_rows_dropped for r in ingested.values())
            + sum(source.forgotten_rows_dropped for source in unchanged),
        }
        if hashed_dropped:
            figures["hashed_values_dropped"] = dg.MetadataValue.json(hashed_dropped)
        previous = (
            (store.read("records"), store.read("quarantine"))
            if plan.unchanged or plan.added
            else None
        )
        # handed over and held nowhere else, so each source's raw rows go once staged
        extracts = {name: ingested.pop(name).frame for name in list(ingested)}
        mapped = update_records(spec, plan, extracts, previous)
        del previous
        records, quarantine = mapped.records, mapped.quarantine
        figures["rows_mapped"] = mapped.rows_mapped
        context.log.info(f"{records.height} records accepted, {quarantine.height} quarantined")
        reasons = quarantine.group_by(pl.col("reason").str.extract(r"^([a-z ]+)")).len()
        yield dg.Output(records, "records", metadata=figures)
        yield dg.Output(
            quarantine,
            "quarantine",
            metadata={
                "rows_in": rows_in,
                "by_reason": dg.MetadataValue.json(
                    {str(k): int(n) for k, n in reasons.iter_rows()}
                ),
            },
        )
        keep_basis(store, basis, mapped)

    @dg.asset(
        ins={"records": columns("entity_key", *spec.identifier_types)},
        group_name=GROUP,
        kinds=KINDS,
        owners=owners,
        dagster_type=identifiers_type(spec),
        description=(
            "Long table of identifiers: one row per (record, identifier type) with the raw "
            "and normalized value, a status (linkable, inactive, invalid, excluded, "
            "oversize), the reason when not linkable, and the size of the value's group. "
            "Values classified by an earlier run under the same spec are looked up, not "
            "normalized again, and records the records stage took over from the last run "
            "keep their rows of the last table. Validated by its schema (the asset's type)."
        ),
    )
    def identifiers(context: AssetExecutionContext, records: pl.DataFrame):
        full = is_full_run(context)
        mapped = None if full else mapped_mask(store, records.height)
        last = None if mapped is None else kept_identifiers(store, spec)
        result = None
        if mapped is not None and last is not None:  # records taken over: their rows too
            kept = load_normalized_values(store, mapped_value_keys(spec, records, mapped))
            result = classify_mapped(spec, records, mapped, last, kept)
            classified = int(mapped.sum())
        if result is None:
            kept = None if full else load_normalized_values(store)
            result = classify_identifiers(spec, records, kept)
            classified = records.height
        keep_normalized_values(store, spec, kept, result.fresh, result.used)
        by_status = result.table.group_by("status").len()
        forget_identifiers_basis(store)  # until the table it describes is written
        yield dg.Output(
            result.table,
            metadata={
                **{f"status_{status}": int(n) for status, n in by_status.iter_rows()},
                "values_normalized": result.fresh.height,
                "records_classified": classified,
            },
        )
        keep_identifiers_basis(store, spec, result.table)

    @dg.multi_asset(
        ins={
            "records": columns(*link_record_columns(spec.corroboration)),
            # read in passes, each loading only the rows and columns it uses
            "identifiers": columns(*VALUE_COLUMNS, "reason", lazy=True),
        },
        name="link_records",
        outs={
            "identity_edges": _out(
                spec,
                "Pairs of records linked by a shared linkable identifier, with the rule, "
                "identifier type and shared value. Each identifier group is a star around "
                "its first record (n-1 edges, not n(n-1)/2); a guarded group whose records "
                "disagree on the corroborating attribute links only the records that agree.",
            ),
            "skipped_groups": _out(
                spec,
                "Identifier values shared by more records than max_group_size allows (they "
                "link nothing) and guarded values whose records disagree on the "
                "corroborating attribute (they link only agreeing records). Group size, "
                "reason and a sample of members.",
            ),
        },
    )
    def link_records(
        context: AssetExecutionContext, records: pl.DataFrame, identifiers: pl.LazyFrame
    ):
        update = update_edges(
            records,
            identifiers,
            spec.corroboration,
            inputs_fingerprint(spec),
            None if is_full_run(context) else kept_links(store),
        )
        # a batch run's edges are a plan over the last run's, streamed into the table
        edges, guarded = update.links
        skipped = skipped_groups(identifiers, guarded)
        counts = edges.lazy().group_by("rule").len().sort("rule").collect()
        per_rule = {rule: int(n) for rule, n in counts.iter_rows()}
        relinked = update.relinked_groups
        context.log.info(
            f"{sum(per_rule.values())} edges ("
            + ("all groups linked" if relinked is None else f"{relinked} groups linked again")
            + f"), {skipped.height - guarded.height} over-size groups skipped, "
            f"{guarded.height} guarded groups limited to agreeing records"
        )
        forget_link_inputs(store)  # until the outputs they describe are written
        yield dg.Output(
            edges,
            "identity_edges",
            metadata={
                "edges_per_rule": per_rule,
                "groups_linked_again": -1 if relinked is None else relinked,
            },
        )
        yield dg.Output(
            skipped,
            "skipped_groups",
            metadata={
                "largest_skipped_group": int(skipped.get_column("group_size").max() or 0),
                "guarded_groups": guarded.height,
            },
        )
        keep_link_inputs(store, update.inputs)

    # every edge column but the match evidence, which clustering never reads
    edge_columns = columns(*(name for name in EDGE_SCHEMA if name != "evidence"))
    edge_ins = {"identity_edges": edge_columns}
    if spec.matching and spec.matching.enabled:
        edge_ins["match_edges"] = edge_columns

    @dg.multi_asset(
        ins={
            "records": columns(*cluster_record_columns(spec.splitting)),
            **edge_ins,
        },
        name="cluster_records",
        outs={
            "membership": _out(
                spec,
                "entity_key, source, record_key → resolved_id for every record, singletons "
                "included. Connected components of identity_edges and match_edges "
                "(scipy.sparse.csgraph), over-merged ones split at their weakest links "
                "(splitting in the spec); ids are handed down from the last run and from "
                "the resolve service.",
            ),
            "clusters": _out(
                spec,
                "One row per resolved customer: size, sources, rules that linked it, edges, "
                "and the guards that split it from the rest of its component (split_by).",
            ),
            "cluster_lineage": _out(
                spec,
                "How each record's resolved_id changed: run, previous and new resolved_id "
                "and change_type (NEW, MOVED, MERGED, SPLIT, UNCHANGED, REMOVED). Holds "
                "every record of the latest run and the changes of earlier runs.",
            ),
        },
        check_specs=gate_specs(spec),
    )
    def cluster_records(context: AssetExecutionContext, records: pl.DataFrame, **edge_sets):
        identity_edges = pl.concat(list(edge_sets.values()))
        previous = with_realtime_assignments(
            # the ids handed down, read only when used: not beside the split
            store.scan("membership").select("entity_key", "resolved_id")
            if store.exists("membership")
            else None,
            realtime_assignments(spec),
            records.get_column("entity_key"),
        )
        now = datetime.now(UTC).replace(tzinfo=None)
        clustering = resolve_clusters(
            records,
            identity_edges,
            spec.splitting,
            previous,
            store.read_state(ID_REGISTRY_STATE),
            now,
            inputs_fingerprint(spec),
            None if is_full_run(context) else kept_clusters(store),
        )
        del previous  # the published membership, once read: 0.8 GB at ten million records
        membership, registry, clusters, cut, lineage = clustering[:5]
        inputs, again = clustering.inputs, clustering.resolved_again
        del clustering  # so that each frame goes once it is written
        sizes = clusters.get_column("size")
        split = clusters.filter(pl.col("split_by").list.len() > 0)
        context.log.info(
            f"{membership.height} records in {clusters.height} clusters ("
            + ("all resolved" if again is None else f"{again} resolved again")
            + f"); {cut.height} links cut, {split.height} clusters split off over-merges"
        )
        gates = evaluate_gates(spec, clusters, lineage)
        yield from gates
        stop_if_failed(gates)  # before anything is written: a failed gate publishes nothing
        # before the outputs: it then runs beside the fewest frames
        weakest = weakest_links(identity_edges, membership, clusters)
        forget_cluster_inputs(store)  # until the outputs they describe are written
        yield dg.Output(
            membership,
            "membership",
            metadata={"records_resolved_again": -1 if again is None else again},
        )
        # after membership is published: a crash in between heals (see stable_ids)
        store.write_state(ID_REGISTRY_STATE, registry)
        del membership, registry  # written: the lineage below is made without them
        yield dg.Output(
            clusters,
            "clusters",
            metadata={
                "clusters": clusters.height,
                "largest_cluster": int(sizes.max() or 0),
                "singletons": int((sizes == 1).sum()),
                "split_clusters": split.height,
                "cut_links_per_guard": dg.MetadataValue.json(
                    dict(cut.group_by("guard").len().sort("guard").iter_rows())
                ),
                "largest_clusters": preview(clusters.drop("sources"), spec, rows=5),
                "weakest_links_of_largest_clusters": preview(weakest, spec, rows=15),
            },
        )
        # last: the largest frame, made when every other output is written
        changes = lineage.lazy().group_by("change_type").len().sort("change_type").collect()
        yield dg.Output(
            accumulate_lineage(
                store.scan("cluster_lineage") if store.exists("cluster_lineage") else None,
                lineage,
                context.run.run_id,
                now,
            ),
            "cluster_lineage",
            metadata={"changes": dg.MetadataValue.json(dict(changes.iter_rows()))},
        )
        keep_cluster_inputs(store, inputs, cut)

    return [map_records, identifiers, link_records, cluster_records]
