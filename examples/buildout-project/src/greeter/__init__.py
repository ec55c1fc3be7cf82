"""A greeting read from a config file that the buildout renders."""

import configparser


def greeting(config_path, admin=False):
    """The greeting `config_path` configures, marked for admins."""
    parser = configparser.ConfigParser()
    if not parser.read(config_path):
        raise SystemExit(f"greeter: cannot read {config_path}")
    text = parser["greeter"]["greeting"]
    return f"{text} (admin)" if admin else text
