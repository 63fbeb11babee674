"""Training: the pretraining engine (:mod:`.engine`: stages, checkpoints, resume, the kNN monitor
of :mod:`.monitor`), distributed runs under ``torchrun`` (:mod:`.distributed`), the host
allocator policy (:mod:`.allocator`) and the validation of checkpoint fields
(:mod:`.checkpoint_fields`). A learner is trained only through its contract
(:class:`ssal.methods.learner.Learner`)."""
