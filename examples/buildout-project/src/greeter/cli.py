"""The `greeter` console script: `bin/greeter` and `bin/greeter-admin` pass the config path."""

import sys

from greeter import greeting


def main(config_path, admin=False):
    print(greeting(config_path, admin=admin))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
