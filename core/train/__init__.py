"""Training: the two-stage trainer, run directories, checkpoints, losses and augmentation."""
