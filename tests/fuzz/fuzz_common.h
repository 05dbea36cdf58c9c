/* fuzz_common.h: what every libFuzzer harness of tests/fuzz needs. The readers
   take paths, so an input is written to a scratch folder (one per process,
   removed at exit) and read back from there; inputs for a folder reader are
   several files joined by FZ_SEPARATOR, in the order the harness names them.
   Built only by `make fuzz` (clang -fsanitize=fuzzer,address,undefined). */
#ifndef QN_FUZZ_COMMON_H
#define QN_FUZZ_COMMON_H
#include <stddef.h>
#include <stdint.h>

#define FZ_SEPARATOR "\n#quench-fuzz-file#\n"

/* The scratch folder of this process. */
const char *fz_dir(void);
/* Writes data to fz_dir()/name (replacing it) and returns the path (static per name slot). */
const char *fz_write(const char *name, const uint8_t *data, size_t size);
/* Splits data at FZ_SEPARATOR and writes part i to names[i] (missing parts: empty files). */
void        fz_write_parts(const uint8_t *data, size_t size, const char *const *names, size_t n);
/* Reads every byte of a buffer, so ASan sees an out-of-bounds pointer. */
uint8_t     fz_touch(const void *p, size_t n);

#endif
