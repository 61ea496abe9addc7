/* vsb-frontend: the packed virtqueue (virtio 1.1+ §2.8, --packed): one descriptor ring and two event suppression
 * structures. */
#include "virtqueue.h"

void vq_bind_packed(struct vq *q)
{
    uint8_t *a = gpa_ptr(q->mem, q->avail_gpa), *u = gpa_ptr(q->mem, q->used_gpa);
    q->pdesc = gpa_ptr(q->mem, q->desc_gpa);
    q->drv_off_wrap = (volatile uint16_t *)a;
    q->drv_flags = (volatile uint16_t *)(a + 2);
    q->dev_event = (volatile uint32_t *)u;
    q->next_avail = q->used_pos = q->num_added = 0;
    q->avail_wrap = q->used_wrap = true;
    /* Interrupts on; with EVENT_IDX at the first used position (index 0, wrap 1). */
    *q->drv_off_wrap = (uint16_t)(1u << PACKED_EVENT_WRAP);
    st16_rel(q->drv_flags, q->event_idx ? PACKED_EVENT_DESC : PACKED_EVENT_ENABLE);
}

static inline uint16_t packed_avail_bits(bool wrap)
{
    return (uint16_t)(wrap ? PACKED_DESC_F_AVAIL : PACKED_DESC_F_USED);
}

/* Packed ring: writes the chain at the driver's position and makes it available at once (the head's flags
 * go last, with release ordering); returns the buffer id or -1 when the ring has no room. With itab_gpa the
 * chain goes into one INDIRECT descriptor pointing at a table of packed descriptors there; table_addr, if
 * not 0, replaces the table's address in that descriptor (a bad descriptor on purpose). */
int vq_post_packed(struct vq *q, const struct seg *s, unsigned n, uint64_t itab_gpa, uint64_t table_addr,
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
        struct vring_packed_desc *t = gpa_ptr(q->mem, itab_gpa);
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
    vq_track(q, id, (uint16_t)need, cookie, cap, bytes);
    q->num_added = (uint16_t)(q->num_added + need);
    return id;
}

/* Packed ring: the chains are available already; kick unless the device event suppression says no. */
void vq_publish_packed(struct vq *q)
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
        if (!q->event_idx)
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

/* Packed ring: the descriptor at pos is used when its AVAIL and USED bits both equal wrap. */
static inline bool packed_is_used(struct vq *q, uint16_t pos, bool wrap)
{
    uint16_t f = ld16_acq(&q->pdesc[pos].flags);
    return ((f & PACKED_DESC_F_AVAIL) != 0) == wrap && ((f & PACKED_DESC_F_USED) != 0) == wrap;
}

/* Packed ring: takes every used descriptor from the driver's used position on, checked as strictly as Linux
 * does (virtqueue_get_buf_ctx_packed) and a little more. */
unsigned vq_drain_packed(struct vq *q, vq_used_fn *fn, void *ctx)
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
            fn(ctx, q, id, len, h);
        }
        if (!q->event_idx)
            break;
        /* Ask for a call at the next used position, then re-check so none slips between. */
        st16_rel(q->drv_off_wrap, (uint16_t)(q->used_pos | (uint16_t)q->used_wrap << PACKED_EVENT_WRAP));
        full_fence();
        if (!packed_is_used(q, q->used_pos, q->used_wrap))
            break;
    }
    return done;
}


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
void vq_check_base_packed(struct vq *q, uint32_t num)
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

void vq_diag_packed(struct vq *q, unsigned i, uint64_t masked)
{
    uint32_t ev = __atomic_load_n(q->dev_event, __ATOMIC_ACQUIRE);
    bool pending = packed_is_used(q, q->used_pos, q->used_wrap);
    fprintf(stderr, "  queue %2u: packed avail %5u/%u used %5u/%u outstanding %3u free %3u device-event "
            "flags %u off %u/%u driver-event flags %u off %u/%u kicks %" PRIu64 " calls %" PRIu64
            " masked-calls %" PRIu64 "%s\n", i, q->next_avail, q->avail_wrap, q->used_pos, q->used_wrap,
            q->live, q->num_free, ev >> 16, ev & 0x7fff, (ev >> 15) & 1, *q->drv_flags,
            *q->drv_off_wrap & 0x7fff, *q->drv_off_wrap >> 15, q->kicks, q->calls, masked,
            pending ? "  <- used descriptors without a call" : "");
}
