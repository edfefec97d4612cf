"""The transaction index: Kafka's file format, search, truncation, torn tails, segment life."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from storage.fs import FileSystem
from storage.txn_index import ENTRY_SIZE, AbortedTxn, TransactionIndex
from tests.storage.conftest import LogFactory, fill

FS = FileSystem()


def index_at(tmp_path: Path, base: int = 0) -> TransactionIndex:
    return TransactionIndex(str(tmp_path / f"{base:020d}.txnindex"), base, FS)


def test_file_is_created_lazily_in_kafkas_format(tmp_path: Path) -> None:
    index = index_at(tmp_path)
    assert not index.exists() and index.entries == []
    index.append(AbortedTxn(producer_id=5, first_offset=3, last_offset=9, last_stable_offset=10))
    with open(index.path, "rb") as f:
        data = f.read()
    assert data == struct.pack(">hqqqq", 0, 5, 3, 9, 10) and len(data) == ENTRY_SIZE
    assert index_at(tmp_path).entries == [AbortedTxn(5, 3, 9, 10)]


def test_last_offsets_must_increase(tmp_path: Path) -> None:
    index = index_at(tmp_path)
    index.append(AbortedTxn(1, 0, 5, 6))
    with pytest.raises(ValueError):
        index.append(AbortedTxn(2, 1, 5, 6))
    assert len(index_at(tmp_path).entries) == 1


def test_collect_is_kafkas_overlap_rule(tmp_path: Path) -> None:
    index = index_at(tmp_path)
    txns = [AbortedTxn(1, 0, 10, 11), AbortedTxn(2, 5, 20, 12), AbortedTxn(3, 15, 30, 40)]
    for txn in txns:
        index.append(txn)
    result = index.collect(11, 16)  # overlap: marker at or after 11, first offset below 16
    assert result.aborted == txns[1:] and result.complete  # txn 3's LSO 40 >= 16
    result = index.collect(0, 100)
    assert result.aborted == txns and not result.complete  # later segments may hold more
    assert index.collect(31, 100).aborted == []
    assert index.collect(0, 5).aborted == [txns[0]]


def test_truncate_drops_entries_with_a_marker_at_or_above(tmp_path: Path) -> None:
    index = index_at(tmp_path)
    for i in range(4):
        index.append(AbortedTxn(i, i * 10, i * 10 + 5, i * 10 + 6))
    index.truncate_to(15)
    assert [e.last_offset for e in index.entries] == [5]
    assert os.path.getsize(index.path) == ENTRY_SIZE
    assert [e.last_offset for e in index_at(tmp_path).entries] == [5]
    index.append(AbortedTxn(9, 7, 8, 9))  # appends go on after a truncation
    assert [e.last_offset for e in index_at(tmp_path).entries] == [5, 8]


@pytest.mark.parametrize("tail", [1, 17, ENTRY_SIZE - 1])
def test_torn_tail_is_cut_on_load(tmp_path: Path, tail: int) -> None:
    index = index_at(tmp_path)
    index.append(AbortedTxn(1, 0, 5, 6))
    with open(index.path, "ab") as f:
        f.write(AbortedTxn(2, 6, 8, 9).encode()[:tail])
    reloaded = index_at(tmp_path)
    assert reloaded.entries == [AbortedTxn(1, 0, 5, 6)]
    assert os.path.getsize(index.path) == ENTRY_SIZE
    reloaded.append(AbortedTxn(2, 6, 8, 9))
    assert index_at(tmp_path).entries == [AbortedTxn(1, 0, 5, 6), AbortedTxn(2, 6, 8, 9)]


@pytest.mark.parametrize(
    "bad",
    [
        struct.pack(">hqqqq", 1, 2, 6, 8, 9),  # unknown version
        struct.pack(">hqqqq", 0, 2, 6, 5, 9),  # marker not after the previous one
        struct.pack(">hqqqq", 0, 2, 9, 8, 9),  # first offset after the marker
    ],
)
def test_invalid_entry_ends_the_file(tmp_path: Path, bad: bytes) -> None:
    index = index_at(tmp_path)
    index.append(AbortedTxn(1, 0, 5, 6))
    with open(index.path, "ab") as f:
        f.write(bad + AbortedTxn(3, 10, 12, 13).encode())
    assert index_at(tmp_path).entries == [AbortedTxn(1, 0, 5, 6)]
    assert os.path.getsize(index.path) == ENTRY_SIZE


def test_entry_below_the_segment_base_is_invalid(tmp_path: Path) -> None:
    with open(tmp_path / f"{100:020d}.txnindex", "wb") as f:
        f.write(AbortedTxn(1, 0, 50, 51).encode())
    assert index_at(tmp_path, 100).entries == []


# --- through the log ----------------------------------------------------------------------------


def test_log_indexes_in_the_marker_segment_and_searches_across(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 120)  # several 4 KiB segments
    bases = [s.base_offset for s in log.segments]
    assert len(bases) >= 3
    early = AbortedTxn(1, 0, bases[1] - 1, 1)  # LSO held at 1 by the other, open txn
    late = AbortedTxn(2, 1, bases[2] + 1, bases[2] + 2)
    log.append_aborted_txn(early)
    log.append_aborted_txn(late)
    assert log.segments[0].txn_index.entries == [early]
    assert log.segments[2].txn_index.entries == [late]
    assert log.collect_aborted_transactions(0, 2) == [early, late]
    assert log.collect_aborted_transactions(bases[1], 2) == [late]
    assert log.collect_aborted_transactions(0, 1) == [early]  # early's LSO 1 ends the search


def test_fetch_gets_the_transactions_overlapping_its_batches(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 10)
    txn = AbortedTxn(7, 4, 6, 7)
    log.append_aborted_txn(txn)
    assert log.aborted_transactions(log.read(0, 1 << 20)) == [txn]
    one_batch = log.read(0, 1, min_one_message=True)  # offsets 0..0 only
    assert log.aborted_transactions(one_batch) == []
    assert log.aborted_transactions(log.read(7, 1 << 20)) == []


def test_log_truncation_and_recovery_truncation(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 10)
    log.append_aborted_txn(AbortedTxn(1, 0, 3, 4))
    log.append_aborted_txn(AbortedTxn(2, 4, 8, 9))
    log.truncate_to(6)
    assert log.collect_aborted_transactions(0, 100) == [AbortedTxn(1, 0, 3, 4)]
    log.truncate_txn_indexes_from(2)
    assert log.collect_aborted_transactions(0, 100) == []


def test_index_goes_with_its_segment(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 120)
    first = log.segments[0]
    log.append_aborted_txn(AbortedTxn(1, 0, 2, 3))
    path = first.txn_index.path
    assert path in first.flush_paths()
    log.delete_records_before(log.segments[1].base_offset)
    assert not os.path.exists(path)
    assert not any(name.endswith(".txnindex") for name in os.listdir(log.dir))


def test_orphaned_index_is_removed_at_load(make_log: LogFactory, tmp_path: Path) -> None:
    log = make_log()
    fill(log, 3)
    log.close()
    orphan = tmp_path / "t-0" / f"{999:020d}.txnindex"
    orphan.write_bytes(AbortedTxn(1, 999, 1000, 1001).encode())
    make_log(clean=True)
    assert not orphan.exists()
