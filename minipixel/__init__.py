"""minipixel: a PixelCNN written from scratch, every backward pass by hand.

The pieces, one file each:

- ``masks``     which kernel taps an output may see (mask A / B, colour groups)
- ``im2col``    the masked im2col / col2im that turn a convolution into one matmul
- ``layers``    MaskedConv2d, ReLU, ResidualBlock: forward, and backward by hand
- ``losses``    softmax cross-entropy over the ``levels`` of every sub-pixel
- ``model``     the PixelCNN itself
- ``optim``     Adam and SGD
- ``data``      quantization, binarization, batches, dataset readers
- ``sampling``  generating images one sub-pixel at a time
- ``gradcheck`` central-difference checks of every backward pass
- ``train``     the training loop, checkpoints, evaluation
- ``cli``       the ``minipixel`` command
"""

__version__ = "0.1.0"
