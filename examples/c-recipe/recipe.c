/*
 * An rbuildout recipe plugin in C, written against plugin-api/include/rbuildout_plugin.h only.
 *
 * Plugin `c-example`, recipe `default`: writes "<greeting>, <part>!" to the file `path`
 * (relative to the buildout directory), registers it, publishes it as `written`, and logs.
 * `greeting` defaults to ${buildout:greeting} when that exists, else "hello". Its uninstall
 * hook only logs: the engine removes the registered file itself. On a host of ABI 1.5 it
 * reports its one step's progress (`1/1 files written`, a bar on a terminal).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rbuildout_plugin.h"

/* The value of one of the part's options, or NULL. Host strings end in a NUL. */
static const char *option(const rb_call *call, const char *key) {
    size_t key_len = strlen(key);
    for (size_t i = 0; i < call->option_count; i++) {
        const rb_key_value *kv = &call->options[i];
        if (kv->key.len == key_len && memcmp(kv->key.ptr, key, key_len) == 0) {
            return kv->value.ptr;
        }
    }
    return NULL;
}

static rb_str str(const char *text) {
    rb_str s = {text, strlen(text)};
    return s;
}

static int32_t fail(const rb_call *call, const char *message) {
    call->set_error(call->ctx, str(message));
    return RB_ERROR;
}

static int32_t install(const rb_call *call) {
    const char *path = option(call, "path");
    if (path == NULL) {
        return fail(call, "option `path` is required");
    }
    const char *greeting = option(call, "greeting");
    rb_str from_buildout;
    if (greeting == NULL &&
        call->get_option(call->ctx, RB_STR("buildout"), RB_STR("greeting"), &from_buildout) == RB_OK) {
        greeting = from_buildout.ptr; /* valid until this function returns */
    }
    if (greeting == NULL) {
        greeting = "hello";
    }

    char full[4096];
    int n = path[0] == '/' ? snprintf(full, sizeof full, "%s", path)
                           : snprintf(full, sizeof full, "%s/%s", call->buildout_directory.ptr, path);
    if (n < 0 || (size_t)n >= sizeof full) {
        return fail(call, "option `path` is too long");
    }
    FILE *file = fopen(full, "w");
    if (file == NULL) {
        char message[4200];
        snprintf(message, sizeof message, "cannot write %s: %s", full, strerror(errno));
        return fail(call, message);
    }
    fprintf(file, "%s, %s!\n", greeting, call->part.ptr);
    if (fclose(file) != 0) {
        return fail(call, "cannot finish writing the file");
    }
    if (call->add_path(call->ctx, str(full)) != RB_OK ||
        call->set_output(call->ctx, RB_STR("written"), str(full)) != RB_OK) {
        return fail(call, "the host refused the result");
    }
    /* A field added in ABI 1.5: read only when the host's call has it. */
    if (RB_HAS_FIELD(rb_call, progress, call->struct_size) && call->progress != NULL) {
        call->progress(call->ctx, RB_PROGRESS_COUNT, 1, 1, RB_STR("files written"));
    }
    char message[4200];
    snprintf(message, sizeof message, "wrote %s", full);
    call->log(call->ctx, RB_LEVEL_INFO, RB_STR("c-example"), str(message));
    return RB_OK;
}

static int32_t uninstall(const rb_call *call) {
    call->log(call->ctx, RB_LEVEL_INFO, RB_STR("c-example"), RB_STR("uninstalling"));
    return RB_OK;
}

static const rb_recipe_vtable default_vtable = {
    sizeof(rb_recipe_vtable), install, NULL /* no update */, uninstall, NULL /* no prepare */,
};

static const rb_recipe_entry recipes[] = {
    {RB_STR_INIT("default"), &default_vtable},
};

static const rb_plugin_descriptor descriptor = {
    RB_MAGIC,
    RB_ABI_MAJOR,
    RB_ABI_MINOR,
    0, /* not thread-safe: the host serialises calls */
    sizeof(rb_plugin_descriptor),
    RB_STR_INIT("c-example"),
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
