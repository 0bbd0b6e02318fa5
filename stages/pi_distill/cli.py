"""``pi-distill`` console script."""

from stages.pi_distill.stage import STAGE
from stages.core.cli import make_cli

main = make_cli(STAGE)

if __name__ == "__main__":
    main()
