"""Networks (MLP, LeNet, CNN): architectures (``arch``), batches of rows as tensors
(``batches``), mini-batch training (``training``) and the noisy-label methods (``noisy``)."""
