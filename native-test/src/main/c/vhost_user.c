/* vsb-frontend: the vhost-user client. */
#include "vhost_user.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

const char *const family_names[3] = { "qemu", "chv", "loopback" };

int vu_io_fail(struct vu_client *vu, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vu->error, sizeof vu->error, fmt, ap);
    va_end(ap);
    if (!vu->soft_fail)
        die_code(EXIT_IO, "%s", vu->error);
    vu->failed = true;
    return -1;
}

const char *req_name(uint32_t r)
{
    switch (r) {
    case VU_GET_FEATURES: return "GET_FEATURES";
    case VU_SET_FEATURES: return "SET_FEATURES";
    case VU_SET_OWNER: return "SET_OWNER";
    case VU_SET_MEM_TABLE: return "SET_MEM_TABLE";
    case VU_SET_VRING_NUM: return "SET_VRING_NUM";
    case VU_SET_VRING_ADDR: return "SET_VRING_ADDR";
    case VU_SET_VRING_BASE: return "SET_VRING_BASE";
    case VU_GET_VRING_BASE: return "GET_VRING_BASE";
    case VU_SET_VRING_KICK: return "SET_VRING_KICK";
    case VU_SET_VRING_CALL: return "SET_VRING_CALL";
    case VU_SET_VRING_ERR: return "SET_VRING_ERR";
    case VU_GET_PROTOCOL_FEATURES: return "GET_PROTOCOL_FEATURES";
    case VU_SET_PROTOCOL_FEATURES: return "SET_PROTOCOL_FEATURES";
    case VU_GET_QUEUE_NUM: return "GET_QUEUE_NUM";
    case VU_SET_VRING_ENABLE: return "SET_VRING_ENABLE";
    case VU_GET_CONFIG: return "GET_CONFIG";
    case VU_GET_MAX_MEM_SLOTS: return "GET_MAX_MEM_SLOTS";
    case VU_ADD_MEM_REG: return "ADD_MEM_REG";
    case VU_SET_STATUS: return "SET_STATUS";
    case VU_GET_STATUS: return "GET_STATUS";
    case VU_GET_INFLIGHT_FD: return "GET_INFLIGHT_FD";
    case VU_RESET_OWNER: return "RESET_OWNER";
    case VU_SET_BACKEND_REQ_FD: return "SET_BACKEND_REQ_FD";
    case VU_SET_CONFIG: return "SET_CONFIG";
    case VU_RESET_DEVICE: return "RESET_DEVICE";
    case VU_SET_INFLIGHT_FD: return "SET_INFLIGHT_FD";
    default: return "request";
    }
}

int vu_send(struct vu_client *vu, uint32_t req, uint32_t flags, const void *payload, uint32_t size, const int *fds,
             unsigned nfds)
{
    uint8_t hdr[VU_HDR_SIZE];
    memcpy(hdr, &req, 4);
    memcpy(hdr + 4, &flags, 4);
    memcpy(hdr + 8, &size, 4);
    struct iovec iov[2] = { { hdr, VU_HDR_SIZE }, { (void *)payload, size } };
    union { char buf[CMSG_SPACE(sizeof(int) * 8)]; struct cmsghdr align; } ctl;
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = iov;
    m.msg_iovlen = size ? 2 : 1;
    if (nfds) {
        memset(&ctl, 0, sizeof ctl);
        m.msg_control = ctl.buf;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    size_t total = VU_HDR_SIZE + size, sent = 0;
    while (sent < total) {
        ssize_t n = sendmsg(vu->sock, &m, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return vu_io_fail(vu, "sending %s (%u) to the backend failed: %s", req_name(req), req,
                              strerror(errno));
        }
        sent += (size_t)n;
        /* A short send: the fds went with the first byte; push the rest without them. */
        m.msg_control = NULL;
        m.msg_controllen = 0;
        size_t skip = (size_t)n;
        while (m.msg_iovlen && skip >= m.msg_iov[0].iov_len) {
            skip -= m.msg_iov[0].iov_len;
            m.msg_iov++;
            m.msg_iovlen--;
        }
        if (m.msg_iovlen) {
            m.msg_iov[0].iov_base = (uint8_t *)m.msg_iov[0].iov_base + skip;
            m.msg_iov[0].iov_len -= skip;
        }
    }
    return 0;
}

static int wait_readable(struct vu_client *vu, uint32_t req)
{
    struct pollfd p = { .fd = vu->sock, .events = POLLIN };
    int ms = (int)(vu->reply_timeout * 1000);
    for (;;) {
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 0;
        if (n == 0)
            return vu_io_fail(vu, "the backend did not reply to %s (%u) within %.0f s", req_name(req), req,
                              vu->reply_timeout);
        if (errno != EINTR)
            return vu_io_fail(vu, "poll: %s", strerror(errno));
    }
}

/* Reads exactly n bytes; the first read also collects (and rejects) any fds. */
static int read_exact(struct vu_client *vu, void *buf, size_t n, uint32_t req, bool first)
{
    size_t got = 0;
    while (got < n) {
        if (wait_readable(vu, req) < 0)
            return -1;
        union { char buf[CMSG_SPACE(sizeof(int) * 16)]; struct cmsghdr align; } ctl;
        struct iovec iov = { (uint8_t *)buf + got, n - got };
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctl.buf;
        m.msg_controllen = sizeof ctl.buf;
        ssize_t r = recvmsg(vu->sock, &m, MSG_CMSG_CLOEXEC);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return vu_io_fail(vu, "reading the reply to %s from the backend failed: %s", req_name(req),
                              strerror(errno));
        }
        if (r == 0)
            return vu_io_fail(vu, "the backend closed the connection while %s (%u) waited for its reply "
                              "(read %zu of %zu bytes)", req_name(req), req, got, n);
        unsigned stray = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                for (unsigned i = 0; i < k; i++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                    if (vu->accept_fd && *vu->accept_fd < 0) {
                        *vu->accept_fd = fd; /* the one descriptor this reply carries */
                        continue;
                    }
                    close(fd);
                    stray++;
                }
            }
        }
        if (stray)
            die("the backend sent %u unexpected file descriptor(s) with the reply to %s", stray,
                req_name(req));
        (void)first;
        got += (size_t)r;
    }
    return 0;
}

