//! Finding and loading recipe plugins, and checking their ABI.
