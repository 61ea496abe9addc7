/*
 * vsb-frontend: a vhost-user frontend that plays QEMU 10.2 (vhost-user-test-device-pci,
 * virtio-id=3) and the Linux 6.1 virtio_console driver at once, for end-to-end tests and
 * benchmarks of a vhost-user virtio-console backend.
 *
 * One thread, one poll loop: the guest side is interrupt driven (a queue is looked at only
 * when its call eventfd fired), so a backend that forgets a call shows up as a stall with a
 * diagnosis instead of being papered over by polling.
 *
 * Guest memory is one memfd region at guest-physical address 0; ring addresses sent in
 * SET_VRING_ADDR are this process's virtual addresses (as QEMU sends its own), descriptor
 * addresses are guest-physical. --family chv plays cloud-hypervisor's (rust-vmm) message order
 * instead; --family loopback the virtio-loopback adapter: the same memfd cut into several
 * regions at unaligned offsets, with userspace_addr == guest_phys_addr.
 *
 * Run with --help for the command line and the output format.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/un.h>

/* ---- vhost-user protocol constants (docs/interop/vhost-user.rst) ---- */
enum {
    VU_GET_FEATURES = 1, VU_SET_FEATURES = 2, VU_SET_OWNER = 3, VU_RESET_OWNER = 4, VU_SET_MEM_TABLE = 5,
    VU_SET_VRING_NUM = 8, VU_SET_VRING_ADDR = 9, VU_SET_VRING_BASE = 10, VU_GET_VRING_BASE = 11,
    VU_SET_VRING_KICK = 12, VU_SET_VRING_CALL = 13, VU_SET_VRING_ERR = 14,
    VU_GET_PROTOCOL_FEATURES = 15, VU_SET_PROTOCOL_FEATURES = 16, VU_GET_QUEUE_NUM = 17,
    VU_SET_VRING_ENABLE = 18, VU_SET_BACKEND_REQ_FD = 21, VU_GET_CONFIG = 24, VU_SET_CONFIG = 25,
    VU_GET_INFLIGHT_FD = 31, VU_SET_INFLIGHT_FD = 32, VU_RESET_DEVICE = 34,
    VU_GET_MAX_MEM_SLOTS = 36,
    VU_ADD_MEM_REG = 37, VU_SET_STATUS = 39, VU_GET_STATUS = 40,
};
/* The old virtio-loopback adapter's private request: the same id as SET_STATUS, u64 pid << 32 | fd, one fd. */
#define VU_SHARE_LOOPBACK_FD 39
/* Backend-to-frontend request on the BACKEND_REQ channel. */
#define VU_BACKEND_CONFIG_CHANGE_MSG 2
#define VU_FLAG_VERSION    0x1u
#define VU_FLAG_REPLY      0x4u
#define VU_FLAG_NEED_REPLY 0x8u
#define VU_HDR_SIZE        12u
#define VU_MAX_PAYLOAD     4096u

#define PF_MQ                  0
#define PF_REPLY_ACK           3
#define PF_BACKEND_REQ         5
#define PF_CONFIG              9
#define PF_INFLIGHT_SHMFD      12
#define PF_RESET_DEVICE        13
#define PF_CONFIGURE_MEM_SLOTS 15
#define PF_STATUS              16
/* What each frontend family knows how to drive; acked as offered & this (& --proto-mask).
 * QEMU 10.2 (vhost-user.c's feature mask, the parts a console can use); cloud-hypervisor / rust-vmm
 * (SET_MEM_TABLE only, no STATUS, resets with RESET_OWNER); the virtio-loopback adapter (§7 trace: acks MQ,
 * REPLY_ACK, CONFIG, CONFIGURE_MEM_SLOTS). */
#define PF_QEMU ((1ull << PF_MQ) | (1ull << PF_REPLY_ACK) | (1ull << PF_BACKEND_REQ) | (1ull << PF_CONFIG) | \
                 (1ull << PF_RESET_DEVICE) | (1ull << PF_CONFIGURE_MEM_SLOTS) | (1ull << PF_STATUS))
#define PF_CHV ((1ull << PF_MQ) | (1ull << PF_REPLY_ACK) | (1ull << PF_BACKEND_REQ) | (1ull << PF_CONFIG))
#define PF_LOOPBACK ((1ull << PF_MQ) | (1ull << PF_REPLY_ACK) | (1ull << PF_CONFIG) | \
                     (1ull << PF_CONFIGURE_MEM_SLOTS))

/* ---- virtio feature bits ---- */
#define F_CONSOLE_SIZE      0
#define F_CONSOLE_MULTIPORT 1
#define F_CONSOLE_EMERG_WRITE 2
#define F_INDIRECT_DESC     28
#define F_EVENT_IDX         29
#define F_PROTOCOL_FEATURES 30
#define F_VERSION_1         32
#define F_RING_PACKED       34
/* Linux 6.1 acks SIZE and MULTIPORT of the console bits plus the ring bits it knows. */
#define F_DRIVER ((1ull << F_CONSOLE_SIZE) | (1ull << F_CONSOLE_MULTIPORT) | \
                  (1ull << F_INDIRECT_DESC) | (1ull << F_EVENT_IDX) | (1ull << F_VERSION_1))

#define S_ACKNOWLEDGE 1u
#define S_DRIVER      2u
#define S_DRIVER_OK   4u
#define S_FEATURES_OK 8u

/* ---- split virtqueue layout (virtio 1.x §2.7) ---- */
#define VRING_DESC_F_NEXT     1
#define VRING_DESC_F_WRITE    2
#define VRING_DESC_F_INDIRECT 4
#define VRING_USED_F_NO_NOTIFY 1

struct vring_desc { uint64_t addr; uint32_t len; uint16_t flags; uint16_t next; };
struct vring_used_elem { uint32_t id; uint32_t len; };

/* ---- packed virtqueue layout (virtio 1.1+ §2.8), with --packed ----
 * Descriptor ring of 16-byte descriptors; the driver area and the device area are one event suppression
 * structure each {le16 off_wrap, le16 flags}. A descriptor is available when its AVAIL bit equals the
 * driver's wrap counter and its USED bit does not; used when both equal the wrap counter of the used side. */
#define PACKED_DESC_F_AVAIL  (1u << 7)
#define PACKED_DESC_F_USED   (1u << 15)
#define PACKED_EVENT_ENABLE  0
#define PACKED_EVENT_DISABLE 1
#define PACKED_EVENT_DESC    2
#define PACKED_EVENT_WRAP    15     /* bit of off_wrap that carries the wrap counter */
/* SET_VRING_BASE of a fresh packed ring, as QEMU sends virtio_queue_get_last_avail_idx(): bits 0-14 the
 * next avail index, bit 15 its wrap counter, bits 16-30 the used index, bit 31 its wrap counter; both
 * wrap counters start at 1 (virtio reset). */
#define PACKED_FRESH_BASE    0x80008000u

struct vring_packed_desc { uint64_t addr; uint32_t len; uint16_t id; uint16_t flags; };

/* ---- virtio-console control protocol (virtio spec §5.3.6.2) ---- */
enum {
    C_DEVICE_READY = 0, C_PORT_ADD = 1, C_PORT_REMOVE = 2, C_PORT_READY = 3,
    C_CONSOLE_PORT = 4, C_RESIZE = 5, C_PORT_OPEN = 6, C_PORT_NAME = 7,
};
#define CONTROL_MSG_SIZE 8u
#define PAGE_SIZE_GUEST  4096u
#define TX_CHUNK_MAX     32768u /* Linux: one write() posts at most 32 KiB */
#define MAX_PORTS_ALLOC  512u   /* ports beyond this get PORT_READY(id, 0), as an allocation failure */
#define MAX_QUEUES       (2u * (MAX_PORTS_ALLOC + 1u))
#define MAX_SEGS         16u

/* ---- exit codes ---- */
#define EXIT_VIOLATION 1 /* the backend broke the protocol or corrupted data */
#define EXIT_USAGE     2
#define EXIT_IO        3 /* connection failed or closed by the backend */
#define EXIT_STALL     4 /* work pending and nothing moved for --stall-timeout seconds */

/* ---- frontend families (--family) ---- */
enum family { FAM_QEMU, FAM_CHV, FAM_LOOPBACK };
static const char *const family_names[] = { "qemu", "chv", "loopback" };

/* --family loopback: guest RAM is one sparse memfd cut into regions of about 1 GiB; region i > 0 starts 0x100
 * past a GiB boundary (the old adapter's unaligned mmap_offset), mmap_offset == guest_phys_addr ==
 * userspace_addr. At most 16 regions (8 without CONFIGURE_MEM_SLOTS: one SET_MEM_TABLE). */
#define LOOPBACK_REGION     (1ull << 30)
#define LOOPBACK_SKEW       0x100ull
#define LOOPBACK_MAX_REGIONS 16u
#define LOOPBACK_STRADDLE   (128u * 1024u) /* a buffer area begins this far before the boundary it crosses */

/* ------------------------------------------------------------------------------------------ */

static void diag_dump(void);

/* --reconnect: while a reconnect attempt runs, an I/O failure (the new backend is not there yet, or goes away
 * again) ends the attempt, not the program. */
static jmp_buf reconnect_env;
static volatile bool reconnect_armed;

static void die_code(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void die_code(int code, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    if (reconnect_armed && code == EXIT_IO) {
        reconnect_armed = false;
        fprintf(stderr, "vsb-frontend: warning: reconnect attempt failed: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        longjmp(reconnect_env, 1);
    }
    fprintf(stderr, "vsb-frontend: error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (code == EXIT_VIOLATION || code == EXIT_STALL)
        diag_dump();
    exit(code);
}
#define die(...) die_code(EXIT_VIOLATION, __VA_ARGS__)

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "vsb-frontend: warning: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* One machine-readable line on stdout, flushed at once: tests read it as it happens. */
static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the data pattern and checksum, shared with the Java tests ----
 * Stream: xorshift64 (13, 7, 17); each step's 64-bit state is emitted as 8 little-endian bytes.
 * Seed: base ^ 1 for guest->host (tx), base ^ 2 for host->guest (rx); a zero state becomes 1.
 * Default base for port N: 0x9E3779B97F4A7C15 ^ (N << 32).
 * Checksum: FNV-1a 64 over the bytes in order. */
struct stream { uint64_t x; uint64_t word; unsigned left; };

static void stream_init(struct stream *s, uint64_t seed)
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

static void stream_fill(struct stream *s, uint8_t *p, size_t n)
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

/* ---- options ---- */
enum bad_kind { BAD_NONE, BAD_ADDR, BAD_LEN, BAD_WRAP, BAD_NEXT, BAD_LOOP, BAD_INDIRECT };
static const char *const bad_names[] = { "none", "addr", "len", "wrap", "next", "loop", "indirect" };

struct port_spec {
    bool listed;
    uint64_t tx, rx;      /* bytes per run */
    bool open;            /* the scenario opens this generic port */
    bool seeded;
    uint64_t seed;
    enum bad_kind bad;
};

static struct {
    const char *socket;
    struct port_spec spec[MAX_PORTS_ALLOC];
    unsigned queue_size;
    unsigned num_queues;      /* 0 = the backend's GET_QUEUE_NUM answer */
    unsigned tx_segs;
    bool indirect;
    bool wide_index;          /* queue index >> 8 in bits 16-31 of SET_VRING_KICK/CALL/ERR (bridge extension) */
    bool inflight;            /* INFLIGHT_SHMFD: GET_INFLIGHT_FD once, SET_INFLIGHT_FD at every start */
    bool reconnect;           /* a backend that goes away is reconnected to; the guest carries on */
    unsigned tx_depth;        /* 0 = as many as the ring holds */
    unsigned tx_chunk;
    unsigned runs;
    bool use_stdin;
    bool close_at_end;
    bool verify;
    bool early_fill;
    uint64_t feature_mask;
    uint64_t proto_mask;
    uint64_t disconnect_after;
    double connect_timeout;
    double stall_timeout;
    double reply_timeout;
    const char *garbage[8];
    unsigned ngarbage;
    bool quiet;
    bool packed;              /* VIRTIO_F_RING_PACKED: every queue is a packed ring */
    bool bench;               /* benchmark mode: buffers are sent as they are, nothing is checksummed */
    unsigned depth_cap;       /* benchmark: tx buffers in flight per generic port, 0 = tx_depth */
    enum family family;       /* whose message order and memory model the frontend plays */
    bool no_multiport;        /* the driver does not ack VIRTIO_CONSOLE_F_MULTIPORT: one console on queues 0/1 */
    bool emerg_write;         /* the driver acks VIRTIO_CONSOLE_F_EMERG_WRITE (Linux never does) */
} opt = {
    .queue_size = 64, .tx_segs = 1, .tx_chunk = TX_CHUNK_MAX, .runs = 1, .verify = true,
    .feature_mask = ~0ull, .proto_mask = ~0ull, .connect_timeout = 20, .stall_timeout = 30,
    .reply_timeout = 10,
};

/* ---- guest memory ---- */
static struct {
    int fd;
    uint8_t *base;
    uint64_t size;
    uint64_t brk;
    unsigned nregions;        /* --family loopback: regions of the one memfd; else 1 */
    uint64_t start[LOOPBACK_MAX_REGIONS + 1]; /* region i is [start[i], start[i + 1]) */
} mem;

static uint64_t mem_alloc(uint64_t size, uint64_t align)
{
    mem.brk = (mem.brk + align - 1) & ~(align - 1);
    uint64_t at = mem.brk;
    mem.brk += size;
    return at;
}

static inline void *gpa_ptr(uint64_t gpa) { return mem.base + gpa; }
/* The frontend virtual address the backend is told about: QEMU's and cloud-hypervisor's own mapping; the loopback
 * adapter's regions have userspace_addr == guest_phys_addr. */
static inline uint64_t gpa_uva(uint64_t gpa)
{
    return opt.family == FAM_LOOPBACK ? gpa : (uint64_t)(uintptr_t)(mem.base + gpa);
}

static unsigned region_of(uint64_t gpa)
{
    unsigned i = 0;
    while (i + 1 < mem.nregions && gpa >= mem.start[i + 1])
        i++;
    return i;
}

/* A buffer [gpa, gpa + len) the backend must read or write in two memory regions. */
static bool crosses_regions(uint64_t gpa, uint64_t len)
{
    return len > 1 && mem.nregions > 1 && region_of(gpa) != region_of(gpa + len - 1);
}

/* ---- virtqueues (driver side) ---- */
struct head_state {
    bool live;
    uint16_t ndesc;
    uint32_t cookie; /* buffer or slot index */
    uint32_t cap;    /* device-writable bytes; 0 for device-readable chains */
    uint32_t bytes;  /* device-readable bytes */
    bool bad;
};

struct vq {
    unsigned index;
    uint16_t num;
    bool setup;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    struct vring_desc *desc;
    volatile uint16_t *avail_flags, *avail_idx_p, *avail_ring, *used_event;
    volatile uint16_t *used_flags, *used_idx_p, *avail_event;
    volatile struct vring_used_elem *used_ring;
    uint16_t avail_idx, published, last_used;
    uint16_t free_head, num_free, live;
    uint16_t *shadow_next;
    struct head_state *heads;
    bool dirty;
    /* --packed: shadow_next is the free list of buffer ids, num_free counts free ring slots, heads[] is
     * indexed by buffer id and remembers each chain's descriptor count */
    volatile struct vring_packed_desc *pdesc;
    volatile uint16_t *drv_off_wrap, *drv_flags; /* driver event suppression (written here) */
    volatile uint32_t *dev_event;                /* device event suppression: off_wrap | flags << 16 */
    uint16_t next_avail, used_pos, num_added;
    bool avail_wrap, used_wrap;
    int kick_fd, call_fd, masked_fd, err_fd;
    uint64_t kicks, calls, used_entries, errs;
    bool call_seen;
};

/* ---- ports ---- */
struct port {
    bool exists, console, guest_open, host_open, named, ready_sent, removed;
    char name[256];
    /* cumulative over runs */
    uint64_t tx_posted, tx_done, tx_sum;
    uint64_t rx_bytes, rx_sum, rx_discarded;
    struct stream tx_stream, rx_stream;
    /* per run */
    uint64_t tx_target, rx_target, run_tx0, run_rx0;
    double t_tx_first, t_tx_last, t_rx_first, t_rx_last;
    /* buffers */
    uint64_t rx_gpa;     /* queue_size buffers of PAGE_SIZE */
    uint64_t tx_gpa;     /* tx_depth slots of slot_size */
    uint64_t itab_gpa;   /* tx_depth indirect tables of MAX_SEGS descriptors */
    uint16_t *tx_free;   /* stack of free slot numbers */
    unsigned tx_nfree;
    uint32_t *tx_len;
    int bad_state;       /* 0 none, 1 waiting to post, 2 posted, 3 returned */
    uint32_t bad_len;
    uint64_t rx_cross, tx_cross; /* used buffers that spanned two memory regions (--family loopback) */
};

static struct {
    int sock;
    unsigned run;
    uint64_t features_offered, features_acked, proto_offered, proto_acked;
    uint64_t queue_num, max_mem_slots;
    bool reply_ack, event_idx, status;
    unsigned num_vqs, needed_vqs, max_nr_ports;
    unsigned tx_depth, tx_segs, slot_size;
    struct vq vq[MAX_QUEUES];
    struct port port[MAX_PORTS_ALLOC];
    uint64_t ctl_rx_gpa, ctl_tx_gpa;
    uint16_t ctl_tx_free[4096];
    unsigned ctl_tx_nfree;
    uint8_t ctl_pending[1024][CONTROL_MSG_SIZE];
    unsigned ctl_npending;
    double last_progress;
    bool stopping, ended, want_idle, ready_printed, device_ready_sent;
    char in_buf[4096];
    size_t in_len;
    bool stdin_open;
    int inflight_fd;          /* the backend's inflight buffer, kept across its restarts; -1 = none */
    uint64_t inflight_size, inflight_offset;
    int *accept_fd;           /* where read_exact puts one fd that comes with a reply; NULL = none wanted */
    unsigned reconnects;
    int backend_fd;           /* our end of the BACKEND_REQ channel (SET_BACKEND_REQ_FD); -1 = none */
    bool multiport;           /* the driver acked VIRTIO_CONSOLE_F_MULTIPORT */
    bool have_config;         /* config read at realize (--family loopback) */
    uint16_t cfg_cols, cfg_rows;
    uint32_t cfg_max_nr_ports;
    unsigned boots;           /* driver starts in this run: 1, then one more per reboot */
} g;

static unsigned rx_queue_of(unsigned port) { return port == 0 ? 0 : 2 * port + 2; }
static unsigned tx_queue_of(unsigned port) { return port == 0 ? 1 : 2 * port + 3; }

/* ------------------------------------------------------------------------------------------ */
/* vhost-user messages                                                                         */

static const char *req_name(uint32_t r)
{
    switch (r) {
    case VU_GET_FEATURES: return "GET_FEATURES";
    case VU_SET_FEATURES: return "SET_FEATURES";
    case VU_SET_OWNER: return "SET_OWNER";
    case VU_SET_MEM_TABLE: return "SET_MEM_TABLE";
    case VU_SET_VRING_NUM: return "SET_VRING_NUM";
    case VU_SET_VRING_ADDR: return "SET_VRING_ADDR";
    case VU_SET_VRING_BASE: return "SET_VRING_BASE";
    case VU_GET_VRING_BASE: return "GET_VRING_BASE";
    case VU_SET_VRING_KICK: return "SET_VRING_KICK";
    case VU_SET_VRING_CALL: return "SET_VRING_CALL";
    case VU_SET_VRING_ERR: return "SET_VRING_ERR";
    case VU_GET_PROTOCOL_FEATURES: return "GET_PROTOCOL_FEATURES";
    case VU_SET_PROTOCOL_FEATURES: return "SET_PROTOCOL_FEATURES";
    case VU_GET_QUEUE_NUM: return "GET_QUEUE_NUM";
    case VU_SET_VRING_ENABLE: return "SET_VRING_ENABLE";
    case VU_GET_CONFIG: return "GET_CONFIG";
    case VU_GET_MAX_MEM_SLOTS: return "GET_MAX_MEM_SLOTS";
    case VU_ADD_MEM_REG: return "ADD_MEM_REG";
    case VU_SET_STATUS: return "SET_STATUS";
    case VU_GET_STATUS: return "GET_STATUS";
    case VU_GET_INFLIGHT_FD: return "GET_INFLIGHT_FD";
    case VU_RESET_OWNER: return "RESET_OWNER";
    case VU_SET_BACKEND_REQ_FD: return "SET_BACKEND_REQ_FD";
    case VU_SET_CONFIG: return "SET_CONFIG";
    case VU_RESET_DEVICE: return "RESET_DEVICE";
    case VU_SET_INFLIGHT_FD: return "SET_INFLIGHT_FD";
    default: return "request";
    }
}

static void vu_send(uint32_t req, uint32_t flags, const void *payload, uint32_t size,
                    const int *fds, unsigned nfds)
{
    uint8_t hdr[VU_HDR_SIZE];
    memcpy(hdr, &req, 4);
    memcpy(hdr + 4, &flags, 4);
    memcpy(hdr + 8, &size, 4);
    struct iovec iov[2] = { { hdr, VU_HDR_SIZE }, { (void *)payload, size } };
    union { char buf[CMSG_SPACE(sizeof(int) * 8)]; struct cmsghdr align; } ctl;
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = iov;
    m.msg_iovlen = size ? 2 : 1;
    if (nfds) {
        memset(&ctl, 0, sizeof ctl);
        m.msg_control = ctl.buf;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    size_t total = VU_HDR_SIZE + size, sent = 0;
    while (sent < total) {
        ssize_t n = sendmsg(g.sock, &m, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die_code(EXIT_IO, "sending %s (%u) to the backend failed: %s", req_name(req), req,
                     strerror(errno));
        }
        sent += (size_t)n;
        /* A short send: the fds went with the first byte; push the rest without them. */
        m.msg_control = NULL;
        m.msg_controllen = 0;
        size_t skip = (size_t)n;
        while (m.msg_iovlen && skip >= m.msg_iov[0].iov_len) {
            skip -= m.msg_iov[0].iov_len;
            m.msg_iov++;
            m.msg_iovlen--;
        }
        if (m.msg_iovlen) {
            m.msg_iov[0].iov_base = (uint8_t *)m.msg_iov[0].iov_base + skip;
            m.msg_iov[0].iov_len -= skip;
        }
    }
}

static void wait_readable(int fd, double timeout, uint32_t req)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int ms = (int)(timeout * 1000);
    for (;;) {
        int n = poll(&p, 1, ms);
        if (n > 0)
            return;
        if (n == 0)
            die_code(EXIT_IO, "the backend did not reply to %s (%u) within %.0f s", req_name(req), req,
                     timeout);
        if (errno != EINTR)
            die_code(EXIT_IO, "poll: %s", strerror(errno));
    }
}

/* Reads exactly n bytes; the first read also collects (and rejects) any fds. */
static void read_exact(void *buf, size_t n, uint32_t req, bool first)
{
    size_t got = 0;
    while (got < n) {
        wait_readable(g.sock, opt.reply_timeout, req);
        union { char buf[CMSG_SPACE(sizeof(int) * 16)]; struct cmsghdr align; } ctl;
        struct iovec iov = { (uint8_t *)buf + got, n - got };
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctl.buf;
        m.msg_controllen = sizeof ctl.buf;
        ssize_t r = recvmsg(g.sock, &m, MSG_CMSG_CLOEXEC);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die_code(EXIT_IO, "reading the reply to %s from the backend failed: %s", req_name(req),
                     strerror(errno));
        }
        if (r == 0)
            die_code(EXIT_IO, "the backend closed the connection while %s (%u) waited for its reply "
                     "(read %zu of %zu bytes)", req_name(req), req, got, n);
        unsigned stray = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                for (unsigned i = 0; i < k; i++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                    if (g.accept_fd && *g.accept_fd < 0) {
                        *g.accept_fd = fd; /* the one descriptor this reply carries */
                        continue;
                    }
                    close(fd);
                    stray++;
                }
            }
        }
        if (stray)
            die("the backend sent %u unexpected file descriptor(s) with the reply to %s", stray,
                req_name(req));
        (void)first;
        got += (size_t)r;
    }
}

