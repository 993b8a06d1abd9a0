"""plumbing: the generic helpers every layer above uses; nothing here knows about particles,
networks or equations, and nothing here imports another package of this project.

    errors.py     `InputError` (bad user input: one line, exit 2) and the type/finiteness
                  checks every config's `__post_init__` calls
    io.py         atomic writes (bytes, text, JSON, .npy/.npz, figures), strict JSON, configs
                  rebuilt from JSON, the ownership marker of our folders
    progress.py   progress bars that stay readable in logs
    rundir.py     output folders: ownership, locks, input fingerprints, stage records,
                  timings.json
    resources.py  memory and disk this process may still use
"""
