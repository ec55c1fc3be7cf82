//! `activate`: writes virtualenv-style activate scripts for the instance (SPEC §5.3).
//!
//! ```toml
//! [activate]
//! recipe = "activate"
//! bin-directory = "bin"          # default ${buildout:bin-directory}
//! virtual-env = true             # export VIRTUAL_ENV (the instance folder)
//! prompt = "lava"                # default: the instance folder's name
//! environment = ["DJANGO_SETTINGS_MODULE=lava.settings", "LANG=C.UTF-8"]
//! ```
//!
//! It writes `activate` (sh, dash, bash, zsh), `activate.fish` and `activate.csh` (csh,
//! tcsh) in the bin folder. Sourcing one puts the bin folder first on `PATH`, sets
//! `VIRTUAL_ENV` to the instance (`${buildout:instance-directory}`, so a release built inside
//! the instance names the instance, not itself), `VIRTUAL_ENV_PROMPT` and the prompt prefix
//! (unless `VIRTUAL_ENV_DISABLE_PROMPT` is set and not empty), exports the `environment`
//! variables, unsets `PYTHONHOME` and forgets the shell's command hash. `deactivate` puts
//! back exactly what was there: old values are restored, variables that were unset are
//! unset again; `deactivate nondestructive` does so and keeps the function, as virtualenv's.
//!
//! The scripts keep virtualenv's names for the saved `PATH`, `PYTHONHOME` and prompt
//! (`_OLD_VIRTUAL_PATH`, ...), so activating a virtualenv over the instance, or the instance
//! over a virtualenv, leaves the first one properly. Every value is written quoted for its
//! shell, as a literal: `$`, backticks, quotes and `!` in paths or values are not expanded.
//! The files are the same bytes for the same inputs and rewritten only when they change.

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rbuildout_plugin_api::{Context, Error, Options, Recipe, Result, export_plugin, files};

pub struct Activate;

/// No `update`: the scripts depend on the part's options and on the `[buildout]` options
/// read through the context (`bin-directory`, `instance-directory`), which rbuildout records
/// with the part; a change of any of them reinstalls it, and an unchanged run leaves it alone.
impl Recipe for Activate {
    fn install(options: &Options, ctx: &Context) -> Result<()> {
        write_all(options, ctx)
    }
}

