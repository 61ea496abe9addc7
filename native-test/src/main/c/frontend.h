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
 * The units, bottom up:
 *   common.c       error and output lines, the clock, the data pattern and checksum
 *   vhost_user.c   the vhost-user client: messages, replies, acks, fd passing
 *   guest_mem.c    guest memory: the memfd, its regions, guest-physical addresses
 *   virtqueue.c    what split and packed rings share; vq_split.c, vq_packed.c what differs
 *   device.c       the device's life as the frontend family runs it: negotiation, memory table, ring start and
 *                  stop, reset, config space, the backend request channel
 *   reconnect.c    --reconnect: a new backend for the same guest
 *   console.c      the virtio_console driver: control queue, ports, transmit and receive
 *   scenario.c     the scenario runs: poll loop, stdin commands, results
 *   bench.c        --bench: the measurements through the backend; bench_host.c the host peer and baselines
 *   main.c         the command line
 * This header holds what the upper units (device and above) share: the options (the command line, set by main.c;
 * the benchmark adjusts tx_chunk and depth_cap between its measurements) and struct frontend, the state of the
 * guest and its connection, which main() owns and every function gets as fe. The units below device.c know nothing
 * of either: they take their context (struct vu_client, struct guest_mem, struct vq) as parameters.
 *
 * Run with --help for the command line and the output format.
 */
#ifndef VSB_FRONTEND_H
#define VSB_FRONTEND_H

#include "common.h"
#include "guest_mem.h"
#include "vhost_user.h"
#include "virtqueue.h"

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

/* ---- virtio-console control protocol (virtio spec §5.3.6.2) ---- */
enum {
    C_DEVICE_READY = 0, C_PORT_ADD = 1, C_PORT_REMOVE = 2, C_PORT_READY = 3,
    C_CONSOLE_PORT = 4, C_RESIZE = 5, C_PORT_OPEN = 6, C_PORT_NAME = 7,
};
#define CONTROL_MSG_SIZE 8u
#define TX_CHUNK_MAX     32768u /* Linux: one write() posts at most 32 KiB */
#define MAX_PORTS_ALLOC  512u   /* ports beyond this get PORT_READY(id, 0), as an allocation failure */
#define MAX_QUEUES       (2u * (MAX_PORTS_ALLOC + 1u))
#define MAX_SEGS         16u
#define CTL_RX 2
#define CTL_TX 3
#define CTL_TX_SLOT 64u

/* ---- options ---- */
enum bad_kind { BAD_NONE, BAD_ADDR, BAD_LEN, BAD_WRAP, BAD_NEXT, BAD_LOOP, BAD_INDIRECT };
extern const char *const bad_names[7];

struct port_spec {
    bool listed;
    uint64_t tx, rx;      /* bytes per run */
    bool open;            /* the scenario opens this generic port */
    bool seeded;
    uint64_t seed;
    enum bad_kind bad;
};

struct options {
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
};
extern struct options opt;

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

/* ---- the frontend: the guest and its connection to the backend ---- */
struct frontend {
    struct vu_client vu;
    struct guest_mem mem;
    unsigned run;
    uint64_t features_offered, features_acked, proto_offered, proto_acked;
    uint64_t queue_num, max_mem_slots;
    bool event_idx, status;   /* reply_ack is vu.reply_ack */
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
    unsigned reconnects;
    int backend_fd;           /* our end of the BACKEND_REQ channel (SET_BACKEND_REQ_FD); -1 = none */
    bool multiport;           /* the driver acked VIRTIO_CONSOLE_F_MULTIPORT */
    bool have_config;         /* config read at realize (--family loopback) */
    uint16_t cfg_cols, cfg_rows;
    uint32_t cfg_max_nr_ports;
    unsigned boots;           /* driver starts in this run: 1, then one more per reboot */
};

static inline unsigned rx_queue_of(unsigned port) { return port == 0 ? 0 : 2 * port + 2; }
static inline unsigned tx_queue_of(unsigned port) { return port == 0 ? 1 : 2 * port + 3; }

/* ---- device.c ----
 * The functions that return int are those a reconnect attempt runs: 0, or -1 after an I/O failure while fe->vu has
 * soft_fail set (see vhost_user.h); without soft_fail an I/O failure ends the program and they return 0. */
#define TRY(call) do { if ((call) < 0) return -1; } while (0)
enum start_kind { START_FRESH, START_RECONNECT, START_REBOOT };
int negotiate_connect(struct frontend *fe);
int add_status(struct frontend *fe, uint64_t bits);
int setup_inflight(struct frontend *fe);
int start_rings(struct frontend *fe, enum start_kind kind);
void start_device(struct frontend *fe, bool reboot);
void stop_rings(struct frontend *fe);
void stop_device(struct frontend *fe);
const char *reset_device(struct frontend *fe);
void backend_event(struct frontend *fe);

/* ---- reconnect.c ---- */
/* Something is on the vhost-user socket: the backend went away (reconnected to with --reconnect) or sent what it
 * must not. */
void socket_event(struct frontend *fe);

/* ---- console.c ---- */
void init_guest_queues(struct frontend *fe);
void ctl_post_rx(struct frontend *fe, uint32_t buf);
void ctl_flush_pending(struct frontend *fe);
void ctl_send(struct frontend *fe, uint32_t id, uint16_t event, uint16_t value);
void port_fill_rx(struct frontend *fe, struct port *p, unsigned id);
void set_guest_open(struct frontend *fe, unsigned id, bool open);
bool port_writable(const struct port *p);
void fill_tx(struct frontend *fe, unsigned id);
/* vq_drain with the console driver's used handler; counts as progress when anything was used. */
unsigned guest_drain(struct frontend *fe, struct vq *q);
void driver_ready(struct frontend *fe);
void emerg_write(struct frontend *fe, unsigned id, uint64_t n);

/* ---- scenario.c ---- */
void cmd_port(const char *arg, unsigned *id);
/* The state at a failure, on stderr (the die_code hook; ctx is the frontend). */
void diag_dump(void *ctx);
void one_run(struct frontend *fe, unsigned run);

/* ---- bench.c ---- */
struct bench_options {
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
};
extern struct bench_options bopt;
int bench_main(struct frontend *fe);

#endif
