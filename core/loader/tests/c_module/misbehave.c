/*
 * A module that misuses the host table, to show the loader answers with codes instead of
 * crashing: an unknown interface kind, a null name, a registration after load, a null body
 * with a length, a non-UTF-8 log line, two replies to one message. Its `codes` message
 * replies what each call returned, as JSON.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../../../abi/switchyard_module.h"

typedef struct Misbehave {
    const SyHost *host;
    int bad_kind;
    int null_name;
} Misbehave;

static int misbehave_load(const SyHost *host, void **state) {
    Misbehave *m = calloc(1, sizeof *m);
    if (m == NULL) {
        return SY_ERR;
    }
    m->host = host;
    m->bad_kind = host->register_interface(host->ctx, 99, "odd", "an unknown kind");
    m->null_name = host->register_interface(host->ctx, SY_IF_COMMAND, NULL, "no name");
    host->log(host->ctx, SY_LOG_WARN, "bad byte \xff here");
    *state = m;
    return SY_OK;
}

static void misbehave_unload(void *state) {
    free(state);
}

static int misbehave_on_message(void *state, const char *name, const uint8_t *body, size_t len,
                                const SyReply *reply) {
    Misbehave *m = state;
    const SyHost *host = m->host;
    char text[256];
    (void)name;
    (void)body;
    (void)len;
    int late = host->register_interface(host->ctx, SY_IF_COMMAND, "late", "after load");
    int send_null = host->send(host->ctx, "console", NULL, 5);
    int n = snprintf(text, sizeof text,
                     "{\"bad_kind\":%d,\"null_name\":%d,\"late\":%d,\"send_null\":%d}",
                     m->bad_kind, m->null_name, late, send_null);
    reply->write(reply->ctx, (const uint8_t *)"first reply", 11);
    reply->write(reply->ctx, (const uint8_t *)text, (size_t)n);
    return SY_OK;
}

const SyModule switchyard_module = {
    .magic = SY_MAGIC,
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(SyModule),
    .build_hash = "misbehave",
    .name = "mod_misbehave",
    .version = "0.0.1",
    .load = misbehave_load,
    .unload = misbehave_unload,
    .on_message = misbehave_on_message,
    .on_frame = NULL,
};