/* Receives the reply to req; checks request code, flags == 0x5 and the exact payload size. */
static void vu_reply(uint32_t req, void *payload, uint32_t size)
{
    uint8_t hdr[VU_HDR_SIZE];
    read_exact(hdr, sizeof hdr, req, true);
    uint32_t r, flags, sz;
    memcpy(&r, hdr, 4);
    memcpy(&flags, hdr + 4, 4);
    memcpy(&sz, hdr + 8, 4);
    if (r != req)
        die("reply carries request %u, expected %u (%s)", r, req, req_name(req));
    if (flags != (VU_FLAG_VERSION | VU_FLAG_REPLY))
        die("reply to %s has flags 0x%x instead of 0x5", req_name(req), flags);
    if (sz > VU_MAX_PAYLOAD)
        die("reply to %s announces %u payload bytes (limit %u)", req_name(req), sz, VU_MAX_PAYLOAD);
    if (sz != size) {
        uint8_t junk[VU_MAX_PAYLOAD];
        read_exact(junk, sz, req, false);
        die("reply to %s has payload size %u, expected %u", req_name(req), sz, size);
    }
    read_exact(payload, size, req, false);
}

static uint64_t vu_get_u64(uint32_t req)
{
    uint64_t v;
    vu_send(req, VU_FLAG_VERSION, NULL, 0, NULL, 0);
    vu_reply(req, &v, sizeof v);
    return v;
}

/* Whether the family sets NEED_REPLY on req once REPLY_ACK is negotiated: QEMU on every request without a reply
 * of its own (§10); the rust-vmm frontend of cloud-hypervisor only on the memory table; the loopback adapter on
 * its memory regions and its private request 39, never during the handshake (§7 trace). */
static bool family_wants_ack(uint32_t req)
{
    switch (opt.family) {
    case FAM_CHV: return req == VU_SET_MEM_TABLE;
    case FAM_LOOPBACK: return req == VU_ADD_MEM_REG || req == VU_SET_MEM_TABLE || req == VU_SHARE_LOOPBACK_FD;
    default: return true;
    }
}

/* A request the family sends with NEED_REPLY when REPLY_ACK is negotiated: wait for the ack. */
static void vu_acked(uint32_t req, const void *payload, uint32_t size, const int *fds, unsigned nfds)
{
    if (!g.reply_ack || !family_wants_ack(req)) {
        vu_send(req, VU_FLAG_VERSION, payload, size, fds, nfds);
        return;
    }
    vu_send(req, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY, payload, size, fds, nfds);
    uint64_t ack;
    vu_reply(req, &ack, sizeof ack);
    if (ack != 0)
        die("the backend refused %s with ack %" PRIu64, req_name(req), ack);
}

static void vu_plain(uint32_t req, const void *payload, uint32_t size)
{
    vu_send(req, VU_FLAG_VERSION, payload, size, NULL, 0);
}

static void vu_state(uint32_t req, unsigned index, unsigned num)
{
    uint32_t s[2] = { index, num };
    if (req == VU_SET_VRING_ENABLE)
        vu_acked(req, s, sizeof s, NULL, 0);
    else
        vu_plain(req, s, sizeof s);
}

