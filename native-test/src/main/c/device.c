/* vsb-frontend: the device as the frontend family runs it: negotiation, memory, ring start and stop, reset,
 * config space, the backend request channel. */
#include "frontend.h"

#include <sys/eventfd.h>
#include <sys/socket.h>

static int new_eventfd(struct frontend *fe, int *fd)
{
    *fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return *fd < 0 ? vu_io_fail(&fe->vu, "eventfd: %s", strerror(errno)) : 0;
}

static int create_queue_fds(struct frontend *fe)
{
    for (unsigned i = 0; i < fe->num_vqs; i++) {
        struct vq *q = &fe->vq[i];
        q->index = i;
        if (!q->kick_fd) { /* a reconnect keeps the guest's eventfds, as QEMU does */
            TRY(new_eventfd(fe, &q->masked_fd));
            TRY(new_eventfd(fe, &q->err_fd));
            TRY(new_eventfd(fe, &q->call_fd));
            TRY(new_eventfd(fe, &q->kick_fd));
        }
    }
    return 0;
}

/* BACKEND_REQ: a socketpair, one end to the backend with SET_BACKEND_REQ_FD, the other watched by the poll loop
 * for CONFIG_CHANGE_MSG (QEMU does this at realize, before SET_OWNER). */
static int setup_backend_channel(struct frontend *fe)
{
    if (!(fe->proto_acked & (1ull << PF_BACKEND_REQ)))
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return vu_io_fail(&fe->vu, "socketpair: %s", strerror(errno));
    if (fe->backend_fd >= 0)
        close(fe->backend_fd);
    fe->backend_fd = sv[0];
    int r = vu_acked(&fe->vu, VU_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1);
    close(sv[1]);
    return r;
}

/* The guest reads the whole config space (GET_CONFIG offset 0, size 12): cols, rows, max_nr_ports. */
static int read_config(struct frontend *fe)
{
    uint8_t cfg[12 + 12];
    memset(cfg, 0, sizeof cfg);
    uint32_t off = 0, size = 12, flags = 0;
    memcpy(cfg, &off, 4);
    memcpy(cfg + 4, &size, 4);
    memcpy(cfg + 8, &flags, 4);
    TRY(vu_send(&fe->vu, VU_GET_CONFIG, VU_FLAG_VERSION, cfg, sizeof cfg, NULL, 0));
    TRY(vu_reply(&fe->vu, VU_GET_CONFIG, cfg, sizeof cfg));
    memcpy(&off, cfg, 4);
    memcpy(&size, cfg + 4, 4);
    if (off != 0 || size != 12)
        die("GET_CONFIG reply carries offset %u size %u, asked for 0 and 12", off, size);
    memcpy(&fe->cfg_cols, cfg + 12, 2);
    memcpy(&fe->cfg_rows, cfg + 14, 2);
    memcpy(&fe->cfg_max_nr_ports, cfg + 16, 4);
    return 0;
}

/*
 * The old virtio-loopback adapter's private SHARE_LOOPBACK_FD (request 39, u64 pid << 32 | fd, one fd), sent when
 * STATUS is not negotiated. The fd is one end of a socketpair: once the backend closed its copy (it has no use for
 * it) the other end reads end of file. Prints LOOPBACK_FD ack=A closed=0|1.
 */
