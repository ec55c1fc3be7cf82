/work/main/tests/plugins/target/debug/deps/rbuildout_recipe_testkit.d: testkit/src/lib.rs

/work/main/tests/plugins/target/debug/deps/librbuildout_recipe_testkit.so: testkit/src/lib.rs

testkit/src/lib.rs:

# env-dep:CARGO_PKG_VERSION=0.1.0
