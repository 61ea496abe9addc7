/* vsb-frontend: what the two halves of --bench share (bench.c the plan and the guest side, bench_host.c the host
 * peer and the raw baselines). */
#ifndef VSB_BENCH_H
#define VSB_BENCH_H

#include "frontend.h"

#include <sys/types.h>

#define BENCH_MAX_RUNS   64u
#define BENCH_PEER_BUF   (256u * 1024u)
#define PEER_CONNECTED   UINT64_MAX

enum peer_mode { PEER_DISCARD, PEER_SOURCE, PEER_ECHO };

struct peer { pid_t pid; int go, rep; };

/* user+sys seconds of a process from /proc/PID/stat; -1 if unknown. */
double proc_cpu_s(long pid);
/* Forks the host peer: it connects to every port's endpoint, reports PEER_CONNECTED on rep, then discards, sends
 * (after a byte on go) or echoes until killed; it reports the byte count once it moved per_port on every port. */
/* vhost_fd: the frontend's vhost-user socket, closed in the peer. */
struct peer peer_start(enum peer_mode mode, const unsigned *ports, unsigned n, uint64_t per_port, unsigned chunk,
                       int vhost_fd);
void peer_stop(struct peer *p);
/* The same bytes over a bare AF_UNIX socketpair between two processes; MB/s. */
double base_stream(uint64_t bytes, unsigned wchunk, unsigned rchunk, double *cpu_per_gb);
/* The same echo over bare eventfd and socket hops between three processes; times in microseconds. */
void base_echo(unsigned count, double *lat);

#endif
