"""Stands in for ``verl.trainer.main_ppo`` in the launch tests (a real process started by the real launcher):
``FAKE_VERL=sleep`` logs one step through verl's own file logger and then waits to be stopped; ``FAKE_VERL=fail``
exits with code 3."""

from __future__ import annotations

import os
import sys
import time

if __name__ == "__main__":
    mode = os.environ.get("FAKE_VERL", "sleep")
    if mode == "fail":
        print("fake verl: failing on purpose", file=sys.stderr)
        sys.exit(3)
    from verl.utils.tracking import FileLogger

    logger = FileLogger("p", "e")  # writes to $VERL_FILE_LOGGER_PATH, as main_ppo's `file` logger does
    logger.log({"critic/score/mean": 0.5}, step=1)
    print("fake verl: step 1 logged", flush=True)
    time.sleep(600)
