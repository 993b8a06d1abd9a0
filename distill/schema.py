"""The distill stage's output files as data: the one layout that `distill` writes and `analysis` reads.

In:  the stage's results as the frozen dataclasses below (built by `distill.pipeline`).
Out: in a distill folder, each file written atomically:
    distill.json            `DistillResult` (`save_result` / `load_result`): every number
    messages.npz            `MessageArrays` (`save_messages` / `load_messages`)
    predictions.npz         `Predictions` (`save_predictions` / `load_predictions`)
    rollout.npz             `RolloutCurves` (`save_rollout` / `load_rollout`; version 6 on)
    pareto_edge_{k}.csv     `FrontRow`s of one fit (`write_front` / `read_front`); the file
    pareto_node_{axis}.csv  of an equation is its `front_file`; a fit selected by a
                            "_heldout" rule adds the column heldout_loss
  Beside them `distill.pipeline` writes distill_config.json (the `DistillConfig`) and
  `distill.report` writes equations.md (for people; nothing reads it).

distill.json holds `DistillResult` field by field (nested dataclasses as JSON objects,
tuples as lists, floats that are not finite as null). Versions (`DistillResult.version`):
    1  the files written before the field existed: the same distill.json without
       "version", and no predictions.npz (`load_predictions` gives None).
    2  adds "version" and predictions.npz.
    3  adds "alignment" and "alignment_rank1" (`DistillConfig.align`; null before).
    4  "alignment" holds one matrix per receiver class (a list of matrices; version 3's
       single matrix is read as a list of one) and "alignment_charges" the classes'
       charges (null: one class; `DistillConfig.align = "node_charge"`); adds "energy",
       "r2_potential", "r2_affine_potential" and "expected_potential": the Hamiltonian
       model's pair and self energy equations (`distill.energy`; a Hamiltonian run has no
       messages.npz, its edge and node lists are empty); empty / null before.
    5  adds "node_divisors" (`DistillConfig.node_units = "edge"`; null before).
    6  adds "alignment_property", the receiver property whose values "alignment_charges"
       lists (null with one class; "q1" for the classes of versions 4-5), and
       "alignment_choice" (`DistillConfig.align = "auto"`: what the data chose and why);
       adds "composed" (the composed model refitted on the true accelerations,
       `distill.compose`), "physical_law" (the law as a radial force f(r'),
       `distill.physical`) and "rollout" (trajectories of the truth, the discovered law
       and the network, `distill.rollout`; their curves in rollout.npz); null before.
    7  adds "residual_search" (`distill.residual`: the composed model against the network
       on the training graphs, and whether sums with residual searches were kept; null
       when the composed model was `DistillConfig.residual_gain` times below the network,
       or before).
The readers accept every version up to SCHEMA_VERSION. A newer version, a missing or unknown
field, a value of the wrong type, or an unreadable file is a one-line `InputError`.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plumbing.errors import InputError
from plumbing.io import atomic_write_text, config_from_dict, load_json, load_npz, save_json, save_npz

SCHEMA_VERSION = 7
RESULT_FILE = "distill.json"
MESSAGES_FILE = "messages.npz"
PREDICTIONS_FILE = "predictions.npz"
ROLLOUT_FILE = "rollout.npz"
FRONT_COLUMNS = ("complexity", "loss", "score", "selected", "equation")
HELDOUT_COLUMN = "heldout_loss"


# --------------------------------------------------------------------------- #
# distill.json                                                                 #
# --------------------------------------------------------------------------- #

@dataclass(frozen=True, kw_only=True)
class Judgement:
    """The verdict on one equation (how it is reached: `distill.judge`).

    Attributes:
        success: the equation passed every criterion.
        target: the first passing member of the receiver-factor family ("force",
            "acceleration", "field", "field/m1", "force+field", "force+field/m1", or one
            of these with "·g"), None when the equation failed.
        best: that name, or the best-R² member's when none passed.
        receiver_factor: g(q1, m1) as sympy text for a "·g" member, else None.
        r2: R² of the affine fit to `best` on fresh rows.
        affine: its coefficients (edge: a_1..a_dim, b; node: of (ē/(s m1), 1/(s m1), 1)).
        rel_error: median relative deviation from that fit.
        cosine: direction agreement with the fitted network values, None without them.
        complexity_ok: complexity <= max_complexity.
        r2_targets: {member name: R²} of every member tried.
    """

    success: bool
    target: str | None
    best: str
    receiver_factor: str | None
    r2: float | None
    affine: tuple[float | None, ...]
    rel_error: float | None
    cosine: float | None
    complexity_ok: bool
    r2_targets: dict[str, float | None]


@dataclass(frozen=True, kw_only=True)
class EdgeJudgement(Judgement):
    """An edge equation's verdict, plus its R² against the force and F/m1 members."""

    r2_force: float | None
    r2_accel: float | None


