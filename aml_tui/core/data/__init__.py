"""Datasets in memory as uint8 tensors, and what turns their batches into model input.

- `memory`: the in-memory splits, FashionMNIST's IDX files, label maps and scrambling.
- `cifar`: CIFAR-10 and CIFAR-100 from their Python pickles.
- `imagefolder`: a folder of class subfolders of images.
- `stream`, `streamed`: data too large for memory, read on demand by DataLoader workers.
- `transforms`: uint8 batches to normalised floats on the device (resizing, augmentation).
- `photos`: a user's own image file turned into the stored form a model was trained on.
"""
