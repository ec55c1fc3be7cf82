/*
 * option.h: the option lookup the C test plugins share (crash, hostile). They speak the
 * bare ABI header, as the C example does; this is the one loop each would repeat.
 */
#ifndef RBUILDOUT_TEST_OPTION_H
#define RBUILDOUT_TEST_OPTION_H

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

#endif
