# The Python recipe bridge's driver (docs/python-recipes.md): one process serving the bridged
# parts of a run, run by the target interpreter with `-I -S`. Each stdin line is a JSON
# request from rbuildout; the driver answers on its own stdout, which nothing else writes
# to (fd 1 is pointed at stderr, and what a recipe prints becomes log messages).
#
# Requests:   {"op": "init", "part", "recipe": "dist:entry", "options": {...}, "paths": [...]}
#             {"op": "install" | "update", "part"}
#             {"op": "uninstall", "part", "recipe", "options", "paths"}  (its zc.buildout.uninstall
#             entry point, if any, with the recorded options)
#             {"op": "extensions", "part", "paths", "offline", "newest"}  (calls every
#             zc.buildout.extension entry point of the folders' distributions: ext(buildout))
#                 -> {"ok": {"options": {}, "edits": [[section, option, value, extension], ...]}}
#                    or {"ok": {"options": {}, "refused": why}} (what the bridge cannot honour)
#             {"op": "unload", "part"}  (their zc.buildout.unloadextension entry points)
# While one is served the driver may ask, and wait for the answer line {"value": ...}:
#             {"get": [section, option]}      -> the option's resolved value, or null
#             {"names": section}              -> the section's option names, or null
#             {"eggs": [requirement, ...]}    -> their installed folders, or {"error": why}
#             (what a recipe asks zc.buildout.easy_install.install / working_set for: rbuildout's
#             egg fetcher installs it, into the same eggs folder, under the same lock)
# and tell, without an answer:
#             {"log": [level, message]}       (level: 1 error .. 5 trace, as the ABI's)
# The request's end:
#             {"ok": {"options": {...}, "paths": [...]}}  or  {"error": message, "traceback": text}

import json
import logging
import os
import sys

_answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
_requests = sys.stdin


def _send(message):
    _answers.write(json.dumps(message) + "\n")
    _answers.flush()


def _ask(message):
    _send(message)
    line = _requests.readline()
    if not line:
        sys.exit(0)
    answer = json.loads(line)
    if "error" in answer:
        import zc.buildout

        raise zc.buildout.UserError(answer["error"])
    return answer["value"]


def _log(level, message):
    _send({"log": [level, message]})


class _Printed:
    """What a recipe prints, a line at a time into the log (info)."""

    def __init__(self):
        self._text = ""

    def write(self, text):
        self._text += text
        while "\n" in self._text:
            line, self._text = self._text.split("\n", 1)
            _log(3, line)
        return len(text)

    def flush(self):
        pass


class _ToHost(logging.Handler):
    def emit(self, record):
        level = record.levelno
        ours = 1 if level >= 40 else 2 if level >= 30 else 3 if level >= 20 else 4
        try:
            _log(ours, self.format(record))
        except Exception:
            pass


sys.stdout = _Printed()
_root = logging.getLogger()
_root.addHandler(_ToHost())
_root.setLevel(logging.DEBUG)

_missing = None


def _missing_option(section, option):
    global _missing
    if _missing is None:
        try:
            from zc.buildout.buildout import MissingOption as _missing
        except Exception:
            _missing = KeyError
    return _missing("Missing option: %s:%s" % (section, option))


# zc.buildout's [buildout] options that rbuildout does not define (docs/conformance.md),
# with zc.buildout's values, for recipes that read them (zc.recipe.egg reads
# allow-unknown-extras).
_BUILDOUT_DEFAULTS = {
    "allow-unknown-extras": "false",
    "install-from-cache": "false",
    "use-dependency-links": "true",
    "log-format": "",
    "log-level": "INFO",
    "socket-timeout": "",
    "executable": sys.executable,
}

_TRUE = ("yes", "true", "on")
_FALSE = ("no", "false", "off")