static void vu_fd(uint32_t req, unsigned index, int fd)
{
    /* The spec has 8 bits for the index (bit 8 is NOFD); the bridge's extension carries index >> 8 in bits
     * 16-31, so that queues 256..1023 of a 511-port console get their eventfds. */
    uint64_t v = opt.wide_index ? (index & 0xffu) | (uint64_t)(index >> 8) << 16 : index;
    vu_acked(req, &v, sizeof v, &fd, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* rings                                                                                       */

static inline uint16_t ld16_acq(volatile uint16_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void st16_rel(volatile uint16_t *p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void full_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

static void vq_layout(struct vq *q, unsigned index, uint16_t num)
{
    q->index = index;
    q->num = num;
    q->desc_gpa = mem_alloc(16ull * num, 4096);
    if (opt.packed) {
        /* Each part on its own page, as Linux allocates them; avail_gpa and used_gpa name the driver and
         * the device area and go to SET_VRING_ADDR as avail and used, as QEMU sends them. */
        q->avail_gpa = mem_alloc(4, 4096);
        q->used_gpa = mem_alloc(4, 4096);
        return;
    }
    q->avail_gpa = mem_alloc(6ull + 2ull * num, 4096);
    q->used_gpa = mem_alloc(6ull + 8ull * num, 4096);
}

static void vq_bind_packed(struct vq *q)
{
    uint8_t *a = gpa_ptr(q->avail_gpa), *u = gpa_ptr(q->used_gpa);
    q->pdesc = gpa_ptr(q->desc_gpa);
    q->drv_off_wrap = (volatile uint16_t *)a;
    q->drv_flags = (volatile uint16_t *)(a + 2);
    q->dev_event = (volatile uint32_t *)u;
    q->next_avail = q->used_pos = q->num_added = 0;
    q->avail_wrap = q->used_wrap = true;
    /* Interrupts on; with EVENT_IDX at the first used position (index 0, wrap 1). */
    *q->drv_off_wrap = (uint16_t)(1u << PACKED_EVENT_WRAP);
    st16_rel(q->drv_flags, g.event_idx ? PACKED_EVENT_DESC : PACKED_EVENT_ENABLE);
}

static void vq_bind(struct vq *q)
{
    if (opt.packed) {
        vq_bind_packed(q);
    } else {
        uint8_t *a = gpa_ptr(q->avail_gpa), *u = gpa_ptr(q->used_gpa);
        q->desc = gpa_ptr(q->desc_gpa);
        q->avail_flags = (volatile uint16_t *)a;
        q->avail_idx_p = (volatile uint16_t *)(a + 2);
        q->avail_ring = (volatile uint16_t *)(a + 4);
        q->used_event = (volatile uint16_t *)(a + 4 + 2 * q->num);
        q->used_flags = (volatile uint16_t *)u;
        q->used_idx_p = (volatile uint16_t *)(u + 2);
        q->used_ring = (volatile struct vring_used_elem *)(u + 4);
        q->avail_event = (volatile uint16_t *)(u + 4 + 8 * q->num);
    }
    free(q->shadow_next);
    free(q->heads);
    q->shadow_next = calloc(q->num, sizeof(uint16_t));
    q->heads = calloc(q->num, sizeof(struct head_state));
    if (!q->shadow_next || !q->heads)
        die_code(EXIT_IO, "out of memory");
    for (unsigned i = 0; i < q->num; i++)
        q->shadow_next[i] = (uint16_t)((i + 1) % q->num);
    q->free_head = 0;
    q->num_free = q->num;
    q->avail_idx = q->published = q->last_used = 0;
    q->live = 0;
    q->setup = true;
}

struct seg { uint64_t gpa; uint32_t len; bool write; };

/* Posts one chain; returns the head or -1 when the ring has no room. */
/* A chain's device-writable (cap) and device-readable (bytes) lengths. */
static void seg_totals(const struct seg *s, unsigned n, uint32_t *cap, uint32_t *bytes)
{
    *cap = *bytes = 0;
    for (unsigned i = 0; i < n; i++) {
        if (s[i].write)
            *cap += s[i].len;
        else
            *bytes += s[i].len;
    }
}

static int vq_post_split(struct vq *q, const struct seg *s, unsigned n, uint64_t itab_gpa, uint32_t cookie)
{
    bool indirect = itab_gpa != 0;
    unsigned need = indirect ? 1 : n;
    if (q->num_free < need)
        return -1;
    uint16_t head = q->free_head, d = head;
    uint32_t cap, bytes;
    seg_totals(s, n, &cap, &bytes);
    if (indirect) {
        struct vring_desc *t = gpa_ptr(itab_gpa);
        for (unsigned i = 0; i < n; i++) {
            t[i].addr = s[i].gpa;
            t[i].len = s[i].len;
            t[i].flags = (uint16_t)((s[i].write ? VRING_DESC_F_WRITE : 0) | (i + 1 < n ? VRING_DESC_F_NEXT : 0));
            t[i].next = (uint16_t)(i + 1 < n ? i + 1 : 0);
        }
        q->desc[d].addr = itab_gpa;
        q->desc[d].len = (uint32_t)(n * sizeof(struct vring_desc));
        q->desc[d].flags = VRING_DESC_F_INDIRECT;
        q->desc[d].next = 0;
        q->free_head = q->shadow_next[d];
    } else {
        for (unsigned i = 0; i < n; i++) {
            q->desc[d].addr = s[i].gpa;
            q->desc[d].len = s[i].len;
            q->desc[d].flags = (uint16_t)((s[i].write ? VRING_DESC_F_WRITE : 0) | (i + 1 < n ? VRING_DESC_F_NEXT : 0));
            q->desc[d].next = i + 1 < n ? q->shadow_next[d] : 0;
            d = q->shadow_next[d];
        }
        q->free_head = d;
    }
    q->num_free = (uint16_t)(q->num_free - need);
    q->heads[head] = (struct head_state){ .live = true, .ndesc = (uint16_t)need, .cookie = cookie,
                                          .cap = cap, .bytes = bytes };
    q->live++;
    q->avail_ring[q->avail_idx & (q->num - 1)] = head;
    q->avail_idx++;
    q->dirty = true;
    return head;
}

static inline uint16_t packed_avail_bits(bool wrap)
{
    return (uint16_t)(wrap ? PACKED_DESC_F_AVAIL : PACKED_DESC_F_USED);
}

/* Packed ring: writes the chain at the driver's position and makes it available at once (the head's flags
 * go last, with release ordering); returns the buffer id or -1 when the ring has no room. With itab_gpa the
 * chain goes into one INDIRECT descriptor pointing at a table of packed descriptors there; table_addr, if
 * not 0, replaces the table's address in that descriptor (a bad descriptor on purpose). */
static int vq_post_packed(struct vq *q, const struct seg *s, unsigned n, uint64_t itab_gpa, uint64_t table_addr,
                          uint32_t cookie)
{
    bool indirect = itab_gpa != 0;
    unsigned need = indirect ? 1 : n;
    if (q->num_free < need || q->live >= q->num)
        return -1;
    uint16_t id = q->free_head;
    q->free_head = q->shadow_next[id];
    uint32_t cap, bytes;
    seg_totals(s, n, &cap, &bytes);
    uint16_t head = q->next_avail, pos = head, head_flags;
    bool wrap = q->avail_wrap;
    if (indirect) {
        struct vring_packed_desc *t = gpa_ptr(itab_gpa);
        for (unsigned i = 0; i < n; i++) {
            /* In a table the descriptors follow one another: no NEXT, the id is unused. */
            t[i].addr = s[i].gpa;
            t[i].len = s[i].len;
            t[i].id = 0;
            t[i].flags = (uint16_t)(s[i].write ? VRING_DESC_F_WRITE : 0);
        }
        q->pdesc[head].addr = table_addr ? table_addr : itab_gpa;
        q->pdesc[head].len = (uint32_t)(n * sizeof(struct vring_packed_desc));
        q->pdesc[head].id = id;
        head_flags = (uint16_t)(VRING_DESC_F_INDIRECT | packed_avail_bits(wrap));
        if (++pos == q->num) {
            pos = 0;
            wrap = !wrap;
        }
    } else {
        head_flags = 0;
        for (unsigned i = 0; i < n; i++) {
            uint16_t f = (uint16_t)((s[i].write ? VRING_DESC_F_WRITE : 0) | (i + 1 < n ? VRING_DESC_F_NEXT : 0) |
                                    packed_avail_bits(wrap));
            volatile struct vring_packed_desc *d = &q->pdesc[pos];
            d->addr = s[i].gpa;
            d->len = s[i].len;
            d->id = id; /* the device reads it from the last one; Linux writes it in every descriptor */
            if (i == 0)
                head_flags = f;
            else
                d->flags = f;
            /* A chain may run over the end of the ring: what follows carries the flipped wrap counter. */
            if (++pos == q->num) {
                pos = 0;
                wrap = !wrap;
            }
        }
    }
    q->next_avail = pos;
    q->avail_wrap = wrap;
    st16_rel(&q->pdesc[head].flags, head_flags);
    q->num_free = (uint16_t)(q->num_free - need);
    q->heads[id] = (struct head_state){ .live = true, .ndesc = (uint16_t)need, .cookie = cookie,
                                        .cap = cap, .bytes = bytes };
    q->live++;
    q->num_added = (uint16_t)(q->num_added + need);
    q->dirty = true;
    return id;
}

static int vq_post(struct vq *q, const struct seg *s, unsigned n, uint64_t itab_gpa, uint32_t cookie)
{
    return opt.packed ? vq_post_packed(q, s, n, itab_gpa, 0, cookie) : vq_post_split(q, s, n, itab_gpa, cookie);
}

static void vq_free(struct vq *q, uint16_t head)
{
    struct head_state *h = &q->heads[head];
    if (opt.packed) {
        /* The id goes back on its free list; the chain's ring slots are free again. */
        q->shadow_next[head] = q->free_head;
        q->free_head = head;
        q->num_free = (uint16_t)(q->num_free + h->ndesc);
        h->live = false;
        q->live--;
        return;
    }
    uint16_t last = head;
    for (unsigned i = 1; i < h->ndesc; i++)
        last = q->shadow_next[last];
    q->shadow_next[last] = q->free_head;
    q->free_head = head;
    q->num_free = (uint16_t)(q->num_free + h->ndesc);
    h->live = false;
    q->live--;
}

static void vq_kick(struct vq *q)
{
    uint64_t one = 1;
    if (write(q->kick_fd, &one, sizeof one) != sizeof one)
        die_code(EXIT_IO, "writing kick eventfd of queue %u: %s", q->index, strerror(errno));
    q->kicks++;
}

/* Packed ring: the chains are available already; kick unless the device event suppression says no. */
static void vq_publish_packed(struct vq *q)
{
    uint16_t added = q->num_added;
    q->num_added = 0;
    full_fence();
    /* flags and off_wrap as one snapshot */
    uint32_t ev = __atomic_load_n(q->dev_event, __ATOMIC_ACQUIRE);
    uint16_t off_wrap = (uint16_t)ev, flags = (uint16_t)(ev >> 16);
    bool want;
    if (flags == PACKED_EVENT_ENABLE) {
        want = true;
    } else if (flags == PACKED_EVENT_DISABLE) {
        want = false;
    } else if (flags == PACKED_EVENT_DESC) {
        if (!g.event_idx)
            die("queue %u: device event suppression flags 2 (DESC) but VIRTIO_RING_F_EVENT_IDX was not negotiated",
                q->index);
        uint16_t at = off_wrap & 0x7fff;
        if (at >= q->num)
            die("queue %u: device event suppression off_wrap 0x%04x names descriptor %u of a ring of %u", q->index,
                off_wrap, at, q->num);
        /* Positions of this lap are 0..num-1, of the lap before -num..-1 (mod 2^16): an event index with
         * the other wrap counter is one of the lap before. The device wants a kick if the descriptors made
         * available since the last kick decision, old .. new-1, include it. */
        if ((off_wrap >> PACKED_EVENT_WRAP) != q->avail_wrap)
            at = (uint16_t)(at - q->num);
        uint16_t nw = q->next_avail;
        want = (uint16_t)(nw - at - 1) < added;
    } else {
        die("queue %u: device event suppression flags %u (0x%08x): reserved value", q->index, flags, ev);
    }
    if (want)
        vq_kick(q);
}

/* Publishes new avail entries and kicks when the device asked for it (EVENT_IDX) or did not
 * suppress notifications. */
static void vq_publish(struct vq *q)
{
    if (!q->dirty)
        return;
    q->dirty = false;
    if (opt.packed) {
        vq_publish_packed(q);
        return;
    }
    uint16_t old = q->published, nw = q->avail_idx;
    st16_rel(q->avail_idx_p, nw);
    q->published = nw;
    full_fence();
    bool kick;
    if (g.event_idx) {
        uint16_t ev = ld16_acq(q->avail_event);
        kick = (uint16_t)(nw - ev - 1) < (uint16_t)(nw - old);
    } else {
        kick = !(ld16_acq(q->used_flags) & VRING_USED_F_NO_NOTIFY);
    }
    if (kick)
        vq_kick(q);
}

static void on_used(struct vq *q, uint16_t head, uint32_t len, struct head_state h);

/* Packed ring: the descriptor at pos is used when its AVAIL and USED bits both equal wrap. */
static inline bool packed_is_used(struct vq *q, uint16_t pos, bool wrap)
{
    uint16_t f = ld16_acq(&q->pdesc[pos].flags);
    return ((f & PACKED_DESC_F_AVAIL) != 0) == wrap && ((f & PACKED_DESC_F_USED) != 0) == wrap;
}

/* Packed ring: takes every used descriptor from the driver's used position on, checked as strictly as Linux
 * does (virtqueue_get_buf_ctx_packed) and a little more. */
static unsigned vq_drain_packed(struct vq *q)
{
    unsigned done = 0;
    for (;;) {
        while (packed_is_used(q, q->used_pos, q->used_wrap)) {
            volatile struct vring_packed_desc *d = &q->pdesc[q->used_pos];
            if (!q->live)
                die("queue %u: descriptor %u is marked used (flags 0x%04x, wrap %u) but no buffers are outstanding",
                    q->index, q->used_pos, d->flags, q->used_wrap);
            uint16_t id = d->id;
            uint32_t len = d->len;
            if (id >= q->num)
                die("queue %u: used descriptor %u carries buffer id %u, out of range (ring size %u)", q->index,
                    q->used_pos, id, q->num);
            if (!q->heads[id].live)
                die("queue %u: used descriptor %u carries buffer id %u, which is not outstanding", q->index,
                    q->used_pos, id);
            struct head_state h = q->heads[id];
            if (h.cap && len > h.cap)
                die("queue %u: used len %u for buffer id %u exceeds the %u writable bytes posted", q->index, len, id,
                    h.cap);
            vq_free(q, id);
            /* The next used descriptor follows the whole chain of this one. */
            unsigned next = q->used_pos + h.ndesc;
            if (next >= q->num) {
                next -= q->num;
                q->used_wrap = !q->used_wrap;
            }
            q->used_pos = (uint16_t)next;
            q->used_entries++;
            done++;
            on_used(q, id, len, h);
        }
        if (!g.event_idx)
            break;
        /* Ask for a call at the next used position, then re-check so none slips between. */
        st16_rel(q->drv_off_wrap, (uint16_t)(q->used_pos | (uint16_t)q->used_wrap << PACKED_EVENT_WRAP));
        full_fence();
        if (!packed_is_used(q, q->used_pos, q->used_wrap))
            break;
    }
    if (done)
        g.last_progress = now_s();
    return done;
}

/* Takes every new used entry, checked as strictly as Linux does (virtqueue_get_buf_ctx_split). */
static unsigned vq_drain(struct vq *q)
{
    if (opt.packed)
        return vq_drain_packed(q);
    unsigned done = 0;
    for (;;) {
        uint16_t uidx = ld16_acq(q->used_idx_p);
        uint16_t fresh = (uint16_t)(uidx - q->last_used);
        if (fresh > q->live)
            die("queue %u: used idx moved from %u to %u (%u entries) but only %u buffers are outstanding",
                q->index, q->last_used, uidx, fresh, q->live);
        while (q->last_used != uidx) {
            volatile struct vring_used_elem *e = &q->used_ring[q->last_used & (q->num - 1)];
            uint32_t id = e->id, len = e->len;
            if (id >= q->num)
                die("queue %u: used id %u out of range (ring size %u)", q->index, id, q->num);
            if (!q->heads[id].live)
                die("queue %u: used id %u is not an outstanding head", q->index, id);
            struct head_state h = q->heads[id];
            if (h.cap && len > h.cap)
                die("queue %u: used len %u for head %u exceeds the %u writable bytes posted", q->index, len,
                    id, h.cap);
            vq_free(q, (uint16_t)id);
            q->last_used++;
            q->used_entries++;
            done++;
            on_used(q, (uint16_t)id, len, h);
        }
        if (!g.event_idx)
            break;
        /* Ask for a call at the next used entry, then re-check so none slips between. */
        st16_rel(q->used_event, q->last_used);
        full_fence();
        if (ld16_acq(q->used_idx_p) == q->last_used)
            break;
    }
    if (done)
        g.last_progress = now_s();
    return done;
}

/* ------------------------------------------------------------------------------------------ */
/* control queue                                                                               */

#define CTL_RX 2
#define CTL_TX 3
#define CTL_TX_SLOT 64u

static void ctl_post_rx(uint32_t buf)
{
    struct seg s = { g.ctl_rx_gpa + (uint64_t)buf * PAGE_SIZE_GUEST, PAGE_SIZE_GUEST, true };
    if (vq_post(&g.vq[CTL_RX], &s, 1, 0, buf) < 0)
        die("control receiveq has no free descriptor for buffer %u", buf);
}

static void ctl_flush_pending(void)
{
    struct vq *q = &g.vq[CTL_TX];
    unsigned sent = 0;
    while (sent < g.ctl_npending && g.ctl_tx_nfree && q->num_free) {
        uint16_t slot = g.ctl_tx_free[--g.ctl_tx_nfree];
        uint64_t gpa = g.ctl_tx_gpa + (uint64_t)slot * CTL_TX_SLOT;
        memcpy(gpa_ptr(gpa), g.ctl_pending[sent], CONTROL_MSG_SIZE);
        struct seg s = { gpa, CONTROL_MSG_SIZE, false };
        if (vq_post(q, &s, 1, 0, slot) < 0)
            die("control transmitq: no descriptor");
        sent++;
    }
    if (sent) {
        memmove(g.ctl_pending, g.ctl_pending[sent], (size_t)(g.ctl_npending - sent) * CONTROL_MSG_SIZE);
        g.ctl_npending -= sent;
    }
}

static void ctl_send(uint32_t id, uint16_t event, uint16_t value)
{
    if (!g.multiport) {
        warn("control message event %u for port %u: MULTIPORT is not negotiated, there is no control queue", event,
             id);
        return;
    }
    if (g.ctl_npending >= 1024)
        die("control transmitq: 1024 messages wait and the backend uses none of them");
    uint8_t *m = g.ctl_pending[g.ctl_npending++];
    memcpy(m, &id, 4);
    memcpy(m + 4, &event, 2);
    memcpy(m + 6, &value, 2);
    ctl_flush_pending();
}

static struct port *port_of(uint32_t id)
{
    return id < MAX_PORTS_ALLOC && g.port[id].exists ? &g.port[id] : NULL;
}

static void port_post_rx(struct port *p, unsigned id, uint32_t buf)
{
    struct seg s = { p->rx_gpa + (uint64_t)buf * PAGE_SIZE_GUEST, PAGE_SIZE_GUEST, true };
    if (vq_post(&g.vq[rx_queue_of(id)], &s, 1, 0, buf) < 0)
        die("port %u receiveq has no free descriptor", id);
}

/* Fills a port's receiveq: every one of its buffers that is not posted already. A port removed and added again
 * finds its old buffers still in the ring (this driver leaves them there; the device may hold them). */
static void port_fill_rx(struct port *p, unsigned id)
{
    struct vq *rq = &g.vq[rx_queue_of(id)];
    bool *posted = calloc(rq->num, sizeof(bool));
    if (!posted)
        die_code(EXIT_IO, "out of memory");
    for (unsigned h = 0; h < rq->num; h++)
        if (rq->heads[h].live && rq->heads[h].cookie < rq->num)
            posted[rq->heads[h].cookie] = true;
    for (unsigned b = 0; b < rq->num; b++)
        if (!posted[b])
            port_post_rx(p, id, b);
    free(posted);
    vq_publish(rq);
}

static void port_add(uint32_t id)
{
    if (id >= g.max_nr_ports) {
        warn("PORT_ADD for port %u, but max_nr_ports is %u: ignored (as Linux does)", id, g.max_nr_ports);
        return;
    }
    if (id >= MAX_PORTS_ALLOC || 2 * id + 3 >= g.needed_vqs) {
        warn("PORT_ADD for port %u: no buffers for it here, answering PORT_READY(0)", id);
        ctl_send(id, C_PORT_READY, 0);
        return;
    }
    struct port *p = &g.port[id];
    if (p->exists) {
        ctl_send(id, C_PORT_READY, 1);
        return;
    }
    p->exists = true;
    p->removed = false;
    p->console = p->guest_open = p->host_open = p->named = false;
    p->name[0] = 0;
    port_fill_rx(p, id);
    ctl_send(id, C_PORT_READY, 1);
    p->ready_sent = true;
    out("EVENT port_add port=%u", id);
}

static void set_guest_open(unsigned id, bool open)
{
    struct port *p = &g.port[id];
    p->guest_open = open;
    ctl_send(id, C_PORT_OPEN, open ? 1 : 0);
    out("EVENT guest_open port=%u value=%u", id, open ? 1 : 0);
}

static void control_message(const uint8_t *b, uint32_t len)
{
    if (len < CONTROL_MSG_SIZE)
        die("control receiveq: used len %u is shorter than a control message (8 bytes)", len);
    uint32_t id;
    uint16_t ev, val;
    memcpy(&id, b, 4);
    memcpy(&ev, b + 4, 2);
    memcpy(&val, b + 6, 2);
    if (ev == C_PORT_ADD) {
        port_add(id);
        return;
    }
    struct port *p = port_of(id);
    if (!p) {
        warn("control message event %u for port %u, which does not exist: ignored", ev, id);
        return;
    }
    switch (ev) {
    case C_CONSOLE_PORT:
        if (val && !p->console) {
            p->console = true;
            out("EVENT console_port port=%u", id);
            /* init_port_console: a console is opened by the driver at once. */
            set_guest_open(id, true);
        }
        break;
    case C_PORT_NAME: {
        if (p->named)
            break; /* first name wins */
        uint32_t n = len - CONTROL_MSG_SIZE;
        if (n >= sizeof p->name)
            n = sizeof p->name - 1;
        memcpy(p->name, b + CONTROL_MSG_SIZE, n);
        p->name[n] = 0;
        for (char *c = p->name; *c; c++)
            if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
                *c = '?';
        p->named = true;
        out("NAME port=%u %s", id, p->name);
        break;
    }
    case C_PORT_OPEN:
        p->host_open = val != 0;
        out("EVENT port_open port=%u value=%u", id, val);
        break;
    case C_PORT_REMOVE:
        /* unplug_port: the application sees the port go (no PORT_OPEN 0 is sent), nothing more is written or
         * expected on it; buffers the device has not used stay in the rings and are reused if it comes back. */
        p->exists = false;
        p->removed = true;
        p->guest_open = p->host_open = p->console = p->named = p->ready_sent = false;
        p->tx_target = p->tx_posted;
        if (p->rx_target > p->rx_bytes)
            p->rx_target = p->rx_bytes;
        out("EVENT port_remove port=%u", id);
        break;
    case C_RESIZE: {
        uint16_t a = 0, c = 0;
        if (len >= CONTROL_MSG_SIZE + 4) {
            memcpy(&a, b + 8, 2);
            memcpy(&c, b + 10, 2);
        }
        out("EVENT resize port=%u first=%u second=%u", id, a, c);
        break;
    }
    default:
        warn("control message with unknown event %u for port %u: ignored", ev, id);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* data                                                                                        */

static bool port_writable(const struct port *p)
{
    /* Linux: hvc output ignores host_connected; a generic port's write() blocks until the host opens. */
    return p->exists && p->guest_open && (p->console || p->host_open);
}

static void post_bad_desc(unsigned id, struct port *p)
{
    struct vq *q = &g.vq[tx_queue_of(id)];
    enum bad_kind k = opt.spec[id].bad;
    unsigned need = k == BAD_LOOP ? 2 : 1;
    if (q->num_free < need || p->tx_nfree == 0)
        return;
    uint16_t slot = p->tx_free[--p->tx_nfree];
    struct seg s[2] = { { 0, 4096, false }, { 0, 4096, false } };
    uint64_t itab = 0;
    switch (k) {
    case BAD_ADDR: s[0].gpa = mem.size + 0x100000; break;
    case BAD_LEN: s[0].gpa = mem.size - 2048; break;
    case BAD_WRAP: s[0].gpa = 0xfffffffffffff000ull; s[0].len = 0x2000; break;
    case BAD_NEXT: case BAD_LOOP: s[0].gpa = p->tx_gpa + (uint64_t)slot * g.slot_size; s[1].gpa = s[0].gpa; break;
    case BAD_INDIRECT: s[0].gpa = p->tx_gpa + (uint64_t)slot * g.slot_size; itab = p->itab_gpa; break;
    default: return;
    }
    int head;
    if (opt.packed) {
        /* next and loop are refused with --packed: a packed ring has no next field */
        head = vq_post_packed(q, s, need, itab, k == BAD_INDIRECT ? mem.size + 0x200000 : 0, slot);
        if (head < 0)
            return;
        q->heads[head].bad = true;
        p->tx_len[slot] = 0;
        p->bad_state = 2;
        vq_publish(q);
        out("BADDESC port=%u kind=%s posted head=%d", id, bad_names[k], head);
        return;
    }
    head = vq_post(q, s, need, itab, slot);
    if (head < 0)
        return;
    struct vring_desc *d = &q->desc[head];
    if (k == BAD_NEXT) {
        d->flags = VRING_DESC_F_NEXT;
        d->next = (uint16_t)(q->num + 5);
    } else if (k == BAD_LOOP) {
        struct vring_desc *d2 = &q->desc[d->next];
        d2->flags = VRING_DESC_F_NEXT;
        d2->next = (uint16_t)head;
    } else if (k == BAD_INDIRECT) {
        d->addr = mem.size + 0x200000;
    }
    q->heads[head].bad = true;
    p->tx_len[slot] = 0;
    p->bad_state = 2;
    vq_publish(q);
    out("BADDESC port=%u kind=%s posted head=%d", id, bad_names[k], head);
}

static void fill_tx(unsigned id)
{
    struct port *p = &g.port[id];
    if (!port_writable(p))
        return;
    if (p->bad_state == 1) {
        post_bad_desc(id, p);
        return;
    }
    struct vq *q = &g.vq[tx_queue_of(id)];
    /* hvc: one page per put_chars and the driver spins until it is used. */
    unsigned chunk = p->console ? PAGE_SIZE_GUEST : opt.tx_chunk;
    unsigned segs = p->console ? 1 : g.tx_segs;
    unsigned depth = p->console ? 1 : opt.depth_cap ? opt.depth_cap : g.tx_depth;
    while (p->tx_posted < p->tx_target && p->tx_nfree && (g.tx_depth - p->tx_nfree) < depth) {
        unsigned need = opt.indirect && !p->console ? 1 : segs;
        if (q->num_free < need)
            break;
        uint64_t left = p->tx_target - p->tx_posted;
        uint32_t len = left < chunk ? (uint32_t)left : chunk;
        uint16_t slot = p->tx_free[--p->tx_nfree];
        uint64_t base = p->tx_gpa + (uint64_t)slot * g.slot_size;
        struct seg s[MAX_SEGS];
        unsigned n = segs < len ? segs : 1;
        uint32_t per = (len + n - 1) / n, seglen_max = (opt.tx_chunk + segs - 1) / segs, off = 0;
        for (unsigned i = 0; i < n; i++) {
            uint32_t l = len - off < per ? len - off : per;
            /* Segments sit in reverse order in memory: a device must follow the chain. */
            uint64_t at = base + (uint64_t)(n - 1 - i) * seglen_max;
            if (!opt.bench) {
                stream_fill(&p->tx_stream, gpa_ptr(at), l);
                p->tx_sum = fnv1a(p->tx_sum, gpa_ptr(at), l);
            }
            s[i] = (struct seg){ at, l, false };
            off += l;
        }
        uint64_t itab = opt.indirect && !p->console ? p->itab_gpa + (uint64_t)slot * MAX_SEGS * 16 : 0;
        if (vq_post(q, s, n, itab, slot) < 0)
            die("port %u transmitq: no descriptor although %u were free", id, q->num_free);
        p->tx_len[slot] = len;
        if (p->tx_posted == p->run_tx0)
            p->t_tx_first = now_s();
        p->tx_posted += len;
    }
    vq_publish(q);
}

static uint8_t scratch[PAGE_SIZE_GUEST];

static void port_rx(unsigned id, struct port *p, const uint8_t *b, uint32_t len)
{
    if (!p->guest_open) {
        /* in_intr: data on a port nobody opened is thrown away by the driver. */
        if (!p->rx_discarded)
            warn("port %u: %u bytes arrived while the guest has it closed: discarded (as Linux does)", id, len);
        p->rx_discarded += len;
        return;
    }
    if (opt.bench) {
        p->rx_bytes += len;
        return;
    }
    if (opt.verify) {
        stream_fill(&p->rx_stream, scratch, len);
        if (memcmp(scratch, b, len) != 0) {
            uint32_t i = 0;
            while (scratch[i] == b[i])
                i++;
            die("port %u: host->guest byte %" PRIu64 " is 0x%02x, the pattern says 0x%02x", id,
                p->rx_bytes + i, b[i], scratch[i]);
        }
    }
    p->rx_sum = fnv1a(p->rx_sum, b, len);
    if (p->rx_bytes == p->run_rx0)
        p->t_rx_first = now_s();
    p->rx_bytes += len;
    p->t_rx_last = now_s();
}

static void on_used(struct vq *q, uint16_t head, uint32_t len, struct head_state h)
{
    unsigned qi = q->index;
    if (qi == CTL_RX) {
        control_message(gpa_ptr(g.ctl_rx_gpa + (uint64_t)h.cookie * PAGE_SIZE_GUEST), len);
        ctl_post_rx(h.cookie);
        return;
    }
    if (qi == CTL_TX) {
        g.ctl_tx_free[g.ctl_tx_nfree++] = (uint16_t)h.cookie;
        return;
    }
    unsigned id = qi < 2 ? 0 : (qi - 2) / 2;
    struct port *p = &g.port[id];
    bool is_tx = qi & 1;
    if (is_tx) {
        p->tx_free[p->tx_nfree++] = (uint16_t)h.cookie;
        if (h.bad) {
            p->bad_state = 3;
            p->bad_len = len;
            out("BADDESC port=%u returned head=%u len=%u", id, head, len);
            return;
        }
        p->tx_done += p->tx_len[h.cookie];
        p->t_tx_last = now_s();
        if (crosses_regions(p->tx_gpa + (uint64_t)h.cookie * g.slot_size, p->tx_len[h.cookie]))
            p->tx_cross++;
        return;
    }
    if (!p->exists) {
        warn("port %u: receiveq buffer used after the port was removed: dropped", id);
        return;
    }
    if (crosses_regions(p->rx_gpa + (uint64_t)h.cookie * PAGE_SIZE_GUEST, len))
        p->rx_cross++;
    port_rx(id, p, gpa_ptr(p->rx_gpa + (uint64_t)h.cookie * PAGE_SIZE_GUEST), len);
    if (!g.stopping)
        port_post_rx(p, id, h.cookie);
}

/* ------------------------------------------------------------------------------------------ */
/* run set-up                                                                                  */

static int new_eventfd(void)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        die_code(EXIT_IO, "eventfd: %s", strerror(errno));
    return fd;
}

static void connect_socket(void)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(opt.socket) >= sizeof a.sun_path)
        die_code(EXIT_USAGE, "socket path too long: %s", opt.socket);
    strcpy(a.sun_path, opt.socket);
    double deadline = now_s() + opt.connect_timeout;
    for (;;) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            die_code(EXIT_IO, "socket: %s", strerror(errno));
        if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
            g.sock = s;
            return;
        }
        int e = errno;
        close(s);
        if ((e != ENOENT && e != ECONNREFUSED && e != EAGAIN) || now_s() > deadline)
            die_code(EXIT_IO, "cannot connect to %s: %s", opt.socket, strerror(e));
        usleep(50000);
    }
}

static void create_queue_fds(void)
{
    for (unsigned i = 0; i < g.num_vqs; i++) {
        struct vq *q = &g.vq[i];
        q->index = i;
        if (!q->kick_fd) { /* a reconnect keeps the guest's eventfds, as QEMU does */
            q->masked_fd = new_eventfd();
            q->err_fd = new_eventfd();
            q->call_fd = new_eventfd();
            q->kick_fd = new_eventfd();
        }
    }
}

/* BACKEND_REQ: a socketpair, one end to the backend with SET_BACKEND_REQ_FD, the other watched by the poll loop
 * for CONFIG_CHANGE_MSG (QEMU does this at realize, before SET_OWNER). */
static void setup_backend_channel(void)
{
    if (!(g.proto_acked & (1ull << PF_BACKEND_REQ)))
        return;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        die_code(EXIT_IO, "socketpair: %s", strerror(errno));
    if (g.backend_fd >= 0)
        close(g.backend_fd);
    g.backend_fd = sv[0];
    vu_acked(VU_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1);
    close(sv[1]);
}

/* The guest reads the whole config space (GET_CONFIG offset 0, size 12): cols, rows, max_nr_ports. */
static void read_config(void)
{
    uint8_t cfg[12 + 12];
    memset(cfg, 0, sizeof cfg);
    uint32_t off = 0, size = 12, flags = 0;
    memcpy(cfg, &off, 4);
    memcpy(cfg + 4, &size, 4);
    memcpy(cfg + 8, &flags, 4);
    vu_send(VU_GET_CONFIG, VU_FLAG_VERSION, cfg, sizeof cfg, NULL, 0);
    vu_reply(VU_GET_CONFIG, cfg, sizeof cfg);
    memcpy(&off, cfg, 4);
    memcpy(&size, cfg + 4, 4);
    if (off != 0 || size != 12)
        die("GET_CONFIG reply carries offset %u size %u, asked for 0 and 12", off, size);
    memcpy(&g.cfg_cols, cfg + 12, 2);
    memcpy(&g.cfg_rows, cfg + 14, 2);
    memcpy(&g.cfg_max_nr_ports, cfg + 16, 4);
}

/*
 * The old virtio-loopback adapter's private SHARE_LOOPBACK_FD (request 39, u64 pid << 32 | fd, one fd), sent when
 * STATUS is not negotiated. The fd is one end of a socketpair: once the backend closed its copy (it has no use for
 * it) the other end reads end of file. Prints LOOPBACK_FD ack=A closed=0|1.
 */
static void share_loopback_fd(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        die_code(EXIT_IO, "socketpair: %s", strerror(errno));
    uint64_t v = (uint64_t)getpid() << 32 | (uint32_t)sv[0];
    char ack[24] = "none";
    if (g.reply_ack) {
        vu_send(VU_SHARE_LOOPBACK_FD, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY, &v, sizeof v, &sv[0], 1);
        uint64_t a;
        vu_reply(VU_SHARE_LOOPBACK_FD, &a, sizeof a);
        snprintf(ack, sizeof ack, "%" PRIu64, a);
    } else {
        vu_send(VU_SHARE_LOOPBACK_FD, VU_FLAG_VERSION, &v, sizeof v, &sv[0], 1);
        (void)vu_get_u64(VU_GET_FEATURES); /* the barrier QEMU's code uses without acks */
    }
    close(sv[0]);
    struct pollfd p = { .fd = sv[1], .events = POLLIN };
    bool closed = false;
    if (poll(&p, 1, (int)(opt.reply_timeout * 1000)) > 0) {
        char c;
        closed = recv(sv[1], &c, 1, MSG_DONTWAIT) == 0;
    }
    close(sv[1]);
    out("LOOPBACK_FD ack=%s closed=%u", ack, closed ? 1 : 0);
}

/*
 * Realize, in the family's order:
 *   qemu      GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, GET_MAX_MEM_SLOTS,
 *             SET_BACKEND_REQ_FD, SET_OWNER, GET_FEATURES, SET_VRING_CALL + SET_VRING_ERR per queue
 *   chv       GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, SET_OWNER, GET_QUEUE_NUM,
 *             SET_BACKEND_REQ_FD
 *   loopback  GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, GET_MAX_MEM_SLOTS,
 *             SET_OWNER, GET_FEATURES, SET_VRING_CALL per queue, GET_CONFIG, request 39 with an fd (no STATUS)
 */
static void negotiate_connect(void)
{
    g.features_offered = vu_get_u64(VU_GET_FEATURES);
    if (g.features_offered & (1ull << F_PROTOCOL_FEATURES)) {
        uint64_t known = opt.family == FAM_CHV ? PF_CHV : opt.family == FAM_LOOPBACK ? PF_LOOPBACK : PF_QEMU;
        g.proto_offered = vu_get_u64(VU_GET_PROTOCOL_FEATURES);
        g.proto_acked = g.proto_offered & (known | (opt.inflight ? 1ull << PF_INFLIGHT_SHMFD : 0)) & opt.proto_mask;
        vu_plain(VU_SET_PROTOCOL_FEATURES, &g.proto_acked, sizeof g.proto_acked);
    }
    g.reply_ack = g.proto_acked & (1ull << PF_REPLY_ACK);
    g.status = g.proto_acked & (1ull << PF_STATUS);
    if (opt.inflight && !(g.proto_acked & (1ull << PF_INFLIGHT_SHMFD)))
        die_code(EXIT_USAGE, "--inflight: the backend does not offer VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD (bit 12; "
                 "protocol features offered 0x%" PRIx64 ")", g.proto_offered);
    if (!(g.proto_acked & (1ull << PF_CONFIG)))
        die("the backend does not offer VHOST_USER_PROTOCOL_F_CONFIG (protocol features 0x%" PRIx64
            "); QEMU's vhost-user-test-device-pci with config_size=12 refuses it", g.proto_offered);
    if (opt.family == FAM_CHV)
        vu_plain(VU_SET_OWNER, NULL, 0);
    if (g.proto_acked & (1ull << PF_MQ)) {
        g.queue_num = vu_get_u64(VU_GET_QUEUE_NUM);
        if (g.queue_num == 0 || g.queue_num > 1024)
            die("GET_QUEUE_NUM answered %" PRIu64 " queues", g.queue_num);
    }
    if (opt.family != FAM_CHV && (g.proto_acked & (1ull << PF_CONFIGURE_MEM_SLOTS))) {
        g.max_mem_slots = vu_get_u64(VU_GET_MAX_MEM_SLOTS);
        if (g.max_mem_slots == 0)
            die("GET_MAX_MEM_SLOTS answered 0 slots");
    }
    g.num_vqs = opt.num_queues ? opt.num_queues : (unsigned)g.queue_num;
    if (g.num_vqs == 0)
        die_code(EXIT_USAGE, "the backend does not do MQ: give --num-queues");
    if (g.num_vqs > MAX_QUEUES)
        g.num_vqs = MAX_QUEUES;
    create_queue_fds();
    if (opt.family == FAM_CHV) {
        setup_backend_channel();
        return;
    }
    if (opt.family == FAM_QEMU)
        setup_backend_channel();
    vu_plain(VU_SET_OWNER, NULL, 0);
    uint64_t again = vu_get_u64(VU_GET_FEATURES);
    if (again != g.features_offered)
        die("GET_FEATURES changed from 0x%" PRIx64 " to 0x%" PRIx64, g.features_offered, again);
    for (unsigned i = 0; i < g.num_vqs; i++) {
        vu_fd(VU_SET_VRING_CALL, i, g.vq[i].masked_fd);
        if (opt.family == FAM_QEMU)
            vu_fd(VU_SET_VRING_ERR, i, g.vq[i].err_fd);
    }
    if (opt.family == FAM_LOOPBACK) {
        /* The adapter requires F_CONFIG: it reads the whole config space at realize, before any feature. */
        read_config();
        g.have_config = true;
        if (!g.status)
            share_loopback_fd();
    }
}

static void add_status(uint64_t bits)
{
    uint64_t s = vu_get_u64(VU_GET_STATUS);
    if ((s & bits) != bits) {
        s |= bits;
        vu_plain(VU_SET_STATUS, &s, sizeof s);
    }
}

/* --family loopback: nregions regions of about 1 GiB over one memfd of nregions GiB, never touched beyond the pages
 * the guest uses (ftruncate only: the file stays sparse). */
static void layout_loopback_regions(unsigned ports)
{
    unsigned n = 2 * ports + 1; /* a boundary for every port's rx area and one for its tx area */
    unsigned cap = LOOPBACK_MAX_REGIONS;
    if (!(g.proto_acked & (1ull << PF_CONFIGURE_MEM_SLOTS)))
        cap = 8; /* one SET_MEM_TABLE */
    else if (g.max_mem_slots < cap)
        cap = (unsigned)g.max_mem_slots;
    if (n < 4)
        n = 4;
    if (n > cap)
        n = cap;
    if (n < 2)
        die_code(EXIT_USAGE, "--family loopback needs at least 2 memory slots, the backend has %" PRIu64,
                 g.max_mem_slots);
    mem.nregions = n;
    mem.start[0] = 0;
    for (unsigned i = 1; i < n; i++)
        mem.start[i] = i * LOOPBACK_REGION + LOOPBACK_SKEW;
    mem.start[n] = n * LOOPBACK_REGION;
    mem.size = n * LOOPBACK_REGION;
}

/* Where the guest's rings and buffers are. QEMU and cloud-hypervisor: one region, everything packed from
 * guest-physical 0. Loopback: rings and control buffers at the start of region 0; each port's rx buffers and its
 * tx buffers begin LOOPBACK_STRADDLE before a region boundary of their own (round robin when there are more areas
 * than boundaries), so the backend finds buffers that cross regions and their unaligned starts. */
static void layout_memory(void)
{
    mem.brk = 0;
    mem.nregions = 1;
    for (unsigned i = 0; i < g.needed_vqs; i++)
        vq_layout(&g.vq[i], i, (uint16_t)opt.queue_size);
    g.ctl_rx_gpa = mem_alloc((uint64_t)opt.queue_size * PAGE_SIZE_GUEST, 4096);
    g.ctl_tx_gpa = mem_alloc((uint64_t)opt.queue_size * CTL_TX_SLOT, 4096);
    unsigned ports = g.max_nr_ports < MAX_PORTS_ALLOC ? g.max_nr_ports : MAX_PORTS_ALLOC;
    uint64_t cursor[LOOPBACK_MAX_REGIONS];
    if (opt.family == FAM_LOOPBACK) {
        layout_loopback_regions(ports);
        if (mem.brk > mem.start[1] - 2 * LOOPBACK_STRADDLE)
            die_code(EXIT_USAGE, "--family loopback: the rings need %" PRIu64 " bytes, more than region 0 holds",
                     mem.brk);
        for (unsigned b = 1; b < mem.nregions; b++)
            cursor[b] = (mem.start[b] & ~4095ull) - LOOPBACK_STRADDLE;
    }
    for (unsigned id = 0; id < ports; id++) {
        struct port *p = &g.port[id];
        uint64_t rx = (uint64_t)opt.queue_size * PAGE_SIZE_GUEST, tx = (uint64_t)g.tx_depth * g.slot_size;
        uint64_t itab = (uint64_t)g.tx_depth * MAX_SEGS * 16;
        if (opt.family != FAM_LOOPBACK) {
            p->rx_gpa = mem_alloc(rx, 4096);
            p->tx_gpa = mem_alloc(tx, 4096);
            p->itab_gpa = mem_alloc(itab, 4096);
            continue;
        }
        unsigned brx = 1 + (2 * id) % (mem.nregions - 1), btx = 1 + (2 * id + 1) % (mem.nregions - 1);
        p->rx_gpa = cursor[brx];
        cursor[brx] += (rx + 4095) & ~4095ull;
        p->tx_gpa = cursor[btx];
        cursor[btx] += (tx + 4095) & ~4095ull;
        p->itab_gpa = cursor[btx];
        cursor[btx] += (itab + 4095) & ~4095ull;
        if (cursor[brx] >= mem.start[brx + 1] - 4096 || cursor[btx] >= mem.start[btx + 1] - 4096)
            die_code(EXIT_USAGE, "--family loopback: %u ports do not fit %u regions", ports, mem.nregions);
    }
    if (opt.family != FAM_LOOPBACK) {
        /* A page of slack at the end so "just past the end" addresses are unambiguous. */
        mem.size = (mem_alloc(4096, 4096) + 4096 + 0xfffff) & ~0xfffffull;
        mem.start[0] = 0;
        mem.start[1] = mem.size;
    }
    mem.fd = memfd_create("vsb-guest-ram", MFD_CLOEXEC);
    if (mem.fd < 0)
        die_code(EXIT_IO, "memfd_create: %s", strerror(errno));
    if (ftruncate(mem.fd, (off_t)mem.size) != 0)
        die_code(EXIT_IO, "ftruncate guest memory: %s", strerror(errno));
    void *b = mmap(NULL, mem.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, mem.fd, 0);
    if (b == MAP_FAILED)
        die_code(EXIT_IO, "mmap guest memory: %s", strerror(errno));
    mem.base = b;
    if (opt.family == FAM_LOOPBACK)
        for (unsigned i = 0; i < mem.nregions; i++)
            out("REGION index=%u gpa=0x%" PRIx64 " size=0x%" PRIx64 " mmap_offset=0x%" PRIx64, i, mem.start[i],
                mem.start[i + 1] - mem.start[i], mem.start[i]);
}

/* The driver's side of every ring and buffer list as after a fresh probe: rings empty, all buffers free. */
static void init_guest_queues(void)
{
    for (unsigned i = 0; i < g.needed_vqs; i++)
        vq_bind(&g.vq[i]);
    g.ctl_tx_nfree = 0;
    for (unsigned s = 0; s < opt.queue_size; s++)
        g.ctl_tx_free[g.ctl_tx_nfree++] = (uint16_t)(opt.queue_size - 1 - s);
    g.ctl_npending = 0;
    unsigned ports = g.max_nr_ports < MAX_PORTS_ALLOC ? g.max_nr_ports : MAX_PORTS_ALLOC;
    for (unsigned id = 0; id < ports; id++) {
        struct port *p = &g.port[id];
        free(p->tx_free);
        free(p->tx_len);
        p->tx_free = calloc(g.tx_depth, sizeof(uint16_t));
        p->tx_len = calloc(g.tx_depth, sizeof(uint32_t));
        if (!p->tx_free || !p->tx_len)
            die_code(EXIT_IO, "out of memory");
        p->tx_nfree = 0;
        for (unsigned s = 0; s < g.tx_depth; s++)
            p->tx_free[p->tx_nfree++] = (uint16_t)(g.tx_depth - 1 - s);
    }
}

/* QEMU and cloud-hypervisor: one region at guest-physical 0, userspace_addr our own mapping. Loopback: every
 * region a window of the same memfd at mmap_offset == guest_phys_addr == userspace_addr, each by ADD_MEM_REG when
 * CONFIGURE_MEM_SLOTS is negotiated (cloud-hypervisor never uses it at start), else all in one SET_MEM_TABLE. */
static void send_mem_table(void)
{
    if (opt.family != FAM_CHV && (g.proto_acked & (1ull << PF_CONFIGURE_MEM_SLOTS))) {
        for (unsigned i = 0; i < mem.nregions; i++) {
            uint64_t gpa = mem.start[i], size = mem.start[i + 1] - gpa;
            uint64_t r[5] = { 0, gpa, size, gpa_uva(gpa), gpa };
            vu_acked(VU_ADD_MEM_REG, r, sizeof r, &mem.fd, 1);
        }
        return;
    }
    uint8_t t[8 + 32 * 8];
    uint32_t n = mem.nregions, pad = 0;
    int fds[8];
    memcpy(t, &n, 4);
    memcpy(t + 4, &pad, 4);
    for (unsigned i = 0; i < n; i++) {
        uint64_t gpa = mem.start[i];
        uint64_t reg[4] = { gpa, mem.start[i + 1] - gpa, gpa_uva(gpa), gpa };
        memcpy(t + 8 + 32 * i, reg, sizeof reg);
        fds[i] = mem.fd;
    }
    vu_acked(VU_SET_MEM_TABLE, t, 8 + 32 * n, fds, n);
}

/*
 * INFLIGHT_SHMFD, as QEMU's vhost-user-blk does it: the backend's buffer is fetched once (GET_INFLIGHT_FD) and
 * handed back at every start (SET_INFLIGHT_FD), also to a backend process that replaced a dead one; the frontend
 * never looks inside. Payload {u64 mmap_size, mmap_offset; u16 num_queues, queue_size} (24 bytes as QEMU lays
 * it out).
 */
static void setup_inflight(void)
{
    struct { uint64_t mmap_size, mmap_offset; uint16_t num_queues, queue_size; uint32_t pad; } in = {
        0, 0, (uint16_t)g.num_vqs, (uint16_t)opt.queue_size, 0 };
    if (g.inflight_fd < 0) {
        int fd = -1;
        vu_send(VU_GET_INFLIGHT_FD, VU_FLAG_VERSION, &in, sizeof in, NULL, 0);
        g.accept_fd = &fd;
        vu_reply(VU_GET_INFLIGHT_FD, &in, sizeof in);
        g.accept_fd = NULL;
        if (fd < 0)
            die("the reply to GET_INFLIGHT_FD carries no file descriptor");
        if (in.mmap_size == 0)
            die("GET_INFLIGHT_FD answered mmap_size 0");
        g.inflight_fd = fd;
        g.inflight_size = in.mmap_size;
        g.inflight_offset = in.mmap_offset;
        out("INFLIGHT size=%" PRIu64 " offset=%" PRIu64, g.inflight_size, g.inflight_offset);
    }
    in.mmap_size = g.inflight_size;
    in.mmap_offset = g.inflight_offset;
    in.num_queues = (uint16_t)g.num_vqs;
    in.queue_size = (uint16_t)opt.queue_size;
    vu_acked(VU_SET_INFLIGHT_FD, &in, sizeof in, &g.inflight_fd, 1);
}

enum start_kind { START_FRESH, START_RECONNECT, START_REBOOT };

/*
 * Memory table, then every ring the driver set up, ENABLE and DRIVER_OK.
 *   qemu, loopback  per queue NUM, BASE, ADDR, KICK, CALL; then ENABLE(1) for every queue of the device
 *   chv             per queue NUM, ADDR, BASE, CALL, KICK, ENABLE(1) (only the queues it set up)
 * A fresh start begins at base 0 (packed: both wrap counters set), QEMU's with the masked call fd as before the
 * guest unmasks; a reconnect (--reconnect) begins every ring at the used index the guest sees, with the live
 * call fd. After a reboot QEMU (and the adapter, which runs QEMU's code) sends no memory message when
 * CONFIGURE_MEM_SLOTS is negotiated: its copy of the backend's regions says nothing changed, and a device reset
 * keeps them; without mem slots it sends SET_MEM_TABLE again, as cloud-hypervisor always does.
 */
static void start_rings(enum start_kind kind)
{
    bool slots = g.proto_acked & (1ull << PF_CONFIGURE_MEM_SLOTS);
    if (kind != START_REBOOT || opt.family == FAM_CHV || !slots)
        send_mem_table();
    for (unsigned i = 0; i < g.needed_vqs; i++) {
        struct vq *q = &g.vq[i];
        uint32_t base = kind == START_RECONNECT ? ld16_acq(q->used_idx_p) : opt.packed ? PACKED_FRESH_BASE : 0;
        struct { uint32_t index, flags; uint64_t desc, used, avail, log; } a = {
            i, 0, gpa_uva(q->desc_gpa), gpa_uva(q->used_gpa), gpa_uva(q->avail_gpa), 0 };
        vu_state(VU_SET_VRING_NUM, i, q->num);
        if (opt.family == FAM_CHV) {
            vu_plain(VU_SET_VRING_ADDR, &a, sizeof a);
            vu_state(VU_SET_VRING_BASE, i, base);
            vu_fd(VU_SET_VRING_CALL, i, q->call_fd);
            vu_fd(VU_SET_VRING_KICK, i, q->kick_fd);
            vu_state(VU_SET_VRING_ENABLE, i, 1);
            continue;
        }
        vu_state(VU_SET_VRING_BASE, i, base);
        vu_plain(VU_SET_VRING_ADDR, &a, sizeof a);
        vu_fd(VU_SET_VRING_KICK, i, q->kick_fd);
        vu_fd(VU_SET_VRING_CALL, i, kind == START_RECONNECT ? q->call_fd : q->masked_fd);
    }
    if (opt.family != FAM_CHV)
        for (unsigned i = 0; i < g.num_vqs; i++)
            vu_state(VU_SET_VRING_ENABLE, i, 1);
    if (g.status)
        add_status(S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

/* The guest probes (GET_CONFIG; the loopback adapter read it at realize already), acks features and sets
 * DRIVER_OK; the frontend then starts the rings. A reboot probes the same way, on the memory laid out before. */
static void start_device(bool reboot)
{
    if (opt.family != FAM_LOOPBACK || !g.have_config)
        read_config();
    g.have_config = false;
    if (!(g.features_offered & (1ull << F_CONSOLE_MULTIPORT)))
        die("the backend does not offer VIRTIO_CONSOLE_F_MULTIPORT (features 0x%" PRIx64 "); this frontend "
            "drives multiport consoles only", g.features_offered);
    if (!(g.features_offered & (1ull << F_VERSION_1)))
        die("the backend does not offer VIRTIO_F_VERSION_1; vhost-user-test-device-pci is modern-only");

    if (opt.packed && !(g.features_offered & (1ull << F_RING_PACKED)))
        die_code(EXIT_USAGE, "--packed: the backend does not offer VIRTIO_F_RING_PACKED (bit 34; features offered "
                 "0x%" PRIx64 ")", g.features_offered);
    uint64_t driver = F_DRIVER | (opt.packed ? 1ull << F_RING_PACKED : 0) |
                      (opt.emerg_write ? 1ull << F_CONSOLE_EMERG_WRITE : 0);
    if (opt.no_multiport)
        driver &= ~(1ull << F_CONSOLE_MULTIPORT);
    g.features_acked = g.features_offered & driver & opt.feature_mask;
    if (g.features_offered & (1ull << F_PROTOCOL_FEATURES))
        g.features_acked |= 1ull << F_PROTOCOL_FEATURES;
    g.event_idx = g.features_acked & (1ull << F_EVENT_IDX);
    g.multiport = g.features_acked & (1ull << F_CONSOLE_MULTIPORT);
    /* virtcons_probe: max_nr_ports only with MULTIPORT; without it one port, its two queues, no control. */
    unsigned max_nr_ports = g.multiport ? g.cfg_max_nr_ports : 1;
    if (g.multiport && (max_nr_ports == 0 || max_nr_ports > 0x8000))
        die("config max_nr_ports is %u: Linux refuses the device (\"Invalidate max_nr_ports\")", max_nr_ports);
    if (reboot && max_nr_ports != g.max_nr_ports)
        die("config max_nr_ports changed from %u to %u across a reboot", g.max_nr_ports, max_nr_ports);
    g.max_nr_ports = max_nr_ports;
    g.needed_vqs = g.multiport ? 2 * (g.max_nr_ports + 1) : 2;
    if (g.needed_vqs > 256 && opt.wide_index)
        ; /* queues from 256 on are named through the bridge's extension */
    else if (g.needed_vqs > 256)
        warn("max_nr_ports %u needs %u queues, but SET_VRING_KICK/CALL/ERR carry the queue index in bits 0-7 "
             "(bit 8 is NOFD): queues from 256 on cannot be given their eventfds; QEMU masks the index the "
             "same way (--wide-index uses the bridge's extension)", g.max_nr_ports, g.needed_vqs);
    out("CONFIG cols=%u rows=%u max_nr_ports=%u num_queues=%u queue_num=%" PRIu64, g.cfg_cols, g.cfg_rows,
        g.cfg_max_nr_ports, g.num_vqs, g.queue_num);
    if (g.needed_vqs > g.num_vqs)
        die("max_nr_ports %u needs %u queues but the device has %u (find_vqs would fail)", g.max_nr_ports,
            g.needed_vqs, g.num_vqs);
    if (opt.packed && opt.indirect && !(g.features_acked & (1ull << F_INDIRECT_DESC)))
        die_code(EXIT_USAGE, "--indirect with --packed: VIRTIO_RING_F_INDIRECT_DESC is not negotiated (offered 0x%"
                 PRIx64 ", --feature-mask 0x%" PRIx64 "); Linux would not use indirect tables", g.features_offered,
                 opt.feature_mask);
    vu_plain(VU_SET_FEATURES, &g.features_acked, sizeof g.features_acked);
    if (g.status)
        add_status(S_FEATURES_OK);
    out("FEATURES offered=0x%" PRIx64 " acked=0x%" PRIx64 " protocol_offered=0x%" PRIx64
        " protocol_acked=0x%" PRIx64 " family=%s", g.features_offered, g.features_acked, g.proto_offered,
        g.proto_acked, family_names[opt.family]);

    if (!reboot) {
        g.tx_segs = opt.tx_segs;
        g.tx_depth = opt.tx_depth ? opt.tx_depth : opt.queue_size;
        if (!opt.indirect && g.tx_depth > opt.queue_size / g.tx_segs)
            g.tx_depth = opt.queue_size / g.tx_segs;
        if (g.tx_depth > opt.queue_size)
            g.tx_depth = opt.queue_size;
        g.slot_size = ((opt.tx_chunk + g.tx_segs - 1) / g.tx_segs) * g.tx_segs;
        g.slot_size = (g.slot_size + 63) & ~63u;
        layout_memory();
    }
    init_guest_queues();
    if (opt.inflight)
        setup_inflight();

    if (opt.early_fill && !reboot && g.multiport) {
        /* Buffers in the control receiveq before the backend knows the ring: it must rescan avail. */
        for (unsigned b = 0; b < opt.queue_size; b++)
            ctl_post_rx(b);
        if (opt.packed) {
            /* a packed chain is available as soon as it is written: only the kick is left out */
            g.vq[CTL_RX].num_added = 0;
        } else {
            st16_rel(g.vq[CTL_RX].avail_idx_p, g.vq[CTL_RX].avail_idx);
            g.vq[CTL_RX].published = g.vq[CTL_RX].avail_idx;
        }
        g.vq[CTL_RX].dirty = false;
    }

    start_rings(reboot ? START_REBOOT : START_FRESH);
    if (opt.family != FAM_CHV) /* QEMU unmasks: the guest's irqfds replace the masked notifiers */
        for (unsigned i = 0; i < g.needed_vqs; i++)
            vu_fd(VU_SET_VRING_CALL, i, g.vq[i].call_fd);
    g.boots++;
}

static void send_garbage(const char *kind)
{
    uint32_t flags = VU_FLAG_VERSION | (g.reply_ack ? VU_FLAG_NEED_REPLY : 0);
    uint32_t req;
    if (!strcmp(kind, "unknown")) {
        uint64_t v = 0;
        req = 0x7ffe;
        vu_send(req, flags, &v, sizeof v, NULL, 0);
    } else if (!strcmp(kind, "badsize")) {
        uint32_t v = 0; /* SET_VRING_NUM wants 8 bytes (index, num) */
        req = VU_SET_VRING_NUM;
        vu_send(req, flags, &v, sizeof v, NULL, 0);
    } else if (!strcmp(kind, "badindex")) {
        uint32_t s[2] = { 1000, 64 };
        req = VU_SET_VRING_NUM;
        vu_send(req, flags, s, sizeof s, NULL, 0);
    } else {
        die_code(EXIT_USAGE, "unknown garbage kind '%s' (unknown, badsize, badindex)", kind);
    }
    if (!g.reply_ack) {
        /* No acks: GET_FEATURES is the barrier (as QEMU's enforce_reply does). */
        uint64_t f = vu_get_u64(VU_GET_FEATURES);
        out("GARBAGE kind=%s ack=none features=0x%" PRIx64, kind, f);
        return;
    }
    uint64_t ack;
    vu_reply(req, &ack, sizeof ack);
    out("GARBAGE kind=%s ack=%" PRIu64, kind, ack);
}

/* A packed ring position (index, wrap counter) as a number mod 2 * num: laps alternate wrap 1, 0, 1, ... */
static unsigned packed_lin(const struct vq *q, unsigned idx, bool wrap)
{
    return idx + (wrap ? 0u : q->num);
}

static unsigned packed_ahead(const struct vq *q, unsigned from, unsigned to)
{
    return (to + 2u * q->num - from) % (2u * q->num);
}

/* GET_VRING_BASE of a packed ring, read as QEMU's virtio_queue_set_last_avail_idx() reads it: bits 0-14 the
 * device's next avail index, bit 15 its wrap counter, bits 16-30 its next used index, bit 31 that wrap counter.
 * The device's avail position lies between what the driver saw used and what it made available; its used
 * position between what the driver saw used and the device's avail position. */
static void check_vring_base_packed(struct vq *q, uint32_t num)
{
    unsigned ai = num & 0x7fff, ui = (num >> 16) & 0x7fff;
    bool aw = (num >> 15) & 1, uw = (num >> 31) & 1;
    if (ai >= q->num || ui >= q->num)
        die("GET_VRING_BASE for packed queue %u answered 0x%08x (avail %u wrap %u, used %u wrap %u): an index "
            "beyond the ring size %u", q->index, num, ai, aw, ui, uw, q->num);
    unsigned seen = packed_lin(q, q->used_pos, q->used_wrap);
    unsigned dev_avail = packed_lin(q, ai, aw), dev_used = packed_lin(q, ui, uw);
    unsigned posted = packed_ahead(q, seen, packed_lin(q, q->next_avail, q->avail_wrap));
    if (packed_ahead(q, seen, dev_avail) > posted)
        die("GET_VRING_BASE for packed queue %u answered 0x%08x: avail %u wrap %u lies outside used %u wrap %u .. "
            "avail %u wrap %u of the driver", q->index, num, ai, aw, q->used_pos, q->used_wrap, q->next_avail,
            q->avail_wrap);
    if (packed_ahead(q, seen, dev_used) > packed_ahead(q, seen, dev_avail))
        die("GET_VRING_BASE for packed queue %u answered 0x%08x: used %u wrap %u lies outside used %u wrap %u seen "
            "by the driver .. the device's avail %u wrap %u", q->index, num, ui, uw, q->used_pos, q->used_wrap, ai,
            aw);
}

static void check_vring_base(struct vq *q, uint32_t index, uint32_t num)
{
    if (index != q->index)
        die("GET_VRING_BASE for queue %u answered index %u", q->index, index);
    if (opt.packed) {
        check_vring_base_packed(q, num);
        return;
    }
    if (num > 0xffff)
        die("GET_VRING_BASE for queue %u answered %u, not a 16-bit ring index", q->index, num);
    uint16_t used = ld16_acq(q->used_idx_p);
    /* The device's next avail lies between what it used and what we made available. */
    if ((uint16_t)(q->avail_idx - (uint16_t)num) > (uint16_t)(q->avail_idx - used))
        die("GET_VRING_BASE for queue %u answered %u, outside used %u .. avail %u", q->index, num, used,
            q->avail_idx);
}

/* Stops every ring, as the family does: QEMU disables all queues, then GET_VRING_BASE for each started one;
 * cloud-hypervisor disables and reads back each queue it started; the loopback adapter has no stop path, so only
 * a reboot stops its rings (GET_VRING_BASE). */
static void stop_rings(void)
{
    g.stopping = true;
    if (opt.family == FAM_QEMU)
        for (unsigned i = 0; i < g.num_vqs; i++)
            vu_state(VU_SET_VRING_ENABLE, i, 0);
    for (unsigned i = 0; i < g.needed_vqs; i++) {
        if (opt.family == FAM_CHV)
            vu_state(VU_SET_VRING_ENABLE, i, 0);
        uint32_t s[2] = { i, 0 };
        vu_send(VU_GET_VRING_BASE, VU_FLAG_VERSION, s, sizeof s, NULL, 0);
        vu_reply(VU_GET_VRING_BASE, s, sizeof s);
        check_vring_base(&g.vq[i], s[0], s[1]);
    }
}

static void stop_device(void)
{
    if (opt.family == FAM_LOOPBACK) {
        g.stopping = true;
        return; /* the adapter just goes away */
    }
    stop_rings();
    if (g.status) {
        uint64_t z = 0;
        vu_plain(VU_SET_STATUS, &z, sizeof z);
    }
}

/* The device reset of a guest reboot: SET_STATUS(0) where STATUS is negotiated (QEMU 10.2), else RESET_DEVICE
 * where negotiated, else the deprecated RESET_OWNER (older cloud-hypervisor). */
static const char *reset_device(void)
{
    if (g.status) {
        uint64_t z = 0;
        vu_plain(VU_SET_STATUS, &z, sizeof z);
        return "SET_STATUS";
    }
    if (g.proto_acked & (1ull << PF_RESET_DEVICE)) {
        vu_acked(VU_RESET_DEVICE, NULL, 0, NULL, 0);
        return "RESET_DEVICE";
    }
    vu_acked(VU_RESET_OWNER, NULL, 0, NULL, 0);
    return "RESET_OWNER";
}

/* ------------------------------------------------------------------------------------------ */
/* scenario                                                                                    */

static bool all_listed_added(void)
{
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++)
        if (opt.spec[id].listed && !g.port[id].exists)
            return false;
    return true;
}

static bool targets_met(void)
{
    if (!all_listed_added() || g.ctl_npending || g.vq[CTL_TX].live)
        return false;
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++) {
        struct port *p = &g.port[id];
        if (!opt.spec[id].listed && !p->tx_target && !p->rx_target)
            continue;
        if (p->tx_done < p->tx_target || p->rx_bytes < p->rx_target)
            return false;
    }
    return true;
}

static bool work_pending(void)
{
    return !targets_met();
}

static uint64_t parse_size(const char *s, const char *what)
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

static void print_results(void)
{
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++) {
        struct port *p = &g.port[id];
        if (!opt.spec[id].listed && !p->exists && !p->tx_done && !p->rx_bytes)
            continue;
        out("RESULT run=%u port=%u name=%s tx_bytes=%" PRIu64 " tx_sum=%016" PRIx64 " rx_bytes=%" PRIu64
            " rx_sum=%016" PRIx64 " rx_discarded=%" PRIu64 " bad_desc=%s", g.run, id,
            p->named ? p->name : "-", p->tx_done, p->tx_sum, p->rx_bytes, p->rx_sum, p->rx_discarded,
            p->bad_state == 0 ? "none" : p->bad_state == 3 ? "returned" : "pending");
        uint64_t tb = p->tx_done - p->run_tx0, rb = p->rx_bytes - p->run_rx0;
        double tt = p->t_tx_last - p->t_tx_first, rt = p->t_rx_last - p->t_rx_first;
        out("THROUGHPUT run=%u port=%u tx_mbps=%.1f rx_mbps=%.1f", g.run, id,
            tb && tt > 0 ? (double)tb / tt / 1e6 : 0.0, rb && rt > 0 ? (double)rb / rt / 1e6 : 0.0);
        if (opt.family == FAM_LOOPBACK)
            out("CROSS run=%u port=%u rx_buffers=%" PRIu64 " tx_buffers=%" PRIu64, g.run, id, p->rx_cross,
                p->tx_cross);
    }
}