@dataclass(frozen=True, kw_only=True)
class NodeJudgement(Judgement):
    """A node equation's verdict, plus whether it is linear in the messages (no second
    derivative in e1..ek)."""

    linear_in_messages: bool


@dataclass(frozen=True, kw_only=True)
class Equation:
    """One selected equation.

    Attributes:
        equation: the final equation as sympy text (refitted when that helped).
        latex: the final equation as LaTeX, constants rounded.
        complexity: PySR-style node count of the final equation.
        loss: its MAE on the fit rows.
        selected_by: the Pareto-front rule that chose it ("score" or "best").
        refit: the constants were refitted (the final equation differs from the selected one).
        selected_equation, selected_loss: the front's entry before the refit.
        seconds: wall time of search, selection and refit.
    """

    equation: str
    latex: str
    complexity: int
    loss: float | None
    selected_by: str
    refit: bool
    selected_equation: str
    selected_loss: float | None
    seconds: float


@dataclass(frozen=True, kw_only=True)
class EdgeEquation(Equation):
    """An edge equation: message `component`, the `rank`-th most significant (1 = first).
    With an alignment (`DistillResult.alignment`) `component` is the aligned component's axis."""

    component: int
    rank: int
    judgement: EdgeJudgement

    @property
    def front_file(self) -> str:
        """The Pareto-front CSV of this fit."""
        return f"pareto_edge_{self.component}.csv"


@dataclass(frozen=True, kw_only=True)
class NodeEquation(Equation):
    """A node equation: acceleration axis `output` ("x", "y", "z"), column `index`."""

    output: str
    index: int
    judgement: NodeJudgement

    @property
    def front_file(self) -> str:
        """The Pareto-front CSV of this fit."""
        return f"pareto_node_{self.output}.csv"


@dataclass(frozen=True, kw_only=True)
class EnergyEquation(Equation):
    """A Hamiltonian model's energy equation (`distill.energy`): `part` "pair" (H_pair, judged
    against a·U(r') + f(q1, q2, m1, m2)) or "self" (H_self, against a·p²/(2m) + g(q, m)).
    Its judgement's `affine` is (a,), `target` "potential" / "kinetic" when it passed."""

    part: str
    judgement: Judgement

    @property
    def front_file(self) -> str:
        """The Pareto-front CSV of this fit."""
        return f"pareto_{self.part}_energy.csv"


@dataclass(frozen=True, kw_only=True)
class ResidualSearch:
    """A residual search (`distill.residual`), run because the composed model fell short.

    Attributes:
        network_train: the network's MAE per node on the composed refit's training graphs.
        composed_train: the composed model's MAE there (after its refit) before the search;
            searched_train: the same after it (None: not finite).
        kept: the searched outcome stands (it at least halved the composed training MAE).
        edge_changes: "edge j: old -> new" for each edge fit whose selected equation became a
            sum on the messages (the front pass on the truth may choose one where none did).
        composed_choice: the sum the composed model started from, chosen on the truth
            (`residual.best_on_truth`), or None: the edge fits' equations.
        seconds: wall time of the searches and of judging and composing again.
    """

    network_train: float | None
    composed_train: float | None
    searched_train: float | None
    kept: bool
    edge_changes: tuple[str, ...]
    composed_choice: str | None
    seconds: float


@dataclass(frozen=True, kw_only=True)
class OODError:
    """MAE of network and symbolic model on one out-of-distribution set of `n`-particle
    graphs with positions scaled by `position_spread`."""

    network: float | None
    symbolic: float | None
    n: int
    position_spread: float


@dataclass(frozen=True, kw_only=True)
class MAEComparison:
    """Symbolic model vs network: MAE per node (mean over nodes of Σ|Δa|), mean and std over
    `n_graphs` test graphs; `ood` keys "spread" and "more_particles"."""

    network: float | None
    symbolic: float | None
    network_std: float | None
    symbolic_std: float | None
    n_graphs: int
    ood: dict[str, OODError]


