"""Training: `cifake train` with transformers' Trainer, its run folder, the paper's sweep, pretrained backbones."""
