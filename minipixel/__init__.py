"""minipixel: a PixelCNN written from scratch, every backward pass by hand.

The pieces, one file each (one package for the file formats):

- ``masks``     which kernel taps an output may see (mask A / B, colour groups)
- ``im2col``    the masked im2col / col2im that turn a convolution into one matmul
- ``conv_reference`` the same convolution as a plain loop over taps, to read first
- ``layers``    the layer contract (``Layer``), ReLU, Dropout
- ``conv``      MaskedConv2d: forward and backward by hand, then the samplers'
                one-position, many-position and row forwards
- ``canvas``    Canvas and Positions: what those forwards read and write
- ``model``     the residual block and the PixelCNN itself; ``build_model``
- ``gated``     the Gated PixelCNN
- ``fused``     a layer at one position and a draw, one GPU kernel each
- ``losses``    softmax cross-entropy over the ``levels`` of every sub-pixel
- ``optim``     Adam, SGD, Polyak averaging
- ``data``      quantization, binarization, labels and inputs, the epoch order
- ``datasets``  a package: one reader per file format, named datasets, downloads
- ``threads``   both CPU cores: the batch in parts, model replicas, BLAS limits
- ``step``      the training step, top to bottom: forward, loss, backward, the
                gradient sums across threads and ranks, the NaN guard, Adam
- ``evaluate``  forward and NLL in parts without caches, the mean NLL of a data set
- ``sampling``  generating images one sub-pixel at a time, and completing them
- ``distributed`` MPI ranks: the gradient sum, what every rank must agree on
- ``gradcheck`` central-difference checks of every backward pass
- ``settings``  a run's settings (TrainSettings), read back from its checkpoint
- ``rundata``   a run's data: ``run_labels``, ``prepare_data``
- ``runfolder`` the run folder's metrics.jsonl and steps.csv
- ``train``     a training run (``Run``) and the loop
- ``checkpoint`` atomic checkpoints
- ``files``     atomic writes, the run folder's lock, safe .npz reading
- ``pretrained`` the installed pretrained models
- ``viz``       image grids and the pictures that teach
- ``bench``     the benchmark
- ``backend``   NumPy or CuPy; ``testing.strict`` a CPU stand-in for CuPy
- ``options``   the valid range of every number; the command-line parser
- ``memory``    memory estimates, checked before anything is allocated
- ``cli``       the ``minipixel`` command; ``cli_pictures`` its picture commands

See docs/tour.md for one training step followed through these files.
"""

__version__ = "0.1.0"
