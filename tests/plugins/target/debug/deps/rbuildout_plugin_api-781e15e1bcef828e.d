/work/main/tests/plugins/target/debug/deps/rbuildout_plugin_api-781e15e1bcef828e.d: /work/main/plugin-api/src/lib.rs /work/main/plugin-api/src/abi.rs /work/main/plugin-api/src/sdk/mod.rs /work/main/plugin-api/src/sdk/bridge.rs /work/main/plugin-api/src/sdk/buildout.rs /work/main/plugin-api/src/sdk/context.rs /work/main/plugin-api/src/sdk/develop.rs /work/main/plugin-api/src/sdk/export.rs /work/main/plugin-api/src/sdk/files.rs /work/main/plugin-api/src/sdk/options.rs

/work/main/tests/plugins/target/debug/deps/librbuildout_plugin_api-781e15e1bcef828e.rlib: /work/main/plugin-api/src/lib.rs /work/main/plugin-api/src/abi.rs /work/main/plugin-api/src/sdk/mod.rs /work/main/plugin-api/src/sdk/bridge.rs /work/main/plugin-api/src/sdk/buildout.rs /work/main/plugin-api/src/sdk/context.rs /work/main/plugin-api/src/sdk/develop.rs /work/main/plugin-api/src/sdk/export.rs /work/main/plugin-api/src/sdk/files.rs /work/main/plugin-api/src/sdk/options.rs

/work/main/tests/plugins/target/debug/deps/librbuildout_plugin_api-781e15e1bcef828e.rmeta: /work/main/plugin-api/src/lib.rs /work/main/plugin-api/src/abi.rs /work/main/plugin-api/src/sdk/mod.rs /work/main/plugin-api/src/sdk/bridge.rs /work/main/plugin-api/src/sdk/buildout.rs /work/main/plugin-api/src/sdk/context.rs /work/main/plugin-api/src/sdk/develop.rs /work/main/plugin-api/src/sdk/export.rs /work/main/plugin-api/src/sdk/files.rs /work/main/plugin-api/src/sdk/options.rs

/work/main/plugin-api/src/lib.rs:
/work/main/plugin-api/src/abi.rs:
/work/main/plugin-api/src/sdk/mod.rs:
/work/main/plugin-api/src/sdk/bridge.rs:
/work/main/plugin-api/src/sdk/buildout.rs:
/work/main/plugin-api/src/sdk/context.rs:
/work/main/plugin-api/src/sdk/develop.rs:
/work/main/plugin-api/src/sdk/export.rs:
/work/main/plugin-api/src/sdk/files.rs:
/work/main/plugin-api/src/sdk/options.rs:

# env-dep:CARGO_PKG_VERSION=0.1.0
