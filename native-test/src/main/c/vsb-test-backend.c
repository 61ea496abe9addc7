/*
 * vsb-test-backend: a deliberately small vhost-user virtio-console backend used to test
 * vsb-frontend itself (the "ring code against itself" check), independent of the Java bridge.
 *
 * Ports 0..N-1; port 0 is a console. Host side of port P: the guest->host bytes are checked
 * against the tx pattern of vsb-frontend and checksummed; once the guest opens a port the
 * backend writes --rx bytes of the host->guest pattern into it. One connection, then exit.
 * Prints "BACKEND port=P tx_bytes=.. tx_sum=.. rx_bytes=.. rx_sum=.." when the frontend leaves.
 * --packed offers VIRTIO_F_RING_PACKED; once the frontend acks it every ring is driven as a packed ring
 * (virtio 1.1+ §2.8), with event suppression in both directions when EVENT_IDX is acked too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#define NQ_MAX 64
#define MAXP 31

struct region { uint64_t gpa, size, uva; uint8_t *p; };
struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct pdesc { uint64_t addr; uint32_t len; uint16_t id, flags; };
#define P_AVAIL (1u << 7)
#define P_USED  (1u << 15)

struct q {
    unsigned num;
    uint64_t desc_uva, avail_uva, used_uva;
    struct desc *d;
    volatile uint16_t *avail;   /* flags, idx, ring[num], used_event */
    volatile uint16_t *used;    /* flags, idx, then elems */
    uint16_t last_avail, used_idx;
    int kick, call;
    bool enabled, addr;
    /* packed: last_avail and used_idx are ring positions with these wrap counters */
    volatile struct pdesc *pd;
    volatile uint16_t *drv_ev, *dev_ev; /* off_wrap, flags */
    bool avail_wrap, used_wrap;
};
/* one chain taken from a ring: split head or packed buffer id, and its ring descriptor count */
struct elem { uint16_t id, ndesc; };

static struct region reg[8];
static unsigned nreg;
static struct q vq[NQ_MAX];
static unsigned nports = 3, nq;
static uint64_t rx_target;
static uint64_t features = (1ull << 32) | (1ull << 1) | (1ull << 28) | (1ull << 29) | (1ull << 30);
static uint64_t proto = (1ull << 0) | (1ull << 3) | (1ull << 9) | (1ull << 15) | (1ull << 16);
static bool event_idx, packed, offer_packed, no_verify;
static int conn = -1;

struct stream { uint64_t x, w; unsigned left; };
static void st_fill(struct stream *s, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!s->left) {
            s->x ^= s->x << 13; s->x ^= s->x >> 7; s->x ^= s->x << 17;
            s->w = s->x; s->left = 8;
        }
        p[i] = (uint8_t)s->w; s->w >>= 8; s->left--;
    }
}
static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ull; }
    return h;
}

static struct portst {
    bool guest_open;
    struct stream txs, rxs;
    uint64_t tx_bytes, tx_sum, rx_bytes, rx_sum;
} ps[MAXP];

static void fail(const char *m) { fprintf(stderr, "vsb-test-backend: %s\n", m); exit(1); }

static uint8_t *gpa_ptr(uint64_t a, uint64_t len)
{
    for (unsigned i = 0; i < nreg; i++)
        if (a >= reg[i].gpa && len <= reg[i].size && a - reg[i].gpa <= reg[i].size - len)
            return reg[i].p + (a - reg[i].gpa);
    return NULL;
}
static uint8_t *uva_ptr(uint64_t a, uint64_t len)
{
    for (unsigned i = 0; i < nreg; i++)
        if (a >= reg[i].uva && len <= reg[i].size && a - reg[i].uva <= reg[i].size - len)
            return reg[i].p + (a - reg[i].uva);
    return NULL;
}

static void xsend(uint32_t req, const void *p, uint32_t size)
{
    uint32_t h[3] = { req, 0x5, size };
    struct iovec iov[2] = { { h, 12 }, { (void *)p, size } };
    if (writev(conn, iov, size ? 2 : 1) != (ssize_t)(12 + size))
        fail("short reply write");
}
static void ack(uint32_t flags, uint32_t req, uint64_t v) { if (flags & 8) xsend(req, &v, 8); }

