"""gnn.model: graph semantics of the GNN (style principle 6) for every strategy."""
import dataclasses
import importlib
import pkgutil

import pytest
import torch

from gnn.config import ModelConfig, TrainConfig
from gnn.graph import edges
from gnn.model import GNN, mlp
from gnn.strategies import kl_divergence, strategy_names
from gnn.train import batch_loss
from plumbing.errors import InputError

SMALL = dict(hidden=16, n_hidden_layers=2)


def make_model(strategy="l1", dim=2, seed=0, **kw):
    torch.manual_seed(seed)
    return GNN(ModelConfig(strategy=strategy, dim=dim, **{**SMALL, **kw})).double().eval()


def random_x(batch, n, dim, seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, 2 * dim + 2, generator=gen, dtype=torch.float64)
    x[..., -1] = x[..., -1].exp()  # positive masses
    return x


def test_config_validation_and_defaults():
    with pytest.raises(InputError):
        ModelConfig(strategy="dropout")
    with pytest.raises(InputError):
        ModelConfig(topology="ring")
    assert ModelConfig(dim=3).n_features == 8
    assert ModelConfig(strategy="bottleneck", dim=3).resolved_msg_dim == 3
    assert ModelConfig(strategy="kl").resolved_msg_dim == 100
    assert ModelConfig(strategy="standard", msg_dim=7).resolved_msg_dim == 7
    with pytest.raises(InputError):
        TrainConfig(batch_size=0)
    with pytest.raises(InputError):
        TrainConfig(device="tpu")


def test_mlp_depth():
    net = mlp(5, 3, hidden=7, n_hidden_layers=3)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(5, 7), (7, 7), (7, 7), (7, 3)]
    assert isinstance(mlp(5, 3, 7, 0), torch.nn.Sequential) and len(mlp(5, 3, 7, 0)) == 1


@pytest.mark.parametrize("strategy", strategy_names())
@pytest.mark.parametrize("dim", [2, 3])
def test_output_shapes(strategy, dim):
    model = make_model(strategy, dim)
    out = model(random_x(3, 5, dim))
    # the paper's widths, not the model's own claim: dim for the bottleneck, one pair energy for
    # the Hamiltonian model, 100 otherwise
    msg_dim = {"bottleneck": dim, "hamiltonian": 1}.get(strategy, 100)
    assert model.cfg.resolved_msg_dim == msg_dim
    assert out.acc.shape == (3, 5, dim)
    assert out.messages.shape == (3, 20, msg_dim)
    if strategy == "kl":
        assert out.mu.shape == out.logvar.shape == (3, 20, msg_dim)
        torch.testing.assert_close(out.messages, out.mu)  # eval mode: the mean
    else:
        assert out.mu is None and out.logvar is None


def test_wrong_feature_width_is_input_error():
    with pytest.raises(InputError):
        make_model()(torch.zeros(2, 4, 7, dtype=torch.float64))


@pytest.mark.parametrize("dim", [0, 1, 4, 5, 2.0, True])
def test_model_dim_is_2_or_3(dim):
    with pytest.raises(InputError, match="dim must be 2 or 3"):
        ModelConfig(dim=dim)


F2, MSG = 6, 100   # node features and message width of the 2D l1 model
_f64 = dict(dtype=torch.float64)


@pytest.mark.parametrize("method, args, message", [
    ("edge", (torch.zeros(5, F2 - 3, **_f64), torch.zeros(5, F2 + 3, **_f64)), r"receiver .*\[\.\.\., 6\]"),
    ("edge", (torch.zeros(5, F2, **_f64), torch.zeros(5, F2 + 1, **_f64)), r"sender .*\[\.\.\., 6\]"),
    ("edge", (torch.zeros(5, F2, **_f64), torch.zeros(4, F2, **_f64)), "share their leading"),
    ("edge", (torch.zeros(5, F2, dtype=torch.complex128), torch.zeros(5, F2, **_f64)), "real floating-point"),
    ("edge", (torch.zeros(5, F2, dtype=torch.int64), torch.zeros(5, F2, **_f64)), "real floating-point"),
    ("edge", (torch.zeros(5, F2).numpy(), torch.zeros(5, F2, **_f64)), "got ndarray"),
    ("node", (torch.zeros(5, F2 - 3, **_f64), torch.zeros(5, MSG + 3, **_f64)), r"node features .*\[\.\.\., 6\]"),
    ("node", (torch.zeros(5, F2, **_f64), torch.zeros(5, MSG - 1, **_f64)), r"summed messages .*\[\.\.\., 100\]"),
    ("node", (torch.zeros(5, F2, **_f64), torch.zeros(3, MSG, **_f64)), "share their leading"),
    ("node", (torch.zeros(5, F2, dtype=torch.complex128), torch.zeros(5, MSG, **_f64)), "real floating-point"),
    ("forward", (torch.zeros(2, 4, F2, dtype=torch.complex128),), "real floating-point"),
    ("forward", (torch.zeros(2, 4, F2, dtype=torch.int64),), "real floating-point"),
])
def test_edge_and_node_check_each_input(method, args, message):
    """Each input's own width is checked, not their total: a receiver 3 columns short and a
    sender 3 long are refused, as are other dtypes and mismatched leading shapes."""
    model = make_model()
    with pytest.raises(InputError, match=message) as info:
        getattr(model, method)(*args)
    assert "\n" not in str(info.value)


