/*
 * vsb-frontend: guest memory. One memfd mapped into this process; guest-physical address 0 is its first byte.
 * QEMU and cloud-hypervisor: one region. --family loopback: the same memfd cut into regions of about 1 GiB, region
 * i > 0 starting 0x100 past a GiB boundary (the old adapter's unaligned mmap_offset), mmap_offset ==
 * guest_phys_addr == userspace_addr; at most 16 regions (8 without CONFIGURE_MEM_SLOTS: one SET_MEM_TABLE).
 */
#ifndef VSB_GUEST_MEM_H
#define VSB_GUEST_MEM_H

#include "common.h"

#define LOOPBACK_REGION     (1ull << 30)
#define LOOPBACK_SKEW       0x100ull
#define LOOPBACK_MAX_REGIONS 16u
#define LOOPBACK_STRADDLE   (128u * 1024u) /* a buffer area begins this far before the boundary it crosses */

struct guest_mem {
    int fd;
    uint8_t *base;
    uint64_t size;
    uint64_t brk;
    unsigned nregions;        /* --family loopback: regions of the one memfd; else 1 */
    uint64_t start[LOOPBACK_MAX_REGIONS + 1]; /* region i is [start[i], start[i + 1]) */
    bool uva_is_gpa;          /* the loopback adapter: userspace_addr == guest_phys_addr */
};

/* Reserves size bytes at the next multiple of align; returns their guest-physical address. */
uint64_t mem_alloc(struct guest_mem *m, uint64_t size, uint64_t align);

static inline void *gpa_ptr(const struct guest_mem *m, uint64_t gpa) { return m->base + gpa; }

/* The frontend virtual address the backend is told about: QEMU's and cloud-hypervisor's own mapping; the loopback
 * adapter's regions have userspace_addr == guest_phys_addr. */
static inline uint64_t gpa_uva(const struct guest_mem *m, uint64_t gpa)
{
    return m->uva_is_gpa ? gpa : (uint64_t)(uintptr_t)(m->base + gpa);
}

/* A buffer [gpa, gpa + len) the backend must read or write in two memory regions. */
bool crosses_regions(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* --family loopback: regions of about 1 GiB over one memfd, at least 4, one boundary per buffer area of ports
 * ports, as many as the backend's slots allow (mem_slots: CONFIGURE_MEM_SLOTS negotiated, with max_slots). */
void mem_layout_loopback(struct guest_mem *m, unsigned ports, bool mem_slots, uint64_t max_slots);

/* Creates the memfd of m->size bytes (sparse: ftruncate only) and maps it. */
void mem_map(struct guest_mem *m);
void mem_unmap(struct guest_mem *m);

#endif
