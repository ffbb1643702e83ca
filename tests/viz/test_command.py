"""Lab 11's command lines and command runner: the lines parse back, with spikelab's own parser, into the settings
they were built from; the runner runs a real child process, stops it with SIGINT and reports failures; the panels
train, evaluate and export a real run whose numbers agree with the library called in-process."""
from __future__ import annotations

import contextlib
import io
import json
import sys

import pytest
import torch

from spikelab import exercises, recipe, training
from spikelab.cli import build_parser
from spikelab.cli_tet import print_accuracy_vs_T
from spikelab.viz import figures
from spikelab.viz._command import (README_FASHION_MNIST, CommandJob, compare_with_reported, eval_command,
                                   export_nir_command, local_argv, parse_accuracy_vs_T, run_folder, shell_line,
                                   train_command)


def _parse(argv):
    """The argparse namespace ``spikelab`` itself builds from a command line (``torchrun ... -m`` stripped)."""
    if argv[0] == "torchrun":
        argv = argv[argv.index("spikelab") :]
    assert argv[0] == "spikelab"
    return build_parser().parse_args(argv[1:])


def test_train_command_parses_back_into_its_settings():
    argv = train_command(model="resnet19", dataset="cifar10", T=6, epochs=3, batch_size=256, lr=0.05, loss="tet",
                         limit=1000, data_root="/data", out="runs", name="r1", progress=False)
    a = _parse(argv)
    assert (a.command, a.model, a.dataset, a.T, a.epochs, a.batch_size, a.lr, a.loss, a.limit, a.data_root, a.out,
            a.name, a.no_progress) == ("train", "resnet19", "cifar10", 6, 3, 256, 0.05, "tet", 1000, "/data", "runs",
                                       "r1", True)
    assert run_folder(argv).as_posix() == "runs/r1"
    # settings left out are not written: the command's own defaults (None on the parser) apply
    a = _parse(train_command(model="mlp", dataset="digits", T=4, epochs=1, batch_size=32))
    assert (a.lr, a.loss, a.limit, a.device, a.out, a.name, a.size) == (None,) * 7
    assert run_folder(train_command(model="mlp", dataset="digits", T=4, epochs=1, batch_size=32)) is None


def test_several_processes_go_through_torchrun_with_the_global_batch():
    argv = train_command(model="sew-resnet18", dataset="folder", data_root="/imagenet", size=224, T=4, epochs=1,
                         batch_size=256, processes=4, device="cuda")
    assert argv[:5] == ["torchrun", "--standalone", "--nproc_per_node=4", "-m", "spikelab"]
    a = _parse(argv)
    assert (a.batch_size, a.size, a.device) == (256, [224], "cuda")
    assert shell_line(argv).startswith("torchrun --standalone --nproc_per_node=4 -m spikelab train --model sew-")
    with pytest.raises(ValueError, match="divisible by processes"):
        train_command(model="mlp", dataset="digits", T=4, epochs=1, batch_size=30, processes=4)
    with pytest.raises(ValueError, match="epochs"):
        train_command(model="mlp", dataset="digits", T=4, epochs=0, batch_size=32)
    with pytest.raises(TypeError, match="T must be an int"):
        train_command(model="mlp", dataset="digits", T=4.0, epochs=1, batch_size=32)


def test_eval_and_export_commands_parse_back():
    a = _parse(eval_command("runs/x", Ts=[1, 2, 8], limit=64))
    assert (a.command, a.checkpoint, a.eval_T, a.limit) == ("eval", "runs/x", "1,2,8", 64)
    assert _parse(eval_command("runs/x")).eval_T is None
    a = _parse(export_nir_command("runs/x", "runs/x/model.nir"))
    assert (a.command, a.run, a.out) == ("export-nir", "runs/x", "runs/x/model.nir")
    with pytest.raises(ValueError, match="at least one"):
        eval_command("runs/x", Ts=[])
    with pytest.raises(ValueError, match="Ts must be >= 1"):
        eval_command("runs/x", Ts=[0])


def test_local_argv_runs_this_interpreter():
    assert local_argv(["spikelab", "eval", "r"]) == [sys.executable, "-m", "spikelab", "eval", "r"]
    assert local_argv(["torchrun", "--standalone", "-m", "spikelab"])[:3] == [sys.executable, "-m",
                                                                            "torch.distributed.run"]
    with pytest.raises(ValueError, match="must start with"):
        local_argv(["python", "x.py"])