def test_concatenating_networks_match_hand_computed_gather_scatter():
    """Linear identity edge net: message = cat[x_recv, x_send]; node net reads the summed sender positions."""
    dim, f = 2, 6
    cfg = ModelConfig(strategy="standard", dim=dim, hidden=1, n_hidden_layers=0, msg_dim=2 * f)
    model = GNN(cfg).double()
    with torch.no_grad():
        model.edge_mlp[0].weight.copy_(torch.eye(2 * f))
        model.edge_mlp[0].bias.zero_()
        node_w = torch.zeros(dim, f + 2 * f, dtype=torch.float64)
        node_w[:, 2 * f:2 * f + dim] = torch.eye(dim)  # the sender-position half of the summed messages
        model.node_mlp[0].weight.copy_(node_w)
        model.node_mlp[0].bias.zero_()
    x = random_x(2, 4, dim)
    out = model(x)
    senders, receivers = edges(4, "full")
    torch.testing.assert_close(out.messages, torch.cat([x[:, receivers], x[:, senders]], dim=-1))
    pos = x[..., :dim]
    torch.testing.assert_close(out.acc, pos.sum(dim=1, keepdim=True) - pos)  # sum over j != i of pos_j


@pytest.mark.parametrize("third_law", [False, True])
@pytest.mark.parametrize("topology", ["full", "chain"])
@pytest.mark.parametrize("strategy", ["l1", "kl"])
def test_forward_equals_dense_all_pairs_reference(strategy, topology, third_law):
    model = make_model(strategy, topology=topology, third_law=third_law)
    x = random_x(3, 5, 2)
    n = x.shape[1]
    x_recv = x[:, :, None, :].expand(-1, -1, n, -1)   # [B, n, n, F], [b, i, j] = x_i
    x_send = x[:, None, :, :].expand(-1, n, -1, -1)   # [b, i, j] = x_j
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    adjacent = (i != j) if topology == "full" else (i - j).abs() == 1
    msgs = model.edge(x_recv, x_send) * adjacent[None, :, :, None]
    expected = model.node(x, msgs.sum(dim=2))
    torch.testing.assert_close(model(x).acc, expected)


@pytest.mark.parametrize("strategy", strategy_names())
def test_permuting_nodes_permutes_outputs(strategy):
    model = make_model(strategy)
    x = random_x(2, 6, 2)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    torch.testing.assert_close(model(x[:, perm]).acc, model(x).acc[:, perm])


def test_a_message_depends_only_on_its_two_nodes():
    model = make_model("standard")
    n = 5
    x = random_x(1, n, 2).requires_grad_(True)
    messages = model(x).messages                                      # [1, E, msg_dim]
    senders, receivers = edges(n, "full")
    for e in range(messages.shape[1]):
        (grad,) = torch.autograd.grad(messages[0, e].sum(), x, retain_graph=True)
        touched = grad[0].abs().sum(dim=-1) > 0                       # [n]
        expected = torch.zeros(n, dtype=torch.bool)
        expected[senders[e]] = expected[receivers[e]] = True
        assert torch.equal(touched, expected), f"edge {e}"


@pytest.mark.parametrize("strategy", ["bottleneck", "kl"])
def test_batch_equals_graphs_run_one_by_one(strategy):
    model = make_model(strategy)
    x = random_x(4, 5, 2)
    batched = model(x)
    for g in range(4):
        single = model(x[g:g + 1])
        torch.testing.assert_close(batched.acc[g:g + 1], single.acc)
        torch.testing.assert_close(batched.messages[g:g + 1], single.messages)


