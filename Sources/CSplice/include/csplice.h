// splice(2) and pipe2(2) for HiveGate's Tunnel: Glibc's Swift module does not export them (they need
// _GNU_SOURCE), so these two functions are the only C in the package. No system header here: the
// implementation includes them, so this module cannot clash with Glibc's.
#ifndef CSPLICE_H
#define CSPLICE_H

/// Moves up to `count` bytes from `from` to `to` (one of them a pipe) inside the kernel; -1 and errno on failure.
long csplice_move(int from, int to, unsigned long count, int nonblock);

/// A pipe whose ends close on exec, sized to `size` bytes when the kernel allows; 0 on success.
int csplice_pipe(int fds[2], int size);

#endif
