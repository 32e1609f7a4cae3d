// splice(2) and pipe2(2) for HiveGate's Tunnel (Glibc's Swift module does not export them: they need
// _GNU_SOURCE), and passing a descriptor over a unix socket (SCM_RIGHTS: its CMSG_* macros do not import
// into Swift): the only C in the package. No system header here: the
// implementation includes them, so this module cannot clash with Glibc's.
#ifndef CSPLICE_H
#define CSPLICE_H

/// Moves up to `count` bytes from `from` to `to` (one of them a pipe) inside the kernel; -1 and errno on failure.
long csplice_move(int from, int to, unsigned long count, int nonblock);

/// A pipe whose ends close on exec, sized to `size` bytes when the kernel allows; 0 on success.
int csplice_pipe(int fds[2], int size);

/// Sends one byte with `fd` attached (SCM_RIGHTS); 0 on success.
int csplice_send_fd(int sock, int fd);

/// Receives one byte into `byte` and the descriptor sent with it, if any, into `fd` (-1 when none; close-on-exec;
/// a second one is closed). Returns what recvmsg returned (1, 0 at end, -1 on error).
long csplice_recv_fd(int sock, unsigned char *byte, int *fd);

/// 1 when `fd` is a connected-or-connectable stream socket (not a file, not a listening socket), else 0.
int csplice_is_stream_socket(int fd);

#endif
