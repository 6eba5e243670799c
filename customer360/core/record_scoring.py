"""Scoring one record against a few candidates with the batch's trained model.

The comparison levels, match weights and term-frequency adjustments are not written
again here: Splink generates the scoring SQL from the persisted model, once, by scoring
a sample pair; every later call runs that same SQL on DuckDB over new request and
candidate rows. Splink's own per-call path plans its pipeline again each time, which
costs tens of milliseconds; a real-time answer cannot afford that.

Term frequencies come from the published records (Splink computes them once, as the
batch does over the records it scores), and travel with every row as ``tf_<attribute>``
columns, so the SQL joins no lookup table per call.
"""

from __future__ import annotations

import logging

import duckdb
import polars as pl
from splink import DuckDBAPI, Linker

from customer360.core.matching import Model

REQUEST_TABLE = "scoring_request"
CANDIDATES_TABLE = "scoring_candidates"


class RecordScorer:
    """Match probabilities of one record against candidate records of ``frame``.

    Not thread-safe: one DuckDB connection, used by one caller at a time.
    """

    def __init__(self, frame: pl.DataFrame, model: Model) -> None:
        """``frame``: the published records' comparison frame
        (:func:`customer360.core.matching.comparison_frame`)."""
        self._connection = duckdb.connect()
        self._connection.execute("SET threads = 1")  # a few hundred rows: no fan-out
        database = DuckDBAPI(connection=self._connection)
        table = database.register(frame.to_arrow(), table_name="published_records")
        linker = Linker(table, model, log_level=logging.ERROR)
        self._frequencies = {
            column: self._connection.sql(
                f"select * from {linker.table_management.compute_tf_table(column).physical_name}"
            ).pl()
            for column in _term_frequency_columns(model)
        }
        self.frame = self.with_frequencies(frame)
        sample = self.frame.head(1)
        self._register(sample, sample)
        scored = linker.inference.score_pairs(
            database.table_to_splink_dataframe(REQUEST_TABLE, REQUEST_TABLE),
            database.table_to_splink_dataframe(CANDIDATES_TABLE, CANDIDATES_TABLE),
        )
        self._sql = (
            "select unique_id_r, match_probability "
            f"from ({scored.sql_used_to_create}) order by match_probability desc, unique_id_r"
        )
        scored.drop_table_from_database_and_remove_from_cache()

    def with_frequencies(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with each term-frequency-adjusted attribute's frequency among the
        published records (null for a value they do not hold: no adjustment)."""
        for column, frequencies in self._frequencies.items():
            frame = frame.join(frequencies, on=column, how="left", maintain_order="left")
        return frame

    def score(self, record: pl.DataFrame, candidates: pl.DataFrame) -> pl.DataFrame:
        """``unique_id_r``, ``match_probability`` of the one-row ``record`` against each
        candidate row (both with frequencies), most probable first."""
        self._register(record, candidates)
        return self._connection.sql(self._sql).pl()

    def _register(self, record: pl.DataFrame, candidates: pl.DataFrame) -> None:
        self._connection.register(REQUEST_TABLE, record)
        self._connection.register(CANDIDATES_TABLE, candidates)


def _term_frequency_columns(model: Model) -> list[str]:
    """The compared attributes whose levels the model adjusts by term frequency."""
    return list(
        dict.fromkeys(
            level["tf_adjustment_column"]
            for comparison in model["comparisons"]
            for level in comparison["comparison_levels"]
            if level.get("tf_adjustment_column")
        )
    )
