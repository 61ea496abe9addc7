/*
 * vsbh: the guest-side helper of the real-guest suite, linked statically into the initramfs.
 *
 * busybox alone cannot move tens of MiB through a port with a known pattern, time it in
 * nanoseconds and check every echo reply, so this small program does the data work while
 * /init (busybox sh) does the orchestration. Every command prints one machine-readable
 * result line on stdout (the serial console):
 *
 *   vsbh send DEV BYTES SEED MODE TAG      write BYTES of pattern SEED, MODE md5|fast
 *   vsbh recv DEV BYTES SEED MODE TAG      read up to BYTES, compare with pattern SEED
 *   vsbh echo DEV COUNT SIZE TAG           COUNT round trips of SIZE bytes through a host echo
 *
 * TAG is copied verbatim into the result line ("step=3 check=g2h port=org.test.1").
 * A tty (the console port /dev/hvcN) is put into raw mode without echo first, because the
 * line discipline would otherwise translate and echo the data. "VSB-READY TAG" is printed
 * once the port is open, so the host never sends to a closed port. Every read and write
 * first polls with a 10 s limit, so a device that stops using buffers ends the check with a
 * reason (tx-stuck, idle-timeout, late-wakeup) instead of hanging the guest.
 *
 * The pattern is shared with the Java harness (GuestPattern.java): a block of PERIOD bytes
 * made of xorshift64* words (little-endian) seeded with SEED, repeated. PERIOD is prime so a
 * lost or repeated page shifts the data and shows up as a mismatch.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PERIOD 1000003u
#define CHUNK (32u * 1024u)       /* the driver takes at most 32 KiB per write() anyway */
#define RECV_BUF (64u * 1024u)
#define IDLE_TIMEOUT_MS 10000     /* recv gives up when nothing arrives for this long */

/* ---- MD5 (RFC 1321), written for this helper ---- */

struct md5 {
    uint32_t h[4];
    uint64_t len;
    uint8_t buf[64];
    uint32_t fill;
};

static const uint32_t md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

static const uint8_t md5_r[64] = {
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
    5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
};

static void md5_init(struct md5 *m)
{
    m->h[0] = 0x67452301;
    m->h[1] = 0xefcdab89;
    m->h[2] = 0x98badcfe;
    m->h[3] = 0x10325476;
    m->len = 0;
    m->fill = 0;
}

static void md5_block(struct md5 *m, const uint8_t *p)
{
    uint32_t w[16];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16
            | (uint32_t)p[4 * i + 3] << 24;
    uint32_t a = m->h[0], b = m->h[1], c = m->h[2], d = m->h[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) & 15;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) & 15;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) & 15;
        }
        uint32_t t = d;
        d = c;
        c = b;
        uint32_t x = a + f + md5_k[i] + w[g];
        b = b + ((x << md5_r[i]) | (x >> (32 - md5_r[i])));
        a = t;
    }
    m->h[0] += a;
    m->h[1] += b;
    m->h[2] += c;
    m->h[3] += d;
}

static void md5_update(struct md5 *m, const uint8_t *p, size_t n)
{
    m->len += n;
    if (m->fill) {
        size_t take = 64 - m->fill < n ? 64 - m->fill : n;
        memcpy(m->buf + m->fill, p, take);
        m->fill += take;
        p += take;
        n -= take;
        if (m->fill < 64)
            return;
        md5_block(m, m->buf);
        m->fill = 0;
    }
    for (; n >= 64; n -= 64, p += 64)
        md5_block(m, p);
    memcpy(m->buf, p, n);
    m->fill = n;
}

static void md5_hex(struct md5 *m, char out[33])
{
    uint64_t bits = m->len * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (m->fill < 56 ? 56 : 120) - m->fill;
    md5_update(m, pad, padlen);
    uint8_t lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (uint8_t)(bits >> (8 * i));
    md5_update(m, lenb, 8);
    for (int i = 0; i < 16; i++)
        sprintf(out + 2 * i, "%02x", (m->h[i / 4] >> (8 * (i % 4))) & 0xff);
    out[32] = 0;
}

/* ---- pattern ---- */

/* PERIOD bytes plus a CHUNK-sized copy of the start, so any window of up to CHUNK bytes
 * starting anywhere in the period is contiguous. */
