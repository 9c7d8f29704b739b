"""The shared training schedule (vidal/detection/schedule.py): repeat-factor sampling, epoch
order, the SGD / AdamW step schedule, the shared field checks and the non-finite-loss guard."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vidal.detection.schedule import ScheduleConfig, epoch_order, fit, optimizer_with_schedule, repeat_factors, schedule_of


def _frames(label_lists):
    return [{"labels": np.asarray(x, np.int64)} for x in label_lists]


def test_repeat_factors_by_hand():
    # class 1 in all 10 frames, class 2 in 1 frame (f = 0.1), class 3 in 4 frames (f = 0.4)
    labels = [[1, 2, 3]] + [[1, 3]] * 3 + [[1]] * 6
    r = repeat_factors(_frames(labels), threshold=0.4)
    assert r[0] == pytest.approx(2.0)                # sqrt(0.4 / 0.1), the rarest class of the frame wins
    assert r[1:4] == pytest.approx([1.0] * 3)        # sqrt(0.4 / 0.4) = 1
    assert r[4:] == pytest.approx([1.0] * 6)
    assert (repeat_factors(_frames(labels), 0.0) == 1).all()
    assert repeat_factors(_frames([[], [1]]), 0.9)[0] == 1.0  # a frame without objects is never repeated


def test_frame_view_labels_do_not_decode_images():
    class Boom(dict):
        def __getitem__(self, k):
            raise AssertionError("image decoded")

    class View(list):
        def labels_of(self, k):
            return [2] if k == 0 else [1]

    r = repeat_factors(View([Boom(), Boom(), Boom(), Boom()]), 0.5)
    assert r[0] == pytest.approx(math.sqrt(0.5 / 0.25)) and (r[1:] == 1).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(1.0, 4.0), min_size=1, max_size=40), st.integers(0, 2**31 - 1))
def test_epoch_order_repeats_each_frame_floor_or_ceil_times(factors, seed):
    f = np.asarray(factors)
    order = epoch_order(f, torch.Generator().manual_seed(seed))
    counts = np.bincount(order, minlength=len(f))
    assert (counts >= np.floor(f)).all() and (counts <= np.ceil(f)).all()
    assert order == epoch_order(f, torch.Generator().manual_seed(seed))  # deterministic given the seed


def test_epoch_order_without_repeats_is_torch_randperm():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert epoch_order(np.ones(17), g1) == torch.randperm(17, generator=g2).tolist()


def test_epoch_order_rare_frames_on_average():
    f = np.array([2.5] + [1.0] * 9)
    g = torch.Generator().manual_seed(0)
    mean = np.mean([np.bincount(epoch_order(f, g), minlength=10)[0] for _ in range(400)])
    assert abs(mean - 2.5) < 0.1


def test_fit_follows_the_step_schedule_and_caps_iterations():
    w = torch.nn.Parameter(torch.tensor([1.0]))
    rows = fit(lambda b: {"l": (w * b).pow(2).sum()}, [w], lambda: [torch.tensor([1.0])] * 3,
               ScheduleConfig(epochs=4, lr=0.1, momentum=0.0, weight_decay=0.0, milestones=(2,), gamma=0.5,
                              warmup_iters=0, grad_clip=None), iterations=10)
    assert len(rows) == 10 and [r["epoch"] for r in rows] == [0] * 3 + [1] * 3 + [2] * 3 + [3]
    assert [r["lr"] for r in rows[::3]] == [0.1, 0.1, 0.05, 0.05]
    assert rows[-1]["loss"] < rows[0]["loss"]


def test_fit_names_the_iteration_of_a_non_finite_loss():
    w = torch.nn.Parameter(torch.tensor([1.0]))
    batches = [torch.tensor(1.0), torch.tensor(float("nan"))]
    with pytest.raises(FloatingPointError, match="loss is nan at iteration 1"):
        fit(lambda b: {"l": (w * b).sum()}, [w], lambda: batches,
            ScheduleConfig(epochs=1, lr=0.1, momentum=0.0, weight_decay=0.0, milestones=(), gamma=0.1, grad_clip=1.0))


def test_optimizer_choice_and_its_one_line_error():
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt, _, warm = optimizer_with_schedule([w], lr=0.1, momentum=0.9, weight_decay=0.05, milestones=(1,),
                                           gamma=0.1, warmup_iters=0, optimizer="adamw")
    assert isinstance(opt, torch.optim.AdamW) and warm is None
    assert opt.param_groups[0]["weight_decay"] == 0.05
    rows = fit(lambda b: {"l": (w * b).pow(2).sum()}, [w], lambda: [torch.tensor([1.0])] * 5,
               ScheduleConfig(epochs=2, lr=0.1, momentum=0.0, weight_decay=0.0, milestones=(), gamma=0.1,
                              grad_clip=None, optimizer="adamw"))
    assert rows[-1]["loss"] < rows[0]["loss"]
    with pytest.raises(ValueError, match="optimizer must be one of sgd, adamw, got 'adam'"):
        optimizer_with_schedule([w], lr=0.1, momentum=0.9, weight_decay=0.0, milestones=(), gamma=0.1,
                                warmup_iters=0, optimizer="adam")


@pytest.mark.parametrize("backend_config", ["torchvision", "mmdet"])
def test_both_backend_configs_check_the_schedule_fields(backend_config):
    if backend_config == "torchvision":
        from vidal.detection.torchvision_frcnn import FasterRCNNConfig as Config
    else:
        from vidal.detection.mmdet_backend import MMDetConfig as Config
    assert Config(optimizer="adamw").optimizer == "adamw"
    for bad, msg in [({"optimizer": "rmsprop"}, "optimizer must be one of"), ({"hflip": 1.5}, "hflip is a probability"),
                     ({"repeat_threshold": -0.1}, "repeat_threshold is a fraction"),
                     ({"photometric": 2.0}, "photometric is a probability"),
                     ({"crop": 0.0}, "crop is the side of a random crop"), ({"ema_decay": 1.0}, "ema_decay is")]:
        with pytest.raises(ValueError, match=msg):
            Config(**bad)


def test_config_schedule_keys_are_the_schedule_fields():
    import dataclasses

    from vidal.build import SCHEDULE_KEYS
    from vidal.detection.schedule import ScheduleConfig

    assert set(SCHEDULE_KEYS) == {f.name for f in dataclasses.fields(ScheduleConfig)}


def test_fit_weight_average_is_evaluated_and_kept_while_training_goes_on_from_live_weights():
    import math

    module = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        module.weight.fill_(1.0)
    seen = []
    rows = fit(lambda x: {"l": (module(x) ** 2).sum()}, list(module.parameters()),
               lambda: [torch.ones(1, 1)] * 3,
               ScheduleConfig(epochs=2, lr=0.1, momentum=0.0, weight_decay=0.0, milestones=(), gamma=1.0,
                              grad_clip=None, ema_decay=0.5), module=module,
               on_epoch_end=lambda e, r: seen.append(module.weight.item()))
    # SGD on w^2 with lr 0.1: w <- 0.8 w; the average by hand (d_t = 0.5 (1 - exp(-t / 2)))
    live, ema, averages = 1.0, 1.0, []
    for t in range(1, 7):
        live *= 0.8
        d = 0.5 * (1 - math.exp(-t / 2))
        ema = d * ema + (1 - d) * live
        averages.append(ema)
    assert seen == pytest.approx([averages[2], averages[5]])
    assert module.weight.item() == pytest.approx(averages[5])            # kept when training ends
    assert rows[3]["loss"] == pytest.approx(0.8 ** 6)                    # epoch 2 went on from live weights
    with pytest.raises(ValueError, match="ema_decay needs the module"):
        fit(lambda x: {}, [], lambda: [], ScheduleConfig(epochs=1, milestones=(), ema_decay=0.9))


def test_schedule_of_takes_a_backend_configs_schedule_and_checks_the_overrides():
    from vidal.detection.torchvision_frcnn import profile

    cfg = profile("cpu", lr=0.05, ema_decay=0.5)
    s = schedule_of(cfg, epochs=3, milestones=[2], gamma=None)
    assert type(s) is ScheduleConfig
    assert (s.lr, s.ema_decay, s.epochs, s.milestones, s.gamma, s.batch_size) == (0.05, 0.5, 3, (2,), cfg.gamma, 4)
    with pytest.raises(ValueError, match="epochs is the number of epochs"):
        schedule_of(cfg, epochs=0)
