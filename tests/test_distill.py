"""parnassus distill: a two-step student of a (tiny) trained teacher."""

from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from parnassus.card import load_card
from parnassus.distill import distill
from parnassus.errors import CardError
from parnassus.events import RunCounts
from parnassus.generators import make_generator
from parnassus.io.hepmc import HepMCReader
from parnassus.run import run

from .conftest import EXAMPLE


def distill_card(trained: Path, folder: Path, teacher_steps: int = 4, **settings) -> Path:
    data = yaml.safe_load(Path(trained).read_text())
    data["sampling"].update(solver="dpmpp2m", steps=teacher_steps)
    data["distillation"] = {"checkpoint": str(folder / "student"), "student_steps": 2, "events": 96,
                            "validation_events": 32, "steps": 24, "batch_size": 16, "learning_rate": 1e-3,
                            "validate_every": 12, "checkpoint_every": 12, **settings}
    path = folder / "distill.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def student_card(card: Path, folder: Path, solver: str = "euler", steps: int = 2) -> Path:
    data = yaml.safe_load(card.read_text())
    data["generator"]["checkpoint"] = data.pop("distillation")["checkpoint"]
    data["sampling"].update(solver=solver, steps=steps)
    path = folder / f"student_{solver}_{steps}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def validation_losses(folder: Path) -> list[float]:
    rows = (folder / "student" / "training_log.csv").read_text().splitlines()[1:]
    return [float(row.split(",")[4]) + float(row.split(",")[5]) for row in rows if row.split(",")[4]]


@pytest.fixture(scope="module")
def distilled(trained, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("distilled")
    card = distill_card(trained, folder)
    distill(load_card(card), progress=False)
    return card


def test_the_student_learns_the_teachers_trajectories(distilled):
    losses = validation_losses(distilled.parent)
    assert len(losses) == 3  # the teacher as a two-step sampler, then after 12 and 24 steps
    assert losses[-1] < 0.8 * losses[0]


def test_the_student_runs_with_its_own_sampler_only(distilled, tmp_path):
    folder = distilled.parent
    card = load_card(student_card(distilled, folder))
    generator = make_generator(card)
    calls = []
    generator.model.event.register_forward_hook(lambda *a: calls.append("event"))
    generator.model.pfc.register_forward_hook(lambda *a: calls.append("pfc"))
    generator(next(iter(HepMCReader(EXAMPLE, card.truth, 1, RunCounts(), max_events=1))), 0)
    assert calls == ["event", "event", "pfc", "pfc"]  # two network evaluations per stage
    out = tmp_path / "student.root"
    run(load_card(student_card(distilled, folder)), EXAMPLE, out, max_events=4, batch_size=4, progress=False)
    assert out.exists()
    with pytest.raises(CardError, match="sampling: .* distilled for euler with 2 steps"):
        make_generator(load_card(student_card(distilled, folder, "dpmpp2m", 8)))


def test_resume_continues_bit_exact(trained, distilled, tmp_path):
    card = load_card(distill_card(trained, tmp_path))
    distill(card, progress=False, max_steps=12)
    assert (tmp_path / "student" / "trajectories.pt").exists()
    distill(card, resume=True, progress=False)
    resumed = load_file(tmp_path / "student" / "model.safetensors")
    whole = load_file(distilled.parent / "student" / "model.safetensors")
    assert resumed.keys() == whole.keys() and all(torch.equal(resumed[k], whole[k]) for k in whole)


def test_the_teachers_grid_must_hold_the_students_times(trained, tmp_path):
    with pytest.raises(CardError, match="student_steps: the teacher's grid .* no state at t = 0.5"):
        distill(load_card(distill_card(trained, tmp_path, teacher_steps=3)), progress=False)


def test_command_line_errors_are_one_line(trained, tmp_path):
    import subprocess
    import sys

    command = [sys.executable, "-m", "parnassus", "distill", "--quiet", "--card", str(trained)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].endswith("distillation needs the 'model', 'training' and "
                                                           "'distillation' sections")
    assert "Traceback" not in result.stderr
    result = subprocess.run(command[:-1] + [str(distill_card(trained, tmp_path)), "--resume"],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "--resume: no distillation state in" in result.stderr
    assert "Traceback" not in result.stderr
