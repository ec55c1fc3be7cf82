/*
 * A hostile recipe plugin in C, against plugin-api/include/rbuildout_plugin.h only (and the
 * option lookup the C test plugins share, ../c/option.h), for the
 * engine's safety tests (tests/it/safety_engine.rs). Plugin `hostile`, recipe `register`:
 *
 *  - `paths`: one path per line, each registered exactly as written (the engine's files,
 *    another part's path, a folder outside the instance...);
 *  - `nul-path`: registered with a NUL byte and "evil" after it;
 *  - `outputs`: one `name=value` per line, each published as written;
 *  - `install-fails = "true"`: install fails after registering and publishing;
 *  - `uninstall-fails = "true"`: the uninstall hook always fails.
 *
 * It creates nothing: it only claims.
 */
#include <string.h>

#include "rbuildout_plugin.h"
#include "../c/option.h"

static int32_t fail(const rb_call *call, const char *message) {
    rb_str s = {message, strlen(message)};
    call->set_error(call->ctx, s);
    return RB_ERROR;
}

static int32_t install(const rb_call *call) {
    const char *paths = option(call, "paths");
    while (paths != NULL && *paths != '\0') {
        const char *end = strchr(paths, '\n');
        size_t len = end ? (size_t)(end - paths) : strlen(paths);
        if (len > 0) {
            rb_str s = {paths, len};
            if (call->add_path(call->ctx, s) != RB_OK) {
                return fail(call, "the host refused a path");
            }
        }
        paths = end ? end + 1 : NULL;
    }
    const char *nul = option(call, "nul-path");
    if (nul != NULL) {
        char buffer[4096];
        size_t len = strlen(nul);
        if (len + 5 > sizeof buffer) {
            return fail(call, "option `nul-path` is too long");
        }
        memcpy(buffer, nul, len);
        memcpy(buffer + len, "\0evil", 5);
        rb_str s = {buffer, len + 5};
        if (call->add_path(call->ctx, s) != RB_OK) {
            return fail(call, "the host refused a path");
        }
    }
    const char *outputs = option(call, "outputs");
    while (outputs != NULL && *outputs != '\0') {
        const char *end = strchr(outputs, '\n');
        size_t len = end ? (size_t)(end - outputs) : strlen(outputs);
        const char *eq = memchr(outputs, '=', len);
        if (eq != NULL) {
            rb_str name = {outputs, (size_t)(eq - outputs)};
            rb_str value = {eq + 1, len - (size_t)(eq - outputs) - 1};
            if (call->set_output(call->ctx, name, value) != RB_OK) {
                return fail(call, "the host refused an output");
            }
        }
        outputs = end ? end + 1 : NULL;
    }
    const char *fails = option(call, "install-fails");
    if (fails != NULL && strcmp(fails, "true") == 0) {
        return fail(call, "this install fails on purpose");
    }
    return RB_OK;
}

static int32_t uninstall(const rb_call *call) {
    const char *fails = option(call, "uninstall-fails");
    if (fails != NULL && strcmp(fails, "true") == 0) {
        return fail(call, "this uninstall hook always fails");
    }
    return RB_OK;
}

static const rb_recipe_vtable register_vtable = {
    sizeof(rb_recipe_vtable), install, NULL /* no update */, uninstall, NULL /* no prepare */,
};

static const rb_recipe_entry recipes[] = {
    {RB_STR_INIT("register"), &register_vtable},
};

static const rb_plugin_descriptor descriptor = {
    RB_MAGIC,
    RB_ABI_MAJOR,
    RB_ABI_MINOR,
    0, /* not thread-safe: the host serialises calls */
    sizeof(rb_plugin_descriptor),
    RB_STR_INIT("hostile"),
    RB_STR_INIT("1.0.0"),
    RB_STR_INIT("C"),
    NULL, /* no init */
    recipes,
    sizeof recipes / sizeof recipes[0],
    NULL, /* no run_end */
};

RB_EXPORT const rb_plugin_descriptor *rbuildout_plugin_v1(void) {
    return &descriptor;
}
