//! `rbuildout query [SECTION:]OPTION`: print one resolved value.

use clap::{Arg, ArgMatches, Command};

use rbuildout::config::{Diagnostic, Error, ErrorKind, Value};

use super::annotate::{apply_state_outputs, config_failure, load_config};
use super::{Failure, Global, Outcome};

pub fn cli() -> Command {
    Command::new("query")
        .about("Print one resolved option value")
        .long_about(
            "Print the fully substituted value of one option on stdout: a string as is, a list \
             one element per line. The section defaults to `buildout`. Loads no plugin; recipe \
             outputs come from the installed state, and a reference to an output not known yet \
             stays as written.",
        )
        .arg(
            Arg::new("option")
                .value_name("[SECTION:]OPTION")
                .required(true)
                .help("The option to print, e.g. `buildout:parts` or `eggs-directory`"),
        )
}

pub fn exec(g: &Global, m: &ArgMatches) -> Outcome {
    let arg = m.get_one::<String>("option").cloned().unwrap_or_default();
    let (section, option) = match arg.split(':').collect::<Vec<_>>().as_slice() {
        [o] => ("buildout".to_owned(), o.to_string()),
        [s, o] => (s.to_string(), o.to_string()),
        _ => {
            return Err(config_failure(Error::plain(
                ErrorKind::CommandLine,
                format!("`{arg}` is not SECTION:OPTION (too many colons)"),
            )));
        }
    };
    let config = load_config(g)?;
    if !config.has_section(&section) {
        return Err(Failure::Config(
            Error::plain(
                ErrorKind::MissingSection,
                format!("the section [{section}] is not defined"),
            )
            .to_string(),
        ));
    }
    let mut resolver = config.resolver();
    resolver.set_lenient(true);
    apply_state_outputs(&mut resolver);
    match resolver
        .get_opt(&section, &option)
        .map_err(config_failure)?
    {
        Some(Value::Str(s)) => println!("{s}"),
        Some(Value::List(l)) => {
            for e in l {
                println!("{e}");
            }
        }
        None => {
            return Err(config_failure(
                config.error(
                    Diagnostic::new(
                        ErrorKind::MissingOption,
                        format!("missing option {section}:{option}"),
                    )
                    .at(
                        config.section_span(&section),
                        format!("section [{section}] has no option `{option}`"),
                    ),
                ),
            ));
        }
    }
    Ok(())
}
