"""Batched crop/flip and normalisation against a per-sample reference built from the same random draws."""
import pytest
import torch
import torch.nn.functional as F

from spikelab import data


def reference_crop_flip(x, padding, flip, seed):
    g = torch.Generator().manual_seed(seed)
    B = x.shape[0]
    oy = torch.randint(0, 2 * padding + 1, (B,), generator=g)
    ox = torch.randint(0, 2 * padding + 1, (B,), generator=g)
    flips = torch.rand(B, generator=g) < 0.5 if flip else torch.zeros(B, dtype=torch.bool)
    H, W = x.shape[-2:]
    out = []
    for b in range(B):
        p = F.pad(x[b], (padding,) * 4)
        crop = p[..., oy[b]:oy[b] + H, ox[b]:ox[b] + W]
        out.append(crop.flip(-1) if flips[b] else crop)
    return torch.stack(out), flips


@pytest.mark.parametrize("shape", [(6, 3, 5, 7), (4, 3, 2, 6, 6)])
def test_random_crop_flip_matches_reference(shape):
    x = torch.randn(shape)
    aug = data.RandomCropFlip(padding=2, flip=True)
    got = aug(x, generator=torch.Generator().manual_seed(11))
    expected, flips = reference_crop_flip(x, 2, True, 11)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert flips.any() and not flips.all()  # both branches were exercised


def test_crop_flip_identity_and_shared_leading_dims():
    x = torch.randn(3, 2, 4, 4)
    assert torch.equal(data.RandomCropFlip(padding=0, flip=False)(x), x)
    clip = torch.randn(1, 5, 2, 6, 6).expand(4, 5, 2, 6, 6).clone()  # four copies of one event clip
    out = data.RandomCropFlip(padding=1)(clip, generator=torch.Generator().manual_seed(0))
    # every time step of a sample moved the same way: rebuild each from its own first step's shift
    for b in range(4):
        matches = 0
        for dy in range(3):
            for dx in range(3):
                for fl in (False, True):
                    p = F.pad(clip[b], (1, 1, 1, 1))[..., dy:dy + 6, dx:dx + 6]
                    p = p.flip(-1) if fl else p
                    if torch.equal(p[0], out[b, 0]):
                        matches += 1
                        assert torch.equal(p, out[b])
        assert matches == 1


def test_crop_flip_seeded_and_checked():
    x = torch.randn(8, 1, 8, 8)
    aug = data.RandomCropFlip(padding=3)
    a = aug(x, generator=torch.Generator().manual_seed(5))
    b = aug(x, generator=torch.Generator().manual_seed(5))
    c = aug(x, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="padding"):
        data.RandomCropFlip(padding=-1)
    with pytest.raises(ValueError, match="at least 3"):
        aug(torch.zeros(4, 4))


def test_normalize_formula_and_fit():
    x = torch.rand(10, 3, 4, 4)
    norm = data.Normalize([0.1, 0.2, 0.3], [0.5, 1.0, 2.0])
    y = norm(x)
    torch.testing.assert_close(y[:, 1], x[:, 1] - 0.2)
    torch.testing.assert_close(y[:, 2], (x[:, 2] - 0.3) / 2.0)
    z = data.Normalize.fit(x)(x)
    torch.testing.assert_close(z.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="C = 3"):
        norm(torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="std"):
        data.Normalize([0.0], [0.0])


def test_normalize_refuses_nan():
    # a NaN mean used to pass, turning every normalised pixel into NaN
    with pytest.raises(ValueError, match="mean must be finite"):
        data.Normalize([float("nan")], [1.0])
    with pytest.raises(ValueError, match="std must be finite and > 0"):
        data.Normalize([0.0], [float("nan")])
    x = torch.rand(4, 2, 3, 3)
    x[1, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="x must be finite"):
        data.Normalize.fit(x)