static uint8_t *pattern_new(uint64_t seed)
{
    uint8_t *p = malloc(PERIOD + RECV_BUF + 8);
    if (!p) {
        perror("malloc");
        exit(2);
    }
    uint64_t x = seed ? seed : 0x9e3779b97f4a7c15ull;
    for (uint32_t i = 0; i < PERIOD; i += 8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        uint64_t v = x * 0x2545f4914f6cdd1dull;
        for (int b = 0; b < 8; b++)
            p[i + b] = (uint8_t)(v >> (8 * b));
    }
    memcpy(p + PERIOD, p, RECV_BUF);
    return p;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t parse_size(const char *s)
{
    char *end;
    uint64_t v = strtoull(s, &end, 10);
    switch (*end) {
    case 'K': case 'k': return v << 10;
    case 'M': case 'm': return v << 20;
    case 'G': case 'g': return v << 30;
    default: return v;
    }
}

/*
 * Waits until fd is ready for `events`, at most IDLE_TIMEOUT_MS. Returns 1 ready, 0 timed out,
 * -1 error. Linux's virtio_console poll() reclaims used buffers itself, so a device that uses
 * buffers without notifying (a lost call) still makes poll() succeed, but only when it re-checks
 * at the end of the timeout: such a late wake-up is counted in *late, since a blocking read()
 * or write() would have hung there for good.
 */
static int wait_fd(int fd, short events, uint64_t *late)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        uint64_t t0 = now_ns();
        int r = poll(&p, 1, IDLE_TIMEOUT_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        if (now_ns() - t0 >= (uint64_t)(IDLE_TIMEOUT_MS - 100) * 1000000ull)
            (*late)++;
        return 1;
    }
}

static int open_port(const char *dev, const char *tag)
{
    int fd = open(dev, O_RDWR | O_NOCTTY);
    if (fd < 0) {
        printf("VSB-RESULT %s status=fail reason=open:%s\n", tag, strerror(errno));
        fflush(stdout);
        exit(1);
    }
    if (isatty(fd)) {
        struct termios t;
        if (tcgetattr(fd, &t) == 0) {
            cfmakeraw(&t);
            t.c_lflag &= ~(ECHO | ECHONL);
            tcsetattr(fd, TCSANOW, &t);
            tcflush(fd, TCIOFLUSH);
        }
    }
    printf("VSB-READY %s\n", tag);
    fflush(stdout);
    return fd;
}

static int cmd_send(const char *dev, uint64_t bytes, uint64_t seed, int md5, const char *tag)
{
    uint8_t *pat = pattern_new(seed);
    int fd = open_port(dev, tag);
    struct md5 m;
    md5_init(&m);
    uint64_t done = 0, late = 0;
    const char *err = NULL;
    uint64_t t0 = now_ns();
    while (done < bytes) {
        uint32_t off = (uint32_t)(done % PERIOD);
        size_t n = bytes - done < CHUNK ? (size_t)(bytes - done) : CHUNK;
        int ready = wait_fd(fd, POLLOUT, &late);
        if (ready <= 0) {
            /* The device did not use the guest's transmit buffers for a whole timeout. */
            err = ready == 0 ? "tx-stuck" : strerror(errno);
            break;
        }
        ssize_t w = write(fd, pat + off, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            err = strerror(errno);
            break;
        }
        if (md5)
            md5_update(&m, pat + off, (size_t)w);
        done += (uint64_t)w;
    }
    if (isatty(fd))
        tcdrain(fd);
    uint64_t ns = now_ns() - t0;
    char hex[33] = "-";
    if (md5)
        md5_hex(&m, hex);
    if (!err && late)
        err = "late-wakeup";
    printf("VSB-RESULT %s status=%s bytes=%llu md5=%s ns=%llu late=%llu reason=%s\n", tag, err ? "fail" : "ok",
           (unsigned long long)done, hex, (unsigned long long)ns, (unsigned long long)late, err ? err : "-");
    fflush(stdout);
    close(fd);
    return err ? 1 : 0;
}

static int cmd_recv(const char *dev, uint64_t bytes, uint64_t seed, int md5, const char *tag)
{
    uint8_t *pat = pattern_new(seed);
    uint8_t *buf = malloc(RECV_BUF);
    int fd = open_port(dev, tag);
    struct md5 m;
    md5_init(&m);
    uint64_t done = 0, t0 = 0, tlast = 0, late = 0;
    int64_t first_bad = -1;
    const char *why = "-";
    while (done < bytes) {
        int r = wait_fd(fd, POLLIN, &late);
        if (r == 0) {
            why = "idle-timeout";
            break;
        }
        if (r < 0) {
            why = strerror(errno);
            break;
        }
        size_t want = bytes - done < RECV_BUF ? (size_t)(bytes - done) : RECV_BUF;
        ssize_t n = read(fd, buf, want);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            why = strerror(errno);
            break;
        }
        if (n == 0) {
            /* A generic port reads EOF while the host side is not connected. */
            why = "eof";
            break;
        }
        if (done == 0)
            t0 = now_ns();
        tlast = now_ns();
        if (first_bad < 0) {
            uint32_t off = (uint32_t)(done % PERIOD);
            if (memcmp(buf, pat + off, (size_t)n) != 0) {
                for (ssize_t i = 0; i < n; i++)
                    if (buf[i] != pat[off + i]) {
                        first_bad = (int64_t)(done + (uint64_t)i);
                        break;
                    }
            }
        }
        if (md5)
            md5_update(&m, buf, (size_t)n);
        done += (uint64_t)n;
    }
    char hex[33] = "-";
    if (md5)
        md5_hex(&m, hex);
    int ok = done == bytes && first_bad < 0 && late == 0;
    /* Time from the first byte to the last: the host starts sending only after READY. */
    printf("VSB-RESULT %s status=%s bytes=%llu md5=%s ns=%llu first_bad=%lld late=%llu reason=%s\n", tag,
           ok ? "ok" : "fail", (unsigned long long)done, hex, (unsigned long long)(tlast - t0),
           (long long)first_bad, (unsigned long long)late,
           ok ? "-" : (first_bad >= 0 ? "mismatch" : late && done == bytes ? "late-wakeup" : why));
    fflush(stdout);
    close(fd);
    return ok ? 0 : 1;
}

