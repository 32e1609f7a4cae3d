#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>
#include "csplice.h"

long csplice_move(int from, int to, unsigned long count, int nonblock) {
    return (long)splice(from, NULL, to, NULL, (size_t)count, SPLICE_F_MOVE | (nonblock ? SPLICE_F_NONBLOCK : 0));
}

int csplice_pipe(int fds[2], int size) {
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    (void)fcntl(fds[1], F_SETPIPE_SZ, size);
    return 0;
}