/* After DRIVER_OK. With MULTIPORT the driver fills the control receiveq and sends DEVICE_READY; without it port 0
 * is its one console, open at once (hvc), with no control traffic at all. */
static void driver_ready(void)
{
    if (!g.multiport) {
        struct port *p = &g.port[0];
        p->exists = p->console = p->guest_open = true;
        p->removed = p->host_open = p->named = false;
        port_fill_rx(p, 0);
        out("EVENT console_port port=0");
        return;
    }
    if (!opt.early_fill || g.boots > 1)
        for (unsigned b = 0; b < opt.queue_size; b++)
            ctl_post_rx(b);
    vq_publish(&g.vq[CTL_RX]);
    g.device_ready_sent = true;
    ctl_send(0xffffffffu, C_DEVICE_READY, 1);
    vq_publish(&g.vq[CTL_TX]);
}

/*
 * A guest reboot, as QEMU runs it: the rings stop (GET_VRING_BASE for each), the device is reset (SET_STATUS 0,
 * RESET_DEVICE or RESET_OWNER), then the new kernel's driver probes from scratch: config, features, memory,
 * empty rings, DEVICE_READY, PORT_READY for every port it is given. Ports the old guest had open are closed until
 * it opens them again (the scenario's 'open' ports are not reopened by themselves). Buffers posted but not used
 * before the reset are lost, as a write() the reboot interrupted; reboot when the ports are idle to keep the
 * pattern streams of both ends in step.
 */
