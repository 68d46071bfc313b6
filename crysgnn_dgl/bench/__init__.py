"""The evidence harness (``crysgnn-dgl bench``): predictors trained vanilla, distilled and
under controls over tasks, training-set sizes and paired seeds, with paired statistics.

Modules: :mod:`.tasks` (named tasks and user tables), :mod:`.predictors` (what is trained),
:mod:`.spec` and :mod:`.grid` (what a run is), :mod:`.runner` (one run), :mod:`.sweep`
(stored, resumable, parallel runs), :mod:`.stats` and :mod:`.report` (outputs),
:mod:`.execute` (the command end to end). Importing this package imports no torch.
"""
