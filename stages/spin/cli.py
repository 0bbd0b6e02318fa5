"""``spin`` console script."""

from stages.core.cli import make_cli
from stages.spin.stage import STAGE

main = make_cli(STAGE)

if __name__ == "__main__":
    main()
