//! config_cases tests.
