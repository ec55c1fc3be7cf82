/*
 * rbuildout_plugin.h: the rbuildout recipe plugin ABI, version 1.5, for C authors.
 *
 * Mirrors plugin-api/src/abi.rs field for field; a test compiles this header and compares
 * every size and offset with the Rust structs. See that file for the full rules. In short:
 *
 *  - Export one function, rbuildout_plugin_v1, returning a pointer to a static
 *    rb_plugin_descriptor that lives as long as the library (it is never unloaded).
 *  - Strings are rb_str: UTF-8 bytes (ptr, len), borrowed. Strings the host passes are
 *    followed by a NUL byte (not counted in len), so ptr can be used as a C string.
 *  - Results (paths, outputs, the error message) go back through the callbacks in rb_call,
 *    which copy them: nothing the plugin allocates is freed by the host, or the reverse.
 *  - Every struct with a struct_size only grows at the end; check struct_size before
 *    reading a field added in a later minor version (RB_HAS_FIELD).
 *  - Without RB_FLAG_THREAD_SAFE in the descriptor, the host never calls the plugin from two
 *    threads at once, except that while a recipe waits in nested_build the host may call the
 *    plugin again (the nested build may use the same recipes): the waiting thread runs no
 *    plugin code until nested_build returns.
 */
#ifndef RBUILDOUT_PLUGIN_H
#define RBUILDOUT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "RBLDRCP\0" read as a little-endian 64-bit integer. */
#define RB_MAGIC 0x00504352444C4252ULL
#define RB_ABI_MAJOR 1
#define RB_ABI_MINOR 5
#define RB_ENTRY_SYMBOL "rbuildout_plugin_v1"

/* Status codes returned by every function. */
#define RB_OK 0
#define RB_ERROR 1
#define RB_PANIC 2
#define RB_UNSUPPORTED 3
#define RB_NOT_FOUND 4

/* rb_plugin_descriptor.flags */
#define RB_FLAG_THREAD_SAFE 1u
#define RB_FLAG_PANIC_ABORT 2u

/* rb_call.flags */
#define RB_CALL_OFFLINE 1u
#define RB_CALL_NEWEST 2u
#define RB_CALL_LOCKED 4u

/* Log levels; in max_level, 0 means nothing is shown. */
#define RB_LEVEL_ERROR 1u
#define RB_LEVEL_WARN 2u
#define RB_LEVEL_INFO 3u
#define RB_LEVEL_DEBUG 4u
#define RB_LEVEL_TRACE 5u

/* Whether a struct of this type whose struct_size is SIZE has FIELD. */
#define RB_HAS_FIELD(TYPE, FIELD, SIZE) \
    (offsetof(TYPE, FIELD) + sizeof(((TYPE *)0)->FIELD) <= (SIZE))

/* Borrowed UTF-8 text; ptr may be NULL only when len is 0. */
typedef struct rb_str {
    const char *ptr;
    size_t len;
} rb_str;

/* A string literal as an rb_str value, and as a static initializer. */
#define RB_STR(LITERAL) ((rb_str){(LITERAL), sizeof(LITERAL) - 1})
#define RB_STR_INIT(LITERAL) {(LITERAL), sizeof(LITERAL) - 1}

/* Marks the entry symbol exported when building with -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define RB_EXPORT __attribute__((visibility("default")))
#else
#define RB_EXPORT
#endif

typedef struct rb_key_value {
    rb_str key;
    rb_str value;
} rb_key_value;

typedef void (*rb_log_fn)(void *ctx, uint32_t level, rb_str target, rb_str message);

/* What the host offers the plugin as a whole; valid only during init. */
typedef struct rb_host_api {
    size_t struct_size;
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t max_level;
    void *ctx;
    rb_log_fn log; /* logs outside any call; may be NULL */
} rb_host_api;

/*
 * One call of a recipe function; valid only during it. Strings returned by get_option and
 * nested_build are owned by the host and stay valid until the recipe function returns.
 * rbuildout records every [buildout] option a recipe reads with get_option during install
 * and update, with its value, and reinstalls the part when one changes (docs/plugins.md).
 */
