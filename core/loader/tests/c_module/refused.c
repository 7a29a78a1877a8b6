/*
 * A module the loader must refuse, shaped by -D flags from core/loader/tests/loader.rs:
 *   SY_ABI_MAJOR_OVERRIDE / MODULE_ABI_MINOR / MODULE_MAGIC   a wrong version or magic
 *   MODULE_NAME=NULL                                          a null name
 *   TRUNCATED                                                 an entry of the header only
 * Its load() writes MARKER_PATH: a refused module must leave no marker (no code ran).
 * Built with no flags, it is accepted and its load() runs (the test's control).
 */
#include <stdio.h>

#include "../../../abi/switchyard_module.h"

#ifndef SY_ABI_MAJOR_OVERRIDE
#define SY_ABI_MAJOR_OVERRIDE SY_ABI_MAJOR
#endif
#ifndef MODULE_ABI_MINOR
#define MODULE_ABI_MINOR SY_ABI_MINOR
#endif
#ifndef MODULE_MAGIC
#define MODULE_MAGIC SY_MAGIC
#endif
#ifndef MODULE_NAME
#define MODULE_NAME "mod_refused"
#endif

static int refused_load(const SyHost *host, void **state) {
    FILE *marker = fopen(MARKER_PATH, "w");
    if (marker != NULL) {
        fputs("load ran\n", marker);
        fclose(marker);
    }
    (void)host;
    *state = NULL;
    return SY_OK;
}

#ifdef TRUNCATED
const SyModuleHeader switchyard_module = {
    MODULE_MAGIC, SY_ABI_MAJOR_OVERRIDE, MODULE_ABI_MINOR, sizeof(SyModuleHeader),
};
/* Keeps refused_load in the object, as a real (broken) module would have it. */
int (*const refused_entry_point)(const SyHost *, void **) = refused_load;
#else
const SyModule switchyard_module = {
    .magic = MODULE_MAGIC,
    .abi_major = SY_ABI_MAJOR_OVERRIDE,
    .abi_minor = MODULE_ABI_MINOR,
    .size = sizeof(SyModule),
    .build_hash = "refused 0.0.1",
    .name = MODULE_NAME,
    .version = "0.0.1",
    .load = refused_load,
    .unload = NULL,
    .on_message = NULL,
    .on_frame = NULL,
};
#endif