static void signal_call(struct q *q)
{
    uint64_t one = 1;
    if (q->call >= 0 && write(q->call, &one, 8) < 0)
        fail("call write");
}

static void push_used_packed(struct q *q, struct elem el, uint32_t len)
{
    volatile struct pdesc *d = &q->pd[q->used_idx];
    d->id = el.id;
    d->len = len;
    __atomic_store_n(&d->flags, (uint16_t)(q->used_wrap ? P_AVAIL | P_USED : 0), __ATOMIC_RELEASE);
    unsigned nw = q->used_idx + el.ndesc;
    if (nw >= q->num) { nw -= q->num; q->used_wrap = !q->used_wrap; }
    q->used_idx = (uint16_t)nw;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t off = q->drv_ev[0], fl = q->drv_ev[1];
    bool call;
    if (fl == 0) call = true;
    else if (fl == 1) call = false;
    else if (fl == 2 && event_idx) {
        /* the driver wants a call once the used position passes off (its wrap counter in bit 15) */
        uint16_t ev = off & 0x7fff;
        if ((bool)(off >> 15) != q->used_wrap) ev = (uint16_t)(ev - q->num);
        /* positions of this lap 0..num-1, of the lap before -num..-1: this push covered new-ndesc .. new-1 */
        call = (uint16_t)(q->used_idx - ev - 1) < el.ndesc;
    } else fail("driver event suppression flags invalid");
    if (call) signal_call(q);
}

static void push_used(struct q *q, struct elem el, uint32_t len)
{
    if (packed) { push_used_packed(q, el, len); return; }
    uint16_t head = el.id;
    volatile uint32_t *e = (volatile uint32_t *)(q->used + 2) + 2 * (q->used_idx % q->num);
    e[0] = head;
    e[1] = len;
    q->used_idx++;
    __atomic_store_n(&q->used[1], q->used_idx, __ATOMIC_RELEASE);
    signal_call(q);
}

/* Walks a chain into at most 64 (ptr,len,write) pieces; returns count or -1. */
struct piece { uint8_t *p; uint32_t len; bool w; };
static int chain(struct q *q, uint16_t head, struct piece *pc)
{
    struct desc *t = q->d;
    unsigned tn = q->num, n = 0, hops = 0;
    uint16_t i = head;
    if (t[i].flags & 4) {
        struct desc d0 = t[i];
        if (d0.len == 0 || d0.len % 16) return -1;
        t = (struct desc *)gpa_ptr(d0.addr, d0.len);
        if (!t) return -1;
        tn = d0.len / 16;
        i = 0;
    }
    for (;;) {
        if (i >= tn || ++hops > tn || n >= 64) return -1;
        uint8_t *p = gpa_ptr(t[i].addr, t[i].len);
        if (!p) return -1;
        pc[n++] = (struct piece){ p, t[i].len, (t[i].flags & 2) != 0 };
        if (!(t[i].flags & 1)) break;
        i = t[i].next;
    }
    return (int)n;
}

static bool has_avail(struct q *q)
{
    if (!q->addr) return false;
    if (packed) {
        uint16_t f = __atomic_load_n(&q->pd[q->last_avail].flags, __ATOMIC_ACQUIRE);
        return ((f & P_AVAIL) != 0) == q->avail_wrap && ((f & P_USED) != 0) != q->avail_wrap;
    }
    return (uint16_t)(__atomic_load_n(&q->avail[1], __ATOMIC_ACQUIRE) - q->last_avail) != 0;
}

/* Packed: takes the chain at last_avail (has_avail said its head is available); the id comes from its last
 * descriptor. Returns the pieces or -1 for a chain whose buffers are bad (it is still taken whole). */
