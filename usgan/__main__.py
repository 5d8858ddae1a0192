"""``python -m usgan`` (used by ``torchrun ... -m usgan train``)."""

from usgan.cli.main import main

if __name__ == "__main__":
    main()
