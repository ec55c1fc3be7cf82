//! End-to-end tests of the rbuildout binary; one module per area.

mod config_cases;
mod config_commands;
mod config_errors;
mod lifecycle;
mod plugins;
