"""nvcc through a genrule (no rules_cuda offline): one object per .cu file."""

# sm_90 (H100/H200) and sm_80 (A100; its cubin also runs on sm_86/sm_89)
# machine code, plus compute_90 PTX for newer GPUs to JIT. -fmad=false and
# IEEE division/sqrt/denormals: exact numerics need every float operation
# rounded as written (backends/cuda/numerics.h).
NVCC_FLAGS = " ".join([
    "-O3",
    "-std=c++17",
    "-gencode arch=compute_90,code=sm_90",
    "-gencode arch=compute_80,code=sm_80",
    "-gencode arch=compute_90,code=compute_90",
    "-fmad=false",
    "-prec-div=true",
    "-prec-sqrt=true",
    "-ftz=false",
    "-Xcompiler -fPIC",
    "-Xcompiler -ffp-contract=off",
])

def nvcc_object(name, src, hdrs):
    """Compiles `src` with nvcc into `<name>.o` (target `name`, manual)."""
    native.genrule(
        name = name,
        srcs = [src] + hdrs,
        outs = [name + ".o"],
        # Each sandboxed nvcc sees itself as the same PID, and nvcc names its
        # temporary files after its PID: give every action its own TMPDIR so
        # two compiling at once cannot overwrite each other's files.
        cmd = ("tmp=$$(mktemp -d) && " +
               "TMPDIR=$$tmp /usr/local/cuda/bin/nvcc %s -I. -I$(GENDIR) -c $(location %s) -o $@; " +
               "rc=$$?; rm -rf $$tmp; exit $$rc") % (NVCC_FLAGS, src),
        tags = ["manual"],
    )
