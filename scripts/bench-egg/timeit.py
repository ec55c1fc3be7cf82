"""Times a command for scripts/bench-egg.sh: median and min wall time of RUNS runs.

Usage: timeit.py RUNS CWD PREPARE LOG CMD [ARG...]

Before each run, PREPARE (a shell command, untimed, "" for none) runs in CWD; then CMD runs
in CWD with its output going to LOG. Prints "MEDIAN MIN" in seconds, or exits 1 when a run
fails (LOG then holds that run's output).
"""

import statistics
import subprocess
import sys
import time


def main():
    runs, cwd, prepare, log, *cmd = sys.argv[1:]
    times = []
    for _ in range(int(runs)):
        if prepare:
            subprocess.run(["sh", "-c", prepare], cwd=cwd, check=True)
        with open(log, "wb") as out:
            start = time.perf_counter()
            code = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT).returncode
            elapsed = time.perf_counter() - start
        if code != 0:
            sys.exit(1)
        times.append(elapsed)
    print(f"{statistics.median(times):.6f} {min(times):.6f}")


if __name__ == "__main__":
    main()
