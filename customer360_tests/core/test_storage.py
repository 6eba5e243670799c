"""Storage: atomic Parquet tables with DuckDB views over them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from customer360.core.storage import ArtifactStore, StorageError

FRAME = pl.DataFrame(
    {"entity_key": ["crm:1", "crm:2", "shop:3"], "size": [3, 1, 2], "score": [0.5, None, 1.0]}
)


def count_via_view(store: ArtifactStore, table: str) -> int:
    with duckdb.connect(str(store.database), read_only=True) as con:
        return con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]


def test_write_then_read_round_trips(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")  # the folder does not exist yet
    path = store.write("clusters", FRAME)
    assert path == tmp_path / "artifacts" / "clusters.parquet"
    assert store.exists("clusters")
    assert_frame_equal(store.read("clusters"), FRAME)


def test_view_answers_by_table_name(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("clusters", FRAME)
    assert count_via_view(store, "clusters") == 3
    with duckdb.connect(str(store.database), read_only=True) as con:
        total = con.execute("SELECT sum(size) FROM clusters WHERE size > 1").fetchone()[0]
    assert total == 5


def test_second_write_replaces_the_data_and_the_view_sees_it(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("clusters", FRAME)
    smaller = FRAME.head(1)
    store.write("clusters", smaller)
    assert_frame_equal(store.read("clusters"), smaller)
    assert count_via_view(store, "clusters") == 1


def test_views_for_several_tables(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("clusters", FRAME)
    store.write("records", pl.DataFrame({"entity_key": ["a", "b", "c", "d", "e"]}))
    assert count_via_view(store, "clusters") == 3
    assert count_via_view(store, "records") == 5


def test_no_temporary_files_left_behind(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("clusters", FRAME)
    store.write("clusters", FRAME)
    names = {p.name for p in tmp_path.iterdir()}
    assert not [n for n in names if n.endswith(".tmp")]
    assert {"clusters.parquet", "customer360.duckdb"} <= names


def test_failed_write_keeps_the_old_table_and_leaves_no_temporary_file(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("clusters", FRAME)
    unwritable = pl.DataFrame({"x": pl.Series([object()], dtype=pl.Object)})
    with pytest.raises(pl.exceptions.PolarsError):
        store.write("clusters", unwritable)
    assert_frame_equal(store.read("clusters"), FRAME)
    assert count_via_view(store, "clusters") == 3
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_lazy_frame_is_streamed_over_the_table_it_reads(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("clusters", FRAME)
    extra = pl.DataFrame({"entity_key": ["web:4"], "size": [5], "score": [0.25]})
    store.write(
        "clusters", pl.concat([store.scan("clusters").filter(pl.col("size") > 1), extra.lazy()])
    )
    assert_frame_equal(store.read("clusters"), pl.concat([FRAME.filter(pl.col("size") > 1), extra]))
    assert count_via_view(store, "clusters") == 3
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_row_count_reads_the_footer(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("clusters", FRAME)
    assert store.row_count("clusters") == 3
    store.write("empty", FRAME.clear())
    assert store.row_count("empty") == 0


def test_reading_a_missing_table_names_it(tmp_path):
    store = ArtifactStore(tmp_path)
    assert not store.exists("golden_profiles")
    with pytest.raises(StorageError, match="table 'golden_profiles' has not been materialized"):
        store.read("golden_profiles")
    # a scan (a lazy input, a check) says the same at once, not when it is collected
    with pytest.raises(StorageError, match="table 'golden_profiles' has not been materialized"):
        store.scan("golden_profiles")


def test_the_bundled_duckdb_shell_can_query_the_catalogue(tmp_path):
    shell = Path(sys.executable).parent / "duckdb"
    assert shell.is_file(), "duckdb-cli is a dependency: its shell belongs beside python"
    store = ArtifactStore(tmp_path)
    store.write("clusters", FRAME)
    result = subprocess.run(
        [str(shell), "-csv", "-noheader", str(store.database), "select sum(size) from clusters"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "6"


def test_a_view_dropped_by_someone_else_comes_back_with_the_next_write(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("clusters", FRAME)
    store.write("records", FRAME)  # the views are known now: no need to look again
    with duckdb.connect(str(store.database)) as con:
        con.execute('DROP VIEW "clusters"')
    store.write("clusters", FRAME)  # the catalogue changed: its views are read again
    assert count_via_view(store, "clusters") == 3
    assert count_via_view(store, "records") == 3


def test_run_in_progress_sees_the_run_lock_of_another_process(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    assert not store.run_in_progress()  # no run ever
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from customer360.core.storage import ArtifactStore\n"
            f"with ArtifactStore({str(store.root)!r}).exclusive_run():\n"
            "    print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert store.run_in_progress()
    finally:
        holder.communicate("")
    assert not store.run_in_progress()


def has_statistics(path: Path) -> bool:
    return pq.ParquetFile(path).metadata.row_group(0).column(0).is_stats_set


def test_statistics_are_written_only_for_tables_sorted_by_their_key(tmp_path):
    store = ArtifactStore(tmp_path)
    keyed = pl.DataFrame({"resolved_id": ["a", "b", "c"], "value": [3, 1, 2]})
    assert has_statistics(store.write("golden_profiles", keyed))
    assert not has_statistics(store.write("membership", keyed.reverse()))
    store.write_state("kept", keyed)
    assert not has_statistics(store.state_path("kept"))
    assert store.read("membership").equals(keyed.reverse())


def test_views_of_new_tables_are_created_together_when_the_block_ends(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("clusters", FRAME)  # outside a block: its view at once
    assert count_via_view(store, "clusters") == 3
    with store.views_created_together():
        store.write("membership", FRAME)
        store.write("golden_profiles", FRAME.head(2))
        store.write("clusters", FRAME.head(1))
        with duckdb.connect(str(store.database), read_only=True) as con:
            views = {row[0] for row in con.sql("SELECT view_name FROM duckdb_views()").fetchall()}
        assert "membership" not in views  # new tables wait for the end of the block
        assert count_via_view(store, "clusters") == 1  # an existing view reads the new file
    assert count_via_view(store, "membership") == 3
    assert count_via_view(store, "golden_profiles") == 2


def test_a_shared_file_becomes_the_table_and_outlives_its_first_name(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    kept = tmp_path / "artifacts" / "state" / "kept.parquet"
    kept.parent.mkdir(parents=True)
    FRAME.write_parquet(kept)
    store.write("crm", FRAME.head(1))  # an older table is replaced
    path = store.share("crm", kept)
    assert path.stat().st_ino == kept.stat().st_ino  # the rows are not written again
    kept.unlink()  # e.g. the batch is replaced and its kept copy deleted
    assert_frame_equal(store.read("crm"), FRAME)
    assert count_via_view(store, "crm") == 3


def test_a_shared_state_keeps_the_file_it_links_when_the_table_is_replaced(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    table = store.write("membership", FRAME)
    store.share_state("kept_membership", table)
    assert store.state_path("kept_membership").stat().st_ino == table.stat().st_ino
    store.write("membership", FRAME.head(1))  # the next run replaces the table
    assert_frame_equal(store.read_state("kept_membership"), FRAME)
    first = FRAME.columns[:1]
    assert_frame_equal(store.read_state("kept_membership", first), FRAME.select(first))
    assert store.read_state("never_kept") is None


def test_a_streamed_plan_becomes_the_table_in_its_order(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("traits", FRAME.head(1))
    plan = pl.concat([FRAME.lazy(), FRAME.lazy().reverse()])
    path = store.write("traits", plan)
    assert_frame_equal(store.read("traits"), pl.concat([FRAME, FRAME.reverse()]))
    assert count_via_view(store, "traits") == 6
    assert not has_statistics(path)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_failed_stream_keeps_the_old_table_and_leaves_no_temporary_file(tmp_path):
    store = ArtifactStore(tmp_path)
    store.write("traits", FRAME)
    failing = FRAME.lazy().select(pl.col("entity_key").str.to_integer())
    with pytest.raises(pl.exceptions.PolarsError):
        store.write("traits", failing)
    assert_frame_equal(store.read("traits"), FRAME)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_json_state_is_kept_read_back_and_dropped(tmp_path):
    store = ArtifactStore(tmp_path)
    assert store.read_json_state("basis") is None
    store.write_json_state("basis", {"fingerprint": "abc", "rows": {"email": 3}})
    assert store.read_json_state("basis") == {"fingerprint": "abc", "rows": {"email": 3}}
    store.json_state_path("basis").write_text("{not json")  # a torn or edited file
    assert store.read_json_state("basis") is None
    store.drop_json_state("basis")
    assert not store.json_state_path("basis").exists()
