"""Budgeted training on a tiny model: a deadline stops a stage with a usable model; a warmup-stable-decay
stage keeps its pre-decay checkpoint, and a continuation resumes it (weights, optimizer, step) on fresh rows."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from intern.data.build import build_sft_dataset
from intern.evals import get_benchmark
from intern.models import resolve_model
from intern.train.sft import SFTJob, job_key, run_sft, trainer_dir


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    bench = get_benchmark("wordproblems")
    out = tmp_path_factory.mktemp("data")
    evals = bench.items("dev") + bench.items("test")
    first = build_sft_dataset(bench, out / "a", n_rows=40, seed=1, decontaminate_against=evals)
    fresh = build_sft_dataset(bench, out / "b", n_rows=40, seed=2, decontaminate_against=evals)
    return first.path, fresh.path


def _job(tmp_path, dataset, **kw) -> SFTJob:
    return SFTJob(model_path=str(resolve_model("tiny:llama")), dataset_path=dataset, output_dir=str(tmp_path),
                  batch_size=2, save_steps=100, **kw)


def test_deadline_is_not_part_of_what_a_job_trains(tmp_path):
    job = _job(tmp_path, "/d.parquet")
    assert job_key(job) == job_key(_job(tmp_path, "/d.parquet", deadline=123.0))


@pytest.mark.heavy
def test_a_deadline_stops_the_stage_with_an_exported_model(tmp_path, data):
    result = run_sft(_job(tmp_path, data[0], max_steps=10_000, deadline=time.time() + 8))
    assert result.stopped == "wall_clock" and 1 <= result.steps < 10_000
    final = Path(result.final_path)
    assert (final / "config.json").is_file()
    assert json.loads((final / "intern_train.json").read_text())["result"]["stopped"] == "wall_clock"
    # the stop saved a checkpoint at the step it ended on, so the stage could resume from there
    assert (trainer_dir(_job(tmp_path, data[0], max_steps=10_000)) / f"checkpoint-{result.steps}").is_dir()


@pytest.mark.heavy
def test_continuation_resumes_the_pre_decay_checkpoint_on_fresh_rows(tmp_path, data):
    first = _job(tmp_path / "b0", data[0], max_steps=6, lr_scheduler="warmup_stable_decay", decay_steps=2,
                 keep_step=4, learning_rate=1e-3)
    r1 = run_sft(first)
    assert r1.steps == 6 and r1.stopped is None
    assert r1.resume_point == str(trainer_dir(first) / "checkpoint-4")
    kept = sorted(p.name for p in trainer_dir(first).glob("checkpoint-*"))
    assert kept == ["checkpoint-4", "checkpoint-6"]  # the pre-decay one and the newest, nothing else

    state = json.loads((Path(r1.resume_point) / "trainer_state.json").read_text())
    peak_lr = [h["learning_rate"] for h in state["log_history"] if "learning_rate" in h][-1]
    assert peak_lr == pytest.approx(1e-3)  # still at the stable peak when kept

    second = _job(tmp_path / "c0", data[1], max_steps=12, lr_scheduler="warmup_stable_decay", decay_steps=3,
                  continue_from=r1.resume_point, learning_rate=1e-3)
    r2 = run_sft(second)
    history = json.loads((Path(r2.final_path) / "intern_train.json").read_text())["result"]
    assert r2.steps == 12 and history["steps"] == 12
    # it went on from step 4 (8 steps trained here, not 12), at the peak, decaying only at its own end
    own_state = json.loads((trainer_dir(second) / "checkpoint-12" / "trainer_state.json").read_text())
    logged = [(h["step"], h["learning_rate"]) for h in own_state["log_history"] if "learning_rate" in h]
    steps_here = [s for s, _ in logged if s > 4]
    assert steps_here[0] == 5 and steps_here[-1] == 12
    assert dict(logged)[8] == pytest.approx(1e-3) and dict(logged)[12] < 1e-3 / 2
    # the weights it started from are the kept checkpoint's, not the base model's
    from safetensors.torch import load_file

    kept_w = load_file(str(Path(r1.resume_point) / "model.safetensors"))
    base_w = load_file(str(Path(resolve_model("tiny:llama")) / "model.safetensors"))
    name = next(k for k in kept_w if "q_proj" in k)
    assert not torch.equal(kept_w[name], base_w[name])


@pytest.mark.heavy
def test_continuing_from_a_missing_checkpoint_says_so(tmp_path, data):
    from intern.errors import TrainingError

    job = _job(tmp_path, data[1], max_steps=3, continue_from=str(tmp_path / "nope" / "checkpoint-4"))
    with pytest.raises(TrainingError, match="not a complete trainer checkpoint"):
        run_sft(job)


@pytest.mark.heavy
def test_a_deadline_shortens_a_stable_decay_schedule_so_it_still_anneals(tmp_path, data):
    """The stage cannot reach max_steps in time: its decay moves forward, so the exported model is annealed."""
    job = _job(tmp_path, data[0], max_steps=2000, lr_scheduler="warmup_stable_decay", decay_steps=400,
               warmup_ratio=0.0, learning_rate=1e-3, deadline=time.time() + 20)
    result = run_sft(job)
    assert result.stopped == "wall_clock" and 5 <= result.steps < 2000
    state = json.loads((trainer_dir(job) / f"checkpoint-{result.steps}" / "trainer_state.json").read_text())
    rates = [h["learning_rate"] for h in state["log_history"] if "learning_rate" in h]
    assert max(rates) == pytest.approx(1e-3, rel=0.05)  # it reached the peak...
    assert rates[-1] < 0.25e-3  # ...and decayed by the end instead of being cut at the peak


def test_the_deadline_moves_the_schedules_end_by_the_typical_step_and_back_when_steps_speed_up(monkeypatch):
    import types

    from transformers import TrainerControl, TrainerState, get_cosine_schedule_with_warmup

    from intern.train.callbacks import DeadlineStop

    clock = {"now": 1000.0}
    monkeypatch.setattr(time, "time", lambda: clock["now"])
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = get_cosine_schedule_with_warmup(optimizer, 0, 100)
    state, control = TrainerState(max_steps=100, global_step=0), TrainerControl()
    args = types.SimpleNamespace(device="cpu")
    stop = DeadlineStop(deadline=1000.0 + 120)  # 120 s for 100 planned steps of 1 s: fits

    def steps(durations):
        for d in durations:
            stop.on_step_begin(args, state, control)
            clock["now"] += d
            state.global_step += 1
            stop.on_step_end(args, state, control, lr_scheduler=scheduler)

    steps([1.0] * 10)
    assert state.max_steps == 100 and stop.shortened_to is None
    steps([9.0])  # one slow step (a checkpoint save): the median ignores it
    assert state.max_steps == 100
    steps([4.0] * 5)  # a slow stretch: the steps left no longer fit, the cosine ends sooner
    assert state.max_steps < 100 and scheduler.lr_lambdas[0].keywords["num_training_steps"] == state.max_steps
    shorter = state.max_steps
    steps([0.5] * 5)  # fast again: back towards the planned end, never past it
    assert shorter < state.max_steps <= 100
    assert not control.should_training_stop


def test_a_deadline_moves_the_kept_checkpoint_only_until_it_is_saved(monkeypatch, tmp_path):
    """Shortening a stable-decay schedule moves the pre-decay save earlier; once that checkpoint is saved
    it stays (a later, second shortening once deleted it, and the branch could not be continued)."""
    import types

    from transformers import TrainerControl, TrainerState
    from transformers.optimization import get_wsd_schedule

    from intern.train.callbacks import KEPT_FILE, DeadlineStop, KeepCheckpoint

    clock = {"now": 1000.0}
    monkeypatch.setattr(time, "time", lambda: clock["now"])
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = get_wsd_schedule(optimizer, num_warmup_steps=0, num_stable_steps=80, num_decay_steps=20)
    state, control = TrainerState(max_steps=100, global_step=0), TrainerControl()
    args = types.SimpleNamespace(device="cpu", output_dir=str(tmp_path))
    keep = KeepCheckpoint(80)
    stop = DeadlineStop(deadline=1000.0 + 100, keep=keep)

    def step(d):
        stop.on_step_begin(args, state, control)
        clock["now"] += d
        state.global_step += 1
        control.should_save = False
        for cb in (keep, stop):  # the order sft.py registers them in
            cb.on_step_end(args, state, control, lr_scheduler=scheduler)
        if control.should_save:
            keep.on_save(args, state, control)

    for _ in range(30):
        step(1.5)  # 1.5 s steps: 100 planned steps will not fit in 100 s
    moved = keep.step
    assert moved < 80 and state.max_steps < 100
    while not keep.saved:
        step(1.5)
    assert state.global_step == moved == keep.step
    assert json.loads((tmp_path / KEPT_FILE).read_text()) == {"step": moved}
    for _ in range(3):
        step(3.0)  # slower still: the schedule's end moves again, the saved checkpoint does not
    assert keep.step == moved


def test_resume_point_is_the_kept_checkpoint_or_the_newest_stable_one(tmp_path):
    from intern.train.callbacks import KEPT_FILE
    from intern.train.sft import resume_point, trainer_dir

    job = _job(tmp_path, "/d.parquet", max_steps=55, keep_step=44)
    folder = trainer_dir(job)

    def checkpoint(n):
        (folder / f"checkpoint-{n}").mkdir(parents=True)
        (folder / f"checkpoint-{n}" / "trainer_state.json").write_text(json.dumps({"global_step": n}))

    assert resume_point(job) is None
    checkpoint(20)  # a deadline stopped it at step 20, before the keep step: still in the stable phase
    assert resume_point(job) == str(folder / "checkpoint-20")
    checkpoint(31)
    checkpoint(46)  # the keep moved to 31 (the deadline started the decay sooner), the stage ended at 46
    (folder / KEPT_FILE).write_text(json.dumps({"step": 31}))
    assert resume_point(job) == str(folder / "checkpoint-31")