class Options(dict):
    """A section as zc.buildout's recipes see it: a mutable mapping of its resolved
    options. A part's own section holds its options from the start (what the recipe sets
    is published); another section asks rbuildout for each option when first read."""

    def __init__(self, name, values=None):
        super().__init__(values or {})
        self.name = name
        self._asks = values is None
        self._absent = set()
        self._created = []

    def _fetch(self, key):
        if not self._asks or key in self._absent or dict.__contains__(self, key):
            return
        value = _ask({"get": [self.name, key]})
        if value is None and self.name == "buildout":
            value = _BUILDOUT_DEFAULTS.get(key)
        if value is None:
            self._absent.add(key)
        else:
            dict.__setitem__(self, key, value)

    def __getitem__(self, key):
        self._fetch(key)
        if not dict.__contains__(self, key):
            raise _missing_option(self.name, key)
        return dict.__getitem__(self, key)

    def __contains__(self, key):
        self._fetch(key)
        return dict.__contains__(self, key)

    def get(self, key, default=None):
        self._fetch(key)
        return dict.get(self, key, default)

    def _all(self):
        if self._asks:
            for key in _ask({"names": self.name}) or []:
                self._fetch(key)
            self._asks = False

    def keys(self):
        self._all()
        return dict.keys(self)

    def items(self):
        self._all()
        return dict.items(self)

    def values(self):
        self._all()
        return dict.values(self)

    def __iter__(self):
        self._all()
        return dict.__iter__(self)

    def __len__(self):
        self._all()
        return dict.__len__(self)

    def copy(self):
        self._all()
        return dict(self)

    def __setitem__(self, key, value):
        if not isinstance(value, str):
            raise TypeError("Option values must be strings", value)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key):
        _no_deletion("the option %s:%s" % (self.name, key))
        dict.__delitem__(self, key)

    def pop(self, key, *default):
        _no_deletion("the option %s:%s" % (self.name, key))
        return dict.pop(self, key, *default)

    def popitem(self):
        _no_deletion("an option of [%s]" % self.name)
        return dict.popitem(self)

    def clear(self):
        _no_deletion("the options of [%s]" % self.name)
        dict.clear(self)

    def query_bool(self, name, default=None):
        value = self.get(name, default)
        if value is None:
            return None
        return _bool(self.name, name, value)

    def get_bool(self, name):
        return _bool(self.name, name, self.get(name, "false"))

    def created(self, *paths):
        self._created.extend(paths)
        return self._created


def _bool(section, name, value):
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("Invalid value for %s:%s option: %s" % (section, name, value))


class Buildout(dict):
    """The buildout as recipes see it: sections by name, each read through rbuildout."""

    def __getitem__(self, name):
        if not dict.__contains__(self, name):
            if _ask({"names": name}) is None:
                raise KeyError(name)
            dict.__setitem__(self, name, Options(name))
        return dict.__getitem__(self, name)

    def __contains__(self, name):
        try:
            self[name]
        except KeyError:
            return False
        return True

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    def __setitem__(self, name, data):
        # zc.buildout's: a new section (an extension's); an existing one is an error.
        if name in self:
            raise KeyError("Section already exists", name)
        raw = dict((k, str(v)) for (k, v) in data.items())
        # Substituted now, as zc.buildout does when the section is added: a reference to an
        # option an extension changes later keeps the value it had.
        values = dict((k, _substituted(name, raw, k, [])) for k in raw)
        _added.add(name)
        dict.__setitem__(self, name, Options(name, values))

    def __delitem__(self, name):
        _no_deletion("the section [%s]" % name)
        raise NotImplementedError("__delitem__")

    def parse(self, data):
        """zc.buildout's: sections written as config text, added."""
        import io
        import textwrap

        from zc.buildout import configparser

        sections = configparser.parse(io.StringIO(textwrap.dedent(data)), "")
        for name in sections:
            if name in self:
                raise KeyError("Section already exists", name)
        for name, options in sections.items():
            self[name] = options

    def __getattr__(self, name):
        # zc.buildout's internals (`_raw`, `_parts`, `Options` ...): an extension that
        # reaches for them is refused by name; nothing here would honour what it does.
        if _extension is not None and not name.startswith("__"):
            raise _Refused("uses buildout.%s (zc.buildout's internals)" % name)
        raise AttributeError(name)


_buildout = Buildout()
_recipes = {}


def _served(specs, *args, **kwargs):
    """zc.buildout.easy_install's `install` and `working_set`, served by rbuildout: the
    distributions come from its egg fetcher; the working set holds them (added to the one
    given, if any)."""
    import pkg_resources

    if isinstance(specs, str):
        specs = [specs]
    folders = _ask({"eggs": [str(s) for s in specs]})
    ws = kwargs.get("working_set") or pkg_resources.WorkingSet([])
    for folder in folders:
        for dist in pkg_resources.find_distributions(folder, only=True):
            ws.add(dist, replace=True)
    return ws