fn write_all(options: &Options, ctx: &Context) -> Result<()> {
    let (bin_dir, settings) = settings(options, ctx)?;
    let scripts = [
        ("activate", sh(&settings)),
        ("activate.fish", fish(&settings)),
        ("activate.csh", csh(&settings)),
    ];
    // All three are checked before any is written: inside the instance or an allowed
    // folder, and none over a file the part did not write (unless it already holds the same
    // text, as a run killed before the state was saved leaves it).
    let targets = files::Targets::of(ctx);
    let scripts = scripts
        .into_iter()
        .map(|(name, text)| {
            Ok((
                targets.check_write(&bin_dir.join(name), text.as_bytes())?,
                text,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    for (path, text) in scripts {
        if files::write_if_changed(&path, text.as_bytes(), Some(0o644))? {
            ctx.info(&format!("wrote {}", path.display()));
        }
        ctx.register(&path)?;
    }
    Ok(())
}

/// What the scripts set, as text ready to quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The folder put first on `PATH`.
    pub bin: String,
    /// `VIRTUAL_ENV`, or `None` with `virtual-env = false`.
    pub virtual_env: Option<String>,
    /// `VIRTUAL_ENV_PROMPT`; the prompt prefix is `(prompt) `.
    pub prompt: String,
    /// Extra variables, in the order of the option.
    pub environment: Vec<(String, String)>,
}

impl Settings {
    /// Every variable the scripts set and `deactivate` restores, besides `PATH`.
    fn variables(&self) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        if let Some(instance) = &self.virtual_env {
            out.push(("VIRTUAL_ENV", instance.as_str()));
        }
        out.push(("VIRTUAL_ENV_PROMPT", self.prompt.as_str()));
        out.extend(
            self.environment
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        out
    }
}

/// Reads the options (and `[buildout]`'s): the bin folder to write into, and what the
/// scripts set.
fn settings(options: &Options, ctx: &Context) -> Result<(PathBuf, Settings)> {
    let buildout = ctx.buildout();
    let bin_dir = options
        .get_path("bin-directory")
        .filter(|_| {
            options
                .get("bin-directory")
                .is_some_and(|v| !v.trim().is_empty())
        })
        .unwrap_or_else(|| buildout.bin_directory());
    let instance = buildout.instance_directory();
    let prompt = match options.get("prompt").map(str::trim) {
        Some(p) if !p.is_empty() => p.to_owned(),
        _ => instance.file_name().map_or_else(
            || instance.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
    };
    let settings = Settings {
        bin: text(&bin_dir, "the bin folder")?,
        virtual_env: if options.get_bool("virtual-env", true)? {
            Some(text(&instance, "the instance folder")?)
        } else {
            None
        },
        prompt: one_line(prompt, "option `prompt`")?,
        environment: environment(options.get("environment").unwrap_or(""))?,
    };
    Ok((bin_dir, settings))
}

/// A path as one line of UTF-8 text, or an error naming `what`.
fn text(path: &Path, what: &str) -> Result<String> {
    let text = path.to_str().ok_or_else(|| {
        Error::new(format!(
            "{what} {} is not UTF-8: it cannot be written into the activate scripts",
            path.display()
        ))
    })?;
    one_line(text.to_owned(), what)
}

fn one_line(text: String, what: &str) -> Result<String> {
    if text.contains(['\n', '\r', '\0']) {
        return Err(Error::new(format!(
            "{what} contains a line break or NUL, which the activate scripts cannot hold: {text:?}"
        )));
    }
    Ok(text)
}

/// Variables the scripts manage themselves, or that belong to a shell's prompt.
const RESERVED: [&str; 6] = [
    "PATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "VIRTUAL_ENV_PROMPT",
    "PS1",
    "prompt",
];

/// The `environment` option: `KEY=VALUE` lines (blank lines and `#` comments skipped).
pub fn environment(option: &str) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (n, line) in option.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let at = || format!("option `environment`, line {}", n + 1);
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(Error::new(format!(
                "{}: `{trimmed}` is not KEY=VALUE",
                at()
            )));
        };
        let key = key.trim_end();
        let mut chars = key.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(Error::new(format!(
                "{}: `{key}` is not a variable name (letters, digits and `_`, not starting with a digit)",
                at()
            )));
        }
        if RESERVED.contains(&key)
            || key.starts_with("_OLD_VIRTUAL_")
            || key.starts_with("_RBUILDOUT_")
        {
            return Err(Error::new(format!(
                "{}: `{key}` is set by the activate scripts themselves",
                at()
            )));
        }
        if out.iter().any(|(k, _)| k == key) {
            return Err(Error::new(format!("{}: `{key}` is set twice", at())));
        }
        out.push((key.to_owned(), value.to_owned()));
    }
    Ok(out)
}

const HEADER: &str = "# Written by rbuildout (recipe `activate`): the next run rewrites it.\n";

