"""The README's first code example runs as written."""
import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_core_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has no python example"
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)  # noqa: S102 - our own README
    assert scope["spikes"].shape == (20, 4, 10)
    assert set(scope["spikes"].unique().tolist()) <= {0.0, 1.0}
    assert scope["logits"].shape == (4, 8, 10)
    assert all(p.grad is not None for p in scope["net"].parameters() if p.requires_grad)
    assert isinstance(scope["lif"].h_seq, torch.Tensor)
