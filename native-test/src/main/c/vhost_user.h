/*
 * vsb-frontend: the vhost-user client (docs/interop/vhost-user.rst): requests, replies and acks, and the file
 * descriptors that travel with them over the one AF_UNIX socket to the backend.
 */
#ifndef VSB_VHOST_USER_H
#define VSB_VHOST_USER_H

#include "common.h"

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


/* ---- frontend families (--family) ---- */
enum family { FAM_QEMU, FAM_CHV, FAM_LOOPBACK };
extern const char *const family_names[3];

/* One connection to a backend and what governs its messages. */
struct vu_client {
    int sock;                 /* -1 = not connected */
    enum family family;       /* which requests carry NEED_REPLY */
    bool reply_ack;           /* REPLY_ACK negotiated */
    bool wide_index;          /* queue index >> 8 in bits 16-31 of SET_VRING_KICK/CALL/ERR (bridge extension) */
    double reply_timeout;     /* seconds a reply may take */
    int *accept_fd;           /* where the reply puts one fd that comes with it; NULL = none wanted */
    bool soft_fail;           /* an I/O failure returns -1 (a reconnect attempt) instead of ending the program */
    bool failed;              /* soft_fail: a failure happened; error says which */
    char error[512];
};

/*
 * A reply that breaks the protocol is die() (exit 1) in every mode. A failure to talk to the backend at all (it is
 * gone, it does not answer in time) is vu_io_fail(): by default that is die_code(EXIT_IO, ...), the end of the
 * program; with soft_fail set it records the message in error and returns -1, and so does every function below
 * that met it, up to the caller that set soft_fail (the reconnect loop). The int results are 0 or -1.
 */
int vu_io_fail(struct vu_client *vu, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *req_name(uint32_t req);
int vu_send(struct vu_client *vu, uint32_t req, uint32_t flags, const void *payload, uint32_t size, const int *fds,
            unsigned nfds);
/* Receives the reply to req; checks request code, flags == 0x5 and the exact payload size. */
int vu_reply(struct vu_client *vu, uint32_t req, void *payload, uint32_t size);
/* A request without payload whose reply is one u64 (GET_FEATURES, GET_QUEUE_NUM, ...): into *v. */
int vu_get_u64(struct vu_client *vu, uint32_t req, uint64_t *v);
/* A request the family sends with NEED_REPLY when REPLY_ACK is negotiated: waits for the ack. */
int vu_acked(struct vu_client *vu, uint32_t req, const void *payload, uint32_t size, const int *fds, unsigned nfds);
int vu_plain(struct vu_client *vu, uint32_t req, const void *payload, uint32_t size);
/* {index, num}: SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ENABLE (acked). */
int vu_state(struct vu_client *vu, uint32_t req, unsigned index, unsigned num);
/* SET_VRING_KICK, CALL, ERR: a queue index and its eventfd. */
int vu_fd(struct vu_client *vu, uint32_t req, unsigned index, int fd);
/* Connects to path, retrying while nobody listens yet for up to timeout seconds. */
int vu_connect(struct vu_client *vu, const char *path, double timeout);

#endif