typedef struct rb_call {
    size_t struct_size;
    void *ctx; /* pass to every callback */
    rb_str part;
    rb_str buildout_directory;
    uint32_t flags; /* RB_CALL_* */
    const rb_key_value *options; /* sorted by key; lists joined with '\n' */
    size_t option_count;
    rb_log_fn log;
    int32_t (*add_path)(void *ctx, rb_str path);
    int32_t (*set_output)(void *ctx, rb_str name, rb_str value);
    void (*set_error)(void *ctx, rb_str message);
    int32_t (*get_option)(void *ctx, rb_str section, rb_str option, rb_str *value);
    int32_t (*nested_build)(void *ctx, rb_str config, rb_str directory, rb_str *error);
    int32_t (*cancelled)(void *ctx); /* non-zero once the run should stop (Ctrl-C) */
    /*
     * ABI 1.1; a 1.0 host's struct_size ends before it (check RB_HAS_FIELD). RB_OK when path
     * (absolute, or relative to buildout_directory; "." and ".." resolved lexically) is one of
     * the paths the state recorded for this part before this call, or inside one of them;
     * RB_NOT_FOUND otherwise. Ask before replacing a file: never replace one the part did not
     * make.
     */
    int32_t (*owns)(void *ctx, rb_str path);
    /*
     * ABI 1.2; an older host's struct_size ends before it (check RB_HAS_FIELD). RB_OK with
     * *names set to the names of every option of section that resolves, one per line, in the
     * config's order (outputs the section's part published after them); RB_NOT_FOUND when
     * there is no such section. The text is the host's, valid until the call returns.
     */
    int32_t (*option_names)(void *ctx, rb_str section, rb_str *names);
    /*
     * ABI 1.5; an older host's struct_size ends before it (check RB_HAS_FIELD). How far the
     * call has come, for the bar the host may draw under the part's line: kind
     * RB_PROGRESS_COUNT (done of total things of the step label names, a plural noun; total
     * 0 while unknown; another label starts a new step) or RB_PROGRESS_BYTES (done of total
     * bytes of the current step, total 0 when unknown; label: the file, or empty). Report at
     * most every 50 to 100 ms and at the end of a step. RB_OK, RB_UNSUPPORTED for an unknown
     * kind, RB_ERROR for a label that is not UTF-8.
     */
    int32_t (*progress)(void *ctx, uint32_t kind, uint64_t done, uint64_t total, rb_str label);
} rb_call;

/* struct_size of an rb_call from a host of ABI 1.0, which ends with cancelled. */
#define RB_CALL_SIZE_1_0 offsetof(rb_call, owns)
/* struct_size of an rb_call from a host of ABI 1.1, which ends with owns. */
#define RB_CALL_SIZE_1_1 offsetof(rb_call, option_names)
/* struct_size of an rb_call from a host of ABI 1.2, 1.3 or 1.4, which ends with option_names. */
#define RB_CALL_SIZE_1_2 offsetof(rb_call, progress)

/* rb_call.progress kinds */
#define RB_PROGRESS_COUNT 1u
#define RB_PROGRESS_BYTES 2u

typedef int32_t (*rb_recipe_fn)(const rb_call *call);

typedef struct rb_recipe_vtable {
    size_t struct_size;
    rb_recipe_fn install; /* each may be NULL */
    rb_recipe_fn update;
    rb_recipe_fn uninstall;
    /* ABI 1.4; may be NULL. Called for a part the run will install, before the run
     * uninstalls or installs anything: the outputs it sets are published at once, for the
     * parts after it and every install. It may not register paths. */
    rb_recipe_fn prepare;
} rb_recipe_vtable;

typedef struct rb_recipe_entry {
    rb_str name;
    const rb_recipe_vtable *vtable;
} rb_recipe_entry;

/* What run_end is told; valid only during the call. */
typedef struct rb_run_end {
    size_t struct_size;
    rb_str directory; /* the buildout directory of the run that ended */
    int32_t status;   /* RB_OK when every part was installed; RB_ERROR otherwise */
} rb_run_end;

typedef struct rb_plugin_descriptor {
    uint64_t magic;
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t flags;
    size_t struct_size;
    rb_str name;
    rb_str version;
    rb_str built_with;
    int32_t (*init)(const rb_host_api *host); /* may be NULL */
    const rb_recipe_entry *recipes;
    size_t recipe_count;
    /*
     * ABI 1.3; may be NULL. Called once when a run (a nested build too) has finished with its
     * parts, for every plugin it loaded; report there what was gathered over the run's parts.
     * The status returned is ignored. A descriptor of ABI 1.0 to 1.2 ends before it.
     */
    int32_t (*run_end)(const rb_host_api *host, const rb_run_end *end);
} rb_plugin_descriptor;

/* struct_size of a descriptor of ABI 1.0 to 1.2, which ends with recipe_count. */
#define RB_DESCRIPTOR_SIZE_1_0 offsetof(rb_plugin_descriptor, run_end)

/* The one symbol a plugin exports (define it with RB_EXPORT). */
const rb_plugin_descriptor *rbuildout_plugin_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* RBUILDOUT_PLUGIN_H */
