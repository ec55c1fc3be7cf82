//! plugins tests.
