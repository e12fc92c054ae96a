"""The projection type itself: the map, its checks, its serialised form."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import ConfigError, InvalidInput
from lookalike.projections import Projection, ProjectionMismatch, check_registrable


def _head(**overrides: object) -> Projection:
    rng = np.random.default_rng(0)
    values: dict[str, object] = {
        "kind": "head",
        "source": "image",
        "space": "tuned",
        "model": "m@1",
        "weights": rng.standard_normal((3, 5)),
        "bias": rng.standard_normal(3),
        "info": {"loss": 0.25},
    }
    values.update(overrides)
    return Projection(**values)  # type: ignore[arg-type]


def test_apply_is_the_affine_map_renormalised() -> None:
    p = _head(mean=np.full(5, 0.1))
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    y = (x - 0.1) @ p.weights.T + p.bias
    expected = y / np.linalg.norm(y, axis=1, keepdims=True)
    np.testing.assert_allclose(p.apply(x, "m@1"), expected, rtol=1e-5, atol=1e-6)
    assert (p.dim, p.input_dim, p.in_place) == (3, 5, False)
    assert p.tag.startswith("m@1+head3-")


def test_round_trip_keeps_every_number_and_the_tag() -> None:
    p = _head()
    again = Projection.from_json(p.to_json())
    assert again.tag == p.tag and again.info == {"loss": 0.25} and again.mean is None
    np.testing.assert_array_equal(again.weights, p.weights)
    with pytest.raises(ConfigError):
        Projection.from_json('{"kind": "head"}')


def test_bad_projections_and_inputs_are_refused() -> None:
    with pytest.raises(InvalidInput, match="change the dimension"):
        _head(weights=np.eye(5))
    with pytest.raises(InvalidInput, match="bias"):
        _head(bias=np.ones(4))
    with pytest.raises(InvalidInput, match="invalid space"):
        _head(space="Tuned!")
    with pytest.raises(InvalidInput, match="expects 5-d"):
        _head().apply(np.ones((2, 4)))
    with pytest.raises(ProjectionMismatch, match="fitted on m@1 vectors, not m@2"):
        _head().apply(np.ones((2, 5)), "m@2")


def test_registrable_only_on_its_model_and_never_over_a_stored_space() -> None:
    check_registrable(_head(), {"image": "m@1"}, {"image"})
    with pytest.raises(ProjectionMismatch):
        check_registrable(_head(), {"image": "m@2"}, {"image"})
    with pytest.raises(InvalidInput, match="no vectors"):
        check_registrable(_head(), {"text": "t@1"}, {"text"})
    with pytest.raises(InvalidInput, match="holds stored vectors"):
        check_registrable(_head(space="text"), {"image": "m@1", "text": "t@1"}, {"image", "text"})


def _relu_head(**overrides: object) -> Projection:
    rng = np.random.default_rng(2)
    values: dict[str, object] = {
        "hidden_weights": rng.standard_normal((7, 5)),
        "hidden_bias": rng.standard_normal(7),
        "weights": rng.standard_normal((3, 7)),
        "mean": rng.standard_normal(5),
    }
    values.update(overrides)
    return _head(**values)


def test_a_hidden_layer_is_the_torch_mlp_renormalised() -> None:
    torch = pytest.importorskip("torch")
    p = _relu_head()
    first, second = torch.nn.Linear(5, 7), torch.nn.Linear(7, 3)
    with torch.no_grad():
        first.weight.copy_(torch.as_tensor(p.hidden_weights))
        first.bias.copy_(torch.as_tensor(p.hidden_bias))
        second.weight.copy_(torch.as_tensor(p.weights))
        second.bias.copy_(torch.as_tensor(p.bias))
        x = torch.as_tensor(np.random.default_rng(3).standard_normal((6, 5)), dtype=torch.float32)
        mean = torch.as_tensor(p.mean)
        expected = torch.nn.functional.normalize(second(torch.relu(first(x - mean))), dim=1)
    got = p.apply(x.numpy(), "m@1")
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)
    assert (p.hidden, p.dim, p.input_dim) == (7, 3, 5)
    # the ReLU is there: the affine map alone gives other vectors
    affine = _head(weights=p.weights @ p.hidden_weights, mean=p.mean)
    assert not np.allclose(affine.apply(x.numpy()), got, atol=1e-3)


def test_a_hidden_layer_round_trips_and_old_json_still_loads() -> None:
    p = _relu_head()
    again = Projection.from_json(p.to_json())
    assert again.tag == p.tag and again.hidden == 7
    x = np.random.default_rng(4).standard_normal((3, 5))
    np.testing.assert_array_equal(again.apply(x), p.apply(x))
    old = _head().to_dict()
    assert "hidden_weights" not in old  # an affine map's JSON is what it was
    assert Projection.from_dict(old).hidden == 0
    assert p.tag != _relu_head(hidden_bias=np.zeros(7)).tag


def test_a_bad_hidden_layer_is_refused() -> None:
    with pytest.raises(InvalidInput, match="hidden layer gives 6"):
        _relu_head(hidden_weights=np.ones((6, 5)))
    with pytest.raises(InvalidInput, match="hidden_bias must be 7"):
        _relu_head(hidden_bias=np.ones(3))
    with pytest.raises(InvalidInput, match="mean must be 5"):
        _relu_head(mean=np.ones(7))
    with pytest.raises(InvalidInput, match="needs hidden_weights"):
        _head(hidden_bias=np.ones(3))
    with pytest.raises(InvalidInput, match="change the dimension"):
        _relu_head(weights=np.ones((5, 7)))
    with pytest.raises(InvalidInput, match="expects 5-d"):
        _relu_head().apply(np.ones((2, 7)))
