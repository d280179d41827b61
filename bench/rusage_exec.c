/* rusage_exec: run a command, then print its wall time and peak RSS.
 *
 *   rusage_exec TIMEOUT_SECS PROG [ARGS...]
 *
 * The command's stdout and stderr are inherited. After it exits, one line
 *   @@rusage status=N wall_ns=N maxrss_kib=N
 * goes to stdout. Used by bench/measure.py instead of Python's own
 * os.wait4 because a child spawned by Python inherits the Python
 * interpreter's peak RSS across exec (Linux keeps the old mm's high-water
 * mark in ru_maxrss), which would report ~10 MiB for any program. This
 * helper is a few hundred KiB, so that floor stays small (see the
 * /bin/true row the bench prints). The child gets alarm(TIMEOUT_SECS)
 * before exec, so a hung run ends with SIGALRM. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: rusage_exec TIMEOUT_SECS PROG [ARGS...]\n");
        return 2;
    }
    unsigned timeout = (unsigned)strtoul(argv[1], NULL, 10);
    if (timeout == 0 || timeout > 3600) timeout = 60;
    fflush(stdout);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("rusage_exec: fork");
        return 2;
    }
    if (pid == 0) {
        alarm(timeout);
        execvp(argv[2], argv + 2);
        perror("rusage_exec: exec");
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    pid_t r;
    do {
        r = wait4(pid, &status, 0, &ru);
    } while (r < 0 && errno == EINTR);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (r < 0) {
        perror("rusage_exec: wait4");
        return 2;
    }
    long long wall_ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL +
                        (t1.tv_nsec - t0.tv_nsec);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    printf("\n@@rusage status=%d wall_ns=%lld maxrss_kib=%ld\n", code, wall_ns,
           ru.ru_maxrss);
    return 0;
}