static void reboot_guest(void)
{
    out("REBOOT run=%u", g.run);
    stop_rings();
    const char *how = reset_device();
    for (unsigned i = 0; i < g.needed_vqs; i++) {
        struct vq *q = &g.vq[i];
        uint64_t v;
        if (read(q->call_fd, &v, sizeof v) == sizeof v) /* a call of the old rings */
            q->calls++;
        memset(gpa_ptr(q->desc_gpa), 0, 16ull * q->num);
        memset(gpa_ptr(q->avail_gpa), 0, opt.packed ? 4 : 6ull + 2ull * q->num);
        memset(gpa_ptr(q->used_gpa), 0, opt.packed ? 4 : 6ull + 8ull * q->num);
    }
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++) {
        struct port *p = &g.port[id];
        p->exists = p->console = p->guest_open = p->host_open = p->named = p->ready_sent = p->removed = false;
        p->tx_posted = p->tx_done;
        if (p->bad_state == 2)
            p->bad_state = 0;
    }
    g.ready_printed = false;
    start_device(true);
    driver_ready();
    g.stopping = false;
    g.last_progress = now_s();
    out("REBOOTED run=%u reset=%s", g.run, how);
}

/* Emergency write (VIRTIO_CONSOLE_F_EMERG_WRITE): the next n bytes of port id's guest->host pattern, each written
 * to emerg_wr (config offset 8, 4 bytes) by its own SET_CONFIG, as an early console writes one character at a
 * time. They count as that port's tx bytes (RESULT tx_bytes, tx_sum). */
static void emerg_write(unsigned id, uint64_t n)
{
    if (!(g.features_acked & (1ull << F_CONSOLE_EMERG_WRITE))) {
        warn("emerg: VIRTIO_CONSOLE_F_EMERG_WRITE is not negotiated (--emerg-write, and the backend must offer "
             "it): nothing written");
        out("EMERG port=%u bytes=0", id);
        return;
    }
    struct port *p = &g.port[id];
    for (uint64_t i = 0; i < n; i++) {
        uint8_t m[12 + 4];
        uint32_t off = 8, size = 4, flags = 0;
        memset(m, 0, sizeof m);
        memcpy(m, &off, 4);
        memcpy(m + 4, &size, 4);
        memcpy(m + 8, &flags, 4);
        stream_fill(&p->tx_stream, m + 12, 1);
        p->tx_sum = fnv1a(p->tx_sum, m + 12, 1);
        vu_acked(VU_SET_CONFIG, m, sizeof m, NULL, 0);
    }
    p->tx_posted += n;
    p->tx_done += n;
    p->tx_target += n;
    out("EMERG port=%u bytes=%" PRIu64, id, n);
}

/* A request on the BACKEND_REQ channel. CONFIG_CHANGE_MSG: the driver reads the config again (virtio config
 * interrupt; without MULTIPORT that is how a console learns its new size) and prints it; acked when asked. */
static void backend_event(void)
{
    uint8_t hdr[VU_HDR_SIZE], body[VU_MAX_PAYLOAD];
    ssize_t n = recv(g.backend_fd, hdr, sizeof hdr, MSG_DONTWAIT | MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0)
        n = recv(g.backend_fd, hdr, sizeof hdr, MSG_WAITALL);
    if (n <= 0) {
        close(g.backend_fd);
        g.backend_fd = -1;
        return;
    }
    uint32_t req, flags, size;
    memcpy(&req, hdr, 4);
    memcpy(&flags, hdr + 4, 4);
    memcpy(&size, hdr + 8, 4);
    if (n != VU_HDR_SIZE || size > VU_MAX_PAYLOAD || (flags & 3u) != VU_FLAG_VERSION)
        die("backend request channel: bad header (read %zd bytes; request %u flags 0x%x size %u)", n, req, flags,
            size);
    if (size && recv(g.backend_fd, body, size, MSG_WAITALL) != (ssize_t)size)
        die("backend request channel: request %u announced %u payload bytes, fewer came", req, size);
    uint64_t result = 0;
    if (req == VU_BACKEND_CONFIG_CHANGE_MSG) {
        read_config();
        out("EVENT config_change cols=%u rows=%u", g.cfg_cols, g.cfg_rows);
    } else {
        warn("backend request channel: request %u is not handled here: refused", req);
        result = 1;
    }
    if (flags & VU_FLAG_NEED_REPLY) {
        uint8_t r[VU_HDR_SIZE + 8];
        uint32_t rf = VU_FLAG_VERSION | VU_FLAG_REPLY, rs = 8;
        memcpy(r, &req, 4);
        memcpy(r + 4, &rf, 4);
        memcpy(r + 8, &rs, 4);
        memcpy(r + 12, &result, 8);
        if (send(g.backend_fd, r, sizeof r, MSG_NOSIGNAL) != (ssize_t)sizeof r)
            die_code(EXIT_IO, "backend request channel: reply to request %u failed: %s", req, strerror(errno));
    }
}

static void cmd_port(const char *arg, unsigned *id)
{
    char *end;
    unsigned long v = strtoul(arg, &end, 10);
    if (end == arg || v >= MAX_PORTS_ALLOC)
        die_code(EXIT_USAGE, "bad port number '%s' (0..%u)", arg, MAX_PORTS_ALLOC - 1);
    *id = (unsigned)v;
}

static void end_run(bool clean);

static void handle_command(char *line)
{
    char *argv[4] = { 0 };
    int argc = 0;
    for (char *t = strtok(line, " \t\r"); t && argc < 4; t = strtok(NULL, " \t\r"))
        argv[argc++] = t;
    if (argc == 0)
        return;
    unsigned id = 0;
    if (!strcmp(argv[0], "open") && argc == 2) {
        cmd_port(argv[1], &id);
        if (!g.port[id].exists)
            warn("open: port %u does not exist", id);
        else if (g.port[id].console)
            warn("open: port %u is a console (ENXIO)", id);
        else if (!g.port[id].guest_open)
            set_guest_open(id, true);
    } else if (!strcmp(argv[0], "close") && argc == 2) {
        cmd_port(argv[1], &id);
        if (g.port[id].exists && g.port[id].guest_open && !g.port[id].console)
            set_guest_open(id, false);
    } else if (!strcmp(argv[0], "tx") && argc == 3) {
        cmd_port(argv[1], &id);
        g.port[id].tx_target += parse_size(argv[2], "byte count");
    } else if (!strcmp(argv[0], "rx") && argc == 3) {
        cmd_port(argv[1], &id);
        g.port[id].rx_target += parse_size(argv[2], "byte count");
    } else if (!strcmp(argv[0], "wait")) {
        g.want_idle = true;
    } else if (!strcmp(argv[0], "garbage") && argc == 2) {
        send_garbage(argv[1]);
    } else if (!strcmp(argv[0], "baddesc") && argc == 3) {
        cmd_port(argv[1], &id);
        enum bad_kind k = BAD_NONE;
        for (int i = 1; i <= BAD_INDIRECT; i++)
            if (!strcmp(argv[2], bad_names[i]))
                k = (enum bad_kind)i;
        if (k == BAD_NONE)
            die_code(EXIT_USAGE, "bad descriptor kind '%s'", argv[2]);
        if (opt.packed && (k == BAD_NEXT || k == BAD_LOOP))
            die_code(EXIT_USAGE, "baddesc %s needs a split ring (a packed descriptor has no next field)", argv[2]);
        opt.spec[id].bad = k;
        g.port[id].bad_state = 1;
    } else if (!strcmp(argv[0], "emerg") && (argc == 2 || argc == 3)) {
        if (argc == 3)
            cmd_port(argv[2], &id);
        emerg_write(id, parse_size(argv[1], "byte count"));
    } else if (!strcmp(argv[0], "reboot") && argc == 1) {
        reboot_guest();
    } else if (!strcmp(argv[0], "status")) {
        print_results();
        out("STATUS");
    } else if (!strcmp(argv[0], "disconnect")) {
        end_run(false);
    } else if (!strcmp(argv[0], "quit")) {
        end_run(true);
    } else {
        warn("unknown command '%s'", argv[0]);
    }
}

