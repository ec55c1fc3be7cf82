//! config_errors tests.
