/* vsb-frontend: the split virtqueue (virtio 1.x §2.7): descriptor table, avail ring, used ring. */
#include "virtqueue.h"

void vq_bind_split(struct vq *q)
{
    uint8_t *a = gpa_ptr(q->mem, q->avail_gpa), *u = gpa_ptr(q->mem, q->used_gpa);
    q->desc = gpa_ptr(q->mem, q->desc_gpa);
    q->avail_flags = (volatile uint16_t *)a;
    q->avail_idx_p = (volatile uint16_t *)(a + 2);
    q->avail_ring = (volatile uint16_t *)(a + 4);
    q->used_event = (volatile uint16_t *)(a + 4 + 2 * q->num);
    q->used_flags = (volatile uint16_t *)u;
    q->used_idx_p = (volatile uint16_t *)(u + 2);
    q->used_ring = (volatile struct vring_used_elem *)(u + 4);
    q->avail_event = (volatile uint16_t *)(u + 4 + 8 * q->num);
}

int vq_post_split(struct vq *q, const struct seg *s, unsigned n, uint64_t itab_gpa, uint32_t cookie)
{
    bool indirect = itab_gpa != 0;
    unsigned need = indirect ? 1 : n;
    if (q->num_free < need)
        return -1;
    uint16_t head = q->free_head, d = head;
    uint32_t cap, bytes;
    seg_totals(s, n, &cap, &bytes);
    if (indirect) {
        struct vring_desc *t = gpa_ptr(q->mem, itab_gpa);
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
    vq_track(q, head, (uint16_t)need, cookie, cap, bytes);
    q->avail_ring[q->avail_idx & (q->num - 1)] = head;
    q->avail_idx++;
    return head;
}

void vq_publish_split(struct vq *q)
{
    uint16_t old = q->published, nw = q->avail_idx;
    st16_rel(q->avail_idx_p, nw);
    q->published = nw;
    full_fence();
    bool kick;
    if (q->event_idx) {
        uint16_t ev = ld16_acq(q->avail_event);
        kick = (uint16_t)(nw - ev - 1) < (uint16_t)(nw - old);
    } else {
        kick = !(ld16_acq(q->used_flags) & VRING_USED_F_NO_NOTIFY);
    }
    if (kick)
        vq_kick(q);
}

/* Takes every new used entry, checked as strictly as Linux does (virtqueue_get_buf_ctx_split). */
unsigned vq_drain_split(struct vq *q, vq_used_fn *fn, void *ctx)
{
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
            fn(ctx, q, (uint16_t)id, len, h);
        }
        if (!q->event_idx)
            break;
        /* Ask for a call at the next used entry, then re-check so none slips between. */
        st16_rel(q->used_event, q->last_used);
        full_fence();
        if (ld16_acq(q->used_idx_p) == q->last_used)
            break;
    }
    return done;
}

void vq_check_base_split(struct vq *q, uint32_t num)
{
    if (num > 0xffff)
        die("GET_VRING_BASE for queue %u answered %u, not a 16-bit ring index", q->index, num);
    uint16_t used = ld16_acq(q->used_idx_p);
    /* The device's next avail lies between what it used and what we made available. */
    if ((uint16_t)(q->avail_idx - (uint16_t)num) > (uint16_t)(q->avail_idx - used))
        die("GET_VRING_BASE for queue %u answered %u, outside used %u .. avail %u", q->index, num, used,
            q->avail_idx);
}

void vq_diag_split(struct vq *q, unsigned i, uint64_t masked)
{
    uint16_t used = ld16_acq(q->used_idx_p);
    fprintf(stderr, "  queue %2u: avail %5u used %5u seen %5u outstanding %3u avail_event %5u "
            "used_event %5u kicks %" PRIu64 " calls %" PRIu64 " masked-calls %" PRIu64 "%s\n",
            i, q->avail_idx, used, q->last_used, q->live, *q->avail_event, *q->used_event, q->kicks,
            q->calls, masked, used != q->last_used ? "  <- used entries without a call" : "");
}