class _ServeEasyInstall:
    """Patches zc.buildout.easy_install when a recipe imports it, so that one installer
    serves the whole run."""

    def find_spec(self, name, path=None, target=None):
        if name != "zc.buildout.easy_install":
            return None
        import importlib.util

        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module.install = _served
            module.working_set = _served

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _ServeEasyInstall())


class _LazyZcBuildout:
    """Defers the body of `zc/buildout/__init__.py` until something of it is used.

    Nearly every recipe starts with `import zc.buildout`, whose `__init__` imports
    setuptools, pip and its own pkg_resources (a quarter of a second), while most use
    nothing of it but `zc.buildout.UserError` when they fail. So that import gives the
    package with its `__path__`, and the real `__init__` runs on first use: an attribute
    (`zc.buildout.UserError`), a submodule (`zc.buildout.easy_install`), or a module that
    `__init__` prepares (`pkg_resources`, `setuptools`, `pip`). What a recipe sees is then
    what zc.buildout's own import gives it. Imports by name are watched where they start
    (`__import__`, `importlib.import_module`), before `sys.modules` is looked at, so that
    `pkg_resources` is zc.buildout's copy."""

    _TRIGGERS = ("pkg_resources", "setuptools", "pip", "_distutils_hack")

    def __init__(self):
        import builtins
        import importlib

        self.deferred = None  # (module, real loader) until the real __init__ ran
        self.loading = False
        self._import = builtins.__import__
        self._import_module = importlib.import_module
        finder = self

        def watched_import(name, globals=None, locals=None, fromlist=(), level=0):
            if finder.deferred is not None and level == 0:
                finder.before(name)
            return finder._import(name, globals, locals, fromlist, level)

        def watched_import_module(name, package=None):
            if finder.deferred is not None and not name.startswith("."):
                finder.before(name)
            return finder._import_module(name, package)

        builtins.__import__ = watched_import
        importlib.import_module = watched_import_module

    def before(self, name):
        """Runs the real `__init__` first if importing `name` needs what it does."""
        if name.startswith("zc.buildout.") or name.partition(".")[0] in self._TRIGGERS:
            self.load()

    def find_spec(self, name, path=None, target=None):
        if self.loading or name != "zc.buildout":
            return None
        import importlib.util

        self.loading = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.loading = False
        if spec is None or spec.loader is None or not spec.submodule_search_locations:
            return spec
        real = spec.loader
        finder = self

        class Loader:
            def create_module(self, spec):
                return real.create_module(spec)

            def exec_module(self, module):
                finder.deferred = (module, real)

                def __getattr__(attr):
                    if finder.deferred is None:
                        raise AttributeError(attr)
                    finder.load()
                    return getattr(module, attr)

                module.__getattr__ = __getattr__

        spec.loader = Loader()
        return spec

    def load(self):
        if self.deferred is None:
            return
        module, real = self.deferred
        self.deferred = None
        del module.__getattr__
        module.__loader__ = real
        module.__spec__.loader = real
        self.loading = True
        try:
            real.exec_module(module)
        finally:
            self.loading = False


sys.meta_path.insert(0, _LazyZcBuildout())


def _normal(name):
    return name.lower().replace("_", "-").replace(".", "-")


def _load_entry(value):
    """`module:attr.attr` as an entry point's object (extras in brackets ignored)."""
    import importlib

    module, _, attrs = value.split("[", 1)[0].strip().partition(":")
    target = importlib.import_module(module.strip())
    for attr in filter(None, attrs.strip().split(".")):
        target = getattr(target, attr)
    return target


def _quick_entry_point(wanted, group, entry, folders):
    """The entry point from the metadata in one of the working set's folders (an egg folder
    holds one distribution's `.dist-info`): read directly, as `importlib.metadata` would
    scan every folder on `sys.path` and costs more than many recipes' whole `update`.
    `False` when no folder has the distribution's metadata."""
    for folder in folders:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for info in names:
            if not info.endswith((".dist-info", ".egg-info")):
                continue
            if _normal(info.rsplit(".", 1)[0].split("-", 1)[0]) != wanted:
                continue
            path = os.path.join(folder, info, "entry_points.txt")
            section = None
            try:
                with open(path, encoding="utf-8") as f:
                    for line in f:
                        line = line.strip()
                        if line.startswith("[") and line.endswith("]"):
                            section = line[1:-1].strip()
                        elif section == group and "=" in line and line[0] not in "#;":
                            name, _, value = line.partition("=")
                            if name.strip() == entry:
                                return _load_entry(value)
            except FileNotFoundError:
                pass
            return None
    return False


