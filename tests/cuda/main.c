/* main.c: `make cuda-test` runs these tests only where a CUDA GPU answers.
   The probe runs in a child process: Criterion forks a process per test, and
   a parent that has touched the CUDA driver leaves its children unable to. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/device.h"

int main(int argc, char *argv[])
{
    int fds[2];
    if (pipe(fds) != 0) { perror("cuda-test: pipe"); return 1; }
    pid_t pid = fork();
    if (pid < 0) { perror("cuda-test: fork"); return 1; }
    if (pid == 0) {
        qn_err err = {0};
        qn_status s = qn_kernels_set_device(QN_DEVICE_CUDA, &err);
        if (s) (void)!write(fds[1], err.msg, strlen(err.msg));
        _exit(s ? 1 : 0);
    }
    close(fds[1]);
    char why[600] = { 0 };
    ssize_t got = read(fds[0], why, sizeof why - 1);
    (void)got;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "cuda-test: %s\ncuda-test: NO TEST RAN: these tests need a CUDA GPU (sm_90 or later) "
                        "and a build with nvcc\n", why[0] ? why : "the device probe crashed");
        return 1;
    }
    struct criterion_test_set *tests = criterion_initialize();
    int result = 0;
    if (criterion_handle_args(argc, argv, true)) result = !criterion_run_all_tests(tests);
    criterion_finalize(tests);
    return result;
}