@dataclass(frozen=True, kw_only=True)
class ComposedFit:
    """The composed symbolic model a_i = node(Σ_j edge(i, j), properties of i) with all its
    constants fitted jointly on the true accelerations (`distill.compose`).

    Attributes:
        edge, node: its equations as sympy text (the selected ones when the refit did not help).
        softening: eps of the edge input rs = r + eps.
        refitted: the joint refit lowered the training MAE and was kept.
        n_graphs: training graphs it was fitted on; train_before, train_after: MAE per node
            there before and after.
        test, test_std: MAE per node on the test graphs of `mae`; ood: {OOD set: MAE}.
        seconds: wall time of the fit and its judgement.
        distance_swaps: the powers of r and rs the fit wrote in the other distance
            (`compose.swap_distances`), e.g. "r**(-3) -> 1/(r*rs**2)".
        front_choices: the equations chosen again from their Pareto fronts on the truth
            (`distill.frontpass`), e.g. "node z: 1.0418*e3/m1 - 0.047484*e3/m1**2 -> e3/m1".
    """

    edge: tuple[str, ...]
    node: tuple[str, ...]
    softening: float
    refitted: bool
    n_graphs: int
    train_before: float | None
    train_after: float | None
    test: float | None
    test_std: float | None
    ood: dict[str, float | None]
    seconds: float
    distance_swaps: tuple[str, ...] = ()
    front_choices: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ConstantMatch:
    """One term of the discovered radial force against the law's: `term` the monomial (text,
    r' the softened distance), its coefficient in the truth and in the discovered law (None:
    the term is absent there) and their relative error (None when either is absent)."""

    term: str
    true: float | None
    found: float | None
    rel_error: float | None


@dataclass(frozen=True, kw_only=True)
class PhysicalLaw:
    """The discovered law as a physicist writes it (`distill.physical`):
    a_i = (1/m_i) Σ_j f(r'_ij, q_i, q_j, m_i, m_j) r̂_ij + receiver part.

    Attributes:
        radial: the composed model's pair term is a radial force (then `force` is set).
        reason: why not, when radial is False.
        force: f with its constants refitted on the true accelerations, as `nbody.expr` text
            over r q1 q2 m1 m2 (r the softened distance r'): what `Law(force=...)` reads.
        text, latex: the law in plain text and LaTeX (r' written as r').
        receiver: the part of a_i that no pair term carries, [dim] sympy text over m1, q1,
            v1 and n_i (the receiver's number of interacting neighbours), None when zero;
            it is shown, not simulated (`load_law` gives the radial law).
        nonradial_share: RMS of the pair term's non-radial remainder over its radial part on
            training edges (left out of `force`); None when not radial.
        constants: every term of f against the law's `force_expr`; max_rel_error the largest
            relative error among the matched terms; matches_truth: every term matched, each
            within 1 %.
        train, test: MAE per node of the law (receiver part included) on the training graphs
            of the fit and the test graphs; ood: {OOD set: MAE}.
    """

    radial: bool
    reason: str | None
    force: str | None
    text: str
    latex: str
    receiver: tuple[str, ...] | None
    nonradial_share: float | None
    constants: tuple[ConstantMatch, ...]
    max_rel_error: float | None
    matches_truth: bool
    train: float | None
    test: float | None
    ood: dict[str, float | None]


@dataclass(frozen=True, kw_only=True)
class Rollout:
    """Trajectories from `n_sims` initial conditions drawn as the test set's, over `horizon`
    (10x the training trajectories' `train_horizon`), against the true law integrated by the
    project's integrator `integrator` (`distill.rollout`).

    Attributes:
        err_symbolic: the discovered law (`PhysicalLaw.force`) by the same integrator;
            err_network: the network's accelerations stepped by velocity Verlet at step `dt`,
            against the true law stepped the same way; err_stepper: that true-law Verlet
            trajectory against the integrator's (the stepper's own error). Each the median
            over simulations and particles of |x - x_true| at the horizon; None when not
            run (no radial law, no network).
        drift_*: the largest relative change of the true law's total energy along each
            trajectory over the horizon (median over simulations); None without a potential.
    """

    n_sims: int
    horizon: float
    train_horizon: float
    dt: float
    integrator: str
    err_symbolic: float | None
    err_network: float | None
    err_stepper: float | None
    drift_true: float | None
    drift_symbolic: float | None
    drift_network: float | None
    drift_stepper: float | None


