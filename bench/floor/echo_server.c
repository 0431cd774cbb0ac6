/* File: bench/floor/echo_server.c
 *
 * The raw-socket floor for the Python benchmarks (shared/DESIGN.md,
 * "Performance"): the cheapest server a framed round trip on a Unix socket
 * can have, so that bench/python/manager_bench.py can print what a call costs
 * before any protocol, parsing or state is involved.
 *
 * Protocol: the client sends frames, each a 4-byte little-endian length and
 * that many bytes; the server writes every frame back unchanged (length and
 * bytes, in one write) before it reads the next. One thread per connection,
 * blocking reads and writes, nothing else: the same shape as a
 * multiprocessing.Manager server thread.
 *
 * Usage:
 *   statehub_echo_server /path/to/echo.sock
 *
 * It removes a stale socket file at the path, listens, prints
 * "statehub_echo_server ready" on stdout once it accepts connections, and
 * runs until it is killed (SIGTERM or SIGINT: it removes the socket file and
 * exits 0). A frame longer than 64 MiB closes its connection. Errors on one
 * connection close that connection only; it exits 1 if it cannot listen.
 *
 * Built by bench/CMakeLists.txt:
 *   scripts/build.sh release statehub_echo_server
 */

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Longest frame body echoed; a longer announced length closes the
 * connection (the benchmark sends 36 bytes). */
#define MAX_FRAME_BODY (64u << 20)

static const char *socket_path;

/* Reads exactly n bytes. Returns 0 on success, -1 on EOF or error. */
static int read_full(int fd, unsigned char *buf, size_t n) {
  while (n > 0) {
    ssize_t got = read(fd, buf, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return -1;
    buf += got;
    n -= (size_t)got;
  }
  return 0;
}

/* Writes exactly n bytes. Returns 0 on success, -1 on error. */
static int write_full(int fd, const unsigned char *buf, size_t n) {
  while (n > 0) {
    ssize_t put = write(fd, buf, n);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return -1;
    buf += put;
    n -= (size_t)put;
  }
  return 0;
}

/* One connection: echo frames until EOF, an error or an oversized frame.
 * The frame is kept whole in one buffer (4-byte header, then the body) so
 * that the reply is a single write, as a real server's would be. */
static void *serve_connection(void *arg) {
  int fd = (int)(intptr_t)arg;
  size_t capacity = 4096;
  unsigned char *frame = malloc(capacity);
  while (frame != NULL) {
    if (read_full(fd, frame, 4) != 0) break;
    uint32_t length = (uint32_t)frame[0] | (uint32_t)frame[1] << 8 |
                      (uint32_t)frame[2] << 16 | (uint32_t)frame[3] << 24;
    if (length > MAX_FRAME_BODY) break;
    if (4 + (size_t)length > capacity) {
      capacity = 4 + (size_t)length;
      unsigned char *grown = realloc(frame, capacity);
      if (grown == NULL) break;
      frame = grown;
    }
    if (read_full(fd, frame + 4, length) != 0) break;
    if (write_full(fd, frame, 4 + (size_t)length) != 0) break;
  }
  free(frame);
  close(fd);
  return NULL;
}

static void on_signal(int signo) {
  (void)signo;
  unlink(socket_path);
  _exit(0);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s /path/to/socket\n", argv[0]);
    return 2;
  }
  socket_path = argv[1];
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(socket_path) >= sizeof addr.sun_path) {
    fprintf(stderr, "statehub_echo_server: socket path too long: %s\n",
            socket_path);
    return 1;
  }
  strcpy(addr.sun_path, socket_path);

  /* A client that goes away mid-write must not kill the server. */
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);

  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) {
    perror("statehub_echo_server: socket");
    return 1;
  }
  unlink(socket_path);
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(listener, 128) != 0) {
    perror("statehub_echo_server: bind/listen");
    return 1;
  }
  printf("statehub_echo_server ready\n");
  fflush(stdout);

  pthread_attr_t detached;
  pthread_attr_init(&detached);
  pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      perror("statehub_echo_server: accept");
      return 1;
    }
    pthread_t thread;
    if (pthread_create(&thread, &detached, serve_connection,
                       (void *)(intptr_t)fd) != 0) {
      close(fd);
    }
  }
}
