//! Installing, updating and uninstalling parts.

pub mod lock;
pub mod paths;
pub mod plan;
