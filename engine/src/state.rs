//! The state file: what is installed, with which options, owning which paths.
