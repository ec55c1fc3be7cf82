//! The stable C ABI between rbuildout and its recipe plugins, and the safe SDK to write them.
