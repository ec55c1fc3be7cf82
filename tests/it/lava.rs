//! The LAVA-style instance end to end (SPEC §5.6): written with the example.
