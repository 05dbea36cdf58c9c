/* fuzz_common.c: scratch files for the harnesses (see fuzz_common.h). */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[64];

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", g_dir);
}

const char *fz_dir(void)
{
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "/tmp/quench-fuzz-XXXXXX");
        if (!mkdtemp(g_dir)) { perror("mkdtemp"); abort(); }
        atexit(remove_dir);
    }
    return g_dir;
}

const char *fz_write(const char *name, const uint8_t *data, size_t size)
{
    static char paths[8][256];
    static int slot;
    char *path = paths[slot++ % 8];
    snprintf(path, 256, "%s/%s", fz_dir(), name);
    FILE *fp = fopen(path, "wb");
    if (!fp || (size && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0) { perror(path); abort(); }
    return path;
}

void fz_write_parts(const uint8_t *data, size_t size, const char *const *names, size_t n)
{
    size_t sep = strlen(FZ_SEPARATOR);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *end = size >= sep ? memmem(data, size, FZ_SEPARATOR, sep) : NULL;
        size_t len = end ? (size_t)(end - data) : size;
        fz_write(names[i], data, len);
        data += end ? len + sep : len;
        size -= end ? len + sep : len;
    }
}

uint8_t fz_touch(const void *p, size_t n)
{
    const volatile uint8_t *b = p;
    uint8_t x = 0;
    for (size_t i = 0; i < n; i++) x ^= b[i];
    return x;
}
