/* vsb-frontend: error and output lines, the clock, sizes, the data pattern. */
#include "common.h"

#include <time.h>

static void (*diag_hook)(void *ctx);
static void *diag_ctx;

void set_diag_hook(void (*hook)(void *ctx), void *ctx)
{
    diag_hook = hook;
    diag_ctx = ctx;
}

void die_code(int code, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "vsb-frontend: error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if ((code == EXIT_VIOLATION || code == EXIT_STALL) && diag_hook)
        diag_hook(diag_ctx);
    exit(code);
}

void warn(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "vsb-frontend: warning: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}


uint64_t parse_size(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        die_code(EXIT_USAGE, "bad %s '%s'", what, s);
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end && *end != ':' && *end != ' ')
        die_code(EXIT_USAGE, "bad %s '%s'", what, s);
    return v;
}

void stream_init(struct stream *s, uint64_t seed)
{
    s->x = seed ? seed : 1;
    s->word = 0;
    s->left = 0;
}

static inline uint64_t xorshift_next(uint64_t x)
{
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

void stream_fill(struct stream *s, uint8_t *p, size_t n)
{
    while (n && s->left) {
        *p++ = (uint8_t)s->word;
        s->word >>= 8;
        s->left--;
        n--;
    }
    uint64_t x = s->x;
    while (n >= 8) {
        x = xorshift_next(x);
        for (unsigned i = 0; i < 8; i++)
            p[i] = (uint8_t)(x >> (8 * i));
        p += 8;
        n -= 8;
    }
    if (n) {
        x = xorshift_next(x);
        uint64_t w = x;
        unsigned left = 8;
        while (n) {
            *p++ = (uint8_t)w;
            w >>= 8;
            left--;
            n--;
        }
        s->word = w;
        s->left = left;
    }
    s->x = x;
}