static void read_stdin(void)
{
    if (g.in_len == sizeof g.in_buf)
        g.in_len = 0;
    ssize_t n = read(0, g.in_buf + g.in_len, sizeof g.in_buf - g.in_len);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        g.stdin_open = false;
        if (!g.ended)
            end_run(true);
        return;
    }
    g.in_len += (size_t)n;
    char *nl;
    while (!g.ended && (nl = memchr(g.in_buf, '\n', g.in_len))) {
        *nl = 0;
        char line[sizeof g.in_buf];
        strcpy(line, g.in_buf);
        size_t used = (size_t)(nl - g.in_buf) + 1;
        memmove(g.in_buf, nl + 1, g.in_len - used);
        g.in_len -= used;
        handle_command(line);
    }
}

static void close_run_fds(void)
{
    for (unsigned i = 0; i < g.num_vqs; i++) {
        struct vq *q = &g.vq[i];
        close(q->masked_fd);
        close(q->err_fd);
        close(q->call_fd);
        close(q->kick_fd);
        free(q->shadow_next);
        free(q->heads);
        memset(q, 0, sizeof *q);
    }
    if (mem.base) {
        munmap(mem.base, mem.size);
        close(mem.fd);
        mem.base = NULL;
    }
    if (g.backend_fd >= 0) {
        close(g.backend_fd);
        g.backend_fd = -1;
    }
    mem.nregions = 0;
    if (g.inflight_fd >= 0) { /* the next run is a new guest (a reset): its backend starts a new buffer */
        close(g.inflight_fd);
        g.inflight_fd = -1;
    }
}

static void end_run(bool clean)
{
    if (g.ended)
        return;
    if (clean) {
        if (opt.close_at_end) {
            for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++)
                if (g.port[id].exists && g.port[id].guest_open && !g.port[id].console)
                    set_guest_open(id, false);
            /* Wait, like the driver, until the backend used those control messages. */
            double until = now_s() + opt.reply_timeout;
            vq_publish(&g.vq[CTL_TX]);
            while ((g.ctl_npending || g.vq[CTL_TX].live) && now_s() < until) {
                struct pollfd p = { .fd = g.vq[CTL_TX].call_fd, .events = POLLIN };
                if (poll(&p, 1, 100) > 0) {
                    uint64_t v;
                    if (read(p.fd, &v, sizeof v) == sizeof v)
                        g.vq[CTL_TX].calls++;
                }
                vq_drain(&g.vq[CTL_TX]);
                ctl_flush_pending();
                vq_publish(&g.vq[CTL_TX]);
            }
            if (g.ctl_npending || g.vq[CTL_TX].live)
                die_code(EXIT_STALL, "the backend did not use the final PORT_OPEN(0) messages");
        }
        stop_device();
    } else {
        out("DISCONNECT run=%u", g.run);
    }
    close(g.sock);
    g.sock = -1;
    g.ended = true;
    print_results();
    out("RUN %u done", g.run);
}

/* ------------------------------------------------------------------------------------------ */
/* the poll loop                                                                               */

static void diag_dump(void)
{
    if (!g.needed_vqs || !mem.base)
        return;
    fprintf(stderr, "vsb-frontend: state at failure (run %u):\n", g.run);
    for (unsigned i = 0; i < g.needed_vqs; i++) {
        struct vq *q = &g.vq[i];
        if (!q->setup)
            continue;
        uint64_t masked = 0;
        if (read(q->masked_fd, &masked, sizeof masked) != sizeof masked)
            masked = 0;
        if (opt.packed) {
            uint32_t ev = __atomic_load_n(q->dev_event, __ATOMIC_ACQUIRE);
            bool pending = packed_is_used(q, q->used_pos, q->used_wrap);
            fprintf(stderr, "  queue %2u: packed avail %5u/%u used %5u/%u outstanding %3u free %3u device-event "
                    "flags %u off %u/%u driver-event flags %u off %u/%u kicks %" PRIu64 " calls %" PRIu64
                    " masked-calls %" PRIu64 "%s\n", i, q->next_avail, q->avail_wrap, q->used_pos, q->used_wrap,
                    q->live, q->num_free, ev >> 16, ev & 0x7fff, (ev >> 15) & 1, *q->drv_flags,
                    *q->drv_off_wrap & 0x7fff, *q->drv_off_wrap >> 15, q->kicks, q->calls, masked,
                    pending ? "  <- used descriptors without a call" : "");
            continue;
        }
        uint16_t used = ld16_acq(q->used_idx_p);
        fprintf(stderr, "  queue %2u: avail %5u used %5u seen %5u outstanding %3u avail_event %5u "
                "used_event %5u kicks %" PRIu64 " calls %" PRIu64 " masked-calls %" PRIu64 "%s\n",
                i, q->avail_idx, used, q->last_used, q->live, *q->avail_event, *q->used_event, q->kicks,
                q->calls, masked, used != q->last_used ? "  <- used entries without a call" : "");
    }
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++) {
        struct port *p = &g.port[id];
        if (!p->exists && !opt.spec[id].listed)
            continue;
        fprintf(stderr, "  port %u: exists %d console %d guest_open %d host_open %d tx %" PRIu64 "/%" PRIu64
                " (posted %" PRIu64 ") rx %" PRIu64 "/%" PRIu64 " discarded %" PRIu64 "\n",
                id, p->exists, p->console, p->guest_open, p->host_open, p->tx_done, p->tx_target,
                p->tx_posted, p->rx_bytes, p->rx_target, p->rx_discarded);
    }
    fprintf(stderr, "  control: %u messages wait for a transmitq slot\n", g.ctl_npending);
}

/*
 * --reconnect: the backend process went away (killed, crashed). As QEMU does for a backend it reconnects to, the
 * guest keeps running: its memory, rings and buffers stay as they are; the frontend connects again, negotiates
 * again, hands back the inflight buffer and restarts every ring at the used index the guest sees (the ring state
 * the dead backend had is lost: QEMU's virtio_queue_restore_last_avail_idx). What the old backend had taken but
 * not completed is in the avail ring still; the new backend finds it there.
 */
static void reconnect_attempt(void);

static void reconnect_device(void)
{
    g.reconnects++;
    out("BACKEND_GONE run=%u reconnects=%u", g.run, g.reconnects);
    static double deadline; /* static: kept across longjmp */
    deadline = now_s() + opt.connect_timeout;
    for (;;) {
        if (g.sock >= 0)
            close(g.sock);
        g.sock = -1;
        if (setjmp(reconnect_env) == 0) {
            reconnect_armed = true;
            reconnect_attempt();
            reconnect_armed = false;
            break;
        }
        if (now_s() > deadline)
            die_code(EXIT_IO, "no backend to reconnect to within %.0f s", opt.connect_timeout);
        usleep(20000);
    }
    out("RECONNECTED run=%u reconnects=%u", g.run, g.reconnects);
    g.last_progress = now_s();
}

static void reconnect_attempt(void)
{
    connect_socket();
    negotiate_connect();
    uint64_t acked = g.features_acked;
    if ((g.features_offered & acked) != acked)
        die("the new backend offers features 0x%" PRIx64 ", without bits 0x%" PRIx64 " acked before",
            g.features_offered, acked & ~g.features_offered);
    vu_plain(VU_SET_FEATURES, &acked, sizeof acked);
    if (g.status)
        add_status(S_FEATURES_OK);
    if (opt.inflight)
        setup_inflight();
    start_rings(START_RECONNECT);
}

static void socket_event(void)
{
    uint8_t b[VU_HDR_SIZE];
    ssize_t n = recv(g.sock, b, sizeof b, MSG_DONTWAIT);
    if ((n == 0 || (n < 0 && errno == ECONNRESET)) && opt.reconnect) {
        reconnect_device();
        return;
    }
    if (n == 0)
        die_code(EXIT_IO, "the backend closed the vhost-user connection");
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        die_code(EXIT_IO, "vhost-user connection: %s", strerror(errno));
    }
    uint32_t r = 0;
    memcpy(&r, b, n >= 4 ? 4 : (size_t)n);
    die("the backend sent an unsolicited message (request %u) on the vhost-user socket", r);
}

static void run_loop(void)
{
    static struct pollfd pf[3 + 3 * MAX_QUEUES];
    g.last_progress = now_s();
    bool garbage_sent = false;
    while (!g.ended) {
        unsigned n = 0;
        pf[n++] = (struct pollfd){ .fd = g.sock, .events = POLLIN };
        int stdin_slot = -1;
        if (opt.use_stdin && g.stdin_open) {
            stdin_slot = (int)n;
            pf[n++] = (struct pollfd){ .fd = 0, .events = POLLIN };
        }
        int backend_slot = -1;
        if (g.backend_fd >= 0) {
            backend_slot = (int)n;
            pf[n++] = (struct pollfd){ .fd = g.backend_fd, .events = POLLIN };
        }
        unsigned qbase = n;
        /* The loopback adapter unmasks without waiting for an ack: a call the backend made on the masked notifier
         * meanwhile is pending and goes to the guest (QEMU's guest_notifier_pending on unmask). */
        for (unsigned i = 0; i < g.needed_vqs; i++) {
            pf[n++] = (struct pollfd){ .fd = g.vq[i].call_fd, .events = POLLIN };
            pf[n++] = (struct pollfd){ .fd = g.vq[i].err_fd, .events = POLLIN };
            pf[n++] = (struct pollfd){ .fd = opt.family == FAM_LOOPBACK ? g.vq[i].masked_fd : -1, .events = POLLIN };
        }
        int r = poll(pf, n, 200);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die_code(EXIT_IO, "poll: %s", strerror(errno));
        }
        if (pf[0].revents)
            socket_event();
        /* (A reconnect in socket_event may have replaced the channel: what was polled was the old one.) */
        if (backend_slot >= 0 && pf[backend_slot].revents && g.backend_fd == pf[backend_slot].fd)
            backend_event();
        for (unsigned i = 0; i < g.needed_vqs; i++) {
            struct vq *q = &g.vq[i];
            uint64_t v;
            if (pf[qbase + 3 * i + 1].revents && read(q->err_fd, &v, sizeof v) == sizeof v) {
                q->errs++;
                warn("the backend signalled the error eventfd of queue %u", i);
                out("EVENT vring_err queue=%u", i);
            }
            bool call = pf[qbase + 3 * i].revents && read(q->call_fd, &v, sizeof v) == sizeof v;
            call |= pf[qbase + 3 * i + 2].revents && read(q->masked_fd, &v, sizeof v) == sizeof v;
            if (call)
                q->calls++;
            if (pf[qbase + 3 * i].revents || pf[qbase + 3 * i + 2].revents)
                vq_drain(q);
        }
        ctl_flush_pending();
        if (!garbage_sent) {
            garbage_sent = true;
            for (unsigned k = 0; k < opt.ngarbage; k++)
                send_garbage(opt.garbage[k]);
        }
        for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++)
            if (g.port[id].exists)
                fill_tx(id);
        for (unsigned i = 0; i < g.needed_vqs; i++)
            vq_publish(&g.vq[i]);
        if (!g.ready_printed && all_listed_added()) {
            g.ready_printed = true;
            /* Generic ports the scenario opens: like an application calling open() once the
             * device node appears (after the first boot only: see reboot_guest). */
            for (unsigned id = 0; id < MAX_PORTS_ALLOC && g.boots == 1; id++)
                if (opt.spec[id].listed && opt.spec[id].open && !g.port[id].console && !g.port[id].guest_open)
                    set_guest_open(id, true);
            vq_publish(&g.vq[CTL_TX]);
            out("READY");
        }
        if (stdin_slot >= 0 && pf[stdin_slot].revents)
            read_stdin();
        if (g.ended)
            break;
        uint64_t run_tx = 0;
        for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++)
            run_tx += g.port[id].tx_done - g.port[id].run_tx0;
        if (opt.disconnect_after && run_tx >= opt.disconnect_after) {
            end_run(false);
            break;
        }
        bool met = targets_met();
        if (met && g.want_idle) {
            g.want_idle = false;
            out("IDLE");
        }
        if (met && !opt.use_stdin && g.ready_printed) {
            end_run(true);
            break;
        }
        if (!met && opt.stall_timeout > 0 && now_s() - g.last_progress > opt.stall_timeout)
            die_code(EXIT_STALL, "nothing moved for %.0f s while work is pending", opt.stall_timeout);
        if (met || !work_pending())
            g.last_progress = now_s();
    }
}

static void one_run(unsigned run)
{
    g.run = run;
    g.ended = g.stopping = g.ready_printed = g.want_idle = false;
    g.ctl_npending = 0;
    g.features_acked = g.proto_acked = g.proto_offered = g.queue_num = 0;
    g.needed_vqs = 0;
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++) {
        struct port *p = &g.port[id];
        struct port_spec *s = &opt.spec[id];
        p->exists = p->console = p->guest_open = p->host_open = p->named = p->ready_sent = false;
        p->run_tx0 = p->tx_done;
        p->run_rx0 = p->rx_bytes;
        p->tx_posted = p->tx_done; /* a disconnect loses what was posted but never used */
        p->tx_target = p->tx_done + s->tx;
        p->rx_target = p->rx_bytes + s->rx;
        p->t_tx_first = p->t_tx_last = p->t_rx_first = p->t_rx_last = 0;
        p->bad_state = s->bad != BAD_NONE ? 1 : 0;
    }
    g.boots = 0;
    g.have_config = false;
    connect_socket();
    out("CONNECTED run=%u socket=%s", run, opt.socket);
    negotiate_connect();
    start_device(false);
    driver_ready();
    run_loop();
    close_run_fds();
}

/* ------------------------------------------------------------------------------------------ */
/* benchmark mode                                                                              */
/*
 * --bench runs measurements through the backend and, in the same process and the same run,
 * the raw baselines without it. The host side of each port is played by a forked peer process
 * (discard, source or echo) connected to the backend's host endpoint for that port; the guest
 * side is this process, interrupt driven as in the scenarios. Nothing here asserts on time:
 * figures are printed, one line each, and summarised as median, min and max over the runs.
 */

#define BENCH_MAX_RUNS   64u
#define BENCH_PEER_BUF   (256u * 1024u)
#define PEER_CONNECTED   UINT64_MAX

enum peer_mode { PEER_DISCARD, PEER_SOURCE, PEER_ECHO };

static struct {
    const char *kinds;        /* comma list: gh, hg, echo, multi, sizes (or all) */
    const char *host;         /* host endpoint of a port: unix:PATH (%u = port) or tcp:HOST:PORT (+ port - first) */
    unsigned runs;
    uint64_t bytes;           /* per run of a single-port throughput measurement */
    uint64_t multi_bytes;     /* in all, shared by the ports of a multi-port run */
    unsigned echo_n;          /* round trips per echo run */
    unsigned msg;             /* echo message size */
    unsigned port;            /* port of the single-port measurements */
    unsigned multi_depth;     /* tx buffers in flight per port in multi-port runs */
    const char *sizes;        /* tx buffer sizes of the size sweep */
    const char *ports;        /* port counts of the multi-port measurement */
    long backend_pid;         /* for CPU time per GB; 0 = not measured */
} bopt = {
    .kinds = "all", .runs = 5, .bytes = 256ull << 20, .multi_bytes = 256ull << 20, .echo_n = 20000,
    .msg = 64, .port = 1, .multi_depth = 4, .sizes = "256,1024,4096,16384,32768", .ports = "1,8,64,511",
};

static bool bench_wants(const char *kind)
{
    if (!strcmp(bopt.kinds, "all"))
        return true;
    size_t n = strlen(kind);
    for (const char *c = bopt.kinds; (c = strstr(c, kind)); c += n)
        if ((c == bopt.kinds || c[-1] == ',') && (c[n] == 0 || c[n] == ','))
            return true;
    return false;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Prints median and spread of n values of one measurement. */
static void summary(const char *kind, const char *target, uint64_t param, const char *unit, const double *v,
                    unsigned n)
{
    if (!n)
        return;
    double s[BENCH_MAX_RUNS];
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double med = n & 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    out("SUMMARY kind=%s target=%s param=%" PRIu64 " unit=%s median=%.3f min=%.3f max=%.3f runs=%u", kind,
        target, param, unit, med, s[0], s[n - 1], n);
}

/* user+sys seconds of a process from /proc/PID/stat (fields 14 and 15). */
static double proc_cpu_s(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double rusage_s(int who)
{
    struct rusage r;
    getrusage(who, &r);
    return (double)r.ru_utime.tv_sec + r.ru_utime.tv_usec * 1e-6 + (double)r.ru_stime.tv_sec +
           r.ru_stime.tv_usec * 1e-6;
}

/* ---- the host peer ---- */

static int endpoint_connect(unsigned port)
{
    const char *h = bopt.host;
    double deadline = now_s() + opt.connect_timeout;
    for (;;) {
        int s = -1, e = 0;
        if (!strncmp(h, "unix:", 5)) {
            struct sockaddr_un a;
            memset(&a, 0, sizeof a);
            a.sun_family = AF_UNIX;
            char path[sizeof a.sun_path + 16];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            snprintf(path, sizeof path, h + 5, port);
#pragma GCC diagnostic pop
            if (strlen(path) >= sizeof a.sun_path)
                die_code(EXIT_USAGE, "host socket path too long: %s", path);
            strcpy(a.sun_path, path);
            s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0)
                return s;
            e = errno;
        } else if (!strncmp(h, "tcp:", 4)) {
            const char *colon = strrchr(h + 4, ':');
            if (!colon)
                die_code(EXIT_USAGE, "--host tcp:HOST:PORT expected, got %s", h);
            char host[64];
            size_t hl = (size_t)(colon - (h + 4));
            if (hl >= sizeof host)
                die_code(EXIT_USAGE, "--host: host name too long");
            memcpy(host, h + 4, hl);
            host[hl] = 0;
            struct sockaddr_in a;
            memset(&a, 0, sizeof a);
            a.sin_family = AF_INET;
            a.sin_port = htons((uint16_t)(atoi(colon + 1) + (int)port - (int)bopt.port));
            if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
                die_code(EXIT_USAGE, "--host: '%s' is not an IPv4 address", host);
            s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
                int one = 1;
                setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                return s;
            }
            e = errno;
        } else {
            die_code(EXIT_USAGE, "--host must be unix:PATH or tcp:HOST:PORT, got %s", h);
        }
        if (s >= 0)
            close(s);
        if (now_s() > deadline)
            die_code(EXIT_IO, "peer: cannot connect to the host endpoint of port %u (%s): %s", port, h,
                     strerror(e));
        usleep(20000);
    }
}

static void write_all(int fd, const void *b, size_t n)
{
    const uint8_t *p = b;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            _exit(EXIT_IO);
        }
        p += w;
        n -= (size_t)w;
    }
}

/* The host side: connects to every port's endpoint, says so on rep, then plays its mode until killed. */
static void peer_main(enum peer_mode mode, const unsigned *ports, unsigned n, uint64_t per_port, unsigned chunk,
                      int go, int rep)
{
    static uint8_t buf[BENCH_PEER_BUF];
    int fds[MAX_PORTS_ALLOC];
    for (unsigned i = 0; i < n; i++)
        fds[i] = endpoint_connect(ports[i]);
    uint64_t v = PEER_CONNECTED;
    write_all(rep, &v, sizeof v);
    if (mode == PEER_ECHO) {
        for (;;) {
            ssize_t r = read(fds[0], buf, sizeof buf);
            if (r <= 0)
                _exit(r == 0 ? 0 : EXIT_IO);
            write_all(fds[0], buf, (size_t)r);
        }
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    uint64_t sent[MAX_PORTS_ALLOC] = { 0 }, total = 0, want = per_port * n;
    if (mode == PEER_SOURCE) {
        char c;
        if (read(go, &c, 1) != 1)
            _exit(0);
        memset(buf, 0x5a, sizeof buf);
    }
    for (unsigned i = 0; i < n; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        struct epoll_event e = { .events = mode == PEER_SOURCE ? EPOLLOUT | EPOLLIN : EPOLLIN, .data.u32 = i };
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
    }
    bool reported = false;
    for (;;) {
        struct epoll_event ev[64];
        int k = epoll_wait(ep, ev, 64, -1);
        for (int j = 0; j < k; j++) {
            unsigned i = ev[j].data.u32;
            if (ev[j].events & EPOLLIN) {
                ssize_t r = read(fds[i], buf, sizeof buf);
                if (r == 0) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
                    continue;
                }
                if (r > 0 && mode == PEER_DISCARD)
                    total += (uint64_t)r;
            }
            if (mode == PEER_SOURCE && (ev[j].events & EPOLLOUT) && sent[i] < per_port) {
                uint64_t left = per_port - sent[i];
                ssize_t w = write(fds[i], buf, left < chunk ? (size_t)left : chunk);
                if (w > 0) {
                    sent[i] += (uint64_t)w;
                    total += (uint64_t)w;
                }
                if (sent[i] == per_port) {
                    struct epoll_event e = { .events = EPOLLIN, .data.u32 = i };
                    epoll_ctl(ep, EPOLL_CTL_MOD, fds[i], &e);
                }
            }
        }
        if (!reported && total >= want) {
            reported = true;
            write_all(rep, &total, sizeof total);
        }
    }
}

