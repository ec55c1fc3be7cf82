/*
 * A recipe plugin in C that crashes the process, written against rbuildout_plugin.h only
 * (with the option lookup the C test plugins share, ../c/option.h);
 * tests/it/crash.rs compiles it with gcc and checks the host names the part and library.
 *
 * Plugin `crash`, recipes:
 *   segv    writes and registers `path` (relative to the buildout directory), then
 *           dereferences NULL
 *   abort   calls abort()
 *   thread  dereferences NULL on a thread it starts (not the thread the host called)
 *
 * Compiled with -DCRASH_IN_INIT, its init function dereferences NULL instead (the host calls
 * it when it loads the library).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rbuildout_plugin.h"
#include "../c/option.h"

/* Read through a volatile pointer so the compiler keeps the faulting load. */
static int null_read(void) {
    volatile int *volatile nowhere = NULL;
    return *nowhere;
}

static int32_t segv(const rb_call *call) {
    const char *path = option(call, "path");
    if (path != NULL) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", call->buildout_directory.ptr, path);
        FILE *file = fopen(full, "w");
        if (file != NULL) {
            fputs("half done\n", file);
            fclose(file);
        }
        rb_str s = {full, strlen(full)};
        call->add_path(call->ctx, s);
    }
    return null_read();
}

static int32_t do_abort(const rb_call *call) {
    (void)call;
    abort();
}

static void *crash_thread(void *arg) {
    (void)arg;
    null_read();
    return NULL;
}

static int32_t thread(const rb_call *call) {
    (void)call;
    pthread_t t;
    if (pthread_create(&t, NULL, crash_thread, NULL) != 0) {
        return RB_ERROR;
    }
    pthread_join(t, NULL);
    return RB_OK;
}

#ifdef CRASH_IN_INIT
static int32_t init(const rb_host_api *host) {
    (void)host;
    return null_read();
}
#define INIT init
#else
#define INIT NULL
#endif

static const rb_recipe_vtable segv_vtable = {sizeof(rb_recipe_vtable), segv, NULL, NULL};
static const rb_recipe_vtable abort_vtable = {sizeof(rb_recipe_vtable), do_abort, NULL, NULL};
static const rb_recipe_vtable thread_vtable = {sizeof(rb_recipe_vtable), thread, NULL, NULL};

static const rb_recipe_entry recipes[] = {
    {RB_STR_INIT("segv"), &segv_vtable},
    {RB_STR_INIT("abort"), &abort_vtable},
    {RB_STR_INIT("thread"), &thread_vtable},
};

static const rb_plugin_descriptor descriptor = {
    RB_MAGIC,
    RB_ABI_MAJOR,
    RB_ABI_MINOR,
    RB_FLAG_THREAD_SAFE,
    sizeof(rb_plugin_descriptor),
    RB_STR_INIT("crash"),
    RB_STR_INIT("0.1"),
    RB_STR_INIT("C"),
    INIT,
    recipes,
    sizeof recipes / sizeof recipes[0],
    NULL, /* no run_end */
};

RB_EXPORT const rb_plugin_descriptor *rbuildout_plugin_v1(void) {
    return &descriptor;
}
