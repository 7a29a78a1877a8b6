/*
 * c_hello: a switchyard module written in C, using nothing but switchyard_module.h.
 * It registers an application `c_hello` (logs, then rejects the call) and a command
 * `c_hello` (replies "hello from C"). Built into a .so by core/loader/tests/loader.rs.
 */
#include <stdlib.h>
#include <string.h>

#include "../../../abi/switchyard_module.h"

/* The module's state, made by load, freed by unload. */
typedef struct Hello {
    const SyHost *host; /* valid until unload returns */
    unsigned long runs;
} Hello;

static int hello_load(const SyHost *host, void **state) {
    Hello *hello = calloc(1, sizeof *hello);
    if (hello == NULL) {
        return SY_ERR;
    }
    hello->host = host;
    if (host->register_interface(host->ctx, SY_IF_APPLICATION, "c_hello",
                                 "c_hello: says hello from C, then rejects the call") != SY_OK ||
        host->register_interface(host->ctx, SY_IF_COMMAND, "c_hello",
                                 "c_hello: replies hello from C") != SY_OK) {
        free(hello);
        return SY_ERR;
    }
    host->log(host->ctx, SY_LOG_INFO, "c_hello loaded");
    *state = hello;
    return SY_OK;
}

static void hello_unload(void *state) {
    Hello *hello = state;
    hello->host->log(hello->host->ctx, SY_LOG_INFO, "c_hello unloaded");
    free(hello);
}

static void reply_text(const SyReply *reply, const char *text) {
    reply->write(reply->ctx, (const uint8_t *)text, strlen(text));
}

static int hello_on_message(void *state, const char *name, const uint8_t *body, size_t len,
                            const SyReply *reply) {
    Hello *hello = state;
    (void)body;
    (void)len;
    if (strcmp(name, "app.run") == 0) {
        /* The call runs these applications in place of c_hello. */
        hello->runs++;
        const char *line = "{\"line\":\"show calls\"}";
        hello->host->send(hello->host->ctx, "console", (const uint8_t *)line, strlen(line));
        reply_text(reply, "{\"actions\":[[\"log\",\"INFO hello from C\"],[\"hangup\",\"CALL_REJECTED\"]]}");
        return SY_OK;
    }
    if (strcmp(name, "command") == 0) {
        reply_text(reply, "{\"ok\":true,\"text\":\"hello from C\"}");
        return SY_OK;
    }
    if (strcmp(name, "module.config") == 0 || strcmp(name, "module.reload") == 0) {
        reply_text(reply, "{}");
        return SY_OK;
    }
    return SY_ERR_UNKNOWN;
}

const SyModule switchyard_module = {
    .magic = SY_MAGIC,
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(SyModule),
    .build_hash = "c_hello 0.1.0 abi1.0",
    .name = "c_hello",
    .version = "0.1.0",
    .load = hello_load,
    .unload = hello_unload,
    .on_message = hello_on_message,
    .on_frame = NULL, /* takes no media */
};
