//! Reading configs: TOML and legacy buildout.cfg, extends, macros, substitution.
