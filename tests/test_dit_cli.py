"""``ditbench criteria`` and safe checkpoint loading: round trip, malicious pickles, key reports."""
from __future__ import annotations

import json
import os

import pytest
import torch

from ditbench.cli import main as ditbench_main
from ditbench.dit import build_dit, check_dit, latent_batch
from ditbench.dit.checkpoint import CheckpointError, load_checkpoint, read_state_dict
from test_dit_reference import one_thread  # noqa: F401  (autouse fixture)

# The smallest zoo model with L ≥ 2: DiT-S/8 at 128 px → latent 16, L = 4 tokens, 12 layers × 6 heads.
MODEL, PX = "DiT-S/8", 128


@pytest.fixture(scope="module")
def trained_like(tmp_path_factory):
    """A DiT-S/8 with non-zero adaLN layers saved as a plain state dict (as the published .pt files)."""
    model = build_dit(MODEL, PX, seed=3, perturb=0.2)
    path = tmp_path_factory.mktemp("ckpt") / "dit_s8.pt"
    torch.save(model.state_dict(), path)
    return model, path


def run_cli(*argv: str) -> int:
    return ditbench_main(["criteria", "--model", MODEL, "--image-size", str(PX), *argv])


def test_json_rows_per_head_with_required_fields(capsys):
    assert run_cli("--format", "json", "--batch", "1") == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert len(rows) == 12 * 6
    for key in ("layer", "head", "L", "d", "bound", "threshold", "verdict"):
        assert key in rows[0]
    assert {r["L"] for r in rows} == {4} and {r["d"] for r in rows} == {64}
    assert {r["verdict"] for r in rows} == {"outside"}  # d = 64 ≫ 2·ln 4
    assert "random init" in captured.err  # notes go to stderr so stdout stays valid JSON


def test_table_is_per_layer_and_states_random_init(capsys):
    assert run_cli() == 0
    out = capsys.readouterr().out
    assert "NOT a trained model" in out and "adaLN-Zero" in out
    table = [line for line in out.splitlines() if line.strip().startswith("blocks.")]
    assert len(table) == 12 and all(line.split()[1] == "max" for line in table)


def test_csv_has_header_and_one_line_per_head(capsys):
    assert run_cli("--format", "csv", "--batch", "1") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("layer,head,L,d,") and len(lines) == 1 + 12 * 6


@pytest.mark.slow
def test_checkpoint_round_trip_gives_same_outputs_and_rows(trained_like, capsys):
    model, path = trained_like
    fresh = build_dit(MODEL, PX, initialize=False)
    report = load_checkpoint(fresh, path)
    assert report.ok
    batch = latent_batch(4, 16, 2, seed=0)
    with torch.no_grad():
        assert torch.equal(fresh(batch.x, batch.t, batch.y), model(batch.x, batch.t, batch.y))
    assert run_cli("--checkpoint", str(path), "--format", "json", "--batch", "2", "--seed", "0") == 0
    rows = json.loads(capsys.readouterr().out)
    direct = check_dit(model, batch.x, batch.t, batch.y)
    assert [r["bound"] for r in rows] == [r.bound for r in direct]
    assert [r["radius"] for r in rows] == [r.radius for r in direct]


def test_safetensors_checkpoint_loads(trained_like, tmp_path):
    from safetensors.torch import save_file

    model, _ = trained_like
    path = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    fresh = build_dit(MODEL, PX, initialize=False)
    load_checkpoint(fresh, path)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))


def test_training_checkpoint_layout_uses_ema(trained_like, tmp_path):
    model, _ = trained_like
    path = tmp_path / "train.pt"
    zeros = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    torch.save({"model": zeros, "ema": model.state_dict()}, path)
    assert torch.equal(read_state_dict(path)["blocks.0.attn.qkv.weight"], model.blocks[0].attn.qkv.weight)


class _Payload:
    """Unpickling this calls open(marker, "w").write(...) — code execution on load."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


class _SystemPayload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("payload_cls", [_Payload, _SystemPayload])
@pytest.mark.parametrize("wrap", ["bare", "inside_state_dict"])
def test_malicious_pickle_is_refused_and_never_runs(trained_like, tmp_path, capsys, payload_cls, wrap):
    model, _ = trained_like
    marker = tmp_path / "payload_ran"
    payload = payload_cls(str(marker))
    obj = payload if wrap == "bare" else {**model.state_dict(), "blocks.0.attn.qkv.weight": payload}
    path = tmp_path / "evil.pt"
    torch.save(obj, path)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused"):
        read_state_dict(path)
    assert run_cli("--checkpoint", str(path)) == 2
    assert "refused" in capsys.readouterr().err
    assert not marker.exists()  # the payload never ran


def test_missing_and_unexpected_keys_are_reported_by_name(trained_like, tmp_path, capsys):
    model, _ = trained_like
    state = dict(model.state_dict())
    del state["blocks.3.mlp.fc2.bias"]
    state["blocks.99.attn.qkv.weight"] = torch.zeros(3)
    state["pos_embed"] = torch.zeros(1, 9, 384)  # as if saved for another image size
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(build_dit(MODEL, PX, initialize=False), path)
    text = str(err.value)
    assert "1 missing key(s): blocks.3.mlp.fc2.bias" in text
    assert "1 unexpected key(s): blocks.99.attn.qkv.weight" in text
    assert "pos_embed: file (1, 9, 384) vs model (1, 4, 384)" in text
    assert run_cli("--checkpoint", str(path)) == 2
    assert "blocks.3.mlp.fc2.bias" in capsys.readouterr().err


def test_not_a_state_dict_and_missing_file(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(CheckpointError, match="not a state dict"):
        read_state_dict(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_state_dict(tmp_path / "nope.pt")


def test_model_choices_come_from_the_registry(capsys):
    with pytest.raises(SystemExit):
        ditbench_main(["criteria", "--model", "DiT-XXL/2"])
    assert "DiT-XL/2" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value, match", [("--eps", "1.5", "eps"), ("--batch", "0", "batch"),
                                                ("--threads", "0", "threads")])
def test_bad_arguments_exit_2_naming_the_value(flag, value, match, capsys):
    assert run_cli(flag, value) == 2  # the one CLI error path (ditbench.cli): one line, no traceback
    err = capsys.readouterr().err
    assert match in err and value in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