int vu_reply(struct vu_client *vu, uint32_t req, void *payload, uint32_t size)
{
    uint8_t hdr[VU_HDR_SIZE];
    if (read_exact(vu, hdr, sizeof hdr, req, true) < 0)
        return -1;
    uint32_t r, flags, sz;
    memcpy(&r, hdr, 4);
    memcpy(&flags, hdr + 4, 4);
    memcpy(&sz, hdr + 8, 4);
    if (r != req)
        die("reply carries request %u, expected %u (%s)", r, req, req_name(req));
    if (flags != (VU_FLAG_VERSION | VU_FLAG_REPLY))
        die("reply to %s has flags 0x%x instead of 0x5", req_name(req), flags);
    if (sz > VU_MAX_PAYLOAD)
        die("reply to %s announces %u payload bytes (limit %u)", req_name(req), sz, VU_MAX_PAYLOAD);
    if (sz != size) {
        uint8_t junk[VU_MAX_PAYLOAD];
        if (read_exact(vu, junk, sz, req, false) < 0)
            return -1;
        die("reply to %s has payload size %u, expected %u", req_name(req), sz, size);
    }
    return read_exact(vu, payload, size, req, false);
}

int vu_get_u64(struct vu_client *vu, uint32_t req, uint64_t *v)
{
    *v = 0;
    if (vu_send(vu, req, VU_FLAG_VERSION, NULL, 0, NULL, 0) < 0)
        return -1;
    return vu_reply(vu, req, v, sizeof *v);
}

/* Whether the family sets NEED_REPLY on req once REPLY_ACK is negotiated: QEMU on every request without a reply
 * of its own (§10); the rust-vmm frontend of cloud-hypervisor only on the memory table; the loopback adapter on
 * its memory regions and its private request 39, never during the handshake (§7 trace). */
static bool family_wants_ack(enum family family, uint32_t req)
{
    switch (family) {
    case FAM_CHV: return req == VU_SET_MEM_TABLE;
    case FAM_LOOPBACK: return req == VU_ADD_MEM_REG || req == VU_SET_MEM_TABLE || req == VU_SHARE_LOOPBACK_FD;
    default: return true;
    }
}

int vu_acked(struct vu_client *vu, uint32_t req, const void *payload, uint32_t size, const int *fds, unsigned nfds)
{
    if (!vu->reply_ack || !family_wants_ack(vu->family, req))
        return vu_send(vu, req, VU_FLAG_VERSION, payload, size, fds, nfds);
    if (vu_send(vu, req, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY, payload, size, fds, nfds) < 0)
        return -1;
    uint64_t ack;
    if (vu_reply(vu, req, &ack, sizeof ack) < 0)
        return -1;
    if (ack != 0)
        die("the backend refused %s with ack %" PRIu64, req_name(req), ack);
    return 0;
}

int vu_plain(struct vu_client *vu, uint32_t req, const void *payload, uint32_t size)
{
    return vu_send(vu, req, VU_FLAG_VERSION, payload, size, NULL, 0);
}

int vu_state(struct vu_client *vu, uint32_t req, unsigned index, unsigned num)
{
    uint32_t s[2] = { index, num };
    if (req == VU_SET_VRING_ENABLE)
        return vu_acked(vu, req, s, sizeof s, NULL, 0);
    return vu_plain(vu, req, s, sizeof s);
}

int vu_fd(struct vu_client *vu, uint32_t req, unsigned index, int fd)
{
    /* The spec has 8 bits for the index (bit 8 is NOFD); the bridge's extension carries index >> 8 in bits
     * 16-31, so that queues 256..1023 of a 511-port console get their eventfds. */
    uint64_t v = vu->wide_index ? (index & 0xffu) | (uint64_t)(index >> 8) << 16 : index;
    return vu_acked(vu, req, &v, sizeof v, &fd, 1);
}

int vu_connect(struct vu_client *vu, const char *path, double timeout)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a.sun_path)
        die_code(EXIT_USAGE, "socket path too long: %s", path);
    strcpy(a.sun_path, path);
    double deadline = now_s() + timeout;
    for (;;) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            return vu_io_fail(vu, "socket: %s", strerror(errno));
        if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
            vu->sock = s;
            return 0;
        }
        int e = errno;
        close(s);
        if ((e != ENOENT && e != ECONNREFUSED && e != EAGAIN) || now_s() > deadline)
            return vu_io_fail(vu, "cannot connect to %s: %s", path, strerror(e));
        usleep(50000);
    }
}
