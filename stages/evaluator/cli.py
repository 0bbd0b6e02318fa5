"""``evaluator`` console script."""

from stages.core.cli import make_cli
from stages.evaluator.stage import STAGE

main = make_cli(STAGE)

if __name__ == "__main__":
    main()
