from setuptools import find_packages, setup

setup(
    name="minipixel",
    version="0.1.0",
    description="A from-scratch PixelCNN: hand-written forward and backward passes on NumPy or CuPy",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["minipixel", "minipixel.*"]),
    # The pretrained models (minipixel/pretrained.py) are installed inside the package.
    # The page of `minipixel serve` (minipixel/serve.py) too: it is served from the package.
    package_data={"minipixel": ["models/*.npz", "models/index.json", "web/*"]},
    install_requires=["numpy>=1.22", "pillow>=9", "tqdm>=4.60", "threadpoolctl>=3"],
    extras_require={
        # The tests run the MPI ones too (tests/test_mpi.py), so they need what [mpi] installs;
        # selenium drives the browser of tests/test_serve_browser.py (Debian's chromium); mutmut
        # makes the mutants that tests/test_mutation_keys.py checks the equivalent list against.
        "test": ["pytest>=7", "mpi4py>=3.1", "mpich", "selenium>=4.10", "mutmut==3.8.1"],
        # Data-parallel training: mpi4py and an MPI runtime (the mpich wheel puts
        # mpiexec in the virtual environment: no root, no system packages).
        "mpi": ["mpi4py>=3.1", "mpich"],
        # CuPy with the CUDA libraries it loads (NVRTC, cuBLAS) from the package
        # index; with a CuPy already installed, install minipixel without an extra.
        "gpu": ["cupy-cuda12x[ctk]"],
        "gpu-cuda13": ["cupy-cuda13x[ctk]"],
    },
    # The small MNIST subset that `minipixel train` uses with no arguments is
    # installed beside the package too, so a non-editable install finds it.
    data_files=[("share/minipixel", ["data/mnist_5k.csv.gz", "data/README.md"])],
    entry_points={"console_scripts": ["minipixel=minipixel.cli:main"]},
)
