"""minipixel: a PixelCNN written from scratch, every backward pass by hand.

The pieces, one file each (one package for the file formats):

- ``masks``     which kernel taps an output may see (mask A / B, colour groups)
- ``im2col``    the masked im2col / col2im that turn a convolution into one matmul
- ``layers``    MaskedConv2d, ReLU, ResidualBlock: forward, and backward by hand
- ``losses``    softmax cross-entropy over the ``levels`` of every sub-pixel
- ``model``     the PixelCNN itself
- ``optim``     Adam and SGD
- ``data``      quantization, binarization, labels and inputs, the epoch order
- ``datasets``  a package: one reader per file format, named datasets, downloads
- ``sampling``  generating images one sub-pixel at a time
- ``gradcheck`` central-difference checks of every backward pass
- ``train``     the training loop, checkpoints, evaluation
- ``cli``       the ``minipixel`` command
"""

__version__ = "0.1.0"
