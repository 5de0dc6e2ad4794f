"""The training recipe's pure parts: config validation and round trip, example encoding, batching, lr schedule."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from agentmem.errors import ConfigError
from agentmem.synthesize import Example
from agentmem.train_config import TrainConfig
from agentmem.train_math import lr_factor as _lr_factor
from agentmem.train_rows import (
    IGNORE,
    Encoded,
    Rotation,
    batch_size_for,
    batches,
    distill_labels,
    encode_example,
    shared_head,
)


class CharTokenizer:
    """One id per character and a ChatML-like template: enough to check which tokens get labels."""

    eos_token = "$"
    pad_token_id = 0

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        text = "".join(f"<{m['role']}>{m['content']}$\n" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}


def decode(ids):
    return "".join(chr(i) for i in ids if i != IGNORE)


@pytest.mark.parametrize(
    "bad",
    [
        dict(rank=0),
        dict(alpha=0),
        dict(dropout=1.0),
        dict(target_modules=()),
        dict(layer_span=(0.5, 0.5)),
        dict(layer_span=(-0.1, 1.0)),
        dict(layer_span=(0.2, 1.1)),
        dict(lr=0),
        dict(epochs=0),
        dict(batch_size=0),
        dict(max_seq_len=8),
        dict(learned_loss=0),
        dict(device="tpu"),
        dict(threads=0),
        dict(rehearsal_min=-1),
        dict(rehearsal_ratio=0),
    ],
)
def test_invalid_configs_are_refused_with_a_hint(bad):
    with pytest.raises(ConfigError) as err:
        TrainConfig(**bad)
    assert err.value.hint


def test_config_round_trips_through_json(tmp_path: Path):
    cfg = TrainConfig(layer_span=[0.25, 1], target_modules=["q_proj", "v_proj"], system_prompt="Be brief.", seed=3)
    assert cfg.layer_span == (0.25, 1) and cfg.target_modules == ("q_proj", "v_proj")
    cfg.save(tmp_path)
    assert TrainConfig.load(tmp_path) == cfg
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError):
        TrainConfig.from_dict(cfg.to_dict() | {"ranks": 4})


def test_layer_span_resolves_against_the_models_depth():
    assert TrainConfig().layer_range(30) == (0, 30)
    assert TrainConfig(layer_span=(0.25, 1.0)).layer_range(30) == (8, 30)
    assert TrainConfig(layer_span=(0.25, 1.0)).layer_range(24) == (6, 24)
    with pytest.raises(ConfigError):
        TrainConfig(layer_span=(0.9, 0.91)).layer_range(30)


def test_encoding_labels_only_the_answer_and_its_end_of_turn():
    tok = CharTokenizer()
    cfg = TrainConfig(system_prompt="S")
    ids, labels = encode_example(tok, Example("Q?", "A.", "x"), cfg)
    assert decode(ids) == "<system>S$\n<user>Q?$\n<assistant>A.$\n"
    assert decode(labels) == "A.$\n"
    assert labels[: len(ids) - 4] == [IGNORE] * (len(ids) - 4)


def test_a_cut_short_answer_trains_no_end_of_turn():
    ids, labels = encode_example(CharTokenizer(), Example("Q?", "A long", "rehearsal", ends=False), TrainConfig())
    assert decode(labels) == "A long"
    assert decode(ids).endswith("<assistant>A long")


def test_full_sequence_loss_and_length_limits():
    tok = CharTokenizer()
    ids, labels = encode_example(tok, Example("Q?", "A.", "x"), TrainConfig(completion_only=False))
    assert labels == ids
    ids, labels = encode_example(tok, Example("Q?", "A" * 100, "x"), TrainConfig(max_seq_len=30))
    assert len(ids) == len(labels) == 30
    assert encode_example(tok, Example("Q" * 40, "A.", "x"), TrainConfig(max_seq_len=30)) is None


def test_batches_are_length_sorted_complete_and_seeded():
    rng = random.Random(1)
    lengths = [rng.randint(10, 60) for _ in range(50)]
    encoded = [Encoded([1] * n, [1] * n, i) for i, n in enumerate(lengths)]
    active = list(range(0, 50, 2)) + [1, 3]
    a = batches(active, encoded, 4, random.Random(7))
    b = batches(active, encoded, 4, random.Random(7))
    assert a == b
    assert sorted(j for batch in a for j in batch) == sorted(active)
    assert all(len(batch) <= 4 for batch in a)
    # batches are consecutive runs of the length-sorted examples, so their length spreads add up to at most the
    # whole range (random batches would each span most of it)
    spread = sum(max(lengths[j] for j in bt) - min(lengths[j] for j in bt) for bt in a)
    assert spread <= max(lengths[j] for j in active) - min(lengths[j] for j in active)
    assert a != batches(active, encoded, 4, random.Random(8))


def test_a_small_run_trains_in_smaller_batches_so_each_epoch_makes_several_steps():
    assert batch_size_for(14, 16, 4) == 4  # 2 facts beside 8 general rows: 4 steps an epoch, not 1
    assert batch_size_for(3, 16, 4) == 1 and batch_size_for(0, 16, 4) == 1
    assert batch_size_for(64, 16, 4) == 16 and batch_size_for(450, 16, 4) == 16  # big enough: unchanged
    rotation = Rotation(list(range(173)), 0.5, random.Random(0), 8)
    assert [rotation.size(n) for n in (6, 300)] == [8, 150] == [len(rotation.take(n)) for n in (6, 300)]
    assert Rotation(list(range(5)), None, random.Random(0)).size(100) == 5
    with pytest.raises(ConfigError, match="min_batches"):
        TrainConfig(min_batches=0)


def test_lr_warms_up_then_decays_to_a_tenth():
    factors = [_lr_factor(s, 4, 100) for s in range(100)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4] == 1.0 and factors[-1] == pytest.approx(0.1, abs=0.01)
    assert all(x >= y for x, y in zip(factors[4:], factors[5:]))


def test_shared_head_stops_at_the_first_difference_and_before_any_label():
    x = IGNORE
    a = Encoded([1, 2, 3, 4, 5, 6], [x, x, x, x, 5, 6], 0)
    b = Encoded([1, 2, 3, 9, 9, 9, 9], [x, x, x, x, x, 9, 9], 1)
    assert shared_head([a, b]) == 3  # tokens 1 2 3
    c = Encoded([1, 2, 3, 4, 7, 7], [x, x, 3, 4, 7, 7], 2)  # labels from position 2: head must end before 1
    assert shared_head([a, c]) == 1
    assert shared_head([a, Encoded([8, 2], [x, 2], 3)]) == 0


def test_rehearsal_rotation_takes_a_share_of_the_facts_and_sees_every_row():
    rows = list(range(100, 130))
    rot = Rotation(rows, 0.5, random.Random(0), minimum=8)
    first = rot.take(40)
    assert len(first) == 20 and len(set(first)) == 20
    second = rot.take(2)
    assert len(second) == 8  # never fewer than the minimum (8 here) beside the last unlearned facts
    third = rot.take(2)  # in turn: the two rows not yet trained come first, then it wraps around
    assert set(first + second + third[:2]) == set(rows) and third[2:] == first[:6]
    assert sorted(rot.take(1000)) == rows  # more than there are: each row once
    assert Rotation(rows, None, random.Random(0)).take(1) == Rotation(rows, None, random.Random(0)).take(1)
    assert sorted(Rotation(rows, None, random.Random(0)).take(1)) == rows


def test_distilled_rows_cover_everything_after_the_system_prompt():
    tok = CharTokenizer()
    cfg = TrainConfig(system_prompt="S")
    ids, _ = encode_example(tok, Example("Q?", "A.", "rehearsal"), cfg)
    head = len("<system>S$\n")
    labels = distill_labels(tok, ids, cfg)
    assert labels[:head] == [IGNORE] * head and labels[head:] == ids[head:]
    assert distill_labels(tok, ids, TrainConfig(system_prompt=None)) == ids
