//! Installing, updating and uninstalling parts.
