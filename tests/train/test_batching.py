import random
import statistics

import datasets

from tunesmith.train.batching import LengthGroupedBatchSampler, eval_loader


def lengths(n: int = 1000, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(3, 120) for _ in range(n)]


def within_batch_spread(sampler: LengthGroupedBatchSampler) -> float:
    return statistics.mean(max(sampler.lengths[i] for i in b) - min(sampler.lengths[i] for i in b) for b in sampler)


def test_every_example_once_per_epoch() -> None:
    sampler = LengthGroupedBatchSampler(lengths(1003), batch_size=32, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 32
    assert sorted(i for batch in batches for i in batch) == list(range(1003))


def test_grouping_cuts_padding() -> None:
    grouped = LengthGroupedBatchSampler(lengths(), batch_size=32, seed=0)
    plain = LengthGroupedBatchSampler(lengths(), batch_size=32, seed=0, group_by_length=False)
    assert within_batch_spread(grouped) < within_batch_spread(plain) / 5


def test_seeded_per_epoch() -> None:
    first = LengthGroupedBatchSampler(lengths(), batch_size=16, seed=7)
    second = LengthGroupedBatchSampler(lengths(), batch_size=16, seed=7)
    assert list(first) == list(second)
    epoch_zero = list(first)
    first.set_epoch(1)
    assert list(first) != epoch_zero


def test_the_batch_of_the_longest_example_comes_first_and_the_rest_stays_shuffled() -> None:
    # Out of memory at the first step, not hours in; and the largest activations are allocated first.
    data = lengths(1003)
    orders = []
    for epoch in range(3):
        sampler = LengthGroupedBatchSampler(data, batch_size=32, seed=0)
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert max(data[i] for i in batches[0]) == max(data)
        orders.append(batches[1:])
    assert orders[0] != orders[1] != orders[2]


def test_only_the_last_batch_is_short() -> None:
    # Accelerate drops a short batch that it splits among processes anywhere but at the end.
    for grouped in (True, False):
        batches = list(LengthGroupedBatchSampler(lengths(1003), batch_size=32, seed=3, group_by_length=grouped))
        assert [len(batch) for batch in batches[:-1]] == [32] * 31
        assert len(batches[-1]) == 1003 - 31 * 32


def test_an_eval_loader_of_both_orders_pairs_each_row_with_its_swapped_row() -> None:
    lengths = [3, 7, 5, 7, 2]
    given = datasets.Dataset.from_dict({"input_ids": [[i] * n for i, n in enumerate(lengths)], "length": lengths})
    swapped = datasets.Dataset.from_dict({"input_ids": [[-i] * n for i, n in enumerate(lengths)], "length": lengths})
    batches = list(eval_loader(given, lambda rows: [row["input_ids"] for row in rows], 2, swapped=swapped))
    # Longest first, as without the swapped rows, and each batch a (given, swapped) tuple of equal rows.
    assert [len(ids) for first, _ in batches for ids in first] == [7, 7, 5, 3, 2]
    for first, second in batches:
        assert [[-token for token in ids] for ids in first] == second