/// `s` in single quotes for sh, dash, bash and zsh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `bin/activate`, for POSIX sh, dash, bash and zsh.
pub fn sh(s: &Settings) -> String {
    let vars = s.variables();
    let mut o = String::from(HEADER);
    o.push_str(
        r#"# Use it with `. bin/activate` from sh, bash or zsh: run as a program it cannot change your shell.
if [ "${BASH_SOURCE-}" = "$0" ]; then
    echo "$0 must be sourced: . $0" >&2
    exit 33
fi

# Leave an environment active in this shell (another instance, a virtualenv) with its own
# deactivate first.
if [ -n "${_OLD_VIRTUAL_PATH+x}" ] && command -v deactivate >/dev/null 2>&1; then
    deactivate nondestructive
fi

deactivate () {
    if [ -n "${_OLD_VIRTUAL_PATH+x}" ]; then
        PATH=$_OLD_VIRTUAL_PATH
        export PATH
        unset _OLD_VIRTUAL_PATH
    fi
    if [ -n "${_OLD_VIRTUAL_PYTHONHOME+x}" ]; then
        PYTHONHOME=$_OLD_VIRTUAL_PYTHONHOME
        export PYTHONHOME
        unset _OLD_VIRTUAL_PYTHONHOME
    fi
    if [ -n "${_OLD_VIRTUAL_PS1+x}" ]; then
        PS1=$_OLD_VIRTUAL_PS1
        unset _OLD_VIRTUAL_PS1
    elif [ -n "${_RBUILDOUT_UNSET_PS1+x}" ]; then
        unset PS1 _RBUILDOUT_UNSET_PS1
    fi
"#,
    );
    for (name, _) in &vars {
        let _ = write!(
            o,
            r#"    if [ -n "${{_RBUILDOUT_OLD_{name}+x}}" ]; then
        {name}=$_RBUILDOUT_OLD_{name}
        export {name}
        unset _RBUILDOUT_OLD_{name}
    elif [ -n "${{_RBUILDOUT_UNSET_{name}+x}}" ]; then
        unset {name} _RBUILDOUT_UNSET_{name}
    fi
"#
        );
    }
    o.push_str(
        r#"    hash -r 2>/dev/null || true
    if [ "${1-}" != nondestructive ]; then
        unset -f deactivate
    fi
}

# Whatever an environment whose deactivate is gone left behind.
deactivate nondestructive

"#,
    );
    for (name, value) in &vars {
        let _ = write!(
            o,
            r#"if [ -n "${{{name}+x}}" ]; then
    _RBUILDOUT_OLD_{name}=${name}
else
    _RBUILDOUT_UNSET_{name}=1
fi
{name}={value}
export {name}
"#,
            value = sh_quote(value)
        );
    }
    let _ = write!(
        o,
        r#"
_OLD_VIRTUAL_PATH=${{PATH-}}
PATH={bin}"${{PATH:+:$PATH}}"
export PATH

if [ -n "${{PYTHONHOME+x}}" ]; then
    _OLD_VIRTUAL_PYTHONHOME=$PYTHONHOME
    unset PYTHONHOME
fi

if [ -z "${{VIRTUAL_ENV_DISABLE_PROMPT-}}" ]; then
    if [ -n "${{PS1+x}}" ]; then
        _OLD_VIRTUAL_PS1=$PS1
    else
        _RBUILDOUT_UNSET_PS1=1
    fi
    PS1={prefix}"${{PS1-}}"
fi

hash -r 2>/dev/null || true
"#,
        bin = sh_quote(&s.bin),
        prefix = sh_quote(&format!("({}) ", s.prompt)),
    );
    o
}

/// `s` in single quotes for fish, where `\\` and `\'` are the only escapes.
fn fish_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}