static int share_loopback_fd(struct frontend *fe)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return vu_io_fail(&fe->vu, "socketpair: %s", strerror(errno));
    uint64_t v = (uint64_t)getpid() << 32 | (uint32_t)sv[0];
    char ack[24] = "none";
    int r;
    if (fe->vu.reply_ack) {
        uint64_t a = 0;
        r = vu_send(&fe->vu, VU_SHARE_LOOPBACK_FD, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY, &v, sizeof v, &sv[0], 1);
        if (r == 0)
            r = vu_reply(&fe->vu, VU_SHARE_LOOPBACK_FD, &a, sizeof a);
        snprintf(ack, sizeof ack, "%" PRIu64, a);
    } else {
        uint64_t f;
        r = vu_send(&fe->vu, VU_SHARE_LOOPBACK_FD, VU_FLAG_VERSION, &v, sizeof v, &sv[0], 1);
        if (r == 0)
            r = vu_get_u64(&fe->vu, VU_GET_FEATURES, &f); /* the barrier QEMU's code uses without acks */
    }
    if (r < 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
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
    return 0;
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
int negotiate_connect(struct frontend *fe)
{
    TRY(vu_get_u64(&fe->vu, VU_GET_FEATURES, &fe->features_offered));
    if (fe->features_offered & (1ull << F_PROTOCOL_FEATURES)) {
        uint64_t known = opt.family == FAM_CHV ? PF_CHV : opt.family == FAM_LOOPBACK ? PF_LOOPBACK : PF_QEMU;
        TRY(vu_get_u64(&fe->vu, VU_GET_PROTOCOL_FEATURES, &fe->proto_offered));
        fe->proto_acked = fe->proto_offered & (known | (opt.inflight ? 1ull << PF_INFLIGHT_SHMFD : 0)) & opt.proto_mask;
        TRY(vu_plain(&fe->vu, VU_SET_PROTOCOL_FEATURES, &fe->proto_acked, sizeof fe->proto_acked));
    }
    fe->vu.reply_ack = fe->proto_acked & (1ull << PF_REPLY_ACK);
    fe->status = fe->proto_acked & (1ull << PF_STATUS);
    if (opt.inflight && !(fe->proto_acked & (1ull << PF_INFLIGHT_SHMFD)))
        die_code(EXIT_USAGE, "--inflight: the backend does not offer VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD (bit 12; "
                 "protocol features offered 0x%" PRIx64 ")", fe->proto_offered);
    if (!(fe->proto_acked & (1ull << PF_CONFIG)))
        die("the backend does not offer VHOST_USER_PROTOCOL_F_CONFIG (protocol features 0x%" PRIx64
            "); QEMU's vhost-user-test-device-pci with config_size=12 refuses it", fe->proto_offered);
    if (opt.family == FAM_CHV)
        TRY(vu_plain(&fe->vu, VU_SET_OWNER, NULL, 0));
    if (fe->proto_acked & (1ull << PF_MQ)) {
        TRY(vu_get_u64(&fe->vu, VU_GET_QUEUE_NUM, &fe->queue_num));
        if (fe->queue_num == 0 || fe->queue_num > 1024)
            die("GET_QUEUE_NUM answered %" PRIu64 " queues", fe->queue_num);
    }
    if (opt.family != FAM_CHV && (fe->proto_acked & (1ull << PF_CONFIGURE_MEM_SLOTS))) {
        TRY(vu_get_u64(&fe->vu, VU_GET_MAX_MEM_SLOTS, &fe->max_mem_slots));
        if (fe->max_mem_slots == 0)
            die("GET_MAX_MEM_SLOTS answered 0 slots");
    }
    fe->num_vqs = opt.num_queues ? opt.num_queues : (unsigned)fe->queue_num;
    if (fe->num_vqs == 0)
        die_code(EXIT_USAGE, "the backend does not do MQ: give --num-queues");
    if (fe->num_vqs > MAX_QUEUES)
        fe->num_vqs = MAX_QUEUES;
    TRY(create_queue_fds(fe));
    if (opt.family == FAM_CHV) {
        TRY(setup_backend_channel(fe));
        return 0;
    }
    if (opt.family == FAM_QEMU)
        TRY(setup_backend_channel(fe));
    TRY(vu_plain(&fe->vu, VU_SET_OWNER, NULL, 0));
    uint64_t again;
    TRY(vu_get_u64(&fe->vu, VU_GET_FEATURES, &again));
    if (again != fe->features_offered)
        die("GET_FEATURES changed from 0x%" PRIx64 " to 0x%" PRIx64, fe->features_offered, again);
    for (unsigned i = 0; i < fe->num_vqs; i++) {
        TRY(vu_fd(&fe->vu, VU_SET_VRING_CALL, i, fe->vq[i].masked_fd));
        if (opt.family == FAM_QEMU)
            TRY(vu_fd(&fe->vu, VU_SET_VRING_ERR, i, fe->vq[i].err_fd));
    }
    if (opt.family == FAM_LOOPBACK) {
        /* The adapter requires F_CONFIG: it reads the whole config space at realize, before any feature. */
        TRY(read_config(fe));
        fe->have_config = true;
        if (!fe->status)
            TRY(share_loopback_fd(fe));
    }
    return 0;
}

int add_status(struct frontend *fe, uint64_t bits)
{
    uint64_t s;
    TRY(vu_get_u64(&fe->vu, VU_GET_STATUS, &s));
    if ((s & bits) != bits) {
        s |= bits;
        TRY(vu_plain(&fe->vu, VU_SET_STATUS, &s, sizeof s));
    }
    return 0;
}

/* Where the guest's rings and buffers are. QEMU and cloud-hypervisor: one region, everything packed from
 * guest-physical 0. Loopback: rings and control buffers at the start of region 0; each port's rx buffers and its
 * tx buffers begin LOOPBACK_STRADDLE before a region boundary of their own (round robin when there are more areas
 * than boundaries), so the backend finds buffers that cross regions and their unaligned starts. */
static void layout_memory(struct frontend *fe)
{
    fe->mem.brk = 0;
    fe->mem.nregions = 1;
    fe->mem.uva_is_gpa = opt.family == FAM_LOOPBACK;
    for (unsigned i = 0; i < fe->needed_vqs; i++)
        vq_layout(&fe->vq[i], &fe->mem, i, (uint16_t)opt.queue_size, opt.packed);
    fe->ctl_rx_gpa = mem_alloc(&fe->mem, (uint64_t)opt.queue_size * PAGE_SIZE_GUEST, 4096);
    fe->ctl_tx_gpa = mem_alloc(&fe->mem, (uint64_t)opt.queue_size * CTL_TX_SLOT, 4096);
    unsigned ports = fe->max_nr_ports < MAX_PORTS_ALLOC ? fe->max_nr_ports : MAX_PORTS_ALLOC;
    uint64_t cursor[LOOPBACK_MAX_REGIONS];
    if (opt.family == FAM_LOOPBACK) {
        /* nregions regions of about 1 GiB over one memfd of nregions GiB, never touched beyond the pages the
         * guest uses (ftruncate only: the file stays sparse) */
        mem_layout_loopback(&fe->mem, ports, fe->proto_acked & (1ull << PF_CONFIGURE_MEM_SLOTS), fe->max_mem_slots);
        if (fe->mem.brk > fe->mem.start[1] - 2 * LOOPBACK_STRADDLE)
            die_code(EXIT_USAGE, "--family loopback: the rings need %" PRIu64 " bytes, more than region 0 holds",
                     fe->mem.brk);
        for (unsigned b = 1; b < fe->mem.nregions; b++)
            cursor[b] = (fe->mem.start[b] & ~4095ull) - LOOPBACK_STRADDLE;
    }
    for (unsigned id = 0; id < ports; id++) {
        struct port *p = &fe->port[id];
        uint64_t rx = (uint64_t)opt.queue_size * PAGE_SIZE_GUEST, tx = (uint64_t)fe->tx_depth * fe->slot_size;
        uint64_t itab = (uint64_t)fe->tx_depth * MAX_SEGS * 16;
        if (opt.family != FAM_LOOPBACK) {
            p->rx_gpa = mem_alloc(&fe->mem, rx, 4096);
            p->tx_gpa = mem_alloc(&fe->mem, tx, 4096);
            p->itab_gpa = mem_alloc(&fe->mem, itab, 4096);
            continue;
        }
        unsigned brx = 1 + (2 * id) % (fe->mem.nregions - 1), btx = 1 + (2 * id + 1) % (fe->mem.nregions - 1);
        p->rx_gpa = cursor[brx];
        cursor[brx] += (rx + 4095) & ~4095ull;
        p->tx_gpa = cursor[btx];
        cursor[btx] += (tx + 4095) & ~4095ull;
        p->itab_gpa = cursor[btx];
        cursor[btx] += (itab + 4095) & ~4095ull;
        if (cursor[brx] >= fe->mem.start[brx + 1] - 4096 || cursor[btx] >= fe->mem.start[btx + 1] - 4096)
            die_code(EXIT_USAGE, "--family loopback: %u ports do not fit %u regions", ports, fe->mem.nregions);
    }
    if (opt.family != FAM_LOOPBACK) {
        /* A page of slack at the end so "just past the end" addresses are unambiguous. */
        fe->mem.size = (mem_alloc(&fe->mem, 4096, 4096) + 4096 + 0xfffff) & ~0xfffffull;
        fe->mem.start[0] = 0;
        fe->mem.start[1] = fe->mem.size;
    }
    mem_map(&fe->mem);
    if (opt.family == FAM_LOOPBACK)
        for (unsigned i = 0; i < fe->mem.nregions; i++)
            out("REGION index=%u gpa=0x%" PRIx64 " size=0x%" PRIx64 " mmap_offset=0x%" PRIx64, i, fe->mem.start[i],
                fe->mem.start[i + 1] - fe->mem.start[i], fe->mem.start[i]);
}

/* QEMU and cloud-hypervisor: one region at guest-physical 0, userspace_addr our own mapping. Loopback: every
 * region a window of the same memfd at mmap_offset == guest_phys_addr == userspace_addr, each by ADD_MEM_REG when
 * CONFIGURE_MEM_SLOTS is negotiated (cloud-hypervisor never uses it at start), else all in one SET_MEM_TABLE. */
static int send_mem_table(struct frontend *fe)
{
    if (opt.family != FAM_CHV && (fe->proto_acked & (1ull << PF_CONFIGURE_MEM_SLOTS))) {
        for (unsigned i = 0; i < fe->mem.nregions; i++) {
            uint64_t gpa = fe->mem.start[i], size = fe->mem.start[i + 1] - gpa;
            uint64_t r[5] = { 0, gpa, size, gpa_uva(&fe->mem, gpa), gpa };
            TRY(vu_acked(&fe->vu, VU_ADD_MEM_REG, r, sizeof r, &fe->mem.fd, 1));
        }
        return 0;
    }
    uint8_t t[8 + 32 * 8];
    uint32_t n = fe->mem.nregions, pad = 0;
    int fds[8];
    memcpy(t, &n, 4);
    memcpy(t + 4, &pad, 4);
    for (unsigned i = 0; i < n; i++) {
        uint64_t gpa = fe->mem.start[i];
        uint64_t reg[4] = { gpa, fe->mem.start[i + 1] - gpa, gpa_uva(&fe->mem, gpa), gpa };
        memcpy(t + 8 + 32 * i, reg, sizeof reg);
        fds[i] = fe->mem.fd;
    }
    TRY(vu_acked(&fe->vu, VU_SET_MEM_TABLE, t, 8 + 32 * n, fds, n));
    return 0;
}

/*
 * INFLIGHT_SHMFD, as QEMU's vhost-user-blk does it: the backend's buffer is fetched once (GET_INFLIGHT_FD) and
 * handed back at every start (SET_INFLIGHT_FD), also to a backend process that replaced a dead one; the frontend
 * never looks inside. Payload {u64 mmap_size, mmap_offset; u16 num_queues, queue_size} (24 bytes as QEMU lays
 * it out).
 */
int setup_inflight(struct frontend *fe)
{
    struct { uint64_t mmap_size, mmap_offset; uint16_t num_queues, queue_size; uint32_t pad; } in = {
        0, 0, (uint16_t)fe->num_vqs, (uint16_t)opt.queue_size, 0 };
    if (fe->inflight_fd < 0) {
        int fd = -1;
        TRY(vu_send(&fe->vu, VU_GET_INFLIGHT_FD, VU_FLAG_VERSION, &in, sizeof in, NULL, 0));
        fe->vu.accept_fd = &fd;
        int r = vu_reply(&fe->vu, VU_GET_INFLIGHT_FD, &in, sizeof in);
        fe->vu.accept_fd = NULL;
        if (r < 0) {
            if (fd >= 0)
                close(fd);
            return -1;
        }
        if (fd < 0)
            die("the reply to GET_INFLIGHT_FD carries no file descriptor");
        if (in.mmap_size == 0)
            die("GET_INFLIGHT_FD answered mmap_size 0");
        fe->inflight_fd = fd;
        fe->inflight_size = in.mmap_size;
        fe->inflight_offset = in.mmap_offset;
        out("INFLIGHT size=%" PRIu64 " offset=%" PRIu64, fe->inflight_size, fe->inflight_offset);
    }
    in.mmap_size = fe->inflight_size;
    in.mmap_offset = fe->inflight_offset;
    in.num_queues = (uint16_t)fe->num_vqs;
    in.queue_size = (uint16_t)opt.queue_size;
    TRY(vu_acked(&fe->vu, VU_SET_INFLIGHT_FD, &in, sizeof in, &fe->inflight_fd, 1));
    return 0;
}

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
int start_rings(struct frontend *fe, enum start_kind kind)
{
    bool slots = fe->proto_acked & (1ull << PF_CONFIGURE_MEM_SLOTS);
    if (kind != START_REBOOT || opt.family == FAM_CHV || !slots)
        TRY(send_mem_table(fe));
    for (unsigned i = 0; i < fe->needed_vqs; i++) {
        struct vq *q = &fe->vq[i];
        uint32_t base = kind == START_RECONNECT ? ld16_acq(q->used_idx_p) : opt.packed ? PACKED_FRESH_BASE : 0;
        struct { uint32_t index, flags; uint64_t desc, used, avail, log; } a = {
            i, 0, gpa_uva(&fe->mem, q->desc_gpa), gpa_uva(&fe->mem, q->used_gpa), gpa_uva(&fe->mem, q->avail_gpa), 0 };
        TRY(vu_state(&fe->vu, VU_SET_VRING_NUM, i, q->num));
        if (opt.family == FAM_CHV) {
            TRY(vu_plain(&fe->vu, VU_SET_VRING_ADDR, &a, sizeof a));
            TRY(vu_state(&fe->vu, VU_SET_VRING_BASE, i, base));
            TRY(vu_fd(&fe->vu, VU_SET_VRING_CALL, i, q->call_fd));
            TRY(vu_fd(&fe->vu, VU_SET_VRING_KICK, i, q->kick_fd));
            TRY(vu_state(&fe->vu, VU_SET_VRING_ENABLE, i, 1));
            continue;
        }
        TRY(vu_state(&fe->vu, VU_SET_VRING_BASE, i, base));
        TRY(vu_plain(&fe->vu, VU_SET_VRING_ADDR, &a, sizeof a));
        TRY(vu_fd(&fe->vu, VU_SET_VRING_KICK, i, q->kick_fd));
        TRY(vu_fd(&fe->vu, VU_SET_VRING_CALL, i, kind == START_RECONNECT ? q->call_fd : q->masked_fd));
    }
    if (opt.family != FAM_CHV)
        for (unsigned i = 0; i < fe->num_vqs; i++)
            TRY(vu_state(&fe->vu, VU_SET_VRING_ENABLE, i, 1));
    if (fe->status)
        TRY(add_status(fe, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK));
    return 0;
}

/* The guest probes (GET_CONFIG; the loopback adapter read it at realize already), acks features and sets
 * DRIVER_OK; the frontend then starts the rings. A reboot probes the same way, on the memory laid out before. */
void start_device(struct frontend *fe, bool reboot)
{
    if (opt.family != FAM_LOOPBACK || !fe->have_config)
        read_config(fe);
    fe->have_config = false;
    if (!(fe->features_offered & (1ull << F_CONSOLE_MULTIPORT)))
        die("the backend does not offer VIRTIO_CONSOLE_F_MULTIPORT (features 0x%" PRIx64 "); this frontend "
            "drives multiport consoles only", fe->features_offered);
    if (!(fe->features_offered & (1ull << F_VERSION_1)))
        die("the backend does not offer VIRTIO_F_VERSION_1; vhost-user-test-device-pci is modern-only");

    if (opt.packed && !(fe->features_offered & (1ull << F_RING_PACKED)))
        die_code(EXIT_USAGE, "--packed: the backend does not offer VIRTIO_F_RING_PACKED (bit 34; features offered "
                 "0x%" PRIx64 ")", fe->features_offered);
    uint64_t driver = F_DRIVER | (opt.packed ? 1ull << F_RING_PACKED : 0) |
                      (opt.emerg_write ? 1ull << F_CONSOLE_EMERG_WRITE : 0);
    if (opt.no_multiport)
        driver &= ~(1ull << F_CONSOLE_MULTIPORT);
    fe->features_acked = fe->features_offered & driver & opt.feature_mask;
    if (fe->features_offered & (1ull << F_PROTOCOL_FEATURES))
        fe->features_acked |= 1ull << F_PROTOCOL_FEATURES;
    fe->event_idx = fe->features_acked & (1ull << F_EVENT_IDX);
    fe->multiport = fe->features_acked & (1ull << F_CONSOLE_MULTIPORT);
    /* virtcons_probe: max_nr_ports only with MULTIPORT; without it one port, its two queues, no control. */
    unsigned max_nr_ports = fe->multiport ? fe->cfg_max_nr_ports : 1;
    if (fe->multiport && (max_nr_ports == 0 || max_nr_ports > 0x8000))
        die("config max_nr_ports is %u: Linux refuses the device (\"Invalidate max_nr_ports\")", max_nr_ports);
    if (reboot && max_nr_ports != fe->max_nr_ports)
        die("config max_nr_ports changed from %u to %u across a reboot", fe->max_nr_ports, max_nr_ports);
    fe->max_nr_ports = max_nr_ports;
    fe->needed_vqs = fe->multiport ? 2 * (fe->max_nr_ports + 1) : 2;
    if (fe->needed_vqs > 256 && opt.wide_index)
        ; /* queues from 256 on are named through the bridge's extension */
    else if (fe->needed_vqs > 256)
        warn("max_nr_ports %u needs %u queues, but SET_VRING_KICK/CALL/ERR carry the queue index in bits 0-7 "
             "(bit 8 is NOFD): queues from 256 on cannot be given their eventfds; QEMU masks the index the "
             "same way (--wide-index uses the bridge's extension)", fe->max_nr_ports, fe->needed_vqs);
    out("CONFIG cols=%u rows=%u max_nr_ports=%u num_queues=%u queue_num=%" PRIu64, fe->cfg_cols, fe->cfg_rows,
        fe->cfg_max_nr_ports, fe->num_vqs, fe->queue_num);
    if (fe->needed_vqs > fe->num_vqs)
        die("max_nr_ports %u needs %u queues but the device has %u (find_vqs would fail)", fe->max_nr_ports,
            fe->needed_vqs, fe->num_vqs);
    if (opt.packed && opt.indirect && !(fe->features_acked & (1ull << F_INDIRECT_DESC)))
        die_code(EXIT_USAGE, "--indirect with --packed: VIRTIO_RING_F_INDIRECT_DESC is not negotiated (offered 0x%"
                 PRIx64 ", --feature-mask 0x%" PRIx64 "); Linux would not use indirect tables", fe->features_offered,
                 opt.feature_mask);
    vu_plain(&fe->vu, VU_SET_FEATURES, &fe->features_acked, sizeof fe->features_acked);
    if (fe->status)
        add_status(fe, S_FEATURES_OK);
    out("FEATURES offered=0x%" PRIx64 " acked=0x%" PRIx64 " protocol_offered=0x%" PRIx64
        " protocol_acked=0x%" PRIx64 " family=%s", fe->features_offered, fe->features_acked, fe->proto_offered,
        fe->proto_acked, family_names[opt.family]);

    if (!reboot) {
        fe->tx_segs = opt.tx_segs;
        fe->tx_depth = opt.tx_depth ? opt.tx_depth : opt.queue_size;
        if (!opt.indirect && fe->tx_depth > opt.queue_size / fe->tx_segs)
            fe->tx_depth = opt.queue_size / fe->tx_segs;
        if (fe->tx_depth > opt.queue_size)
            fe->tx_depth = opt.queue_size;
        fe->slot_size = ((opt.tx_chunk + fe->tx_segs - 1) / fe->tx_segs) * fe->tx_segs;
        fe->slot_size = (fe->slot_size + 63) & ~63u;
        layout_memory(fe);
    }
    init_guest_queues(fe);
    if (opt.inflight)
        setup_inflight(fe);

    if (opt.early_fill && !reboot && fe->multiport) {
        /* Buffers in the control receiveq before the backend knows the ring: it must rescan avail. */
        for (unsigned b = 0; b < opt.queue_size; b++)
            ctl_post_rx(fe, b);
        vq_publish_silently(&fe->vq[CTL_RX]);
    }

    start_rings(fe, reboot ? START_REBOOT : START_FRESH);
    if (opt.family != FAM_CHV) /* QEMU unmasks: the guest's irqfds replace the masked notifiers */
        for (unsigned i = 0; i < fe->needed_vqs; i++)
            vu_fd(&fe->vu, VU_SET_VRING_CALL, i, fe->vq[i].call_fd);
    fe->boots++;
}

/* Stops every ring, as the family does: QEMU disables all queues, then GET_VRING_BASE for each started one;
 * cloud-hypervisor disables and reads back each queue it started; the loopback adapter has no stop path, so only
 * a reboot stops its rings (GET_VRING_BASE). */
void stop_rings(struct frontend *fe)
{
    fe->stopping = true;
    if (opt.family == FAM_QEMU)
        for (unsigned i = 0; i < fe->num_vqs; i++)
            vu_state(&fe->vu, VU_SET_VRING_ENABLE, i, 0);
    for (unsigned i = 0; i < fe->needed_vqs; i++) {
        if (opt.family == FAM_CHV)
            vu_state(&fe->vu, VU_SET_VRING_ENABLE, i, 0);
        uint32_t s[2] = { i, 0 };
        vu_send(&fe->vu, VU_GET_VRING_BASE, VU_FLAG_VERSION, s, sizeof s, NULL, 0);
        vu_reply(&fe->vu, VU_GET_VRING_BASE, s, sizeof s);
        vq_check_base(&fe->vq[i], s[0], s[1]);
    }
}

void stop_device(struct frontend *fe)
{
    if (opt.family == FAM_LOOPBACK) {
        fe->stopping = true;
        return; /* the adapter just goes away */
    }
    stop_rings(fe);
    if (fe->status) {
        uint64_t z = 0;
        vu_plain(&fe->vu, VU_SET_STATUS, &z, sizeof z);
    }
}

/* The device reset of a guest reboot: SET_STATUS(0) where STATUS is negotiated (QEMU 10.2), else RESET_DEVICE
 * where negotiated, else the deprecated RESET_OWNER (older cloud-hypervisor). */
const char *reset_device(struct frontend *fe)
{
    if (fe->status) {
        uint64_t z = 0;
        vu_plain(&fe->vu, VU_SET_STATUS, &z, sizeof z);
        return "SET_STATUS";
    }
    if (fe->proto_acked & (1ull << PF_RESET_DEVICE)) {
        vu_acked(&fe->vu, VU_RESET_DEVICE, NULL, 0, NULL, 0);
        return "RESET_DEVICE";
    }
    vu_acked(&fe->vu, VU_RESET_OWNER, NULL, 0, NULL, 0);
    return "RESET_OWNER";
}

/* A request on the BACKEND_REQ channel. CONFIG_CHANGE_MSG: the driver reads the config again (virtio config
 * interrupt; without MULTIPORT that is how a console learns its new size) and prints it; acked when asked. */
void backend_event(struct frontend *fe)
{
    uint8_t hdr[VU_HDR_SIZE], body[VU_MAX_PAYLOAD];
    ssize_t n = recv(fe->backend_fd, hdr, sizeof hdr, MSG_DONTWAIT | MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0)
        n = recv(fe->backend_fd, hdr, sizeof hdr, MSG_WAITALL);
    if (n <= 0) {
        close(fe->backend_fd);
        fe->backend_fd = -1;
        return;
    }
    uint32_t req, flags, size;
    memcpy(&req, hdr, 4);
    memcpy(&flags, hdr + 4, 4);
    memcpy(&size, hdr + 8, 4);
    if (n != VU_HDR_SIZE || size > VU_MAX_PAYLOAD || (flags & 3u) != VU_FLAG_VERSION)
        die("backend request channel: bad header (read %zd bytes; request %u flags 0x%x size %u)", n, req, flags,
            size);
    if (size && recv(fe->backend_fd, body, size, MSG_WAITALL) != (ssize_t)size)
        die("backend request channel: request %u announced %u payload bytes, fewer came", req, size);
    uint64_t result = 0;
    if (req == VU_BACKEND_CONFIG_CHANGE_MSG) {
        read_config(fe);
        out("EVENT config_change cols=%u rows=%u", fe->cfg_cols, fe->cfg_rows);
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
        if (send(fe->backend_fd, r, sizeof r, MSG_NOSIGNAL) != (ssize_t)sizeof r)
            die_code(EXIT_IO, "backend request channel: reply to request %u failed: %s", req, strerror(errno));
    }
}
