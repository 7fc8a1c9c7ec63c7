"""fashion-cnn's model computes the study's function, written for speed."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aml_tui.core.models import FashionCNN, MaskDropout


class StudyCNN(nn.Module):
    """The study's layer order: each block conv -> ReLU -> max-pool; torch's own Dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.dropout = nn.Dropout(0.0)
        self.classifier = nn.Sequential(
            nn.Linear(1152, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(torch.flatten(self.features(x), 1))
        return torch.log_softmax(self.classifier(x), dim=1)


def images(count: int = 16) -> torch.Tensor:
    """Normalised-looking images with flat background patches, where pooling windows tie."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(count, 1, 28, 28, generator=generator)
    x[:, :, :8, :] = -0.81  # FashionMNIST's normalised black background
    return x


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_fashion_cnn_matches_the_study_order_in_outputs_and_gradients(
    memory_format: torch.memory_format,
) -> None:
    ours = FashionCNN(3, dropout=0.0).to(memory_format=memory_format)
    study = StudyCNN().to(memory_format=memory_format)
    study.load_state_dict(ours.state_dict(), strict=True)  # the same parameter names
    x = images().contiguous(memory_format=memory_format)
    labels = torch.arange(16) % 3
    for model in (ours, study):
        model.train()
        F.nll_loss(model(x), labels).backward()
    torch.testing.assert_close(ours(x), study(x), rtol=0, atol=1e-6)
    for (name, a), (_, b) in zip(ours.named_parameters(), study.named_parameters(), strict=True):
        assert a.grad is not None and b.grad is not None
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7, msg=name)


def test_mask_dropout_zeroes_a_fraction_p_and_scales_the_rest() -> None:
    torch.manual_seed(0)
    dropout = MaskDropout(0.25)
    x = torch.ones(200, 1000, requires_grad=True)
    y = dropout(x)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - 0.25) < 0.005
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.75))
    y.sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, y.detach())  # gradient flows through the kept ones only
    # nn.Dropout's expectation: the mean is preserved.
    assert abs(y.mean().item() - 1) < 0.01


def test_mask_dropout_is_identity_in_eval_mode_and_at_the_edges() -> None:
    x = torch.randn(8, 32, requires_grad=True)
    dropout = MaskDropout(0.5).eval()
    assert dropout(x) is x
    assert MaskDropout(0.0).train()(x) is x
    dropped = MaskDropout(1.0).train()(x)
    assert torch.count_nonzero(dropped) == 0
    dropped.sum().backward()
    assert x.grad is not None and torch.count_nonzero(x.grad) == 0


def test_mask_dropout_keeps_float32_scaling_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    x = torch.ones(64, 512, dtype=torch.bfloat16)
    y = MaskDropout(0.25)(x)
    kept = y[y != 0]
    assert torch.all(kept == 1 / 0.75)  # exactly float32's 1/0.75, not bf16's 1.3359


def test_mask_dropout_draws_from_torch_seed() -> None:
    x = torch.ones(4, 256)
    torch.manual_seed(7)
    first = MaskDropout(0.5)(x)
    torch.manual_seed(7)
    assert torch.equal(first, MaskDropout(0.5)(x))
    assert not torch.equal(first, MaskDropout(0.5)(x))