struct peer { pid_t pid; int go, rep; };

static struct peer peer_start(enum peer_mode mode, const unsigned *ports, unsigned n, uint64_t per_port,
                              unsigned chunk)
{
    int go[2], rep[2];
    if (pipe2(go, O_CLOEXEC) || pipe2(rep, O_CLOEXEC))
        die_code(EXIT_IO, "pipe: %s", strerror(errno));
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die_code(EXIT_IO, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(g.sock);
        close(go[1]);
        close(rep[0]);
        peer_main(mode, ports, n, per_port, chunk, go[0], rep[1]);
        _exit(0);
    }
    close(go[0]);
    close(rep[1]);
    return (struct peer){ pid, go[1], rep[0] };
}

static void peer_stop(struct peer *p)
{
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    close(p->go);
    close(p->rep);
}

/* ---- the guest side through the backend ---- */

/* One turn of the guest: wait for calls (or the peer's report pipe), use what the device used, post more. */
static bool bench_iter(int extra_fd, int timeout_ms)
{
    static struct pollfd pf[2 + 2 * MAX_QUEUES];
    /* Post what the guest wants to write before sleeping: a new target may have been set. */
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++)
        if (g.port[id].exists && g.port[id].tx_posted < g.port[id].tx_target)
            fill_tx(id);
    ctl_flush_pending();
    for (unsigned i = 0; i < g.needed_vqs; i++)
        vq_publish(&g.vq[i]);
    unsigned n = 0;
    pf[n++] = (struct pollfd){ .fd = g.sock, .events = POLLIN };
    pf[n++] = (struct pollfd){ .fd = extra_fd, .events = POLLIN };
    for (unsigned i = 0; i < g.needed_vqs; i++)
        pf[n++] = (struct pollfd){ .fd = g.vq[i].call_fd, .events = POLLIN };
    int r = poll(pf, n, timeout_ms);
    if (r < 0 && errno != EINTR)
        die_code(EXIT_IO, "poll: %s", strerror(errno));
    if (r <= 0)
        return false;
    if (pf[0].revents)
        socket_event();
    for (unsigned i = 0; i < g.needed_vqs; i++) {
        if (!pf[2 + i].revents)
            continue;
        struct vq *q = &g.vq[i];
        uint64_t v;
        if (read(q->call_fd, &v, sizeof v) == sizeof v)
            q->calls++;
        vq_drain(q);
    }
    ctl_flush_pending();
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++)
        if (g.port[id].exists && g.port[id].tx_posted < g.port[id].tx_target)
            fill_tx(id);
    for (unsigned i = 0; i < g.needed_vqs; i++)
        vq_publish(&g.vq[i]);
    return pf[1].revents != 0;
}

static bool port_ready_for_bench(const struct port *p)
{
    return p->exists && p->guest_open && (p->console || p->host_open);
}

static void bench_stalled(const char *what)
{
    die_code(EXIT_STALL, "benchmark: %s did not finish within --stall-timeout %.0f s", what, opt.stall_timeout);
}

/* Reads one report from the peer; PEER_CONNECTED or a byte count. */
static uint64_t peer_report(const struct peer *p)
{
    uint64_t v;
    if (read(p->rep, &v, sizeof v) != sizeof v)
        die_code(EXIT_IO, "benchmark: the host peer died (is the host endpoint %s right?)", bopt.host);
    return v;
}

/* Starts a peer on ports and waits until it is connected and the guest may write on each port. */
static struct peer bench_peer(enum peer_mode mode, const unsigned *ports, unsigned n, uint64_t per_port,
                              unsigned chunk)
{
    struct peer p = peer_start(mode, ports, n, per_port, chunk);
    bool connected = false;
    double until = now_s() + opt.stall_timeout;
    for (;;) {
        if (bench_iter(p.rep, 50) && !connected)
            connected = peer_report(&p) == PEER_CONNECTED;
        /* A console may be written before the host opens it, but bytes without a peer are dropped: wait
         * for the backend's PORT_OPEN as for a generic port, unless the backend sends none for consoles. */
        bool all = connected, patience = now_s() > until - opt.stall_timeout + 1;
        for (unsigned i = 0; all && i < n; i++) {
            const struct port *q = &g.port[ports[i]];
            all = port_ready_for_bench(q) && (q->host_open || patience);
        }
        if (all)
            return p;
        if (now_s() > until)
            bench_stalled("connecting the host peer");
    }
}

/* Kills the peer and waits until the backend told the guest that the host side closed. */
static void bench_peer_done(struct peer *p, const unsigned *ports, unsigned n)
{
    peer_stop(p);
    double until = now_s() + 2;
    for (;;) {
        bool closed = true;
        for (unsigned i = 0; closed && i < n; i++)
            closed = !g.port[ports[i]].host_open;
        if (closed || now_s() > until)
            return; /* a backend that does not report host close is waited for 2 s, no more */
        bench_iter(-1, 20);
    }
}

/* Guest -> host on the given ports, each per_port bytes in tx buffers of chunk bytes; MB/s of the total. */
static double bridge_gh(const unsigned *ports, unsigned n, uint64_t per_port, unsigned chunk, double *cpu_per_gb)
{
    struct peer p = bench_peer(PEER_DISCARD, ports, n, per_port, chunk);
    opt.tx_chunk = chunk;
    double c0 = bopt.backend_pid ? proc_cpu_s(bopt.backend_pid) : -1;
    double t0 = now_s(), until = t0 + opt.stall_timeout;
    for (unsigned i = 0; i < n; i++) {
        struct port *q = &g.port[ports[i]];
        q->tx_target = q->tx_posted + per_port;
    }
    uint64_t got = 0;
    while (!got) {
        if (bench_iter(p.rep, 100))
            got = peer_report(&p);
        if (now_s() > until)
            bench_stalled("guest->host");
    }
    double t = now_s() - t0;
    double c1 = c0 >= 0 ? proc_cpu_s(bopt.backend_pid) : -1;
    /* The guest has its buffers back before the next measurement starts. */
    for (;;) {
        bool idle = true;
        for (unsigned i = 0; idle && i < n; i++)
            idle = g.port[ports[i]].tx_done == g.port[ports[i]].tx_target;
        if (idle)
            break;
        bench_iter(-1, 100);
        if (now_s() > until)
            bench_stalled("guest->host completions");
    }
    bench_peer_done(&p, ports, n);
    *cpu_per_gb = c0 >= 0 && c1 >= 0 ? (c1 - c0) / ((double)got / 1e9) : -1;
    return (double)got / t / 1e6;
}

static double bridge_hg(unsigned port, uint64_t bytes, double *cpu_per_gb)
{
    struct peer p = bench_peer(PEER_SOURCE, &port, 1, bytes, 65536);
    struct port *q = &g.port[port];
    uint64_t want = q->rx_bytes + bytes;
    double c0 = bopt.backend_pid ? proc_cpu_s(bopt.backend_pid) : -1;
    double t0 = now_s(), until = t0 + opt.stall_timeout;
    if (write(p.go, "g", 1) != 1)
        die_code(EXIT_IO, "benchmark: the host peer died");
    while (q->rx_bytes < want) {
        bench_iter(p.rep, 100);
        if (now_s() > until)
            bench_stalled("host->guest");
    }
    double t = now_s() - t0;
    double c1 = c0 >= 0 ? proc_cpu_s(bopt.backend_pid) : -1;
    bench_peer_done(&p, &port, 1);
    *cpu_per_gb = c0 >= 0 && c1 >= 0 ? (c1 - c0) / ((double)bytes / 1e9) : -1;
    return (double)bytes / t / 1e6;
}

/* Round trips of one message: guest tx -> peer echoes -> guest rx; times in microseconds. */
static void bridge_echo(unsigned port, unsigned count, double *lat)
{
    struct peer p = bench_peer(PEER_ECHO, &port, 1, 0, 0);
    struct port *q = &g.port[port];
    opt.tx_chunk = bopt.msg;
    double until = now_s() + opt.stall_timeout;
    unsigned warm = count / 10;
    for (unsigned i = 0; i < warm + count; i++) {
        uint64_t want = q->rx_bytes + bopt.msg;
        double t0 = now_s();
        q->tx_target = q->tx_posted + bopt.msg;
        fill_tx(port);
        while (q->rx_bytes < want) {
            bench_iter(-1, 100);
            if (now_s() > until)
                bench_stalled("echo");
        }
        if (i >= warm)
            lat[i - warm] = (now_s() - t0) * 1e6;
    }
    bench_peer_done(&p, &port, 1);
}

/* ---- the raw baselines ---- */

/* The same bytes over a bare AF_UNIX socketpair between two processes; MB/s. */
static double base_stream(uint64_t bytes, unsigned wchunk, unsigned rchunk, double *cpu_per_gb)
{
    static uint8_t buf[BENCH_PEER_BUF];
    int sp[2], go[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) || pipe2(go, O_CLOEXEC))
        die_code(EXIT_IO, "socketpair: %s", strerror(errno));
    fflush(stdout);
    double self0 = rusage_s(RUSAGE_SELF), kids0 = rusage_s(RUSAGE_CHILDREN);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(sp[0]);
        close(go[1]);
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(0);
        memset(buf, 0x5a, wchunk);
        for (uint64_t sent = 0; sent < bytes;) {
            uint64_t left = bytes - sent;
            size_t n = left < wchunk ? (size_t)left : wchunk;
            write_all(sp[1], buf, n);
            sent += n;
        }
        _exit(0);
    }
    close(sp[1]);
    close(go[0]);
    double t0 = now_s();
    if (write(go[1], "g", 1) != 1)
        die_code(EXIT_IO, "baseline writer died");
    uint64_t got = 0;
    while (got < bytes) {
        ssize_t r = read(sp[0], buf, rchunk);
        if (r <= 0)
            die_code(EXIT_IO, "baseline stream ended after %" PRIu64 " bytes", got);
        got += (uint64_t)r;
    }
    double t = now_s() - t0;
    waitpid(pid, NULL, 0);
    close(sp[0]);
    close(go[1]);
    double cpu = rusage_s(RUSAGE_SELF) - self0 + rusage_s(RUSAGE_CHILDREN) - kids0;
    *cpu_per_gb = cpu / ((double)bytes / 1e9);
    return (double)bytes / t / 1e6;
}

/* The same echo over bare hops: guest --eventfd--> relay --socket--> peer --socket--> relay --eventfd--> guest,
 * three processes, as the bridge path is guest, backend and host peer. */
static void base_echo(unsigned count, double *lat)
{
    static uint8_t buf[65536];
    int kick = eventfd(0, EFD_CLOEXEC), call = eventfd(0, EFD_CLOEXEC), sp[2];
    if (kick < 0 || call < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
        die_code(EXIT_IO, "baseline echo set-up: %s", strerror(errno));
    fflush(stdout);
    pid_t echo = fork();
    if (echo == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) {
            ssize_t r = read(sp[1], buf, sizeof buf);
            if (r <= 0)
                _exit(0);
            write_all(sp[1], buf, (size_t)r);
        }
    }
    close(sp[1]);
    pid_t relay = fork();
    if (relay == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        unsigned have = 0;
        for (;;) {
            struct pollfd p[2] = { { kick, POLLIN, 0 }, { sp[0], POLLIN, 0 } };
            if (poll(p, 2, -1) < 0)
                continue;
            uint64_t v;
            if (p[0].revents) {
                if (read(kick, &v, sizeof v) != sizeof v)
                    _exit(EXIT_IO);
                memset(buf, 0x5a, bopt.msg);
                write_all(sp[0], buf, bopt.msg);
            }
            if (p[1].revents) {
                ssize_t r = read(sp[0], buf, sizeof buf);
                if (r <= 0)
                    _exit(0);
                have += (unsigned)r;
                if (have >= bopt.msg) {
                    have -= bopt.msg;
                    v = 1;
                    write_all(call, &v, sizeof v);
                }
            }
        }
    }
    unsigned warm = count / 10;
    for (unsigned i = 0; i < warm + count; i++) {
        double t0 = now_s();
        uint64_t v = 1;
        write_all(kick, &v, sizeof v);
        struct pollfd p = { call, POLLIN, 0 };
        if (poll(&p, 1, (int)(opt.stall_timeout * 1000)) != 1 || read(call, &v, sizeof v) != sizeof v)
            die_code(EXIT_STALL, "baseline echo stalled");
        if (i >= warm)
            lat[i - warm] = (now_s() - t0) * 1e6;
    }
    kill(relay, SIGKILL);
    kill(echo, SIGKILL);
    waitpid(relay, NULL, 0);
    waitpid(echo, NULL, 0);
    close(sp[0]);
    close(kick);
    close(call);
}

/* ---- the measurement plan ---- */

static unsigned parse_list(const char *s, uint64_t *v, unsigned max, const char *what)
{
    unsigned n = 0;
    char buf[256];
    if (strlen(s) >= sizeof buf)
        die_code(EXIT_USAGE, "%s list too long", what);
    strcpy(buf, s);
    char *save;
    for (char *t = strtok_r(buf, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save))
        v[n++] = parse_size(t, what);
    return n;
}

