//! rbuildout: reads a parts config, orders its parts and runs their recipe plugins.
//!
//! The data goes through one module per stage: [`config`] reads, extends and substitutes;
//! [`graph`] finds the parts and their order; [`plugin`] loads recipe libraries; [`state`]
//! records what is installed; [`run`] installs, updates and uninstalls.

pub mod config;
pub mod graph;
pub mod plugin;
pub mod run;
pub mod state;