def test_accuracy_table_parses_back_from_the_printer():
    rows = [dict(T=1, acc=0.8547, loss=0.41234, firing_rate=0.1234, n=100),
            dict(T=8, acc=1.0, loss=0.0012, firing_rate=None, n=100)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_accuracy_vs_T(rows, "conv-small on digits: accuracy against T")
    got = parse_accuracy_vs_T(out.getvalue() + "\nrunning...\n")
    assert [r["T"] for r in got] == [1, 8]
    assert got[0]["acc"] == pytest.approx(0.8547, abs=1e-6) and got[1]["acc"] == 1.0
    assert got[0]["loss"] == pytest.approx(0.4123) and got[0]["firing_rate"] == pytest.approx(0.1234)
    assert got[1]["firing_rate"] is None
    with pytest.raises(ValueError, match="no row"):
        parse_accuracy_vs_T("error: nothing")


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_job_captures_output_and_stops_with_sigint():
    job = CommandJob()
    lines = []
    ready = ("import signal, sys, time\n"
             "signal.signal(signal.SIGINT, lambda *a: (print('got SIGINT', flush=True), sys.exit(0)))\n"
             "print('one\\rtwo', flush=True)\n"
             "print('ready', flush=True)\n"
             "time.sleep(60)\n")
    job.start(_python(ready), on_line=lines.append)
    for _ in range(300):
        if "ready" in job.lines:
            break
        job.wait(0.1)
    assert job.running and job.state == "running"
    job.stop()
    assert job.wait(30)
    assert job.state == "stopped" and job.returncode == 0 and job.error is None
    assert job.lines == ["one", "two", "ready", "got SIGINT"] == lines  # \r splits a progress bar's redraws


def test_job_stops_a_command_without_a_handler_even_from_a_background_server():
    """A server started in the background (`&`, nohup) passes SIGINT down as ignored; Stop must still end a command
    that installs no handler of its own (``spikelab reproduce``, ``eval``): it gets SIGINT's default action."""
    import signal

    job = CommandJob()
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a process started with `&`
    try:
        job.start(_python("import signal, time\n"
                          "print('ready', signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)\n"
                          "time.sleep(60)\n"))
    finally:
        signal.signal(signal.SIGINT, before)
    for _ in range(300):
        if job.lines:
            break
        job.wait(0.1)
    assert job.lines == ["ready True"] and job.argv[0] == sys.executable  # the command itself, not the shim
    job.stop()
    assert job.wait(30) and job.state == "stopped" and job.returncode != 0


def test_job_reports_a_failure_by_its_last_line():
    job, ended = CommandJob(), []
    job.start(_python("import sys; print('working'); sys.exit('spikelab train: error: bad --lr')"),
              on_done=ended.append)
    assert job.wait(30)
    assert job.state == "failed" and job.returncode == 1 and job.error == "spikelab train: error: bad --lr"
    assert ended == [job]
    with pytest.raises(TypeError, match="argv"):
        job.start("spikelab train")


def test_comparison_with_the_reported_run():
    cfg = dict(model="conv-small", dataset="/usr/share/datasets/fashion-mnist", T=4, batch_size=128, limit=None)
    line = compare_with_reported(cfg, dict(test_acc=0.885, epochs=2))
    assert "88.5 %" in line and "90.0 %" in line and "1.5 points below" in line and line.endswith("same recipe")
    line = compare_with_reported(dict(cfg, dataset="digits", limit=256), dict(test_acc=0.95, epochs=1))
    assert "5.0 points above" in line and "not like for like" in line
    assert "dataset digits" in line and "limit 256" in line and "epochs 1" in line
    assert "nothing to compare" in compare_with_reported(cfg, None)
    assert README_FASHION_MNIST["test_acc"] == 0.900  # the README's table: 90.0 % after 2 epochs


def test_accuracy_vs_T_figure():
    fig = figures.accuracy_vs_T_figure({"run": [dict(T=4, acc=0.9), dict(T=1, acc=0.8)]},
                                       reference={"paper": {1: 0.85, 8: 0.87}}, trained_T=4)
    run, ref = fig.data
    assert list(run.x) == [1, 4] and list(run.y) == pytest.approx([80.0, 90.0])
    assert list(ref.x) == [1, 8] and ref.line.dash == "dash"
    assert list(fig.layout.xaxis.tickvals) == [1, 4, 8] and "steps" in fig.layout.xaxis.title.text
    with pytest.raises(ValueError, match="finite"):
        figures.accuracy_vs_T_figure({"run": {1: float("nan")}})
    with pytest.raises(ValueError, match="fractions"):
        figures.accuracy_vs_T_figure({"run": {1: 85.0}})
    with pytest.raises(ValueError, match="whole numbers"):
        figures.accuracy_vs_T_figure({"run": {0: 0.5}})


def test_lab11_checks():
    assert exercises.check_steps_per_epoch("468", samples=60000, batch_size=128).correct  # 60000 // 128
    assert exercises.check_steps_per_epoch("469", samples=60000, batch_size=128).status == "wrong"
    assert exercises.check_steps_per_epoch("469", samples=60000, batch_size=128, drop_last=False).correct
    assert exercises.check_per_process_batch("64", batch_size=256, processes=4).correct
    v = exercises.check_per_process_batch("256", batch_size=256, processes=4)
    assert v.status == "wrong" and "global batch" in v.message
    for check, kw in ((exercises.check_steps_per_epoch, dict(samples=10, batch_size=3)),
                      (exercises.check_per_process_batch, dict(batch_size=8, processes=2))):
        assert check("", **kw).status == "pending"


@pytest.mark.timeout(600)
def test_panels_train_evaluate_and_export_a_real_run(tmp_path):
    """Start on each panel runs the real command: a run folder appears, its accuracy against T equals
    evaluate_at_T called here on its checkpoint, and its NIR file gives the run's logits."""
    pytest.importorskip("ipywidgets")
    from spikelab.viz.widgets import RunTools, TrainCommand

    train = TrainCommand(runs_dir=tmp_path, model="mlp", dataset="digits", T=2, epochs=1, batch_size=32, limit=64,
                         reported=README_FASHION_MNIST)
    tools = RunTools(runs_dir=tmp_path, Ts="1,3", limit=64)
    train.on_finish.append(lambda panel: tools.refresh(select=panel.run_dir))
    assert "--limit 64" in train.command.value and "--name" not in train.command.value
    train.controls["device"].value = "cuda"
    if not torch.cuda.is_available():
        assert not train.start() and "no GPU here" in train.message.value
    train.controls["device"].value = "cpu"
    assert train.start(), train.error
    assert train.wait(300) and train.job.state == "done", train.job.output
    run = train.run_dir
    assert (run / "checkpoint.pt").is_file() and json.loads((run / "config.json").read_text())["limit"] == 64
    assert train.figures["command-curves"].data and "not like for like" in train.comparison.value
    assert tools.run.value == run.name

    assert tools.start() and tools.wait(300) and tools.job.state == "done", tools.job.output
    ckpt = training.load_checkpoint(run / "checkpoint.pt")
    net = recipe.build_model(ckpt["run_config"], ckpt["model"])
    _, test, _ = recipe.make_data(ckpt["run_config"], batch_size=256, seed=0, augment=False, limit=64)
    want = training.evaluate_at_T(net, test, [1, 3])
    assert [r["T"] for r in tools.rows] == [1, 3]
    assert [r["acc"] for r in tools.rows] == pytest.approx([r["acc"] for r in want], abs=5e-5)  # printed to 0.01 %
    assert tools.figures["accuracy-vs-T"].data[0].name == run.name

    tools.action.value = "export-nir"
    assert "export-nir" in tools.command.value
    assert tools.start() and tools.wait(300) and tools.job.state == "done", tools.job.output
    assert tools.nir_file == run / "model.nir" and tools.nir_file.is_file()
    assert tools.nir_check["max_diff"] < 1e-5 and tools.nir_check["n"] == 64, tools.nir_check
    assert "NIR nodes" in tools.message.value and tools.error is None


def test_reproduce_command_parses_back():
    from spikelab.viz._command import reproduce_command

    a = _parse(reproduce_command("tit-cost", size="smoke", seeds=2, out="runs/rep", progress=False))
    assert (a.command, a.name, a.size, a.seeds, a.out, a.no_progress) == ("reproduce", "tit-cost", "smoke", 2,
                                                                        "runs/rep", True)
    assert _parse(reproduce_command("tit-cost")).size == "full"
    with pytest.raises(ValueError, match="size"):
        reproduce_command("tit-cost", size="huge")


@pytest.mark.timeout(300)
def test_two_processes_train_through_torchrun(tmp_path):
    """The torchrun line the panel shows runs here on CPU (gloo): one run folder, written by rank 0, recording a
    world of 2 processes."""
    argv = train_command(model="mlp", dataset="digits", T=2, epochs=1, batch_size=32, limit=64, processes=2,
                         device="cpu", out=tmp_path, name="ddp", progress=False)
    job = CommandJob()
    job.start(local_argv(argv))
    assert job.wait(280) and job.state == "done", job.output[-2000:]
    assert "x 2 processes" in job.output
    cfg = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["batch_size"] == 32
    assert [p.name for p in tmp_path.iterdir()] == ["ddp"]