static int pchain(struct q *q, struct elem *e, struct piece *pc)
{
    unsigned n = 0, cnt = 0;
    bool bad = false;
    uint16_t pos = q->last_avail;
    bool w = q->avail_wrap;
    for (;;) {
        volatile struct pdesc *d = &q->pd[pos];
        uint64_t addr = d->addr; uint32_t len = d->len; uint16_t id = d->id, fl = d->flags;
        /* every descriptor of the chain carries the driver's wrap counter of its own position */
        if (((fl & P_AVAIL) != 0) != w || ((fl & P_USED) != 0) == w) {
            fprintf(stderr, "vsb-test-backend: packed descriptor %u (flags 0x%04x) of a chain is not available for wrap %u\n", pos, fl, w);
            exit(1);
        }
        cnt++;
        if (++pos == q->num) { pos = 0; w = !w; }
        if (fl & 4) {
            if ((fl & 1) || cnt != 1 || len == 0 || len % 16) { bad = true; e->id = id; break; }
            struct pdesc *t = (struct pdesc *)gpa_ptr(addr, len);
            if (!t) { bad = true; e->id = id; break; }
            for (unsigned i = 0; i < len / 16 && !bad; i++) {
                uint8_t *p = gpa_ptr(t[i].addr, t[i].len);
                if (!p || n >= 64 || (t[i].flags & 4)) bad = true;
                else pc[n++] = (struct piece){ p, t[i].len, (t[i].flags & 2) != 0 };
            }
            e->id = id;
            break;
        }
        uint8_t *p = gpa_ptr(addr, len);
        if (!p || n >= 64) bad = true;
        else pc[n++] = (struct piece){ p, len, (fl & 2) != 0 };
        if (!(fl & 1)) { e->id = id; break; }
        if (cnt >= q->num) fail("packed chain longer than the ring");
    }
    e->ndesc = (uint16_t)cnt;
    q->last_avail = pos;
    q->avail_wrap = w;
    if (event_idx) /* kick me when the driver makes the next position available */
        __atomic_store_n(&q->dev_ev[0], (uint16_t)(q->last_avail | (uint16_t)q->avail_wrap << 15), __ATOMIC_RELEASE);
    return bad ? -1 : (int)n;
}
static uint16_t pop(struct q *q)
{
    uint16_t h = q->avail[2 + q->last_avail % q->num];
    q->last_avail++;
    if (event_idx)
        *(volatile uint16_t *)((uint8_t *)q->used + 4 + 8 * q->num) = q->last_avail;
    return h;
}

static int take(struct q *q, struct elem *e, struct piece *pc)
{
    if (packed) return pchain(q, e, pc);
    uint16_t h = pop(q);
    e->id = h;
    e->ndesc = 1;
    return chain(q, h, pc);
}

/* Control messages wait here while the control receiveq has no buffer (small --queue-size). */
static struct { uint32_t id; uint16_t ev, val; char extra[32]; bool has_extra; } pend[256];
static unsigned npend;

static void ctl_put(uint32_t id, uint16_t ev, uint16_t val, const char *extra)
{
    struct q *q = &vq[2];
    struct elem h;
    struct piece pc[64];
    int n = take(q, &h, pc);
    size_t el = extra ? strlen(extra) + 1 : 0;
    if (n < 1 || pc[0].len < 8 + el) fail("bad control rx buffer");
    memcpy(pc[0].p, &id, 4); memcpy(pc[0].p + 4, &ev, 2); memcpy(pc[0].p + 6, &val, 2);
    if (el) memcpy(pc[0].p + 8, extra, el);
    push_used(q, h, (uint32_t)(8 + el));
}

static void ctl_flush(void)
{
    unsigned k = 0;
    while (k < npend && vq[2].enabled && has_avail(&vq[2])) {
        ctl_put(pend[k].id, pend[k].ev, pend[k].val, pend[k].has_extra ? pend[k].extra : NULL);
        k++;
    }
    memmove(pend, pend + k, (npend - k) * sizeof pend[0]);
    npend -= k;
}

static void ctl_send(uint32_t id, uint16_t ev, uint16_t val, const char *extra)
{
    if (npend == sizeof pend / sizeof pend[0]) fail("control messages pile up: the frontend posts no control rx buffers");
    pend[npend].id = id; pend[npend].ev = ev; pend[npend].val = val;
    pend[npend].has_extra = extra != NULL;
    if (extra) snprintf(pend[npend].extra, sizeof pend[npend].extra, "%s", extra);
    npend++;
    ctl_flush();
}

static bool more; /* a queue had work left when its budget ran out: poll without sleeping */