def _entry_point(recipe, group="zc.buildout", needed=True, folders=()):
    dist, _, entry = recipe.partition(":")
    entry = entry or "default"
    wanted = _normal(dist)
    found = _quick_entry_point(wanted, group, entry, folders)
    if found is None and needed:
        raise LookupError(
            "the distribution %s has no zc.buildout entry point named %s" % (dist, entry)
        )
    if found is not False:
        return found
    from importlib import metadata

    for d in metadata.distributions():
        name = _normal(d.metadata["Name"] or "")
        if name != wanted:
            continue
        for ep in d.entry_points:
            if ep.group == group and ep.name == entry:
                return ep.load()
        if not needed:
            return None
        raise LookupError(
            "the distribution %s has no zc.buildout entry point named %s" % (dist, entry)
        )
    raise LookupError("the distribution %s is not installed" % dist)


def _paths(result):
    if result is None:
        return []
    if isinstance(result, str):
        return [result]
    return [str(p) for p in result]


def _add_paths(paths):
    for path in paths:
        if path not in sys.path:
            if os.path.isdir(path) and any(n.endswith(".pth") for n in os.listdir(path)):
                import site

                site.addsitedir(path)
            else:
                sys.path.append(path)


def _serve(request):
    op, part = request["op"], request["part"]
    if op in ("extensions", "unload"):
        return _serve_extensions(request)
    if op in ("init", "uninstall"):
        # A new part (perhaps of a nested build, with its own [buildout]): what other
        # sections said is asked again, as published outputs may have come since.
        dict.clear(_buildout)
    if op == "uninstall":
        _add_paths(request.get("paths", []))
        uninstaller = _entry_point(
            request["recipe"], "zc.buildout.uninstall", False, request.get("paths", [])
        )
        if uninstaller is not None:
            os.chdir(_buildout["buildout"]["directory"])
            uninstaller(part, Options(part, request["options"]))
        return {"options": {}, "paths": []}
    if op == "init":
        _add_paths(request.get("paths", []))
        options = Options(part, request["options"])
        dict.__setitem__(_buildout, part, options)
        factory = _entry_point(request["recipe"], folders=request.get("paths", []))
        recipe = factory(_buildout, part, options)
        _recipes[part] = (recipe, options)
        return {"options": dict(options), "has_update": callable(getattr(recipe, "update", None))}
    recipe, options = _recipes[part]
    method = getattr(recipe, op, None) if op in ("install", "update") else None
    if method is None and op != "update":
        raise ValueError("unknown request %r" % op)
    # As zc.buildout's Options._call: in the buildout directory, and what the recipe said
    # it created is removed when it fails.
    os.chdir(_buildout["buildout"]["directory"])
    options._created = []
    try:
        result = method() if method is not None else ()
    except BaseException:
        for p in options._created:
            if os.path.isdir(p) and not os.path.islink(p):
                import shutil

                shutil.rmtree(p)
            elif os.path.lexists(p):
                os.remove(p)
        raise
    if result is None and op == "install":
        _log(2, "The %s install returned None.  A path or iterable os paths should be "
             "returned." % part)
    return {"options": dict(options), "paths": _paths(result)}

# zc.buildout extensions (docs/python-recipes.md, "Extensions"): each
# `zc.buildout.extension` entry point is called as zc.buildout calls it, `ext(buildout)`;
# what it sets in the sections (and the sections it adds) goes back to rbuildout as edits
# of the config. What the bridge cannot honour is refused, naming the extension.

_extension = None  # the extension being called, while one is
_added = set()  # sections extensions added


class _Refused(Exception):
    """Something an extension did that the bridge cannot honour (the message says what)."""


def _no_deletion(what):
    if _extension is not None:
        raise _Refused("deletes %s (rbuildout can set options, not remove them)" % what)


def _entry_points(group):
    """(name, function) of every entry point of `group` of the distributions on the path,
    in path order, as zc.buildout iterates its working set's."""
    from importlib import metadata

    seen = set()
    found = []
    for d in metadata.distributions():
        name = d.metadata["Name"] or "?"
        key = name.lower().replace("_", "-").replace(".", "-")
        if key in seen:
            continue
        seen.add(key)
        for ep in d.entry_points:
            if ep.group == group:
                found.append(("%s (entry point %s)" % (name, ep.name), ep))
    return found