@dataclass(frozen=True, kw_only=True)
class DistillResult:
    """Everything distill.json holds.

    Attributes:
        version: layout version (module docstring).
        strategy: the model's training strategy ("planted" for hand-made models).
        law, dim: the physics; sr_engine: the `DistillConfig.sr_engine` used.
        seconds: wall time of the stage.
        sparsity: variance share of the top `dim` message components.
        component_std, component_score: [k] std and significance (std, or mean KL) per component.
        top_components: [dim] the most significant components, most significant first.
        r2_force, r2_accel: [dim] robust R² of each top component against an affine map of
            the true pair force / F/m1; r2_force_mean, r2_accel_mean their means.
        r2_affine_force, r2_affine_accel: [dim][dim + 1] those maps (raw vector -> standardised
            component).
        alignment: [C][dim][k] M per receiver class (`DistillConfig.align`): the edge
            equations are fitted to the aligned components m' = M m[top_components] (k = dim)
            or M m over all k message components (`align_components` "all"), M that of the
            receiver's class, and the node equations read their sums (e1..ek are aligned
            too); None: the raw components.
        alignment_charges: [C] the value of the receiver property `alignment_property`
            ("q1": the charge, "m1": the mass) of each class; None: one class.
        alignment_choice: why this basis (align "auto": the rank-1 shares it compared, or
            why no basis was found and the top components were read as they are).
        alignment_rank1: how well one matrix per class describes the node model's reading
            of the messages (`align.Alignment.rank1_share`); None without alignment.
        node_divisors: [k] the receiver factors g_k(q1, m1) (sympy text; "1": none) that the
            node fits divided the summed components e_k by (`DistillConfig.node_units`
            "edge"); the node equations are written back in e_k. None: not divided.
        shared_forms: "edge a: the form of edge b" for each aligned edge fit whose selected
            equation is another component's form with the axes swapped (`pipeline.shared_forms`);
            None: no alignment.
        edge, node: the selected equations; edge_success, node_success: all of them passed.
        mae: the symbolic model against the network.
        expected_force: sympy text of the law's radial force f(r').
        energy: a Hamiltonian model's (pair, self) energy equations, () for the others;
            then edge_success / node_success are theirs (pair energy / self energy passed).
        r2_potential: R² of the network's pair energy against a·U(r') + f(q1, q2, m1, m2) on
            fresh test rows grouped by their particle constants (`judge.grouped_slope_fit`;
            the Hamiltonian counterpart of r2_force); r2_affine_potential: (a,), that slope
            (0.5 for the true energy: each pair has two directed edges); expected_potential:
            U as sympy text. None for the other strategies.
        composed: the composed model refitted on the true accelerations; physical_law:
            the law in physical form; rollout: the trajectories' errors. None for a
            Hamiltonian model and before version 6.
        residual_search: the residual search and its outcome (`ResidualSearch`); None when
            none ran (the composed model beat the network enough, a Hamiltonian model, or
            before version 7).
        checkpoint, dataset: paths of the inputs, and inputs: their identities
            (`pipeline.distill_inputs`); None for a model given as callables.
    """

    version: int = SCHEMA_VERSION
    strategy: str
    law: str
    dim: int
    sr_engine: str
    seconds: float
    sparsity: float | None
    component_std: tuple[float | None, ...]
    component_score: tuple[float | None, ...]
    top_components: tuple[int, ...]
    r2_force: tuple[float | None, ...]
    r2_force_mean: float | None
    r2_accel: tuple[float | None, ...]
    r2_accel_mean: float | None
    r2_affine_force: tuple[tuple[float | None, ...], ...]
    r2_affine_accel: tuple[tuple[float | None, ...], ...]
    edge: tuple[EdgeEquation, ...]
    node: tuple[NodeEquation, ...]
    edge_success: bool
    node_success: bool
    mae: MAEComparison
    expected_force: str
    alignment: tuple[tuple[tuple[float, ...], ...], ...] | None = None
    alignment_charges: tuple[float, ...] | None = None
    alignment_property: str | None = None
    alignment_choice: str | None = None
    alignment_rank1: float | None = None
    node_divisors: tuple[str, ...] | None = None
    shared_forms: tuple[str, ...] | None = None
    energy: tuple[EnergyEquation, ...] = ()
    r2_potential: float | None = None
    r2_affine_potential: tuple[float | None, ...] | None = None
    expected_potential: str | None = None
    composed: ComposedFit | None = None
    residual_search: ResidualSearch | None = None
    physical_law: PhysicalLaw | None = None
    rollout: Rollout | None = None
    checkpoint: str | None = None
    dataset: str | None = None
    inputs: dict | None = None


