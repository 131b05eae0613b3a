"""What the engines receive from a shard: the source's samples, in order, without the pixels
a run never draws, and (local engine) with their tensors stacked for the trip from the
decoding workers, which gives back the same samples."""

from __future__ import annotations

import pickle

import torch

from attrib.runs.engines.shards import PackedShards, ShardReader, pack, stack_rows
from attrib.runs.ground_truth import write_ground_truth_folder
from attrib.runs.samples import Sample
from attrib.runs.sources import open_source


def test_pack_stacks_one_tensor_per_field_and_shape_and_unpacks_the_same_samples():
    g = torch.Generator().manual_seed(0)
    samples = [
        Sample(
            0, "a", "a", torch.rand(3, 8, 8, generator=g), 1, torch.rand(8, 8, generator=g) > 0.5
        ),
        Sample(1, "b", "b", None, error="unreadable"),
        Sample(2, "c", "c", torch.rand(3, 6, 6, generator=g)),  # another size: its own tensor
        Sample(
            3, "d", "d", torch.rand(3, 8, 8, generator=g), 0, torch.rand(8, 8, generator=g) > 0.5
        ),
        Sample(4, "e", "e", "a text"),
    ]
    packed = pickle.loads(pickle.dumps(pack(samples)))
    assert sorted(tuple(t.shape) for t in packed.tensors) == [(1, 3, 6, 6), (2, 3, 8, 8), (2, 8, 8)]
    assert all(s.input is None or isinstance(s.input, str) for s in packed.samples)
    back = packed.unpack()
    assert [s.index for s in back] == [0, 1, 2, 3, 4]
    for got, want in zip(back, samples, strict=True):
        for field in ("input", "mask"):
            a, b = getattr(got, field), getattr(want, field)
            assert torch.equal(a, b) if isinstance(b, torch.Tensor) else a == b
        assert (got.id, got.label, got.error) == (want.id, want.label, want.error)


def test_shards_hold_the_source_samples_in_order_without_pixels(tmp_path):
    source = open_source(write_ground_truth_folder(tmp_path, n=10, seed=1), preset="imagenet")
    assert source[0].pixels is not None  # a normalised image keeps its picture
    reader = ShardReader(source, shards=[1], size=4)
    shard, samples = reader[0]
    assert shard == 1 and [s.index for s in samples] == [4, 5, 6, 7]
    assert all(s.pixels is None for s in samples)
    assert all(torch.equal(s.input, source[s.index].input) for s in samples)
    _, packed = PackedShards(reader)[0]
    for got, want in zip(packed.unpack(), samples, strict=True):
        assert torch.equal(got.input, want.input) and torch.equal(got.mask, want.mask)
    assert source.keep_pixels and source[0].pixels is not None  # the caller's source as it was


def test_stack_rows_views_the_rows_of_an_unpacked_shard_and_stacks_anything_else():
    whole = torch.randn(5, 3, 4, 4)
    rows = list(whole)
    viewed = stack_rows(rows[1:4])
    assert viewed.data_ptr() == rows[1].data_ptr() and torch.equal(viewed, whole[1:4])
    for others in ([rows[0], rows[2]], [rows[1], rows[0]], [torch.randn(3, 4, 4), rows[0]]):
        stacked = stack_rows(others)
        assert stacked.data_ptr() not in {r.data_ptr() for r in others}
        assert torch.equal(stacked, torch.stack(others))


class _SharedWhenPacked(PackedShards):
    """A shard packed in a worker, with whether each tensor was in shared memory there."""

    def __getitem__(self, k: int):
        shard, packed = super().__getitem__(k)
        return shard, packed, [t.is_shared() for t in packed.tensors]


def test_a_decoding_worker_packs_a_shard_straight_into_shared_memory(tmp_path):
    # shared where packed: the trip to the main process then copies nothing more (a tensor
    # that is not shared is copied into shared memory on the way)
    source = open_source(write_ground_truth_folder(tmp_path, n=6, seed=2), preset="none")
    reader = ShardReader(source, shards=[0, 1], size=3)
    loader = torch.utils.data.DataLoader(
        _SharedWhenPacked(reader), batch_size=None, num_workers=1, collate_fn=lambda item: item
    )
    for k, (shard, packed, shared) in enumerate(loader):
        assert shard == k and shared == [True, True]  # the inputs and the masks
        for got, want in zip(packed.unpack(), reader[k][1], strict=True):
            assert torch.equal(got.input, want.input) and torch.equal(got.mask, want.mask)
    _, packed = PackedShards(reader)[0]
    assert not any(t.is_shared() for t in packed.tensors)  # outside a worker: plain memory
