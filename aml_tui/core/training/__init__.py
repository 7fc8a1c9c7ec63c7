"""The training loop and what it stands on.

- `setup`: a run made ready to train: new (`create`) or carried on (`resume`).
- `engine`: the trainer: epochs, evaluation, the stop flag, events to listeners.
- `loop`: one epoch's batches and one evaluation pass.
- `trainer_state`: the model, optimiser, scheduler and random state a checkpoint holds.
- `checkpoint`: atomic saves and checked loads of last.pt and best.pt.
- `checkpoint_checks`: what a checkpoint must hold before it is trusted.
- `distributed`: several processes under torchrun.
- `device`: choosing and checking the device.
- `failures`: turning what went wrong into a RunFailed with a reason.
"""