def test_kl_samples_in_train_mode_only():
    model = make_model("kl")
    x = random_x(2, 4, 2)
    model.train()
    out = model(x)
    assert not torch.allclose(out.messages, out.mu)
    model.eval()
    out = model(x)
    torch.testing.assert_close(out.messages, out.mu)


def test_kl_loss_is_finite_on_extreme_logvar():
    model = make_model("kl").float().train()
    msg_dim = model.cfg.resolved_msg_dim
    with torch.no_grad():  # push half of the raw log-variances to +1e30 and half to -1e30
        model.edge_mlp[-1].bias[msg_dim:] = torch.where(torch.arange(msg_dim) % 2 == 0, 1e30, -1e30)
    x = random_x(8, 4, 2).float() * 1e3
    out = model(x)
    c = model.cfg.logvar_clamp
    assert out.logvar.max() <= c and out.logvar.min() >= -c
    loss = batch_loss(out, torch.zeros(8, 4, 2), "kl", TrainConfig())
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert torch.isfinite(kl_divergence(torch.tensor([1e3]), torch.tensor([c, -c]))).all()


def test_kl_divergence_is_zero_at_the_prior_and_positive_elsewhere():
    assert kl_divergence(torch.zeros(3), torch.zeros(3)).abs().max() == 0
    assert (kl_divergence(torch.tensor([0.5, 0.0]), torch.tensor([0.0, 1.0])) > 0).all()


def test_every_config_class_of_the_project_is_frozen():
    """Configs are saved next to every output: a mutable one could differ from what was saved."""
    configs = []
    for package in ("nbody", "gnn", "distill", "halos"):
        for info in pkgutil.iter_modules(importlib.import_module(package).__path__, package + "."):
            module = importlib.import_module(info.name)
            configs += [obj for name, obj in vars(module).items() if name.endswith("Config")
                        and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__]
    assert len(configs) >= 6
    assert [c.__qualname__ for c in configs if not c.__dataclass_params__.frozen] == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        ModelConfig().dim = 3


@pytest.mark.parametrize("strategy", ["bottleneck", "kl"])
def test_third_law_messages_are_antisymmetric_and_the_forward_pass_reads_them(strategy):
    """e_ij = -e_ji for any pair (also where phi_e alone is not), and the forward pass's
    messages (each edge's reverse gathered) equal `edge` on the same pairs."""
    x = random_x(2, 5, 3)
    senders, receivers = edges(5, "full")
    plain = make_model(strategy, dim=3)
    assert not torch.allclose(plain.edge(x[:, receivers], x[:, senders]), -plain.edge(x[:, senders], x[:, receivers]))
    model = make_model(strategy, dim=3, third_law=True)
    forward = model(x).mu if strategy == "kl" else model(x).messages
    torch.testing.assert_close(forward, model.edge(x[:, receivers], x[:, senders]))
    torch.testing.assert_close(model.edge(x[:, receivers], x[:, senders]), -model.edge(x[:, senders], x[:, receivers]))


def test_third_law_symmetrises_the_pair_energy_and_keeps_h():
    """The Hamiltonian model's pair energy under third_law is symmetric and is what its forward
    pass sums; H (both directions of every pair) is that of the same weights without it."""
    from gnn.hamiltonian import HamiltonianGNN

    torch.manual_seed(0)
    plain = HamiltonianGNN(ModelConfig(strategy="hamiltonian", **SMALL)).double()
    model = HamiltonianGNN(ModelConfig(strategy="hamiltonian", third_law=True, **SMALL)).double()
    model.load_state_dict(plain.state_dict())
    z = random_x(2, 4, 2)
    senders, receivers = edges(4, "full")
    node, pair = model.energies(z)
    torch.testing.assert_close(pair, model.pair_energy(z[:, receivers], z[:, senders]))
    torch.testing.assert_close(pair, model.pair_energy(z[:, senders], z[:, receivers]))
    assert not torch.allclose(plain.energies(z)[1], pair)
    torch.testing.assert_close(model.hamiltonian(z), plain.hamiltonian(z))
    with pytest.raises(InputError, match="third_law"):
        ModelConfig(third_law=1)
