/* vsb-frontend: what split and packed virtqueues share. */
#include "virtqueue.h"

void vq_layout(struct vq *q, struct guest_mem *m, unsigned index, uint16_t num, bool packed)
{
    q->index = index;
    q->num = num;
    q->packed = packed;
    q->mem = m;
    q->desc_gpa = mem_alloc(m, 16ull * num, 4096);
    if (packed) {
        /* Each part on its own page, as Linux allocates them; avail_gpa and used_gpa name the driver and
         * the device area and go to SET_VRING_ADDR as avail and used, as QEMU sends them. */
        q->avail_gpa = mem_alloc(m, 4, 4096);
        q->used_gpa = mem_alloc(m, 4, 4096);
        return;
    }
    q->avail_gpa = mem_alloc(m, 6ull + 2ull * num, 4096);
    q->used_gpa = mem_alloc(m, 6ull + 8ull * num, 4096);
}

void vq_bind(struct vq *q, bool event_idx)
{
    q->event_idx = event_idx;
    if (q->packed)
        vq_bind_packed(q);
    else
        vq_bind_split(q);
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

/* A chain's device-writable (cap) and device-readable (bytes) lengths. */
void seg_totals(const struct seg *s, unsigned n, uint32_t *cap, uint32_t *bytes)
{
    *cap = *bytes = 0;
    for (unsigned i = 0; i < n; i++) {
        if (s[i].write)
            *cap += s[i].len;
        else
            *bytes += s[i].len;
    }
}

void vq_track(struct vq *q, uint16_t head, uint16_t need, uint32_t cookie, uint32_t cap, uint32_t bytes)
{
    q->num_free = (uint16_t)(q->num_free - need);
    q->heads[head] = (struct head_state){ .live = true, .ndesc = need, .cookie = cookie, .cap = cap,
                                          .bytes = bytes };
    q->live++;
    q->dirty = true;
}

int vq_post(struct vq *q, const struct seg *s, unsigned n, uint64_t itab_gpa, uint32_t cookie)
{
    return q->packed ? vq_post_packed(q, s, n, itab_gpa, 0, cookie) : vq_post_split(q, s, n, itab_gpa, cookie);
}

void vq_free(struct vq *q, uint16_t head)
{
    struct head_state *h = &q->heads[head];
    /* Split: the chain's descriptors go back as a whole, linked through shadow_next. Packed: the id goes back on
     * its free list; the chain's ring slots are free again. */
    uint16_t last = head;
    for (unsigned i = 1; !q->packed && i < h->ndesc; i++)
        last = q->shadow_next[last];
    q->shadow_next[last] = q->free_head;
    q->free_head = head;
    q->num_free = (uint16_t)(q->num_free + h->ndesc);
    h->live = false;
    q->live--;
}

void vq_kick(struct vq *q)
{
    uint64_t one = 1;
    if (write(q->kick_fd, &one, sizeof one) != sizeof one)
        die_code(EXIT_IO, "writing kick eventfd of queue %u: %s", q->index, strerror(errno));
    q->kicks++;
}

void vq_publish(struct vq *q)
{
    if (!q->dirty)
        return;
    q->dirty = false;
    if (q->packed)
        vq_publish_packed(q);
    else
        vq_publish_split(q);
}

void vq_publish_silently(struct vq *q)
{
    if (q->packed) {
        /* a packed chain is available as soon as it is written: only the kick is left out */
        q->num_added = 0;
    } else {
        st16_rel(q->avail_idx_p, q->avail_idx);
        q->published = q->avail_idx;
    }
    q->dirty = false;
}

unsigned vq_drain(struct vq *q, vq_used_fn *fn, void *ctx)
{
    return q->packed ? vq_drain_packed(q, fn, ctx) : vq_drain_split(q, fn, ctx);
}

void vq_check_base(struct vq *q, uint32_t index, uint32_t num)
{
    if (index != q->index)
        die("GET_VRING_BASE for queue %u answered index %u", q->index, index);
    if (q->packed)
        vq_check_base_packed(q, num);
    else
        vq_check_base_split(q, num);
}

void vq_clear_rings(struct vq *q)
{
    memset(gpa_ptr(q->mem, q->desc_gpa), 0, 16ull * q->num);
    memset(gpa_ptr(q->mem, q->avail_gpa), 0, q->packed ? 4 : 6ull + 2ull * q->num);
    memset(gpa_ptr(q->mem, q->used_gpa), 0, q->packed ? 4 : 6ull + 8ull * q->num);
}

void vq_diag(struct vq *q, unsigned i, uint64_t masked)
{
    if (q->packed)
        vq_diag_packed(q, i, masked);
    else
        vq_diag_split(q, i, masked);
}

void vq_close(struct vq *q)
{
    close(q->masked_fd);
    close(q->err_fd);
    close(q->call_fd);
    close(q->kick_fd);
    free(q->shadow_next);
    free(q->heads);
    memset(q, 0, sizeof *q);
}
