/*
 * vsb-frontend: the driver side of a virtqueue, split (virtio 1.x §2.7) or packed (§2.8, --packed). What the two
 * share lives in virtqueue.c: the per-buffer bookkeeping, the free list, the posting and kicking contract, the
 * queue's eventfds and counters; vq_split.c and vq_packed.c hold what differs (ring layout, making buffers
 * available, notification suppression, reading used entries back, checking GET_VRING_BASE).
 */
#ifndef VSB_VIRTQUEUE_H
#define VSB_VIRTQUEUE_H

#include "common.h"
#include "guest_mem.h"

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

static inline uint16_t ld16_acq(volatile uint16_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void st16_rel(volatile uint16_t *p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void full_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

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
    bool packed;              /* VIRTIO_F_RING_PACKED */
    bool event_idx;           /* VIRTIO_RING_F_EVENT_IDX negotiated when the ring was bound */
    const struct guest_mem *mem;
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

/* One buffer of a chain: guest-physical address, length, device-writable or not. */
struct seg { uint64_t gpa; uint32_t len; bool write; };

/* Called for each used buffer, after its descriptors went back to the free list. */
typedef void vq_used_fn(void *ctx, struct vq *q, uint16_t head, uint32_t len, struct head_state h);

/* Places the rings of queue index in m (each part on its own page). */
void vq_layout(struct vq *q, struct guest_mem *m, unsigned index, uint16_t num, bool packed);
/* The driver's side as after a fresh probe: rings empty, every descriptor free. */
void vq_bind(struct vq *q, bool event_idx);
/* Posts one chain (in an indirect table at itab_gpa unless 0); returns the head (split) or buffer id (packed), or
 * -1 when the ring has no room. */
int vq_post(struct vq *q, const struct seg *s, unsigned n, uint64_t itab_gpa, uint32_t cookie);
/* Publishes new avail entries and kicks when the device asked for it (EVENT_IDX) or did not suppress
 * notifications. */
void vq_publish(struct vq *q);
/* Buffers posted since the last publish become visible to the device without a kick (--early-fill). */
void vq_publish_silently(struct vq *q);
/* Takes every used entry, checked as strictly as Linux does, and hands each to fn(ctx, ...); returns how many. */
unsigned vq_drain(struct vq *q, vq_used_fn *fn, void *ctx);
/* Checks a GET_VRING_BASE answer against what the driver posted and saw used. */
void vq_check_base(struct vq *q, uint32_t index, uint32_t num);
/* Zeroes the rings in guest memory (a device reset). */
void vq_clear_rings(struct vq *q);
/* Prints the queue's state to stderr; masked = calls on the masked notifier. */
void vq_diag(struct vq *q, unsigned i, uint64_t masked);
/* Closes the eventfds, frees the bookkeeping, leaves q zeroed. */
void vq_close(struct vq *q);

/* ---- shared by the two ring formats (virtqueue.c) ---- */
void seg_totals(const struct seg *s, unsigned n, uint32_t *cap, uint32_t *bytes);
void vq_kick(struct vq *q);
/* Records a posted chain of need descriptors under head (split) or buffer id (packed). */
void vq_track(struct vq *q, uint16_t head, uint16_t need, uint32_t cookie, uint32_t cap, uint32_t bytes);
/* Returns a used chain's descriptors (split) or ring slots and id (packed) to the free list. */
void vq_free(struct vq *q, uint16_t head);

/* ---- split ring (vq_split.c) ---- */
void vq_bind_split(struct vq *q);
int vq_post_split(struct vq *q, const struct seg *s, unsigned n, uint64_t itab_gpa, uint32_t cookie);
void vq_publish_split(struct vq *q);
unsigned vq_drain_split(struct vq *q, vq_used_fn *fn, void *ctx);
void vq_check_base_split(struct vq *q, uint32_t num);
void vq_diag_split(struct vq *q, unsigned i, uint64_t masked);

/* ---- packed ring (vq_packed.c) ---- */
void vq_bind_packed(struct vq *q);
/* table_addr, if not 0, replaces the indirect table's address in its descriptor (a bad descriptor on purpose). */
int vq_post_packed(struct vq *q, const struct seg *s, unsigned n, uint64_t itab_gpa, uint64_t table_addr,
                   uint32_t cookie);
void vq_publish_packed(struct vq *q);
unsigned vq_drain_packed(struct vq *q, vq_used_fn *fn, void *ctx);
void vq_check_base_packed(struct vq *q, uint32_t num);
void vq_diag_packed(struct vq *q, unsigned i, uint64_t masked);

#endif
