"""`DistillConfig`: every setting of the symbolic-distillation stage, validated on construction.

In:  field values (run.py flags, a preset, or a saved `distill_config.json`).
Out: a frozen config, saved next to the outputs, and its `JudgeConfig` (the thresholds the
     judgement reads). Bad values raise `InputError` (one line).
"""
from __future__ import annotations

from dataclasses import dataclass

from plumbing.errors import InputError, require_finite

from .sr_registry import sr_engine_names

SELECTIONS = ("score", "best", "score_heldout", "best_heldout")
NODE_TARGETS = ("network", "true")
ALIGNS = ("none", "node", "node_charge", "auto")
ALIGN_COMPONENTS = ("top", "all")
NODE_UNITS = ("messages", "edge")
# Operators both SR engines understand; the SR search uses the ones listed in `operators`.
OPERATORS = ("+", "-", "*", "/", "^", "exp", "log", "sqrt", "square")


@dataclass(frozen=True)
class JudgeConfig:
    """The success thresholds of `judge` (meanings: the DistillConfig fields of the same names).

    Built by `DistillConfig.judge`, which holds the defaults and validates them.
    """

    success_r2: float
    max_complexity: int
    max_rel_error: float
    min_cosine: float


@dataclass(frozen=True)
class DistillConfig:
    """One distillation run.

    Attributes:
        sr_engine: a registered symbolic-regression engine (`distill.sr_registry`): "operon"
            (embedded default) or "pysr" (needs Julia).
        n_edges: edges sampled for each SR fit, for the message analysis and for judging
            (paper: 5000).
        n_nodes: nodes sampled for each node-model SR fit and for judging it.
        seed: seeds the sampling and the SR engine (Operon is deterministic for a fixed seed).
        operators: SR operator set (paper main result: + - * /; eureqa also had ^ exp log IF).
        population_size, generations: SR budget (PySR: population_size, niterations).
        max_length: largest expression the engine may build (Operon length / PySR maxsize).
        max_time: wall-clock limit per SR fit in seconds.
        stall_generations: stop an SR search early once a round of this many generations
            has not improved its Pareto front (raised the best R² at some expression length
            by more than `stall_tol`); 0 runs all `generations` (operon only).
        stall_tol: the R² gain that counts as an improvement of the front.
        search_rows: the SR search sees a seeded subsample of at most this many of the
            n_edges / n_nodes fit rows; its candidates are scored, selected and refitted on
            all of them. None searches on all rows (operon only).
        optimizer_iterations: Levenberg-Marquardt constant-fitting steps per individual
            (Operon's default is 0, i.e. no constant fitting, which fails these tasks).
        n_threads: SR threads; 0 uses every core.
        selection: Pareto-front rule: "score" (paper: max -dlog(MAE)/dcomplexity) or "best"
            (PySR's default: max score among losses <= best_loss_factor * min loss), on the
            fit rows; "score_heldout" / "best_heldout": the same rule on each front entry's
            loss on held-out training rows that the search never saw (`distill.select`).
        node_selection: Pareto-front rule of the node fits; None uses `selection`. ("best"
            suits 3D edge messages that mix all axes, but on node fits it takes spurious
            nonlinear terms in ē that blow up on close pairs; "score" takes the linear law.)
        best_loss_factor: the 1.5 of PySR's "best" rule.
        refit: refit the numeric constants of each selected equation on its fit data
            (paper §2; the reproduction that skipped it lost to the network).
        simplify_tol: after selection, delete every additive term whose deletion (the
            other constants refitted) raises the equation's fit MAE by at most this
            fraction (`distill.simplify`): the law "in disguise", e.g. a 1732·m1 that
            dwarfs an e2 beside it, comes out as the law. 0 keeps the selected form.
        node_target: node-model SR target: "network" (the node MLP's output on the
            network's aggregated messages; paper) or "true" (true accelerations; the reproduction).
        min_r: edges with true distance r < min_r (and nodes with a neighbour that close)
            are left out of the SR fits and the judgement. Near-singular pairs dominate
            the loss of 1/r and 1/r^2 heads and make them 10-30x harder
            (docs/sr_engines.md §5); 0.5 removes ~6 % of pairs of the paper's N(0,1) initial
            conditions.
            The message R^2 and the MAE comparison always use every edge.
        success_r2: R^2 an equation needs against an affine map of the truth to count as
            a reconstruction.
        max_complexity: largest complexity (PySR-style node count) a reconstruction may have.
        max_rel_error: a reconstruction's median relative deviation from the best affine map
            of the truth, |out - (a·V + b)| / (|a| |V|), must not exceed this (R² alone is
            dominated by the closest pairs of 1/r² laws; see `judge`).
        min_cosine: a reconstruction's affine coefficients must point the same way as those
            of the network output it was fitted to (cosine >= min_cosine; see `judge`).
        align: basis of the top message components that SR fits: "none" (the components
            as the network emits them; paper), "node" (the basis the node model reads them
            in, from its Jacobian: each component a single-axis form; `distill.align`) or
            "node_charge" (one such basis per receiver charge, for ±1 charges: undoes a
            mixing that depends on the receiver's charge) or "auto" (the node model's basis,
            one per value of a receiver property with a few values when that describes the
            node model better; chosen from the data, `align.auto_alignment`; the top
            components as they are when the node model reads no basis of them).
        align_components: which message components an alignment combines: "top" (the dim
            significant ones; the aligned basis spans the same components) or "all" (every
            component: the dim combinations of the whole message that the node model reads,
            for messages that are not sparse, such as L1 after a short training).
        node_units: what the node fits read: "messages" (the summed components e_k as they
            are; paper) or "edge" (each e_k divided by the receiver factor g_k(q1, m1) that
            its edge equation carries, `judge.receiver_factor`: the sum in the units of the
            edge equation's pair term). A message may carry the force times any g(q1, m1),
            which the node model undoes, so with "messages" the node equation has to rebuild
            1/g; with "edge" it is fitted on e_k/g_k and written back in e_k (e_k -> e_k/g_k),
            so the judge sees the same kind of equation. A g_k that comes near zero (below
            1e-3 of its median size) or is not finite on the node rows, or that of an edge
            equation that does not reproduce its message component (R² < success_r2 on fresh
            edges), is not used (g_k = 1).
        n_eval_graphs: test graphs for the symbolic-vs-network MAE.
        n_ood_graphs: graphs per out-of-distribution set.
        ood_spread: factor on the initial-condition positions of the "spread" OOD set.
        ood_extra_particles: extra particles of the "more_particles" OOD set.
        precision: significant digits kept in stored equations.
        front_pass: when the composed model is refitted on the true accelerations, offer each
            of its equations the other candidates of its Pareto front (and its one-term
            deletions) and keep the simplest that fits the truth as well as the best
            (`distill.frontpass`); the selected equations and the judge are unchanged.
        residual_gain: when the composed model, refitted on the true accelerations of the
            training graphs, is not this many times below the network's MAE there, each edge
            equation e is offered the sums e + c with the Pareto front of an SR search on its
            residual (`distill.residual`), and the run is judged and composed again; that
            outcome stands when it at least halves the composed training MAE. 0: no
            residual search.
    """

    sr_engine: str = "operon"
    n_edges: int = 5000
    n_nodes: int = 5000
    seed: int = 0
    operators: tuple[str, ...] = ("+", "-", "*", "/")
    population_size: int = 500
    generations: int = 50
    max_length: int = 30
    max_time: float = 120.0
    stall_generations: int = 0
    stall_tol: float = 1e-4
    search_rows: int | None = None
    optimizer_iterations: int = 10
    n_threads: int = 0
    selection: str = "score"
    node_selection: str | None = None
    best_loss_factor: float = 1.5
    refit: bool = True
    simplify_tol: float = 0.02
    node_target: str = "network"
    min_r: float = 0.5
    success_r2: float = 0.99
    max_complexity: int = 40
    max_rel_error: float = 0.05
    min_cosine: float = 0.99
    align: str = "none"
    align_components: str = "top"
    node_units: str = "messages"
    n_eval_graphs: int = 1000
    n_ood_graphs: int = 500
    ood_spread: float = 2.0
    ood_extra_particles: int = 4
    precision: int = 5
    front_pass: bool = True
    residual_gain: float = 10.0

    def __post_init__(self):
        require_finite(self)
        if self.sr_engine not in sr_engine_names():
            raise InputError(f"unknown SR engine {self.sr_engine!r}; choose one of {', '.join(sr_engine_names())}")
        for name in ("selection", "node_selection"):
            value = getattr(self, name)
            if value not in SELECTIONS and (name == "selection" or value is not None):
                raise InputError(f"{name} must be one of {SELECTIONS}, got {value!r}")
        if self.align not in ALIGNS:
            raise InputError(f"align must be one of {ALIGNS}, got {self.align!r}")
        if self.node_units not in NODE_UNITS:
            raise InputError(f"node_units must be one of {NODE_UNITS}, got {self.node_units!r}")
        if self.align_components not in ALIGN_COMPONENTS:
            raise InputError(f"align_components must be one of {ALIGN_COMPONENTS}, got {self.align_components!r}")
        if self.node_target not in NODE_TARGETS:
            raise InputError(f"node_target must be one of {NODE_TARGETS}, got {self.node_target!r}")
        bad = [op for op in self.operators if op not in OPERATORS]
        if bad or not self.operators:
            raise InputError(f"unsupported SR operators {bad}; allowed: {' '.join(OPERATORS)}")
        for name in ("n_edges", "n_nodes", "population_size", "generations", "max_length",
                     "n_eval_graphs", "n_ood_graphs", "max_complexity", "precision"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if self.search_rows is not None and (not isinstance(self.search_rows, int) or self.search_rows < 1):
            raise InputError(f"search_rows must be a positive integer or None, got {self.search_rows!r}")
        if (self.optimizer_iterations < 0 or self.n_threads < 0 or self.ood_extra_particles < 0
                or not isinstance(self.stall_generations, int) or self.stall_generations < 0
                or self.stall_tol < 0 or self.simplify_tol < 0):
            raise InputError("optimizer_iterations, n_threads, ood_extra_particles, stall_generations, "
                             "stall_tol and simplify_tol must be >= 0")
        if not (self.max_time > 0 and self.best_loss_factor >= 1 and self.min_r >= 0
                and self.ood_spread > 0):
            raise InputError("need max_time > 0, best_loss_factor >= 1, min_r >= 0 and ood_spread > 0")
        if not (self.max_rel_error > 0 and -1 <= self.min_cosine <= 1):
            raise InputError(f"need max_rel_error > 0 and min_cosine in [-1, 1], got {self.max_rel_error}, {self.min_cosine}")
        if not isinstance(self.front_pass, bool):
            raise InputError(f"front_pass must be true or false, got {self.front_pass!r}")
        if not (self.residual_gain >= 0):
            raise InputError(f"residual_gain must be >= 0 (0: no residual search), got {self.residual_gain}")
        if not (0 < self.success_r2 <= 1):
            raise InputError(f"success_r2 must lie in (0, 1], got {self.success_r2}")

    @property
    def judge(self) -> JudgeConfig:
        """The judgement thresholds of this config."""
        return JudgeConfig(self.success_r2, self.max_complexity, self.max_rel_error, self.min_cosine)