static double pct(const double *sorted, unsigned n, double p)
{
    unsigned i = (unsigned)(p / 100.0 * (n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

static void latency_report(const char *target, double *all, unsigned n)
{
    qsort(all, n, sizeof *all, cmp_double);
    static const double ps[] = { 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100 };
    for (unsigned i = 0; i < sizeof ps / sizeof ps[0]; i++)
        out("LATPCT target=%s p=%g us=%.2f", target, ps[i], pct(all, n, ps[i]));
}

/* One throughput measurement, bridge and baseline alternating run by run. */
static void bench_stream(const char *kind, uint64_t param, bool has_backend, const unsigned *ports, unsigned n,
                         uint64_t per_port, unsigned wchunk, unsigned rchunk, bool hg)
{
    double b[BENCH_MAX_RUNS], r[BENCH_MAX_RUNS], bc[BENCH_MAX_RUNS], rc[BENCH_MAX_RUNS];
    unsigned nb = 0, nr = 0;
    for (unsigned run = 1; run <= bopt.runs; run++) {
        double cpu;
        r[nr] = base_stream(per_port * n, wchunk, rchunk, &cpu);
        rc[nr] = cpu;
        out("BENCH kind=%s target=baseline param=%" PRIu64 " run=%u mbps=%.1f cpu_s_per_gb=%.3f", kind, param,
            run, r[nr], cpu);
        nr++;
        if (!has_backend)
            continue;
        b[nb] = hg ? bridge_hg(ports[0], per_port, &cpu) : bridge_gh(ports, n, per_port, wchunk, &cpu);
        bc[nb] = cpu;
        out("BENCH kind=%s target=bridge param=%" PRIu64 " run=%u mbps=%.1f cpu_s_per_gb=%.3f", kind, param, run,
            b[nb], cpu);
        nb++;
    }
    summary(kind, "baseline", param, "MB/s", r, nr);
    summary(kind, "baseline-cpu", param, "cpu_s_per_GB", rc, nr);
    summary(kind, "bridge", param, "MB/s", b, nb);
    if (bopt.backend_pid)
        summary(kind, "bridge-cpu", param, "cpu_s_per_GB", bc, nb);
}

static void bench_latency(bool has_backend)
{
    unsigned n = bopt.echo_n;
    double *one = calloc(n, sizeof *one);
    double *ball = calloc((size_t)n * bopt.runs, sizeof *ball), *rall = calloc((size_t)n * bopt.runs, sizeof *rall);
    if (!one || !ball || !rall)
        die_code(EXIT_IO, "out of memory");
    double p50[2][BENCH_MAX_RUNS], p99[2][BENCH_MAX_RUNS], p999[2][BENCH_MAX_RUNS];
    unsigned nb = 0, nr = 0;
    for (unsigned run = 1; run <= bopt.runs; run++) {
        for (int t = 0; t < 2; t++) {
            if (t == 1 && !has_backend)
                break;
            if (t == 0)
                base_echo(n, one);
            else
                bridge_echo(bopt.port, n, one);
            memcpy((t ? ball + (size_t)nb * n : rall + (size_t)nr * n), one, n * sizeof *one);
            qsort(one, n, sizeof *one, cmp_double);
            unsigned k = t ? nb++ : nr++;
            p50[t][k] = pct(one, n, 50);
            p99[t][k] = pct(one, n, 99);
            p999[t][k] = pct(one, n, 99.9);
            out("BENCH kind=echo target=%s param=%u run=%u p50_us=%.2f p99_us=%.2f p999_us=%.2f max_us=%.2f",
                t ? "bridge" : "baseline", bopt.msg, run, p50[t][k], p99[t][k], p999[t][k], one[n - 1]);
        }
    }
    summary("echo-p50", "baseline", bopt.msg, "us", p50[0], nr);
    summary("echo-p99", "baseline", bopt.msg, "us", p99[0], nr);
    summary("echo-p999", "baseline", bopt.msg, "us", p999[0], nr);
    summary("echo-p50", "bridge", bopt.msg, "us", p50[1], nb);
    summary("echo-p99", "bridge", bopt.msg, "us", p99[1], nb);
    summary("echo-p999", "bridge", bopt.msg, "us", p999[1], nb);
    latency_report("baseline", rall, nr * n);
    if (nb)
        latency_report("bridge", ball, nb * n);
    free(one);
    free(ball);
    free(rall);
}

/* Connects and starts the device like one_run, then waits until every port the backend adds is open. */
static void bench_connect(void)
{
    g.run = 1;
    connect_socket();
    out("CONNECTED run=1 socket=%s", opt.socket);
    negotiate_connect();
    start_device(false);
    for (unsigned b = 0; b < opt.queue_size; b++)
        ctl_post_rx(b);
    vq_publish(&g.vq[CTL_RX]);
    ctl_send(0xffffffffu, C_DEVICE_READY, 1);
    vq_publish(&g.vq[CTL_TX]);
    /* Ports arrive as PORT_ADD; the guest opens each generic one, as an application would. */
    double quiet_since = now_s(), until = now_s() + opt.stall_timeout;
    unsigned seen = 0;
    while (now_s() - quiet_since < 0.5) {
        bench_iter(-1, 50);
        unsigned count = 0;
        for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++) {
            struct port *p = &g.port[id];
            if (p->exists && !p->console && !p->guest_open)
                set_guest_open(id, true);
            count += p->exists && p->guest_open;
        }
        if (count != seen) {
            seen = count;
            quiet_since = now_s();
        }
        if (now_s() > until)
            bench_stalled("port discovery");
    }
    vq_publish(&g.vq[CTL_TX]);
    out("READY ports=%u", seen);
}

static int bench_main(void)
{
    bool has = opt.socket != NULL;
    if (has && !bopt.host)
        die_code(EXIT_USAGE, "--bench with --socket needs --host unix:PATH or tcp:HOST:PORT");
    if (bopt.runs == 0 || bopt.runs > BENCH_MAX_RUNS)
        die_code(EXIT_USAGE, "--bench-runs must be 1..%u", BENCH_MAX_RUNS);
    if (bopt.msg == 0 || bopt.msg > PAGE_SIZE_GUEST)
        die_code(EXIT_USAGE, "--bench-msg must be 1..%u", PAGE_SIZE_GUEST);
    opt.bench = true;
    opt.verify = false;
    if (has) {
        bench_connect();
        if (!port_ready_for_bench(&g.port[bopt.port]) && !g.port[bopt.port].exists)
            die_code(EXIT_USAGE, "benchmark port %u does not exist on this backend", bopt.port);
    }
    unsigned one = bopt.port;
    if (has) {
        /* Warm-up, not reported: a JIT-compiled backend is measured compiled, not while it compiles. */
        double cpu;
        bridge_gh(&one, 1, bopt.bytes, TX_CHUNK_MAX, &cpu);
        bridge_hg(one, bopt.bytes / 4, &cpu);
        out("WARMUP done");
    }
    if (bench_wants("gh"))
        bench_stream("gh", TX_CHUNK_MAX, has, &one, 1, bopt.bytes, TX_CHUNK_MAX, TX_CHUNK_MAX, false);
    if (bench_wants("hg"))
        bench_stream("hg", PAGE_SIZE_GUEST, has, &one, 1, bopt.bytes, 65536, PAGE_SIZE_GUEST, true);
    if (bench_wants("echo"))
        bench_latency(has);
    if (bench_wants("sizes")) {
        uint64_t sz[16];
        unsigned ns = parse_list(bopt.sizes, sz, 16, "size");
        for (unsigned i = 0; i < ns; i++) {
            if (sz[i] == 0 || sz[i] > TX_CHUNK_MAX)
                die_code(EXIT_USAGE, "--bench-sizes: %" PRIu64 " is not 1..%u", sz[i], TX_CHUNK_MAX);
            /* Small buffers move fewer bytes per run so each run stays short. */
            uint64_t bytes = sz[i] * 16384 < bopt.bytes ? sz[i] * 16384 : bopt.bytes;
            bench_stream("size", sz[i], has, &one, 1, bytes, (unsigned)sz[i], (unsigned)sz[i], false);
        }
    }
    if (bench_wants("multi")) {
        uint64_t counts[16];
        unsigned nc = parse_list(bopt.ports, counts, 16, "port count");
        unsigned avail = 0, list[MAX_PORTS_ALLOC];
        /* Generic ports only: a console's guest writes a page at a time (hvc), and a backend may drop console
         * output its host side cannot take (QEMU's virtconsole does), so the peer would wait for bytes that
         * never come. */
        for (unsigned id = 1; id < MAX_PORTS_ALLOC; id++)
            if (g.port[id].exists && g.port[id].guest_open && !g.port[id].console)
                list[avail++] = id;
        opt.depth_cap = bopt.multi_depth;
        for (unsigned i = 0; i < nc && has; i++) {
            unsigned n = (unsigned)counts[i];
            if (n > avail) {
                out("SKIP kind=multi param=%u reason=the backend has %u generic ports", n, avail);
                continue;
            }
            /* The same total for every port count, so each port count moves the same bytes. */
            uint64_t per = bopt.multi_bytes / n / TX_CHUNK_MAX * TX_CHUNK_MAX;
            if (per < TX_CHUNK_MAX)
                per = TX_CHUNK_MAX;
            bench_stream("multi", n, has, list, n, per, TX_CHUNK_MAX, TX_CHUNK_MAX, false);
        }
        opt.depth_cap = 0;
    }
    if (has) {
        stop_device();
        close(g.sock);
    }
    out("DONE");
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
"usage: vsb-frontend --socket PATH [options]\n"
"\n"
"A vhost-user frontend that behaves like QEMU 10.2 (vhost-user-test-device-pci, virtio-id=3)\n"
"plus the Linux 6.1 virtio_console driver, for testing a virtio-console backend.\n"
"\n"
"Scenario:\n"
"  --socket PATH            vhost-user socket of the backend (connect retried for --connect-timeout)\n"
"  --port N[:tx=B][:rx=B][:open][:seed=S][:bad=KIND]\n"
"                           port N (repeatable): the guest writes B bytes (tx, guest->host) and\n"
"                           expects B bytes (rx, host->guest) per run; 'open' opens a generic port\n"
"                           (consoles open on CONSOLE_PORT by themselves); seed replaces the\n"
"                           pattern base; bad=KIND posts one bad descriptor on its transmitq\n"
"                           (addr, len, wrap, next, loop, indirect) instead of data\n"
"  --close                  close opened generic ports (PORT_OPEN 0) before the clean stop\n"
"  --runs N                 connect, run, stop, disconnect N times in this process (default 1)\n"
"  --disconnect-after B     drop the connection abruptly once B bytes of tx were used in a run\n"
"  --garbage KIND           after the rings start, send a bad message and expect an error ack:\n"
"                           unknown (request 0x7ffe), badsize (SET_VRING_NUM with 4 bytes),\n"
"                           badindex (SET_VRING_NUM for queue 1000); repeatable\n"
"  --stdin                  take commands on stdin; the run ends on 'quit' or end of input:\n"
"                             open N | close N | tx N B | rx N B | wait (prints IDLE when every\n"
"                             target is met) | garbage KIND | baddesc N KIND | status |\n"
"                             emerg B [N] (the next B bytes of port N's guest->host pattern, default\n"
"                             port 0, one SET_CONFIG of emerg_wr each; needs --emerg-write) |\n"
"                             reboot (stop the rings, reset the device, probe again from scratch:\n"
"                             features, memory, empty rings, DEVICE_READY; ports closed until opened\n"
"                             again; reboot while idle, unused buffers are lost) |\n"
"                             disconnect (abrupt) | quit (clean stop)\n"
"Frontend family:\n"
"  --family qemu|chv|loopback\n"
"                           qemu (default): QEMU 10.2's order, NEED_REPLY on every request without a\n"
"                           reply of its own, ADD_MEM_REG with mem slots, STATUS, BACKEND_REQ;\n"
"                           chv: cloud-hypervisor / rust-vmm: per queue NUM, ADDR, BASE, CALL, KICK,\n"
"                           ENABLE, NEED_REPLY only on SET_MEM_TABLE, no STATUS, reset by RESET_OWNER;\n"
"                           loopback: the virtio-loopback adapter: GET_CONFIG at realize, request 39\n"
"                           with an fd when STATUS is not negotiated (LOOPBACK_FD line), one sparse\n"
"                           memfd cut into 4..16 regions of ~1 GiB at unaligned mmap_offsets with\n"
"                           userspace_addr == guest_phys_addr (REGION lines), each port's buffers\n"
"                           across region boundaries (CROSS lines), no stop at the end\n"
"Device and driver:\n"
"  --queue-size N           ring size of every queue (default 64, as vhost-user-test-device-pci)\n"
"  --num-queues N           num_vqs (default: the backend's GET_QUEUE_NUM answer)\n"
"  --tx-chunk B             largest tx buffer of a generic port (default and maximum 32768)\n"
"  --tx-depth N             tx buffers in flight per generic port (default: the ring size)\n"
"  --tx-segs K              split each tx buffer into K descriptors (1..16), placed in reverse\n"
"                           memory order\n"
"  --indirect               put tx chains in indirect tables\n"
"  --packed                 drive every queue as a packed ring (VIRTIO_F_RING_PACKED, bit 34): the\n"
"                           backend must offer it (else exit 2); SET_VRING_ADDR carries the\n"
"                           descriptor ring, driver and device area as desc, avail and used;\n"
"                           SET_VRING_BASE 0x80008000 (avail 0, wrap 1 in bit 15; used 0, wrap 1 in\n"
"                           bit 31, as QEMU); GET_VRING_BASE is checked in that form; with --packed,\n"
"                           --indirect needs INDIRECT_DESC negotiated (else exit 2), bad=next and\n"
"                           bad=loop are refused and --feature-mask must keep bit 34\n"
"  --inflight               negotiate INFLIGHT_SHMFD: GET_INFLIGHT_FD once, SET_INFLIGHT_FD (the same buffer) at\n"
"                           every start, as QEMU's vhost-user-blk does (split rings only)\n"
"  --reconnect              when the backend goes away, connect again and carry on: guest memory, rings and\n"
"                           buffers kept, rings restarted at the used index (BACKEND_GONE, RECONNECTED lines)\n"
"  --wide-index             name queues 256..1023 in SET_VRING_KICK/CALL/ERR with the bridge's extension\n"
"                           (index >> 8 in bits 16-31); the spec's 8-bit index stops at queue 255\n"
"  --feature-mask HEX       virtio features the driver may ack (e.g. 0x100000003 drops EVENT_IDX\n"
"                           and INDIRECT_DESC)\n"
"  --proto-mask HEX         protocol features to ack (default: the family's, as offered; qemu: MQ,\n"
"                           REPLY_ACK, BACKEND_REQ, CONFIG, RESET_DEVICE, CONFIGURE_MEM_SLOTS, STATUS)\n"
"  --no-multiport           do not ack VIRTIO_CONSOLE_F_MULTIPORT: port 0 is the one console on queues\n"
"                           0/1, no control queues (only --port 0); a CONFIG_CHANGE_MSG on the\n"
"                           backend request channel prints EVENT config_change cols= rows=\n"
"  --emerg-write            ack VIRTIO_CONSOLE_F_EMERG_WRITE (bit 2; Linux never does): allows 'emerg'\n"
"  --early-fill             fill the control receiveq before the rings start and do not kick\n"
"                           (the backend must rescan avail at start)\n"
"  --no-verify              checksum host->guest data without comparing it to the pattern\n"
"  --connect-timeout S      (default 20)  --stall-timeout S (default 30; 0 = never)\n"
"  --reply-timeout S        (default 10)\n"
"\n"
"Output on stdout, one line per fact:\n"
"  CONNECTED run=R socket=P | CONFIG cols= rows= max_nr_ports= num_queues= queue_num=\n"
"  FEATURES offered=0x.. acked=0x.. protocol_offered=0x.. protocol_acked=0x..\n"
"  EVENT port_add port=N | EVENT console_port port=N | NAME port=N NAME\n"
"  EVENT port_open port=N value=V        (PORT_OPEN from the device: host side)\n"
"  EVENT guest_open port=N value=V       (PORT_OPEN sent by the guest)\n"
"  EVENT port_remove port=N | EVENT resize port=N first= second= | EVENT vring_err queue=Q\n"
"  EVENT config_change cols= rows= | EMERG port=N bytes=B | REBOOT run=R | REBOOTED run=R reset=REQ\n"
"  LOOPBACK_FD ack=A closed=0|1 | REGION index= gpa= size= mmap_offset= |\n"
"  CROSS run=R port=N rx_buffers= tx_buffers= (used buffers that spanned two regions)\n"
"  READY (every listed port added) | IDLE | GARBAGE kind=K ack=A | BADDESC port=N ...\n"
"  RESULT run=R port=N name=NAME tx_bytes= tx_sum=HEX rx_bytes= rx_sum=HEX rx_discarded= bad_desc=\n"
"  THROUGHPUT run=R port=N tx_mbps= rx_mbps= | DISCONNECT run=R | RUN R done | DONE\n"
"Byte counts and sums are cumulative over runs; THROUGHPUT is per run (10^6 bytes/s).\n"
"\n"
"Pattern: xorshift64 (x^=x<<13; x^=x>>7; x^=x<<17), each state emitted as 8 little-endian\n"
"bytes; seed = base^1 for guest->host, base^2 for host->guest (0 becomes 1); default base for\n"
"port N = 0x9E3779B97F4A7C15 ^ (N << 32). Streams continue across runs. Checksum: FNV-1a 64.\n"
"\n"
"Benchmark mode (no checks of timing; figures only):\n"
"  --bench LIST             gh (guest->host, 32 KiB tx buffers), hg (host->guest, PAGE_SIZE rx\n"
"                           buffers), echo (round trips of --bench-msg bytes), sizes (guest->host\n"
"                           per tx buffer size), multi (aggregate over several ports), or all;\n"
"                           each beside its raw baseline (bare AF_UNIX socketpair between two\n"
"                           processes; bare eventfd + socket hops for echo). Without --socket only\n"
"                           the baselines run.\n"
"  --host EP                the backend's host endpoint of a port: unix:PATH (%%u = port number)\n"
"                           or tcp:IP:PORT (port + N - --bench-port for port N)\n"
"  --bench-port N           port of single-port measurements (default 1; 0 for a console-only peer)\n"
"  --bench-runs N (5)  --bench-bytes B (256M)  --bench-echo N (20000)  --bench-msg B (64)\n"
"  --bench-sizes LIST (256,1024,4096,16384,32768)  --bench-ports LIST (1,8,64,511)\n"
"  --bench-multi-bytes B    total per multi-port run (256M)  --bench-multi-depth N (4)\n"
"  --backend-pid PID        read the backend's user+sys CPU time from /proc/PID/stat\n"
"  Output: BENCH kind= target=bridge|baseline param= run= mbps= cpu_s_per_gb= (or p50_us= ...),\n"
"  SUMMARY kind= target= param= unit= median= min= max= runs=, LATPCT target= p= us=,\n"
"  SKIP kind= param= reason=..., DONE\n"
"\n"
"Exit: 0 ok, 1 protocol violation or corrupt data by the backend, 2 usage (or the backend lacks\n"
"what the options need, e.g. --packed), 3 connection failed or closed, 4 stalled (state dumped\n"
"on stderr).\n");
}

static void parse_port(const char *arg)
{
    char buf[256];
    if (strlen(arg) >= sizeof buf)
        die_code(EXIT_USAGE, "--port argument too long");
    strcpy(buf, arg);
    char *save, *t = strtok_r(buf, ":", &save);
    unsigned id;
    cmd_port(t, &id);
    struct port_spec *s = &opt.spec[id];
    s->listed = true;
    while ((t = strtok_r(NULL, ":", &save))) {
        if (!strncmp(t, "tx=", 3))
            s->tx = parse_size(t + 3, "tx bytes");
        else if (!strncmp(t, "rx=", 3))
            s->rx = parse_size(t + 3, "rx bytes");
        else if (!strcmp(t, "open"))
            s->open = true;
        else if (!strncmp(t, "seed=", 5)) {
            s->seeded = true;
            s->seed = strtoull(t + 5, NULL, 0);
        } else if (!strncmp(t, "bad=", 4)) {
            for (int i = 1; i <= BAD_INDIRECT; i++)
                if (!strcmp(t + 4, bad_names[i]))
                    s->bad = (enum bad_kind)i;
            if (s->bad == BAD_NONE)
                die_code(EXIT_USAGE, "bad descriptor kind '%s'", t + 4);
        } else
            die_code(EXIT_USAGE, "unknown --port field '%s'", t);
    }
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        while (a[0] == '-' && a[1] == '-' && a[2] == '-')
            a++;
        if (a[0] == '-' && a[1] != '-')
            ; /* single-dash long options are accepted as well */
        else
            a++;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) die_code(EXIT_USAGE, "%s needs a value", argv[i]); i++; } while (0)
        if (!strcmp(a, "-help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-socket")) { NEEDV(); opt.socket = v; }
        else if (!strcmp(a, "-port")) { NEEDV(); parse_port(v); }
        else if (!strcmp(a, "-close")) opt.close_at_end = true;
        else if (!strcmp(a, "-runs")) { NEEDV(); opt.runs = (unsigned)parse_size(v, "run count"); }
        else if (!strcmp(a, "-disconnect-after")) { NEEDV(); opt.disconnect_after = parse_size(v, "byte count"); }
        else if (!strcmp(a, "-garbage")) {
            NEEDV();
            if (opt.ngarbage == 8)
                die_code(EXIT_USAGE, "at most 8 --garbage");
            opt.garbage[opt.ngarbage++] = v;
        }
        else if (!strcmp(a, "-stdin")) opt.use_stdin = true;
        else if (!strcmp(a, "-queue-size")) { NEEDV(); opt.queue_size = (unsigned)parse_size(v, "queue size"); }
        else if (!strcmp(a, "-num-queues")) { NEEDV(); opt.num_queues = (unsigned)parse_size(v, "queue count"); }
        else if (!strcmp(a, "-tx-chunk")) { NEEDV(); opt.tx_chunk = (unsigned)parse_size(v, "chunk"); }
        else if (!strcmp(a, "-tx-depth")) { NEEDV(); opt.tx_depth = (unsigned)parse_size(v, "depth"); }
        else if (!strcmp(a, "-tx-segs")) { NEEDV(); opt.tx_segs = (unsigned)parse_size(v, "segments"); }
        else if (!strcmp(a, "-indirect")) opt.indirect = true;
        else if (!strcmp(a, "-packed")) opt.packed = true;
        else if (!strcmp(a, "-wide-index")) opt.wide_index = true;
        else if (!strcmp(a, "-inflight")) opt.inflight = true;
        else if (!strcmp(a, "-reconnect")) opt.reconnect = true;
        else if (!strcmp(a, "-feature-mask")) { NEEDV(); opt.feature_mask = strtoull(v, NULL, 0); }
        else if (!strcmp(a, "-proto-mask")) { NEEDV(); opt.proto_mask = strtoull(v, NULL, 0); }
        else if (!strcmp(a, "-early-fill")) opt.early_fill = true;
        else if (!strcmp(a, "-family")) {
            NEEDV();
            unsigned f = 0;
            while (f < 3 && strcmp(v, family_names[f]))
                f++;
            if (f == 3)
                die_code(EXIT_USAGE, "--family must be qemu, chv or loopback, got '%s'", v);
            opt.family = (enum family)f;
        }
        else if (!strcmp(a, "-no-multiport")) opt.no_multiport = true;
        else if (!strcmp(a, "-emerg-write")) opt.emerg_write = true;
        else if (!strcmp(a, "-no-verify")) opt.verify = false;
        else if (!strcmp(a, "-connect-timeout")) { NEEDV(); opt.connect_timeout = atof(v); }
        else if (!strcmp(a, "-stall-timeout")) { NEEDV(); opt.stall_timeout = atof(v); }
        else if (!strcmp(a, "-reply-timeout")) { NEEDV(); opt.reply_timeout = atof(v); }
        else if (!strcmp(a, "-bench")) { NEEDV(); opt.bench = true; bopt.kinds = v; }
        else if (!strcmp(a, "-host")) { NEEDV(); bopt.host = v; }
        else if (!strcmp(a, "-bench-runs")) { NEEDV(); bopt.runs = (unsigned)parse_size(v, "run count"); }
        else if (!strcmp(a, "-bench-bytes")) { NEEDV(); bopt.bytes = parse_size(v, "byte count"); }
        else if (!strcmp(a, "-bench-multi-bytes")) { NEEDV(); bopt.multi_bytes = parse_size(v, "byte count"); }
        else if (!strcmp(a, "-bench-echo")) { NEEDV(); bopt.echo_n = (unsigned)parse_size(v, "round trips"); }
        else if (!strcmp(a, "-bench-msg")) { NEEDV(); bopt.msg = (unsigned)parse_size(v, "message size"); }
        else if (!strcmp(a, "-bench-port")) { NEEDV(); cmd_port(v, &bopt.port); }
        else if (!strcmp(a, "-bench-multi-depth")) { NEEDV(); bopt.multi_depth = (unsigned)parse_size(v, "depth"); }
        else if (!strcmp(a, "-bench-sizes")) { NEEDV(); bopt.sizes = v; }
        else if (!strcmp(a, "-bench-ports")) { NEEDV(); bopt.ports = v; }
        else if (!strcmp(a, "-backend-pid")) { NEEDV(); bopt.backend_pid = atol(v); }
        else {
            fprintf(stderr, "vsb-frontend: unknown option '%s' (see --help)\n", argv[i]);
            return EXIT_USAGE;
        }
#undef NEEDV
    }
    if (!opt.socket && !opt.bench)
        die_code(EXIT_USAGE, "--socket PATH is required (see --help)");
    if (opt.queue_size < 2 || opt.queue_size > 32768 || (opt.queue_size & (opt.queue_size - 1)))
        die_code(EXIT_USAGE, "--queue-size must be a power of two in 2..32768");
    if (opt.tx_chunk == 0 || opt.tx_chunk > TX_CHUNK_MAX)
        die_code(EXIT_USAGE, "--tx-chunk must be 1..%u", TX_CHUNK_MAX);
    if (opt.tx_segs == 0 || opt.tx_segs > MAX_SEGS || opt.tx_segs > opt.queue_size)
        die_code(EXIT_USAGE, "--tx-segs must be 1..%u and at most the queue size", MAX_SEGS);
    if (opt.tx_depth > opt.queue_size)
        die_code(EXIT_USAGE, "--tx-depth must not exceed the queue size");
    if (opt.runs == 0)
        die_code(EXIT_USAGE, "--runs must be at least 1");
    if (opt.packed && !(opt.feature_mask & (1ull << F_RING_PACKED)))
        die_code(EXIT_USAGE, "--packed needs VIRTIO_F_RING_PACKED (bit 34), which --feature-mask 0x%" PRIx64 " drops",
                 opt.feature_mask);
    for (unsigned id = 0; opt.packed && id < MAX_PORTS_ALLOC; id++)
        if (opt.spec[id].bad == BAD_NEXT || opt.spec[id].bad == BAD_LOOP)
            die_code(EXIT_USAGE, "--port %u:bad=%s needs a split ring (a packed descriptor has no next field)", id,
                     bad_names[opt.spec[id].bad]);
    if (opt.use_stdin) {
        int fl = fcntl(0, F_GETFL);
        if (fl >= 0)
            fcntl(0, F_SETFL, fl | O_NONBLOCK);
        g.stdin_open = true;
    }
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++) {
        struct port_spec *s = &opt.spec[id];
        uint64_t base = s->seeded ? s->seed : 0x9E3779B97F4A7C15ull ^ ((uint64_t)id << 32);
        stream_init(&g.port[id].tx_stream, base ^ 1);
        stream_init(&g.port[id].rx_stream, base ^ 2);
        g.port[id].tx_sum = g.port[id].rx_sum = FNV_OFFSET;
    }
    g.sock = -1;
    g.inflight_fd = -1;
    g.backend_fd = -1;
    if (opt.inflight && opt.packed)
        die_code(EXIT_USAGE, "--inflight with --packed: the packed ring's inflight layout is not implemented");
    if (opt.family != FAM_QEMU && opt.bench)
        die_code(EXIT_USAGE, "--bench plays QEMU only (--family qemu)");
    if (opt.no_multiport && opt.early_fill)
        die_code(EXIT_USAGE, "--early-fill fills the control receiveq, which --no-multiport does not have");
    for (unsigned id = 1; opt.no_multiport && id < MAX_PORTS_ALLOC; id++)
        if (opt.spec[id].listed)
            die_code(EXIT_USAGE, "--port %u with --no-multiport: without MULTIPORT there is only port 0", id);
    if (opt.inflight && opt.bench)
        die_code(EXIT_USAGE, "--inflight is a scenario option, not for --bench");
    if (opt.bench)
        return bench_main();
    for (unsigned r = 1; r <= opt.runs; r++) {
        one_run(r);
        if (opt.use_stdin && !g.stdin_open)
            break;
    }
    out("DONE");
    return 0;
}
