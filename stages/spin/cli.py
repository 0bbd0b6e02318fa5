"""``spin`` console script."""

from stages.spin.stage import STAGE
from stages.core.cli import make_cli

main = make_cli(STAGE)

if __name__ == "__main__":
    main()