static void process(void)
{
    more = false;
    if (!nq) return;
    ctl_flush();
    /* control tx */
    struct q *c = &vq[3];
    while (c->enabled && has_avail(c)) {
        struct elem h;
        struct piece pc[64];
        int n = take(c, &h, pc);
        if (n < 1 || pc[0].len < 8) fail("bad control tx chain");
        uint32_t id; uint16_t ev, val;
        memcpy(&id, pc[0].p, 4); memcpy(&ev, pc[0].p + 4, 2); memcpy(&val, pc[0].p + 6, 2);
        push_used(c, h, 0);
        if (ev == 0)
            for (unsigned p = 0; p < nports; p++) ctl_send(p, 1, 1, NULL);
        else if (ev == 3 && id < nports) {
            if (id == 0) ctl_send(0, 4, 1, NULL);
            char name[32];
            snprintf(name, sizeof name, "org.test.%u", id);
            ctl_send(id, 7, 1, name);
            ctl_send(id, 6, 1, NULL);
        } else if (ev == 6 && id < nports)
            ps[id].guest_open = val;
    }
    for (unsigned p = 0; p < nports; p++) {
        struct q *t = &vq[p == 0 ? 1 : 2 * p + 3], *r = &vq[p == 0 ? 0 : 2 * p + 2];
        /* At most a ring's worth per queue and pass: a packed chain is visible as soon as the driver writes it,
         * so a driver that reposts while it drains would otherwise keep one loop busy for ever. */
        unsigned budget = t->num;
        while (t->enabled && budget-- && has_avail(t)) {
            struct elem h;
            struct piece pc[64];
            int n = take(t, &h, pc);
            if (n < 0) { fprintf(stderr, "vsb-test-backend: port %u: bad tx chain, returned with len 0\n", p); push_used(t, h, 0); continue; }
            for (int i = 0; i < n; i++) {
                uint8_t tmp[65536];
                if (pc[i].len > sizeof tmp) fail("tx piece too big");
                st_fill(&ps[p].txs, tmp, pc[i].len);
                if (!no_verify && memcmp(tmp, pc[i].p, pc[i].len)) { fprintf(stderr, "port %u: tx mismatch near %" PRIu64 "\n", p, ps[p].tx_bytes); exit(1); }
                ps[p].tx_sum = fnv(ps[p].tx_sum, pc[i].p, pc[i].len);
                ps[p].tx_bytes += pc[i].len;
            }
            push_used(t, h, 0);
        }
        budget = r->num;
        while (r->enabled && budget-- && ps[p].guest_open && ps[p].rx_bytes < rx_target && has_avail(r)) {
            struct elem h;
            struct piece pc[64];
            int n = take(r, &h, pc);
            if (n < 1 || !pc[0].w) fail("bad rx chain");
            uint64_t left = rx_target - ps[p].rx_bytes;
            uint32_t len = left < pc[0].len ? (uint32_t)left : pc[0].len;
            st_fill(&ps[p].rxs, pc[0].p, len);
            ps[p].rx_sum = fnv(ps[p].rx_sum, pc[0].p, len);
            ps[p].rx_bytes += len;
            push_used(r, h, len);
        }
        if (t->enabled && has_avail(t)) more = true;
        if (r->enabled && ps[p].guest_open && ps[p].rx_bytes < rx_target && has_avail(r)) more = true;
    }
}

static int listener;