def judged_equations(result: DistillResult, part: str) -> tuple[Equation, ...]:
    """The equations whose verdicts make `edge_success` ("edge") or `node_success` ("node"):
    the edge / node equations, or a Hamiltonian model's pair / self energy equation."""
    role = {"edge": "pair", "node": "self"}[part]
    return getattr(result, part) + tuple(e for e in result.energy if e.part == role)


def save_result(folder: str | Path, result: DistillResult) -> None:
    """Write `result` as folder/distill.json."""
    save_json(Path(folder) / RESULT_FILE, result)


def load_result(folder: str | Path) -> DistillResult:
    """Read folder/distill.json (any version up to SCHEMA_VERSION).

    Raises:
        InputError: missing or corrupt file, a newer version, or fields that do not fit.
    """
    path = Path(folder) / RESULT_FILE
    data = load_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    version = data.get("version", 1)
    if not (isinstance(version, int) and 1 <= version <= SCHEMA_VERSION):
        raise InputError(f"{path} has layout version {version!r}; this code reads versions 1 to {SCHEMA_VERSION}")
    if version == 3 and data.get("alignment") is not None:
        data = {**data, "alignment": [data["alignment"]]}
    if version < 6 and data.get("alignment_charges") is not None:
        data = {**data, "alignment_property": "q1"}
    try:
        return _read(DistillResult, {**data, "version": version})
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def _read(cls: type, data):
    """`config_from_dict` after rebuilding the values that hold dataclasses or tuples."""
    if isinstance(data, dict):
        hints = typing.get_type_hints(cls)
        data = {key: _nested(hints.get(key), value) for key, value in data.items()}
    return config_from_dict(cls, data)


def _nested(hint, value):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args and value is not None:
        return _nested(next(a for a in args if a is not type(None)), value)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return _read(hint, value)
    if origin is tuple and isinstance(value, list):
        return tuple(_nested(args[0], v) for v in value)
    if origin is dict and len(args) == 2 and dataclasses.is_dataclass(args[1]) and isinstance(value, dict):
        return {key: _read(args[1], v) for key, v in value.items()}
    return value


# --------------------------------------------------------------------------- #
# messages.npz and predictions.npz                                             #
# --------------------------------------------------------------------------- #

@dataclass(frozen=True, kw_only=True, eq=False)
class MessageArrays:
    """The messages recorded on E test edges and their fits to the truth.

    Attributes:
        inputs: {name: [E]} the edge SR inputs dx, dy, (dz), r, rs, m1, m2, q1, q2 of the
            edges (`messages.edge_input_names`); stored as top-level arrays of the file.
        messages: [E, k] messages (mu for KL models).
        scores: [k] significance (std, or mean KL).
        top: [dim] the most significant components, most significant first.
        messages_top_std: [E, dim] those components standardised.
        fitted_force, fitted_accel: [E, dim] the affine map of the true force / F/m1 fitted
            to each standardised top component.
        force, accel: [E, dim] true pair force on the receiver, and F/m1.
        r2_force, r2_accel: [dim]; affine_force, affine_accel: [dim, dim + 1] (as distill.json).
    """

    inputs: dict[str, np.ndarray]
    messages: np.ndarray
    scores: np.ndarray
    top: np.ndarray
    messages_top_std: np.ndarray
    fitted_force: np.ndarray
    fitted_accel: np.ndarray
    force: np.ndarray
    accel: np.ndarray
    r2_force: np.ndarray
    r2_accel: np.ndarray
    affine_force: np.ndarray
    affine_accel: np.ndarray


@dataclass(frozen=True, kw_only=True, eq=False)
class Predictions:
    """Accelerations [G, n, dim] on the G test graphs of the MAE comparison: the truth, the
    network's and the symbolic model's."""

    true: np.ndarray
    network: np.ndarray
    symbolic: np.ndarray


@dataclass(frozen=True, kw_only=True, eq=False)
class RolloutCurves:
    """The curves of `Rollout` at times t [T]: median position errors err_* [T] and median
    relative energy changes energy_* [T] (all NaN without a potential), * in symbolic,
    network, stepper (NaN where that trajectory was not run), energy_true too."""

    t: np.ndarray
    err_symbolic: np.ndarray
    err_network: np.ndarray
    err_stepper: np.ndarray
    energy_true: np.ndarray
    energy_symbolic: np.ndarray
    energy_network: np.ndarray
    energy_stepper: np.ndarray


