//! Tests of the plugin host against real plugin libraries.
