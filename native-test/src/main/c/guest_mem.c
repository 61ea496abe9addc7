/* vsb-frontend: guest memory. */
#include "guest_mem.h"

#include <sys/mman.h>

uint64_t mem_alloc(struct guest_mem *m, uint64_t size, uint64_t align)
{
    m->brk = (m->brk + align - 1) & ~(align - 1);
    uint64_t at = m->brk;
    m->brk += size;
    return at;
}

static unsigned region_of(const struct guest_mem *m, uint64_t gpa)
{
    unsigned i = 0;
    while (i + 1 < m->nregions && gpa >= m->start[i + 1])
        i++;
    return i;
}

bool crosses_regions(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    return len > 1 && m->nregions > 1 && region_of(m, gpa) != region_of(m, gpa + len - 1);
}

void mem_layout_loopback(struct guest_mem *m, unsigned ports, bool mem_slots, uint64_t max_slots)
{
    unsigned n = 2 * ports + 1; /* a boundary for every port's rx area and one for its tx area */
    unsigned cap = LOOPBACK_MAX_REGIONS;
    if (!mem_slots)
        cap = 8; /* one SET_MEM_TABLE */
    else if (max_slots < cap)
        cap = (unsigned)max_slots;
    if (n < 4)
        n = 4;
    if (n > cap)
        n = cap;
    if (n < 2)
        die_code(EXIT_USAGE, "--family loopback needs at least 2 memory slots, the backend has %" PRIu64,
                 max_slots);
    m->nregions = n;
    m->start[0] = 0;
    for (unsigned i = 1; i < n; i++)
        m->start[i] = i * LOOPBACK_REGION + LOOPBACK_SKEW;
    m->start[n] = n * LOOPBACK_REGION;
    m->size = n * LOOPBACK_REGION;
}

void mem_map(struct guest_mem *m)
{
    m->fd = memfd_create("vsb-guest-ram", MFD_CLOEXEC);
    if (m->fd < 0)
        die_code(EXIT_IO, "memfd_create: %s", strerror(errno));
    if (ftruncate(m->fd, (off_t)m->size) != 0)
        die_code(EXIT_IO, "ftruncate guest memory: %s", strerror(errno));
    void *b = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, m->fd, 0);
    if (b == MAP_FAILED)
        die_code(EXIT_IO, "mmap guest memory: %s", strerror(errno));
    m->base = b;
}

void mem_unmap(struct guest_mem *m)
{
    if (m->base) {
        munmap(m->base, m->size);
        close(m->fd);
        m->base = NULL;
    }
    m->nregions = 0;
}
