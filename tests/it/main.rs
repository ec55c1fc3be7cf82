//! End-to-end tests of the rbuildout binary; one module per area.

mod activate;
mod config_cases;
mod config_commands;
mod config_errors;
mod config_limits;
mod crash;
mod develop;
mod egg;
mod egg_hostile;
mod egg_versions;
mod fleet;
mod lava;
mod lifecycle;
mod mkdir_template;
mod output;
mod plugins;
mod product;
mod safety_converge;
mod safety_engine;
mod safety_recipes;
mod scripts;
mod snap;
mod symlink;
mod zc_egg;
mod zc_recipes;
mod zc_testrunner;
