"""Resolve a config with zc.buildout 6 itself and print what it evaluated, as JSON.

The oracle for rbuildout's config conformance suite (docs/conformance.md). Run it with a
python that has zc.buildout 6 installed, in a scratch copy of a case folder:

    python zc_resolve.py [-U] [-c FILE] [SECTION:OPTION(=|+=|-=)VALUE]...

It builds `zc.buildout.buildout.Buildout` exactly as `buildout install` does, then asks each
part of `buildout:parts` for its recipe, the way `install` initialises parts, so implicit
parts are discovered and ordered by buildout itself. Nothing is installed: the recipes are
only constructed (cases use `zc.buildout:debug`, whose constructor does nothing), and no
network is used as long as every recipe is already in the working set.

Output on stdout, one JSON object in the shape of `rbuildout annotate --json`:

    {"parts": [install order],
     "annotated": [every section `buildout annotate` shows],
     "sections": {section: {option: {"value": "substituted text"}}}}

`sections` holds exactly the sections buildout evaluated: `buildout`, the parts, and every
section reached through substitution or `=>` dependencies. Values are what a recipe receives.
The current directory is written as `${CASE}`. Left out, because they are zc.buildout's own
rather than the config's: `[buildout]` options only ever set by buildout's defaults or
computed by it, and the `[versions]` pins buildout adds itself (with the versions section
itself when nothing but buildout's bookkeeping reached it and nothing is left in it).

On a config error it prints {"error": "message"} and exits 0, so errors can be recorded too;
any other failure (a bug in this script) exits 1 with a traceback.
"""

import contextlib
import json
import os
import sys

import zc.buildout
import zc.buildout.buildout as zb

# Sources zc.buildout gives values it sets itself; anything else names a file or the
# command line.
BUILDOUT_SOURCES = ("DEFAULT_VALUE", "COMPUTED_VALUE", "IMPLICIT_VALUE")


def parse_args(argv):
    """Read the command line the way zc.buildout's `main` reads its own."""
    config_file = "buildout.cfg"
    use_user_defaults = True
    options = []
    while argv:
        arg = argv.pop(0)
        if arg == "-U":
            use_user_defaults = False
        elif arg == "-c":
            config_file = argv.pop(0)
        elif arg.startswith("-c"):
            config_file = arg[2:]
        elif "=" in arg:
            option, value = arg.split("=", 1)
            option = option.split(":")
            if len(option) == 1:
                option = ["buildout", option[0]]
            if len(option) != 2:
                raise SystemExit("invalid assignment: %s" % arg)
            section, option = option
            options.append((section.strip(), option.strip(), value.strip()))
        else:
            raise SystemExit("unknown argument: %s" % arg)
    return config_file, use_user_defaults, options


def main(argv):
    config_file, use_user_defaults, options = parse_args(list(argv))
    case = os.path.realpath(os.getcwd())

    # Record which sections are asked for, and from where: substitution (`_sub`), `=>`
    # dependencies (`_initialize`) and the part loop below reach a section; buildout's
    # own lookup of the versions section in `__init__` does not.
    reached = {"buildout"}
    original_getitem = zb.Buildout.__getitem__

    def getitem(self, section):
        caller = sys._getframe(1).f_code.co_name
        if caller in ("_sub", "_initialize", "resolve_parts"):
            reached.add(section)
        return original_getitem(self, section)

    zb.Buildout.__getitem__ = getitem

    def resolve_parts(buildout):
        # As `Buildout.install` does: initialise every listed part, then take the order in
        # which buildout initialised them (implicit parts included).
        listed = buildout["buildout"]["parts"]
        for part in listed.split() if listed else []:
            buildout[part]["recipe"]
        return list(buildout._parts)

    try:
        with contextlib.redirect_stdout(sys.stderr):
            buildout = zb.Buildout(config_file, options, use_user_defaults)
            parts = resolve_parts(buildout)
    except zc.buildout.UserError as error:
        json.dump({"error": str(error)}, sys.stdout)
        sys.stdout.write("\n")
        return 0

    versions_section = buildout._raw["buildout"].get("versions", "")
    annotated = buildout._annotated

    def set_by_buildout(section, option):
        key = annotated.get(section, {}).get(option)
        if key is None:
            # Added after loading (e.g. `eggs-directory` rewritten): a computed value.
            return True
        return all(item.source in BUILDOUT_SOURCES for item in key.history)

    sections = {}
    for name in sorted(buildout._data):
        options_ = buildout[name]
        values = {}
        for option in sorted(options_.keys()):
            if name == "buildout" and set_by_buildout(name, option):
                continue
            if name == versions_section and set_by_buildout(name, option):
                continue
            values[option] = {"value": options_[option].replace(case, "${CASE}")}
        if name == versions_section and name not in reached and not values:
            continue
        sections[name] = values

    unexpected = set(sections) - reached - {versions_section}
    if unexpected:
        raise RuntimeError("sections evaluated but not reached: %s" % sorted(unexpected))

    # What `buildout annotate` prints: every section of the config (macros and sections no
    # part reaches too), except a versions section holding only buildout's own pins.
    shown = [
        name
        for name in sorted(annotated)
        if name != versions_section
        or not all(set_by_buildout(name, option) for option in annotated[name])
    ]

    json.dump(
        {"parts": parts, "annotated": shown, "sections": sections}, sys.stdout, indent=2
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