/// `bin/activate.fish`.
pub fn fish(s: &Settings) -> String {
    let vars = s.variables();
    let mut o = String::from(HEADER);
    o.push_str(
        r#"# Use it with `source bin/activate.fish` from fish.

# Leave an environment active in this shell (another instance, a virtualenv) with its own
# deactivate first.
if set -q _OLD_VIRTUAL_PATH; and functions -q deactivate
    deactivate nondestructive
end

function deactivate -d 'Leave the environment of the rbuildout instance'
    if set -q _OLD_VIRTUAL_PATH
        set -gx PATH $_OLD_VIRTUAL_PATH
        set -e -g _OLD_VIRTUAL_PATH
    end
    if set -q _OLD_VIRTUAL_PYTHONHOME
        set -gx PYTHONHOME $_OLD_VIRTUAL_PYTHONHOME
        set -e -g _OLD_VIRTUAL_PYTHONHOME
    end
    if functions -q _old_fish_prompt
        functions -e fish_prompt
        functions -c _old_fish_prompt fish_prompt
        functions -e _old_fish_prompt
    end
"#,
    );
    for (name, _) in &vars {
        let _ = write!(
            o,
            r#"    if set -q _RBUILDOUT_OLD_{name}
        set -gx {name} $_RBUILDOUT_OLD_{name}
        set -e -g _RBUILDOUT_OLD_{name}
    else if set -q _RBUILDOUT_UNSET_{name}
        set -e -g {name}
        set -e -g _RBUILDOUT_UNSET_{name}
    end
"#
        );
    }
    o.push_str(
        r#"    if test "$argv[1]" != nondestructive
        functions -e deactivate
    end
end

# Whatever an environment whose deactivate is gone left behind.
deactivate nondestructive

"#,
    );
    for (name, value) in &vars {
        let _ = write!(
            o,
            r#"if set -q {name}
    set -g _RBUILDOUT_OLD_{name} ${name}
else
    set -g _RBUILDOUT_UNSET_{name} 1
end
set -gx {name} {value}
"#,
            value = fish_quote(value)
        );
    }
    let _ = write!(
        o,
        r#"
set -g _OLD_VIRTUAL_PATH $PATH
set -gx PATH {bin} $PATH

if set -q PYTHONHOME
    set -g _OLD_VIRTUAL_PYTHONHOME $PYTHONHOME
    set -e PYTHONHOME
end

if test -z "$VIRTUAL_ENV_DISABLE_PROMPT"; and functions -q fish_prompt
    functions -c fish_prompt _old_fish_prompt
    function fish_prompt
        set -l old_status $status
        printf '%s' {prefix}
        # The old prompt sees the status of the last command, not of printf.
        echo "exit $old_status" | source
        _old_fish_prompt
    end
end
"#,
        bin = fish_quote(&s.bin),
        prefix = fish_quote(&format!("({}) ", s.prompt)),
    );
    o
}

/// `s` in single quotes for csh and tcsh: a quote is closed, escaped and reopened, and `!`
/// is escaped from history substitution.
fn csh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''").replace('!', r"\!"))
}