def _zc_internals():
    """What zc.buildout's installer and buildout modules hold (their names and their
    classes' attributes), to find what an extension replaced there."""
    import zc.buildout.buildout
    import zc.buildout.easy_install

    held = {}
    for module in (zc.buildout.buildout, zc.buildout.easy_install):
        for key, value in list(vars(module).items()):
            if type(value).__name__ == "module":
                continue
            held["%s.%s" % (module.__name__, key)] = value
            if isinstance(value, type) and value.__module__ == module.__name__:
                for attr, v in list(vars(value).items()):
                    held["%s.%s.%s" % (module.__name__, key, attr)] = v
    return held


def _substituted(section, raw, key, seen):
    """`raw[key]` with its `${section:option}` references substituted as zc.buildout's
    `Options.get` does: `${:option}` is the section's own (raw), `$$` is kept."""
    import re

    if (section, key) in seen:
        raise ValueError("Circular reference in substitutions: %s:%s" % (section, key))
    seen.append((section, key))
    pieces = []
    for piece in raw[key].split("$$"):
        split = re.split(r"([$]{[^}]*})", piece)
        for i in range(1, len(split), 2):
            name, colon, option = split[i][2:-1].partition(":")
            if not colon or ":" in option:
                raise ValueError("The substitution, %s, needs one colon." % split[i])
            name = name or section
            if name == section and option in raw:
                split[i] = _substituted(section, raw, option, seen)
            else:
                split[i] = _buildout[name][option]
        pieces.append("".join(split))
    seen.pop()
    return "$$".join(pieces)


def _sections():
    return dict((name, dict(dict.items(o))) for (name, o) in dict.items(_buildout))


def _configured(section, key):
    value = _ask({"get": [section, key]})
    if value is None and section == "buildout":
        value = _BUILDOUT_DEFAULTS.get(key)
    return value


def _edits(before, extension):
    """What the extension changed since `before`: [section, option, value, extension]."""
    edits = []
    for name, options in dict.items(_buildout):
        old = before.get(name)
        for key, value in dict.items(options):
            if old is not None and key in old:
                if old[key] == value:
                    continue
            elif name not in _added and value == _configured(name, key):
                continue  # read, not changed
            if not isinstance(value, str):
                raise _Refused("sets %s:%s to a %s, not a string" % (name, key, type(value).__name__))
            if "${" in value:
                # zc.buildout keeps a value set so as written; a config's is substituted.
                raise _Refused("sets %s:%s to %r, whose ${...} rbuildout would substitute" % (name, key, value))
            if name == "buildout" and key in ("extends", "extensions"):
                raise _Refused("sets buildout:%s, which is read only when the config loads" % key)
            edits.append([name, key, value, extension])
        for key in old or ():
            if not dict.__contains__(options, key):
                raise _Refused("deletes the option %s:%s" % (name, key))
    return edits


def _serve_extensions(request):
    global _extension
    if request["op"] == "unload":
        dict.clear(_buildout)
        for _, ep in _entry_points("zc.buildout.unloadextension"):
            ep.load()(_buildout)
        return {"options": {}}
    _add_paths(request.get("paths", []))
    dict.clear(_buildout)
    _added.clear()
    _buildout.offline = bool(request.get("offline"))
    _buildout.newest = bool(request.get("newest"))
    edits = []
    for name, ep in _entry_points("zc.buildout.extension"):
        _extension = name
        try:
            held = _zc_internals()
            extension = ep.load()
            before = _sections()
            extension(_buildout)
            edits.extend(_edits(before, name))
            now = _zc_internals()
            gone = object()
            for key in sorted(set(held) | set(now)):
                if held.get(key, gone) is not now.get(key, gone):
                    raise _Refused("replaces %s (zc.buildout's installer is rbuildout's here)" % key)
        except _Refused as e:
            return {"options": {}, "refused": "the extension %s %s" % (name, e)}
        finally:
            _extension = None
    return {"options": {}, "edits": edits}


for _line in _requests:
    _request = json.loads(_line)
    try:
        _send({"ok": _serve(_request)})
    except SystemExit:
        raise
    except BaseException as e:
        import traceback

        user = type(e).__name__ == "UserError"
        _send(
            {
                "error": str(e) if user else "%s: %s" % (type(e).__name__, e),
                "traceback": traceback.format_exc(),
            }
        )
