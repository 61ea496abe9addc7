/*
 * vsb-frontend: what every unit uses: the system headers, exit codes, error and output lines, the clock, and the
 * data pattern and checksum shared with the Java tests.
 */
#ifndef VSB_COMMON_H
#define VSB_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- exit codes ---- */
#define EXIT_VIOLATION 1 /* the backend broke the protocol or corrupted data */
#define EXIT_USAGE     2
#define EXIT_IO        3 /* connection failed or closed by the backend */
#define EXIT_STALL     4 /* work pending and nothing moved for --stall-timeout seconds */

#define PAGE_SIZE_GUEST  4096u

/* Prints "vsb-frontend: error: ..." and exits with code; a protocol violation or a stall first dumps the state with
 * the diagnosis hook. */
void die_code(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
#define die(...) die_code(EXIT_VIOLATION, __VA_ARGS__)
void set_diag_hook(void (*hook)(void *ctx), void *ctx);

void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One machine-readable line on stdout, flushed at once: tests read it as it happens. */
void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
double now_s(void);
/* A byte count with an optional k, m or g suffix; exits with EXIT_USAGE on anything else. */
uint64_t parse_size(const char *s, const char *what);

/* ---- the data pattern and checksum, shared with the Java tests ----
 * Stream: xorshift64 (13, 7, 17); each step's 64-bit state is emitted as 8 little-endian bytes.
 * Seed: base ^ 1 for guest->host (tx), base ^ 2 for host->guest (rx); a zero state becomes 1.
 * Default base for port N: 0x9E3779B97F4A7C15 ^ (N << 32).
 * Checksum: FNV-1a 64 over the bytes in order. */
struct stream { uint64_t x; uint64_t word; unsigned left; };

void stream_init(struct stream *s, uint64_t seed);
void stream_fill(struct stream *s, uint8_t *p, size_t n);

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME  0x100000001b3ull

static inline uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

#endif
