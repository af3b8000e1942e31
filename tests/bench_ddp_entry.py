"""``torchrun ... tests/bench_ddp_entry.py run ...``: fer-bench with the test methods registered."""

import sys

from bench_testmodel import registered

from benchmark.cli import main

if __name__ == "__main__":
    with registered():
        main(sys.argv[1:])
