/*
 * Libraries that are not valid v1 plugins, one per value of VARIANT (compile with
 * -DVARIANT=n); the plugin host tests build each and check the message names the file.
 *
 *   1  exports only rbuildout_plugin_v2 (a plugin for a later ABI major)
 *   2  exports rbuildout_plugin_v1 but its descriptor says abi_major 2
 *   3  exports rbuildout_plugin_v1 with a bad magic number
 *   4  a descriptor whose struct_size is smaller than v1.0's
 *   5  a plugin name that is not UTF-8
 *   6  an init function that refuses to start (returns 5)
 *   7  the entry returns NULL
 *   8  a valid plugin flagged RB_FLAG_PANIC_ABORT (loads, with a warning)
 *   9  a valid plugin that needs a symbol no library defines (refused at load: RTLD_NOW)
 *  10  a valid plugin of ABI 1.2: struct_size ends before run_end, where a bogus pointer
 *      lies (loads; the host must never read it, or it would call 0x1 at the end of a run)
 */
#include "rbuildout_plugin.h"

#ifndef VARIANT
#error "compile with -DVARIANT=n"
#endif

#if VARIANT == 9
extern int32_t rb_symbol_nobody_defines(void);
#endif

static int32_t install(const rb_call *call) {
    (void)call;
#if VARIANT == 9
    return rb_symbol_nobody_defines();
#else
    return RB_OK;
#endif
}

static int32_t refuse(const rb_host_api *host) {
    (void)host;
    return 5;
}

static const rb_recipe_vtable vtable = {sizeof(rb_recipe_vtable), install, NULL, NULL};
static const rb_recipe_entry recipes[] = {{RB_STR_INIT("default"), &vtable}};

static const rb_plugin_descriptor descriptor = {
    VARIANT == 3 ? 0x1122334455667788ULL : RB_MAGIC,
    VARIANT == 2 ? 2 : RB_ABI_MAJOR,
    VARIANT == 10 ? 2 : RB_ABI_MINOR,
    VARIANT == 8 ? RB_FLAG_PANIC_ABORT : 0,
    VARIANT == 4 ? 16 : VARIANT == 10 ? RB_DESCRIPTOR_SIZE_1_0 : sizeof(rb_plugin_descriptor),
#if VARIANT == 5
    RB_STR_INIT("bad\xff"),
#else
    RB_STR_INIT("broken"),
#endif
    RB_STR_INIT("0.1"),
    RB_STR_INIT("C"),
    VARIANT == 6 ? refuse : NULL,
    recipes,
    1,
#if VARIANT == 10
    (int32_t (*)(const rb_host_api *, const rb_run_end *))1,
#else
    NULL,
#endif
};

#if VARIANT == 1
RB_EXPORT const void *rbuildout_plugin_v2(void) {
    return &descriptor;
}
#elif VARIANT == 7
RB_EXPORT const rb_plugin_descriptor *rbuildout_plugin_v1(void) {
    return descriptor.magic == 0 ? &descriptor : (const rb_plugin_descriptor *)0;
}
#else
RB_EXPORT const rb_plugin_descriptor *rbuildout_plugin_v1(void) {
    return &descriptor;
}
#endif
