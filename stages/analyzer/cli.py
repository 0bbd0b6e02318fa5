"""``analyzer`` console script."""

from stages.analyzer.stage import STAGE
from stages.core.cli import make_cli

main = make_cli(STAGE)

if __name__ == "__main__":
    main()