static void handle(void)
{
    uint32_t h[3];
    union { char b[CMSG_SPACE(sizeof(int) * 8)]; struct cmsghdr a; } cb;
    struct iovec iov = { h, 12 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b, .msg_controllen = sizeof cb.b };
    ssize_t r = recvmsg(conn, &m, MSG_WAITALL);
    if (r < 12) {
        for (unsigned p = 0; p < nports; p++)
            printf("BACKEND port=%u tx_bytes=%" PRIu64 " tx_sum=%016" PRIx64 " rx_bytes=%" PRIu64 " rx_sum=%016" PRIx64 "\n",
                   p, ps[p].tx_bytes, ps[p].tx_sum, ps[p].rx_bytes, ps[p].rx_sum);
        fflush(stdout);
        /* Per-connection state goes; the streams and counters go on, as the frontend's do. */
        close(conn);
        for (unsigned i = 0; i < nq; i++) {
            if (vq[i].kick >= 0) close(vq[i].kick);
            if (vq[i].call >= 0) close(vq[i].call);
            memset(&vq[i], 0, sizeof vq[i]);
            vq[i].kick = vq[i].call = -1;
        }
        for (unsigned i = 0; i < nreg; i++) munmap(reg[i].p, reg[i].size);
        nreg = nq = 0;
        npend = 0;
        for (unsigned p = 0; p < nports; p++) ps[p].guest_open = false;
        conn = accept(listener, NULL, NULL);
        if (conn < 0) fail("accept");
        return;
    }
    int fds[8], nfd = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_type == SCM_RIGHTS) {
            nfd = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t)nfd);
        }
    uint8_t pl[4096];
    if (h[2] > sizeof pl) fail("payload too big");
    if (h[2] && recv(conn, pl, h[2], MSG_WAITALL) != (ssize_t)h[2]) fail("short payload");
    uint32_t req = h[0], flags = h[1];
    uint64_t u64 = 0; uint32_t idx = 0, num = 0;
    if (h[2] >= 8) memcpy(&u64, pl, 8);
    if (h[2] >= 8) { memcpy(&idx, pl, 4); memcpy(&num, pl + 4, 4); }
    switch (req) {
    case 1: xsend(1, &features, 8); break;
    case 2: event_idx = (u64 >> 29) & 1; packed = (u64 >> 34) & 1; ack(flags, req, 0); break;
    case 15: xsend(15, &proto, 8); break;
    case 17: { uint64_t v = 2 * (nports + 1); xsend(17, &v, 8); break; }
    case 36: { uint64_t v = 8; xsend(36, &v, 8); break; }
    case 40: { uint64_t v = 0; xsend(40, &v, 8); break; }
    case 3: case 16: case 39: ack(flags, req, 0); break;
    case 24: {
        uint8_t out[24]; memcpy(out, pl, 12);
        uint16_t z = 0; uint32_t mp = nports, em = 0;
        memcpy(out + 12, &z, 2); memcpy(out + 14, &z, 2); memcpy(out + 16, &mp, 4); memcpy(out + 20, &em, 4);
        xsend(24, out, 24); break;
    }
    case 5: case 37: {
        unsigned n = req == 5 ? *(uint32_t *)pl : 1;
        const uint64_t *rg = (const uint64_t *)(pl + 8);
        if (req == 5) nreg = 0;
        for (unsigned i = 0; i < n; i++) {
            uint8_t *p = mmap(NULL, rg[4 * i + 1] + rg[4 * i + 3], PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
            if (p == MAP_FAILED) fail("mmap");
            reg[nreg++] = (struct region){ rg[4 * i], rg[4 * i + 1], rg[4 * i + 2], p + rg[4 * i + 3] };
            close(fds[i]);
        }
        ack(flags, req, 0); break;
    }
    case 8: case 10: case 9: case 11: case 18: case 12: case 13: case 14: {
        if (req == 12 || req == 13 || req == 14) idx = (uint32_t)(u64 & 0xff);
        if (idx >= NQ_MAX || idx >= 2 * (nports + 1) || h[2] < 8) {
            for (int i = 0; i < nfd; i++) close(fds[i]);
            ack(flags, req, 1); break;
        }
        struct q *q = &vq[idx];
        if (idx + 1 > nq) nq = idx + 1;
        if (req == 8) q->num = num;
        else if (req == 10 && packed) {
            /* bits 0-14 next avail, 15 its wrap counter, 16-30 next used, 31 its wrap counter */
            q->last_avail = num & 0x7fff; q->avail_wrap = (num >> 15) & 1;
            q->used_idx = (num >> 16) & 0x7fff; q->used_wrap = num >> 31;
            fprintf(stderr, "vsb-test-backend: queue %u SET_VRING_BASE 0x%08x\n", idx, num);
        }
        else if (req == 10) q->last_avail = q->used_idx = (uint16_t)num;
        else if (req == 18) q->enabled = num;
        else if (req == 9 && packed) {
            uint64_t a[3]; memcpy(a, pl + 8, 24);
            q->pd = (struct pdesc *)uva_ptr(a[0], 16ull * q->num);
            q->dev_ev = (volatile uint16_t *)uva_ptr(a[1], 4); /* "used" */
            q->drv_ev = (volatile uint16_t *)uva_ptr(a[2], 4); /* "avail" */
            if (!q->pd || !q->dev_ev || !q->drv_ev) fail("ring address outside memory");
            if (q->last_avail >= q->num || q->used_idx >= q->num) fail("SET_VRING_BASE beyond the ring");
            if (event_idx) {
                q->dev_ev[0] = (uint16_t)(q->last_avail | (uint16_t)q->avail_wrap << 15);
                __atomic_store_n(&q->dev_ev[1], (uint16_t)2, __ATOMIC_RELEASE);
            }
            q->addr = true;
        }
        else if (req == 9) {
            uint64_t a[3]; memcpy(a, pl + 8, 24);
            q->d = (struct desc *)uva_ptr(a[0], 16ull * q->num);
            q->used = (volatile uint16_t *)uva_ptr(a[1], 6 + 8ull * q->num);
            q->avail = (volatile uint16_t *)uva_ptr(a[2], 6 + 2ull * q->num);
            if (!q->d || !q->used || !q->avail) fail("ring address outside memory");
            q->used_idx = q->used[1];
            q->addr = true;
        } else if (req == 11) {
            q->enabled = false; q->addr = false;
            uint32_t s[2] = { idx, q->last_avail };
            if (packed)
                s[1] = q->last_avail | (uint32_t)q->avail_wrap << 15 | (uint32_t)q->used_idx << 16 | (uint32_t)q->used_wrap << 31;
            xsend(11, s, 8);
        } else if (req == 12) { if (q->kick > 0) close(q->kick); q->kick = nfd ? fds[0] : -1; }
        else if (req == 13) { if (q->call > 0) close(q->call); q->call = nfd ? fds[0] : -1; }
        else if (req == 14) { if (nfd) close(fds[0]); }
        if (req != 11) ack(flags, req, 0);
        break;
    }
    default:
        fprintf(stderr, "vsb-test-backend: unknown request %u\n", req);
        for (int i = 0; i < nfd; i++) close(fds[i]);
        ack(flags, req, 1);
    }
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--packed")) { offer_packed = true; continue; }
        if (!strcmp(argv[i], "--no-verify")) { no_verify = true; continue; } /* guest->host bytes of vsb-frontend --bench */
        if (i + 1 >= argc) break;
        if (!strcmp(argv[i], "--socket")) path = argv[i + 1];
        else if (!strcmp(argv[i], "--ports")) nports = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rx")) rx_target = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--features")) features = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--protocol")) proto = strtoull(argv[i + 1], NULL, 0);
        i++;
    }
    if (offer_packed) features |= 1ull << 34;
    if (!path || nports == 0 || nports > MAXP) fail("usage: --socket PATH [--ports N] [--rx BYTES] [--features HEX] [--protocol HEX] [--packed] [--no-verify]");
    for (unsigned p = 0; p < MAXP; p++) {
        uint64_t base = 0x9E3779B97F4A7C15ull ^ ((uint64_t)p << 32);
        ps[p].txs.x = base ^ 1; ps[p].rxs.x = base ^ 2;
        ps[p].tx_sum = ps[p].rx_sum = 0xcbf29ce484222325ull;
    }
    for (unsigned i = 0; i < NQ_MAX; i++) vq[i].kick = vq[i].call = -1;
    int l = listener = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    unlink(path);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1)) fail("bind/listen");
    printf("LISTENING\n"); fflush(stdout);
    conn = accept(l, NULL, NULL);
    if (conn < 0) fail("accept");
    for (;;) {
        struct pollfd pf[1 + NQ_MAX];
        unsigned n = 0;
        pf[n++] = (struct pollfd){ .fd = conn, .events = POLLIN };
        for (unsigned i = 0; i < nq; i++)
            pf[n++] = (struct pollfd){ .fd = vq[i].kick, .events = POLLIN };
        if (poll(pf, n, more ? 0 : 50) < 0 && errno != EINTR) fail("poll");
        for (unsigned i = 1; i < n; i++)
            if (pf[i].revents & POLLIN) { uint64_t v; if (read(pf[i].fd, &v, 8) < 0) { } }
        if (pf[0].revents) handle();
        process();
    }
}
