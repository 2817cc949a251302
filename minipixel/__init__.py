"""minipixel: a PixelCNN written from scratch, every backward pass by hand.

The pieces, one file each (one package for the file formats):

- ``masks``     which kernel taps an output may see (mask A / B, colour groups)
- ``im2col``    the masked im2col / col2im that turn a convolution into one matmul
- ``conv_reference`` the same convolution as a plain loop over taps, to read first
- ``layers``    MaskedConv2d, ReLU, ResidualBlock: forward, backward by hand, and
                the one-position forward the sampler uses
- ``losses``    softmax cross-entropy over the ``levels`` of every sub-pixel
- ``model``     the PixelCNN itself
- ``optim``     Adam and SGD
- ``data``      quantization, binarization, labels and inputs, the epoch order
- ``datasets``  a package: one reader per file format, named datasets, downloads
- ``sampling``  generating images one sub-pixel at a time, and completing them
- ``gradcheck`` central-difference checks of every backward pass
- ``train``     the training step, the loop, evaluation, the run folder
- ``checkpoint`` atomic checkpoints
- ``viz``       image grids and the pictures that teach
- ``bench``     the benchmark
- ``backend``   NumPy or CuPy; ``testing.strict`` a CPU stand-in for CuPy
- ``cli``       the ``minipixel`` command

See docs/tour.md for one training step followed through these files.
"""

__version__ = "0.1.0"