def _arrays(cls: type, data: dict[str, np.ndarray], path: Path, **extra) -> object:
    names = [f.name for f in dataclasses.fields(cls) if f.name not in extra]
    missing = [n for n in names if n not in data]
    if missing:
        raise InputError(f"{path} lacks arrays {', '.join(missing)}")
    return cls(**{n: data[n] for n in names}, **extra)


def save_messages(folder: str | Path, arrays: MessageArrays) -> None:
    """Write folder/messages.npz: one array per field, the `inputs` as top-level arrays."""
    fields = {f.name: getattr(arrays, f.name) for f in dataclasses.fields(arrays) if f.name != "inputs"}
    save_npz(Path(folder) / MESSAGES_FILE, {**arrays.inputs, **fields})


def load_messages(folder: str | Path) -> MessageArrays:
    """Read folder/messages.npz (InputError when missing or unreadable)."""
    path = Path(folder) / MESSAGES_FILE
    data = load_npz(path)
    named = {f.name for f in dataclasses.fields(MessageArrays)}
    return _arrays(MessageArrays, data, path, inputs={k: v for k, v in data.items() if k not in named})


def save_predictions(folder: str | Path, predictions: Predictions) -> None:
    """Write folder/predictions.npz (keys true, network, symbolic)."""
    save_npz(Path(folder) / PREDICTIONS_FILE, {f.name: getattr(predictions, f.name)
                                                for f in dataclasses.fields(predictions)})


def load_predictions(folder: str | Path) -> Predictions | None:
    """folder/predictions.npz, or None when the folder has none (version 1)."""
    path = Path(folder) / PREDICTIONS_FILE
    return _arrays(Predictions, load_npz(path), path) if path.is_file() else None


def save_rollout(folder: str | Path, curves: RolloutCurves) -> None:
    """Write folder/rollout.npz (one array per field)."""
    save_npz(Path(folder) / ROLLOUT_FILE, {f.name: getattr(curves, f.name) for f in dataclasses.fields(curves)})


def load_rollout(folder: str | Path) -> RolloutCurves | None:
    """folder/rollout.npz, or None when the folder has none (before version 6, or no rollout)."""
    path = Path(folder) / ROLLOUT_FILE
    return _arrays(RolloutCurves, load_npz(path), path) if path.is_file() else None


# --------------------------------------------------------------------------- #
# pareto_*.csv                                                                 #
# --------------------------------------------------------------------------- #

@dataclass(frozen=True, kw_only=True)
class FrontRow:
    """One Pareto-front entry: complexity, MAE loss, PySR score, whether the selection rule
    chose it (before the constant refit), the equation as sympy text, and its loss on the
    held-out rows a "_heldout" rule read (None without them)."""

    complexity: int
    loss: float
    score: float
    selected: bool
    equation: str
    heldout_loss: float | None = None


def write_front(path: str | Path, rows: typing.Sequence[FrontRow]) -> None:
    """Write a Pareto front as CSV with the header FRONT_COLUMNS (selected as 0/1), plus
    HELDOUT_COLUMN when the rows have held-out losses."""
    held = any(r.heldout_loss is not None for r in rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(FRONT_COLUMNS + (HELDOUT_COLUMN,) * held)
    for r in rows:
        extra = [repr(float(r.heldout_loss))] if held else []
        writer.writerow([r.complexity, repr(float(r.loss)), repr(float(r.score)), int(r.selected), r.equation, *extra])
    atomic_write_text(path, buf.getvalue())


def read_front(path: str | Path) -> list[FrontRow]:
    """The rows of a Pareto-front CSV, in file order (by complexity).

    Raises:
        InputError: missing file, another header, or a row that does not parse.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"missing file: {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = tuple(next(reader, ()))
        if header not in (FRONT_COLUMNS, FRONT_COLUMNS + (HELDOUT_COLUMN,)):
            raise InputError(f"{path}: expected the columns {', '.join(FRONT_COLUMNS)}[, {HELDOUT_COLUMN}]")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                if len(row) != len(header):
                    raise ValueError
                complexity, loss, score, selected, equation, *held = row
                rows.append(FrontRow(complexity=int(complexity), loss=float(loss), score=float(score),
                                     selected={"0": False, "1": True}[selected], equation=equation,
                                     heldout_loss=float(held[0]) if held else None))
            except (ValueError, KeyError):
                raise InputError(f"{path}, line {line}: not a Pareto-front row") from None
    return rows