/// `bin/activate.csh`, for csh and tcsh.
pub fn csh(s: &Settings) -> String {
    let vars = s.variables();
    // csh has no functions: `deactivate` is an alias, one line of commands. Each restore is
    // `test ... && ...` because a variable in a command that does not run is not substituted
    // (an undefined one would be an error).
    let mut steps = vec![
        r#"test $?_OLD_VIRTUAL_PATH != 0 && setenv PATH "$_OLD_VIRTUAL_PATH:q" && unset _OLD_VIRTUAL_PATH"#.to_owned(),
        r#"test $?_OLD_VIRTUAL_PYTHONHOME != 0 && setenv PYTHONHOME "$_OLD_VIRTUAL_PYTHONHOME:q" && unset _OLD_VIRTUAL_PYTHONHOME"#.to_owned(),
        r#"test $?_OLD_VIRTUAL_PROMPT != 0 && set prompt="$_OLD_VIRTUAL_PROMPT:q" && unset _OLD_VIRTUAL_PROMPT"#.to_owned(),
    ];
    for (name, _) in &vars {
        steps.push(format!(
            r#"test $?_RBUILDOUT_OLD_{name} != 0 && setenv {name} "$_RBUILDOUT_OLD_{name}:q" && unset _RBUILDOUT_OLD_{name}"#
        ));
        steps.push(format!(
            "test $?_RBUILDOUT_UNSET_{name} != 0 && unsetenv {name} && unset _RBUILDOUT_UNSET_{name}"
        ));
    }
    steps.push("rehash".to_owned());
    steps.push(r#"test "\!*" != nondestructive && unalias deactivate"#.to_owned());

    let mut o = String::from(HEADER);
    let _ = write!(
        o,
        r#"# Use it with `source bin/activate.csh` from csh or tcsh.

# Leave an environment active in this shell (another instance, a virtualenv) with its own
# deactivate first.
if ( $?_OLD_VIRTUAL_PATH ) then
    if ( "`alias deactivate`" != "" ) then
        deactivate nondestructive
    endif
endif

alias deactivate '{alias}'

# Whatever an environment whose deactivate is gone left behind.
deactivate nondestructive

"#,
        alias = steps.join("; ")
    );
    for (name, value) in &vars {
        let _ = write!(
            o,
            r#"if ( $?{name} ) then
    set _RBUILDOUT_OLD_{name} = "${name}:q"
else
    set _RBUILDOUT_UNSET_{name} = 1
endif
setenv {name} {value}
"#,
            value = csh_quote(value)
        );
    }
    let _ = write!(
        o,
        r#"
set _OLD_VIRTUAL_PATH = "$PATH:q"
setenv PATH {bin}":$PATH:q"

if ( $?PYTHONHOME ) then
    set _OLD_VIRTUAL_PYTHONHOME = "$PYTHONHOME:q"
    unsetenv PYTHONHOME
endif

# No prompt in a non-interactive shell; none either for a prompt of several lines.
set _rbuildout_do_prompt = 1
if ( $?VIRTUAL_ENV_DISABLE_PROMPT ) then
    if ( "$VIRTUAL_ENV_DISABLE_PROMPT:q" != "" ) then
        set _rbuildout_do_prompt = 0
    endif
endif
if ( $?prompt ) then
    if ( $_rbuildout_do_prompt == 1 ) then
        set _rbuildout_newline = '\
'
        if ( "$prompt:q" !~ *"$_rbuildout_newline:q"* ) then
            set _OLD_VIRTUAL_PROMPT = "$prompt:q"
            set prompt = {prefix}"$prompt:q"
        endif
        unset _rbuildout_newline
    endif
endif
unset _rbuildout_do_prompt

rehash
"#,
        bin = csh_quote(&s.bin),
        prefix = csh_quote(&format!("({}) ", s.prompt)),
    );
    o
}

export_plugin! {
    name: "activate",
    version: env!("CARGO_PKG_VERSION"),
    recipes: { "default" => Activate },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_lines() {
        let env = environment("A=1\n\n# note\n  B = x=y \nEMPTY=").unwrap();
        assert_eq!(
            env,
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), " x=y ".to_owned()),
                ("EMPTY".to_owned(), String::new()),
            ]
        );
        for (bad, says) in [
            ("novalue", "is not KEY=VALUE"),
            ("1A=x", "is not a variable name"),
            ("A-B=x", "is not a variable name"),
            ("PATH=/x", "set by the activate scripts"),
            ("_OLD_VIRTUAL_X=1", "set by the activate scripts"),
            ("A=1\nA=2", "line 2: `A` is set twice"),
        ] {
            let message = environment(bad).unwrap_err().message().to_owned();
            assert!(message.contains(says), "{bad}: {message}");
            assert!(
                message.starts_with("option `environment`, line"),
                "{message}"
            );
        }
    }

    #[test]
    fn quoting() {
        let nasty = r#"it's "q" $HOME `x` \ !"#;
        assert_eq!(sh_quote(nasty), r#"'it'\''s "q" $HOME `x` \ !'"#);
        assert_eq!(fish_quote(nasty), r#"'it\'s "q" $HOME `x` \\ !'"#);
        assert_eq!(csh_quote(nasty), r#"'it'\''s "q" $HOME `x` \ \!'"#);
    }

    #[test]
    fn same_settings_same_bytes() {
        let s = Settings {
            bin: "/srv/i/bin".into(),
            virtual_env: Some("/srv/i".into()),
            prompt: "i".into(),
            environment: vec![("A".into(), "1".into())],
        };
        assert_eq!(sh(&s), sh(&s.clone()));
        assert!(sh(&s).contains("VIRTUAL_ENV='/srv/i'\n"));
        let no_venv = Settings {
            virtual_env: None,
            ..s
        };
        for text in [sh(&no_venv), fish(&no_venv), csh(&no_venv)] {
            // Only VIRTUAL_ENV_PROMPT and VIRTUAL_ENV_DISABLE_PROMPT are left.
            let bare = text
                .match_indices("VIRTUAL_ENV")
                .filter(|(i, _)| !text[i + "VIRTUAL_ENV".len()..].starts_with('_'))
                .count();
            assert_eq!(bare, 0, "{text}");
        }
    }
}