static int cmd_echo(const char *dev, uint64_t count, size_t size, const char *tag)
{
    uint8_t *pat = pattern_new(count * 31 + size);
    uint8_t *buf = malloc(size);
    if (size == 0 || size > RECV_BUF || !buf) {
        printf("VSB-RESULT %s status=fail reason=bad-size\n", tag);
        return 1;
    }
    int fd = open_port(dev, tag);
    uint64_t good = 0, bad = 0, t0 = now_ns(), worst = 0, late = 0;
    const char *why = "-";
    for (uint64_t i = 0; i < count; i++) {
        /* Each round trip carries a different slice of the pattern. */
        const uint8_t *msg = pat + (i * 4099u) % PERIOD;
        uint64_t ts = now_ns();
        size_t sent = 0;
        while (sent < size) {
            int ready = wait_fd(fd, POLLOUT, &late);
            if (ready <= 0) {
                why = ready == 0 ? "tx-stuck" : "poll";
                goto out;
            }
            ssize_t w = write(fd, msg + sent, size - sent);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                why = "write";
                goto out;
            }
            sent += (size_t)w;
        }
        size_t got = 0;
        while (got < size) {
            int r = wait_fd(fd, POLLIN, &late);
            if (r <= 0) {
                why = r == 0 ? "idle-timeout" : "poll";
                goto out;
            }
            ssize_t n = read(fd, buf + got, size - got);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) {
                why = n == 0 ? "eof" : "read";
                goto out;
            }
            got += (size_t)n;
        }
        uint64_t rt = now_ns() - ts;
        if (rt > worst)
            worst = rt;
        if (memcmp(buf, msg, size) == 0)
            good++;
        else
            bad++;
    }
out:;
    uint64_t ns = now_ns() - t0;
    int ok = good == count && bad == 0 && late == 0;
    printf("VSB-RESULT %s status=%s count=%llu good=%llu bad=%llu ns=%llu worst_ns=%llu late=%llu reason=%s\n",
           tag, ok ? "ok" : "fail", (unsigned long long)count, (unsigned long long)good, (unsigned long long)bad,
           (unsigned long long)ns, (unsigned long long)worst, (unsigned long long)late,
           ok ? "-" : (bad ? "mismatch" : late && good == count ? "late-wakeup" : why));
    fflush(stdout);
    close(fd);
    return ok ? 0 : 1;
}

static int cmd_md5(void)
{
    /* Self-check against md5sum: hash stdin. */
    static uint8_t b[65536];
    struct md5 m;
    md5_init(&m);
    ssize_t n;
    while ((n = read(0, b, sizeof b)) > 0)
        md5_update(&m, b, (size_t)n);
    char hex[33];
    md5_hex(&m, hex);
    printf("%s\n", hex);
    return 0;
}

static int cmd_pattern(uint64_t bytes, uint64_t seed)
{
    uint8_t *pat = pattern_new(seed);
    for (uint64_t done = 0; done < bytes;) {
        size_t n = bytes - done < CHUNK ? (size_t)(bytes - done) : CHUNK;
        if (write(1, pat + done % PERIOD, n) != (ssize_t)n)
            return 1;
        done += n;
    }
    return 0;
}

static int cmd_clock(void)
{
    printf("%llu\n", (unsigned long long)now_ns());
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 7 && !strcmp(argv[1], "send"))
        return cmd_send(argv[2], parse_size(argv[3]), strtoull(argv[4], NULL, 10), !strcmp(argv[5], "md5"), argv[6]);
    if (argc == 7 && !strcmp(argv[1], "recv"))
        return cmd_recv(argv[2], parse_size(argv[3]), strtoull(argv[4], NULL, 10), !strcmp(argv[5], "md5"), argv[6]);
    if (argc == 6 && !strcmp(argv[1], "echo"))
        return cmd_echo(argv[2], strtoull(argv[3], NULL, 10), (size_t)parse_size(argv[4]), argv[5]);
    if (argc == 2 && !strcmp(argv[1], "md5"))
        return cmd_md5();
    if (argc == 4 && !strcmp(argv[1], "pattern"))
        return cmd_pattern(parse_size(argv[2]), strtoull(argv[3], NULL, 10));
    if (argc == 2 && !strcmp(argv[1], "clock"))
        return cmd_clock();
    fprintf(stderr, "usage: vsbh send|recv DEV BYTES SEED md5|fast TAG | echo DEV COUNT SIZE TAG"
                    " | md5 | pattern BYTES SEED | clock\n");
    return 2;
}
