/* vsb-frontend: the Linux 6.1 virtio_console driver: control queue, ports, transmit and receive paths. */
#include "frontend.h"

/* The driver's side of every ring and buffer list as after a fresh probe: rings empty, all buffers free. */
void init_guest_queues(struct frontend *fe)
{
    for (unsigned i = 0; i < fe->needed_vqs; i++)
        vq_bind(&fe->vq[i], fe->event_idx);
    fe->ctl_tx_nfree = 0;
    for (unsigned s = 0; s < opt.queue_size; s++)
        fe->ctl_tx_free[fe->ctl_tx_nfree++] = (uint16_t)(opt.queue_size - 1 - s);
    fe->ctl_npending = 0;
    unsigned ports = fe->max_nr_ports < MAX_PORTS_ALLOC ? fe->max_nr_ports : MAX_PORTS_ALLOC;
    for (unsigned id = 0; id < ports; id++) {
        struct port *p = &fe->port[id];
        free(p->tx_free);
        free(p->tx_len);
        p->tx_free = calloc(fe->tx_depth, sizeof(uint16_t));
        p->tx_len = calloc(fe->tx_depth, sizeof(uint32_t));
        if (!p->tx_free || !p->tx_len)
            die_code(EXIT_IO, "out of memory");
        p->tx_nfree = 0;
        for (unsigned s = 0; s < fe->tx_depth; s++)
            p->tx_free[p->tx_nfree++] = (uint16_t)(fe->tx_depth - 1 - s);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* control queue                                                                               */

void ctl_post_rx(struct frontend *fe, uint32_t buf)
{
    struct seg s = { fe->ctl_rx_gpa + (uint64_t)buf * PAGE_SIZE_GUEST, PAGE_SIZE_GUEST, true };
    if (vq_post(&fe->vq[CTL_RX], &s, 1, 0, buf) < 0)
        die("control receiveq has no free descriptor for buffer %u", buf);
}

void ctl_flush_pending(struct frontend *fe)
{
    struct vq *q = &fe->vq[CTL_TX];
    unsigned sent = 0;
    while (sent < fe->ctl_npending && fe->ctl_tx_nfree && q->num_free) {
        uint16_t slot = fe->ctl_tx_free[--fe->ctl_tx_nfree];
        uint64_t gpa = fe->ctl_tx_gpa + (uint64_t)slot * CTL_TX_SLOT;
        memcpy(gpa_ptr(&fe->mem, gpa), fe->ctl_pending[sent], CONTROL_MSG_SIZE);
        struct seg s = { gpa, CONTROL_MSG_SIZE, false };
        if (vq_post(q, &s, 1, 0, slot) < 0)
            die("control transmitq: no descriptor");
        sent++;
    }
    if (sent) {
        memmove(fe->ctl_pending, fe->ctl_pending[sent], (size_t)(fe->ctl_npending - sent) * CONTROL_MSG_SIZE);
        fe->ctl_npending -= sent;
    }
}

void ctl_send(struct frontend *fe, uint32_t id, uint16_t event, uint16_t value)
{
    if (!fe->multiport) {
        warn("control message event %u for port %u: MULTIPORT is not negotiated, there is no control queue", event,
             id);
        return;
    }
    if (fe->ctl_npending >= 1024)
        die("control transmitq: 1024 messages wait and the backend uses none of them");
    uint8_t *m = fe->ctl_pending[fe->ctl_npending++];
    memcpy(m, &id, 4);
    memcpy(m + 4, &event, 2);
    memcpy(m + 6, &value, 2);
    ctl_flush_pending(fe);
}

static struct port *port_of(struct frontend *fe, uint32_t id)
{
    return id < MAX_PORTS_ALLOC && fe->port[id].exists ? &fe->port[id] : NULL;
}

static void port_post_rx(struct frontend *fe, struct port *p, unsigned id, uint32_t buf)
{
    struct seg s = { p->rx_gpa + (uint64_t)buf * PAGE_SIZE_GUEST, PAGE_SIZE_GUEST, true };
    if (vq_post(&fe->vq[rx_queue_of(id)], &s, 1, 0, buf) < 0)
        die("port %u receiveq has no free descriptor", id);
}

/* Fills a port's receiveq: every one of its buffers that is not posted already. A port removed and added again
 * finds its old buffers still in the ring (this driver leaves them there; the device may hold them). */
void port_fill_rx(struct frontend *fe, struct port *p, unsigned id)
{
    struct vq *rq = &fe->vq[rx_queue_of(id)];
    bool *posted = calloc(rq->num, sizeof(bool));
    if (!posted)
        die_code(EXIT_IO, "out of memory");
    for (unsigned h = 0; h < rq->num; h++)
        if (rq->heads[h].live && rq->heads[h].cookie < rq->num)
            posted[rq->heads[h].cookie] = true;
    for (unsigned b = 0; b < rq->num; b++)
        if (!posted[b])
            port_post_rx(fe, p, id, b);
    free(posted);
    vq_publish(rq);
}

static void port_add(struct frontend *fe, uint32_t id)
{
    if (id >= fe->max_nr_ports) {
        warn("PORT_ADD for port %u, but max_nr_ports is %u: ignored (as Linux does)", id, fe->max_nr_ports);
        return;
    }
    if (id >= MAX_PORTS_ALLOC || 2 * id + 3 >= fe->needed_vqs) {
        warn("PORT_ADD for port %u: no buffers for it here, answering PORT_READY(0)", id);
        ctl_send(fe, id, C_PORT_READY, 0);
        return;
    }
    struct port *p = &fe->port[id];
    if (p->exists) {
        ctl_send(fe, id, C_PORT_READY, 1);
        return;
    }
    p->exists = true;
    p->removed = false;
    p->console = p->guest_open = p->host_open = p->named = false;
    p->name[0] = 0;
    port_fill_rx(fe, p, id);
    ctl_send(fe, id, C_PORT_READY, 1);
    p->ready_sent = true;
    out("EVENT port_add port=%u", id);
}

void set_guest_open(struct frontend *fe, unsigned id, bool open)
{
    struct port *p = &fe->port[id];
    p->guest_open = open;
    ctl_send(fe, id, C_PORT_OPEN, open ? 1 : 0);
    out("EVENT guest_open port=%u value=%u", id, open ? 1 : 0);
}

static void control_message(struct frontend *fe, const uint8_t *b, uint32_t len)
{
    if (len < CONTROL_MSG_SIZE)
        die("control receiveq: used len %u is shorter than a control message (8 bytes)", len);
    uint32_t id;
    uint16_t ev, val;
    memcpy(&id, b, 4);
    memcpy(&ev, b + 4, 2);
    memcpy(&val, b + 6, 2);
    if (ev == C_PORT_ADD) {
        port_add(fe, id);
        return;
    }
    struct port *p = port_of(fe, id);
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
            set_guest_open(fe, id, true);
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

bool port_writable(const struct port *p)
{
    /* Linux: hvc output ignores host_connected; a generic port's write() blocks until the host opens. */
    return p->exists && p->guest_open && (p->console || p->host_open);
}

static void post_bad_desc(struct frontend *fe, unsigned id, struct port *p)
{
    struct vq *q = &fe->vq[tx_queue_of(id)];
    enum bad_kind k = opt.spec[id].bad;
    unsigned need = k == BAD_LOOP ? 2 : 1;
    if (q->num_free < need || p->tx_nfree == 0)
        return;
    uint16_t slot = p->tx_free[--p->tx_nfree];
    struct seg s[2] = { { 0, 4096, false }, { 0, 4096, false } };
    uint64_t itab = 0;
    switch (k) {
    case BAD_ADDR: s[0].gpa = fe->mem.size + 0x100000; break;
    case BAD_LEN: s[0].gpa = fe->mem.size - 2048; break;
    case BAD_WRAP: s[0].gpa = 0xfffffffffffff000ull; s[0].len = 0x2000; break;
    case BAD_NEXT: case BAD_LOOP: s[0].gpa = p->tx_gpa + (uint64_t)slot * fe->slot_size; s[1].gpa = s[0].gpa; break;
    case BAD_INDIRECT: s[0].gpa = p->tx_gpa + (uint64_t)slot * fe->slot_size; itab = p->itab_gpa; break;
    default: return;
    }
    int head;
    if (opt.packed) {
        /* next and loop are refused with --packed: a packed ring has no next field */
        head = vq_post_packed(q, s, need, itab, k == BAD_INDIRECT ? fe->mem.size + 0x200000 : 0, slot);
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
        d->addr = fe->mem.size + 0x200000;
    }
    q->heads[head].bad = true;
    p->tx_len[slot] = 0;
    p->bad_state = 2;
    vq_publish(q);
    out("BADDESC port=%u kind=%s posted head=%d", id, bad_names[k], head);
}

void fill_tx(struct frontend *fe, unsigned id)
{
    struct port *p = &fe->port[id];
    if (!port_writable(p))
        return;
    if (p->bad_state == 1) {
        post_bad_desc(fe, id, p);
        return;
    }
    struct vq *q = &fe->vq[tx_queue_of(id)];
    /* hvc: one page per put_chars and the driver spins until it is used. */
    unsigned chunk = p->console ? PAGE_SIZE_GUEST : opt.tx_chunk;
    unsigned segs = p->console ? 1 : fe->tx_segs;
    unsigned depth = p->console ? 1 : opt.depth_cap ? opt.depth_cap : fe->tx_depth;
    while (p->tx_posted < p->tx_target && p->tx_nfree && (fe->tx_depth - p->tx_nfree) < depth) {
        unsigned need = opt.indirect && !p->console ? 1 : segs;
        if (q->num_free < need)
            break;
        uint64_t left = p->tx_target - p->tx_posted;
        uint32_t len = left < chunk ? (uint32_t)left : chunk;
        uint16_t slot = p->tx_free[--p->tx_nfree];
        uint64_t base = p->tx_gpa + (uint64_t)slot * fe->slot_size;
        struct seg s[MAX_SEGS];
        unsigned n = segs < len ? segs : 1;
        uint32_t per = (len + n - 1) / n, seglen_max = (opt.tx_chunk + segs - 1) / segs, off = 0;
        for (unsigned i = 0; i < n; i++) {
            uint32_t l = len - off < per ? len - off : per;
            /* Segments sit in reverse order in memory: a device must follow the chain. */
            uint64_t at = base + (uint64_t)(n - 1 - i) * seglen_max;
            if (!opt.bench) {
                stream_fill(&p->tx_stream, gpa_ptr(&fe->mem, at), l);
                p->tx_sum = fnv1a(p->tx_sum, gpa_ptr(&fe->mem, at), l);
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

static void on_used(void *ctx, struct vq *q, uint16_t head, uint32_t len, struct head_state h)
{
    struct frontend *fe = ctx;
    unsigned qi = q->index;
    if (qi == CTL_RX) {
        control_message(fe, gpa_ptr(&fe->mem, fe->ctl_rx_gpa + (uint64_t)h.cookie * PAGE_SIZE_GUEST), len);
        ctl_post_rx(fe, h.cookie);
        return;
    }
    if (qi == CTL_TX) {
        fe->ctl_tx_free[fe->ctl_tx_nfree++] = (uint16_t)h.cookie;
        return;
    }
    unsigned id = qi < 2 ? 0 : (qi - 2) / 2;
    struct port *p = &fe->port[id];
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
        if (crosses_regions(&fe->mem, p->tx_gpa + (uint64_t)h.cookie * fe->slot_size, p->tx_len[h.cookie]))
            p->tx_cross++;
        return;
    }
    if (!p->exists) {
        warn("port %u: receiveq buffer used after the port was removed: dropped", id);
        return;
    }
    if (crosses_regions(&fe->mem, p->rx_gpa + (uint64_t)h.cookie * PAGE_SIZE_GUEST, len))
        p->rx_cross++;
    port_rx(id, p, gpa_ptr(&fe->mem, p->rx_gpa + (uint64_t)h.cookie * PAGE_SIZE_GUEST), len);
    if (!fe->stopping)
        port_post_rx(fe, p, id, h.cookie);
}

unsigned guest_drain(struct frontend *fe, struct vq *q)
{
    unsigned done = vq_drain(q, on_used, fe);
    if (done)
        fe->last_progress = now_s();
    return done;
}

/* After DRIVER_OK. With MULTIPORT the driver fills the control receiveq and sends DEVICE_READY; without it port 0
 * is its one console, open at once (hvc), with no control traffic at all. */
void driver_ready(struct frontend *fe)
{
    if (!fe->multiport) {
        struct port *p = &fe->port[0];
        p->exists = p->console = p->guest_open = true;
        p->removed = p->host_open = p->named = false;
        port_fill_rx(fe, p, 0);
        out("EVENT console_port port=0");
        return;
    }
    if (!opt.early_fill || fe->boots > 1)
        for (unsigned b = 0; b < opt.queue_size; b++)
            ctl_post_rx(fe, b);
    vq_publish(&fe->vq[CTL_RX]);
    fe->device_ready_sent = true;
    ctl_send(fe, 0xffffffffu, C_DEVICE_READY, 1);
    vq_publish(&fe->vq[CTL_TX]);
}

/* Emergency write (VIRTIO_CONSOLE_F_EMERG_WRITE): the next n bytes of port id's guest->host pattern, each written
 * to emerg_wr (config offset 8, 4 bytes) by its own SET_CONFIG, as an early console writes one character at a
 * time. They count as that port's tx bytes (RESULT tx_bytes, tx_sum). */
void emerg_write(struct frontend *fe, unsigned id, uint64_t n)
{
    if (!(fe->features_acked & (1ull << F_CONSOLE_EMERG_WRITE))) {
        warn("emerg: VIRTIO_CONSOLE_F_EMERG_WRITE is not negotiated (--emerg-write, and the backend must offer "
             "it): nothing written");
        out("EMERG port=%u bytes=0", id);
        return;
    }
    struct port *p = &fe->port[id];
    for (uint64_t i = 0; i < n; i++) {
        uint8_t m[12 + 4];
        uint32_t off = 8, size = 4, flags = 0;
        memset(m, 0, sizeof m);
        memcpy(m, &off, 4);
        memcpy(m + 4, &size, 4);
        memcpy(m + 8, &flags, 4);
        stream_fill(&p->tx_stream, m + 12, 1);
        p->tx_sum = fnv1a(p->tx_sum, m + 12, 1);
        vu_acked(&fe->vu, VU_SET_CONFIG, m, sizeof m, NULL, 0);
    }
    p->tx_posted += n;
    p->tx_done += n;
    p->tx_target += n;
    out("EMERG port=%u bytes=%" PRIu64, id, n);
}
