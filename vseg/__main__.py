"""``python -m vseg`` (and ``torchrun -m vseg``) run the same CLI as the ``vseg`` console script."""

from vseg.cli import main

if __name__ == "__main__":
    main()
