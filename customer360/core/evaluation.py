"""Pairwise precision, recall and F1 of a clustering against ground truth.

Counting pairs is done from group sizes (n records in a group make n(n-1)/2 pairs), so
the cost is a few group-bys, never a pair enumeration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl


@dataclass(frozen=True)
class PairwiseScores:
    precision: float
    recall: float
    f1: float
    true_positive_pairs: int
    predicted_pairs: int
    true_pairs: int
    over_merged_clusters: int
    under_merged_people: int
    evaluated_records: int

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def pairwise_scores(membership: pl.DataFrame, truth: pl.DataFrame) -> PairwiseScores:
    """Score ``membership`` (entity_key, resolved_id) against ``truth`` (entity_key, person_id).

    Only records present in both are scored; records without truth are ignored.
    """
    return scores_from_cells(score_cells(membership, truth))


def score_cells(membership: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """The (cluster, person) cells of the records present in both: resolved_id,
    person_id and ``n``, how many of the cluster's records are that person's."""
    joined = membership.select("entity_key", "resolved_id").join(
        truth.select("entity_key", pl.col("person_id").cast(pl.String)), on="entity_key"
    )
    return (
        joined.lazy()
        .group_by("resolved_id", "person_id")
        .agg(pl.len().cast(pl.Int64).alias("n"))
        .collect()
    )


def scores_from_cells(cells: pl.DataFrame) -> PairwiseScores:
    """Every figure from the cells (:func:`score_cells`): one group-by of the cells per
    side, far fewer rows than the records."""

    def pairs(sizes: pl.Expr) -> pl.Expr:
        return (sizes * (sizes - 1) // 2).sum()

    def per(key: str) -> tuple[int, int]:
        """Pairs within each ``key`` group, and how many groups hold more than one cell:
        one group-by of the cells for both."""
        groups = cells.group_by(key).agg(pl.col("n").sum(), pl.len().alias("cells"))
        figures = groups.select(pairs(pl.col("n")), (pl.col("cells") > 1).sum())
        pair_count, mixed = figures.row(0)
        return int(pair_count or 0), int(mixed or 0)

    predicted, over_merged = per("resolved_id")
    actual, under_merged = per("person_id")
    true_positive = int(cells.select(pairs(pl.col("n"))).item() or 0)
    precision = true_positive / predicted if predicted else 1.0
    recall = true_positive / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairwiseScores(
        precision=round(precision, 4),
        recall=round(recall, 4),
        f1=round(f1, 4),
        true_positive_pairs=true_positive,
        predicted_pairs=predicted,
        true_pairs=actual,
        over_merged_clusters=over_merged,
        under_merged_people=under_merged,
        evaluated_records=int(cells.get_column("n").sum()),
    )


def read_truth(
    path: Path, key_column: str = "entity_key", person_column: str = "person_id"
) -> pl.DataFrame:
    """A ground-truth CSV as (entity_key, person_id) text columns."""
    truth = pl.read_csv(path, infer_schema=False, columns=[key_column, person_column])
    return truth.rename({key_column: "entity_key", person_column: "person_id"})
