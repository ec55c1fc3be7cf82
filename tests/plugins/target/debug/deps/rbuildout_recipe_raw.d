/work/main/tests/plugins/target/debug/deps/rbuildout_recipe_raw.d: raw/src/lib.rs

/work/main/tests/plugins/target/debug/deps/librbuildout_recipe_raw.so: raw/src/lib.rs

raw/src/lib.rs:
