"""Dark-matter halo overdensity from neighbouring halos (paper §4.3, App. E; docs/facts.md §7).

A graph network predicts each halo's smoothed overdensity δ from the halos within `cutoff`
(50 Mpc/h) in a periodic box; its one informative message component and its node model are
distilled into formulas and compared with the paper's formula shapes, refit on the training
halos, in distribution and out of distribution (halos with δ > 1 held out). `run.py halos`
runs it into one folder (`pipeline.halos`; presets: `pipeline.presets.halo_preset`).

    catalogue.py  read / validate / write a catalogue (columns x y z vx vy vz M14 delta)
    synthetic.py  a clearly labelled synthetic catalogue with a planted δ law
    formulas.py   the paper's formula shapes (constant, hand-designed, best without / with mass)
    graph.py      periodic radius graph (cKDTree, streamed in chunks), the face mask
    features.py   the paper's standardisation and the edge/node inputs
    model.py      the L1 graph network (gnn.model.mlp, nbody.graph.scatter_sum)
    train.py      masked-MAE training on batches of receiver halos, resumable
    distill.py    sparsity, SR of the message and node model, refits, the table
"""
